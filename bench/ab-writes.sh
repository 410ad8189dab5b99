#!/usr/bin/env bash
# Two paddock builds A/B on the write workloads that grow the tree and take snapshots: each
# round starts a fresh standalone server per build, runs create-100, create-1k and setdata
# (5 s each after 1 s of warm-up) and prints ops/s and the snapshots the server wrote. The
# builds alternate within a round, so drift on the machine hits both alike.
#
#   bench/ab-writes.sh OLD_BINARY [NEW_BINARY] [ROUNDS]   # NEW defaults to target/release/paddock
#
# Build the older one from a worktree, e.g.
#   git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p paddock)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
old=${1:?usage: bench/ab-writes.sh OLD_BINARY [NEW_BINARY] [ROUNDS]}
new=${2:-target/release/paddock}
rounds=${3:-3}
port=${PORT:-24401}
client=target/release/paddock
for r in $(seq 1 "$rounds"); do
    for which in old new; do
        bin=$old
        [ "$which" = new ] && bin=$new
        dir=$(mktemp -d /tmp/paddock-ab.XXXX)
        "$bin" server -DclientPort="$port" -DdataDir="$dir/data" > "$dir/server.log" 2>&1 &
        pid=$!
        sleep 1
        figures=$("$client" bench run --server 127.0.0.1:"$port" --workloads create-100,create-1k,setdata \
            --duration 5s --quiet --format json 2>/dev/null | python3 -c '
import json, sys
out = []
for line in sys.stdin:
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if "ops_per_sec" in j:
        out.append("%s %d" % (j["workload"], j["ops_per_sec"]))
print(", ".join(out))')
        echo "round $r $which: $figures; snapshots written $(grep -c 'snapshot written' "$dir/server.log" || true)"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -rf "$dir"
    done
done
