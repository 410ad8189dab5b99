#!/usr/bin/env bash
# setData's p99 on a large tree with a snapshot being written against none (issue 19: within
# 1.5x), on Paddock alone. Fills a fresh server with ZNODES znodes (`paddock bench memory`),
# SIGKILLs it and keeps its data; then, from a copy of that data each time:
#   - with snapshots off (snapCount=1000000000): setdata twice;
#   - with the defaults: setdata at once, while the snapshot the start-up begins is written.
# setdata: 32 sessions x 16 in flight over KEYS znodes, 5 s after 1 s of warm-up.
#
#   bench/snapshot-p99.sh                        # 10,000,000 znodes
#   ZNODES=1000000 bench/snapshot-p99.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${PADDOCK_BIN:-target/release/paddock}
znodes=${ZNODES:-10000000}
keys=${KEYS:-100000}
port=${PORT:-24301}
dir=$(mktemp -d /tmp/paddock-snapshot-p99.XXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

start() { # start LOG [-Dk=v...]: a server on a fresh copy of the filled data; waits until it serves
    local log=$1
    shift
    rm -rf "$dir/data" && cp -r "$dir/filled" "$dir/data"
    "$bin" server -DclientPort="$port" -DdataDir="$dir/data" "$@" > "$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do
        grep -q "serving clients" "$log" && return 0
        sleep 0.25
    done
    echo "snapshot-p99: the server did not start (see $log)" >&2
    exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
setdata() {
    "$bin" bench run --server 127.0.0.1:"$port" --workloads setdata --keys "$keys" \
        --duration 5s --warmup 1s --quiet --format table 2>&1 | tail -1
}

"$bin" server -DclientPort="$port" -DdataDir="$dir/filled" > "$dir/fill.log" 2>&1 &
pid=$!
sleep 1
"$bin" bench memory --server 127.0.0.1:"$port" --pid "$pid" --znodes "$znodes" --quiet | tail -1
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=

echo "columns: workload, label, sessions x in flight, ops/s, p50, p90, p99, p99.9, max (ms), ..."
start "$dir/off.log" -DsnapCount=1000000000
echo "no snapshot (snapCount=1000000000):"
setdata
setdata
stop
start "$dir/on.log"
echo "while the start-up's snapshot is written:"
setdata
grep -E "snapshot (started|written)" "$dir/on.log" | sed -E 's/^[0-9-]+T([0-9:.]+)Z +INFO +/\1 /' | cut -c1-80
echo "(setdata ended $(date -u +%H:%M:%S))"
stop
