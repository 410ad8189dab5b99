#!/usr/bin/env bash
# setData throughput and latency while snapshots are being taken, on Paddock alone: a fresh
# server, the tree grown by create-100 and create-1k (as in a default comparison round), then
# setdata; prints the server's snapshot log lines so the snapshots in progress during the setdata
# window can be seen. Usage: bench/setdata-during-snapshot.sh [port] (default 24191).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
port=${1:-24191}
bin=${PADDOCK_BIN:-target/release/paddock}
dir=$(mktemp -d /tmp/paddock-snapload.XXXX)
"$bin" server -DclientPort="$port" -DdataDir="$dir/data" > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
"$bin" bench run --server 127.0.0.1:"$port" --workloads create-100,create-1k --duration 5s --quiet --format table
echo "setdata from $(date -u +%H:%M:%S.%N)"
"$bin" bench run --server 127.0.0.1:"$port" --workloads setdata --duration 5s --quiet --format table
echo "setdata to   $(date -u +%H:%M:%S.%N)"
grep -E "snapshot (started|written)" "$dir/server.log" | sed -E 's/^[0-9-]+T([0-9:.]+)Z +INFO +/\1 /' | cut -c1-90
