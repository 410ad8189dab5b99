#!/usr/bin/env bash
# Smoke test of `paddock bench` (CI): starts a paddock server on a free port, runs every
# workload for about a second with few sessions, then the memory mode on a few thousand
# znodes, and fails unless every workload reported non-zero ops and zero errors.
#
#   bench/smoke.sh                 # uses target/release/paddock (builds it if missing)
#   PADDOCK_BIN=/path/paddock bench/smoke.sh
#   SMOKE_DURATION=2s bench/smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${PADDOCK_BIN:-target/release/paddock}
if [ ! -x "$bin" ]; then
    echo "smoke: $bin missing; building it" >&2
    cargo build --release -p paddock >&2
fi
duration=${SMOKE_DURATION:-1s}

# A free port in 23000-23999 (the range this project's machines reserve for its tools).
port=
for _ in $(seq 1 200); do
    p=$((23000 + RANDOM % 1000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "smoke: no free port in 23000-23999" >&2; exit 1; }

work=$(mktemp -d /tmp/paddock-bench-smoke.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

PADDOCK_LOG=warn "$bin" server -Dzookeeper.clientPort="$port" -Dzookeeper.clientPortAddress=127.0.0.1 \
    -Dzookeeper.dataDir="$work/data" -Dzookeeper.4lw.commands.whitelist='*' -Dzookeeper.maxClientCnxns=0 \
    >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    [ "$( { echo ruok | nc -w 1 127.0.0.1 "$port"; } 2>/dev/null)" = imok ] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "smoke: server exited" >&2; cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done

echo "smoke: paddock server pid $server_pid on 127.0.0.1:$port; every workload for $duration" >&2
status=0
"$bin" bench -server "127.0.0.1:$port" --pid "$server_pid" --label paddock --workloads all \
    --sessions 4 --inflight 8 --duration "$duration" --warmup 0.2s --znodes 20000 --quiet \
    --format both --json "$work/out.jsonl" || status=$?
if [ "$status" -ne 0 ]; then
    echo "smoke: paddock bench exited with $status" >&2
    tail -n 30 "$work/server.log" >&2
    exit 1
fi

fail=0
expected=$("$bin" bench workloads | awk '{print $1}')
for w in $expected; do
    line=$(grep "\"workload\":\"$w\"" "$work/out.jsonl" || true)
    if [ -z "$line" ]; then
        echo "smoke: FAIL $w: no result" >&2; fail=1; continue
    fi
    ops=$(sed -E 's/.*"ops":([0-9]+).*/\1/' <<<"$line")
    errors=$(sed -E 's/.*"errors":([0-9]+).*/\1/' <<<"$line")
    if [ "$ops" -le 0 ] || [ "$errors" -ne 0 ]; then
        echo "smoke: FAIL $w: ops=$ops errors=$errors: $line" >&2; fail=1
    else
        echo "smoke: ok   $w: ops=$ops errors=0" >&2
    fi
done

# The memory mode, small.
mem=$("$bin" bench memory --server "127.0.0.1:$port" --pid "$server_pid" --znodes 5000 --per-parent 1000 \
    --value-size 100 --sessions 4 --settle 0.2s --quiet | grep '"kind":"memory"' || true)
if [[ "$mem" =~ \"errors\":0[,}] ]] && [[ "$mem" =~ \"rss_after_bytes\":[1-9] ]]; then
    echo "smoke: ok   memory: $mem" >&2
else
    echo "smoke: FAIL memory: ${mem:-no result}" >&2; fail=1
fi

kill -0 "$server_pid" 2>/dev/null || { echo "smoke: FAIL the server died" >&2; fail=1; }
if [ "$fail" -ne 0 ]; then
    tail -n 30 "$work/server.log" >&2
    exit 1
fi
echo "smoke: all workloads passed" >&2
