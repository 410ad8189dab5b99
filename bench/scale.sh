#!/usr/bin/env bash
# Paddock and Apache ZooKeeper 3.8 side by side at growing tree sizes and growing numbers of
# held sessions (`paddock bench scale`): at each point both start fresh, are filled (znodes) or
# given sessions each with an ephemeral znode and watches, and are measured (workloads, RSS,
# snapshots, restart to serving; watch delivery, every session back after a SIGKILL).
# Results: bench/results/scale/ (summary.md, chart.svg, scale.jsonl).
#
#   bench/scale.sh                      # the full sweep: 100k, 1m and 10m znodes; 1k, 10k, 50k sessions
#   bench/scale.sh --znodes 100k,1m     # chosen sizes (any `paddock bench scale` option)
#   bench/scale.sh --sweeps sessions --held-sessions 1k,10k
#   bench/scale.sh --smoke              # CI: 100,000 znodes and 1,000 sessions, 2 s workloads
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${PADDOCK_BIN:-target/release/paddock}
if [ ! -x "$bin" ]; then
    echo "scale: $bin missing; building it" >&2
    cargo build --release -p paddock >&2
fi

# Two free ports in 24000-24999 (the range this project's machines reserve for its tools).
port=
for _ in $(seq 1 200); do
    p=$((24000 + RANDOM % 998))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null \
        && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
        port=$p
        break
    fi
done
[ -n "$port" ] || { echo "scale: no free ports in 24000-24999" >&2; exit 1; }

work=$(mktemp -d /tmp/paddock-bench-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=(--out-dir bench/results/scale)
for a in "$@"; do
    case "$a" in
        --smoke) out=(--out-dir "$work/results") ;;
        --out-dir|--out-dir=*) out=() ;;
    esac
done
ulimit -n 65536 2>/dev/null || true
"$bin" bench scale --port "$port" --work-dir "$work/data" "${out[@]}" "$@"
