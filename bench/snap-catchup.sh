#!/usr/bin/env bash
# Write latency on the leader while a follower catches up by SNAP from a large tree, on Paddock
# alone. Three voters on 127.0.0.1-3 (tickTime=2000, snapshotSizeFactor=0, so a follower behind
# the leader's in-memory window gets a SNAP rather than a DIFF from the log); the tree populated
# through the leader to ZNODES znodes of 100 bytes; then `latency-write` (one session, one
# setData in flight; WORKLOAD and LOAD change that) on the leader for SECONDS_PER_RUN without a
# catch-up, and again while a follower, SIGKILLed and wiped, comes back and installs the
# leader's snapshot. Prints both runs, the ratio of their p99s, and the SNAP log lines.
#
#   bench/snap-catchup.sh                 # 1,000,000 znodes, 10 s per run
#   ZNODES=200000 SECONDS_PER_RUN=5 bench/snap-catchup.sh
#   WORKLOAD=setdata LOAD="--sessions 8 --inflight 4" bench/snap-catchup.sh   # under load
#
# Ports 24601-24603 (client), 24611-24613 (quorum), 24621-24623 (election) on 127.0.0.1-3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${PADDOCK_BIN:-target/release/paddock}
znodes=${ZNODES:-1000000}
secs=${SECONDS_PER_RUN:-10}
workload=${WORKLOAD:-latency-write}
read -r -a load <<< "${LOAD:-}"
dir=$(mktemp -d /tmp/paddock-snap-catchup.XXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

servers=""
for i in 1 2 3; do
    servers+="server.$i=127.0.0.$i:2461$i:2462$i"$'\n'
done
start() {
    local i=$1
    mkdir -p "$dir/$i/data"
    echo "$i" > "$dir/$i/data/myid"
    cat > "$dir/$i/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/$i/data
clientPortAddress=127.0.0.$i
clientPort=2460$i
snapshotSizeFactor=0
$servers
EOF
    "$bin" server "$dir/$i/zoo.cfg" >> "$dir/$i/server.log" 2>&1 &
    pids[$i]=$!
}
mode() {
    local i=$1 reply
    reply=$(exec 3<>"/dev/tcp/127.0.0.$i/2460$i" && echo srvr >&3 && cat <&3 || true)
    sed -n 's/^Mode: //p' <<< "$reply"
}
for i in 1 2 3; do start "$i"; done
leader=""
for _ in $(seq 100); do
    for i in 1 2 3; do
        if [ "$(mode "$i" 2>/dev/null)" = leader ]; then leader=$i; fi
    done
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || { echo "snap-catchup: no leader" >&2; exit 1; }
follower=$(( leader == 3 ? 2 : 3 ))
at="127.0.0.$leader:2460$leader"
echo "leader: server $leader; the follower that catches up: server $follower"

"$bin" bench run --server "$at" --workloads populate --znodes "$znodes" --duration 600s \
    --warmup 0s --quiet --format table
run() {
    "$bin" bench run --server "$at" --workloads "$workload" "${load[@]}" --duration "${secs}s" \
        --quiet --format json | grep '"kind":"workload"'
}
p99() { sed -E 's/.*"p99_us":([0-9.]+).*/\1/' <<< "$1"; }

quiet=$(run)
echo "without catch-up: $quiet"

kill -9 "${pids[$follower]}"
wait "${pids[$follower]}" 2>/dev/null || true
rm -rf "$dir/$follower/data"
start "$follower"
busy=$(run)
echo "during catch-up:  $busy"
for _ in $(seq 100); do
    [ "$(mode "$follower" 2>/dev/null)" = follower ] && break
    sleep 0.2
done
echo "server $follower: $(mode "$follower")"
echo "p99 ratio (during/without): $(awk -v a="$(p99 "$busy")" -v b="$(p99 "$quiet")" 'BEGIN { printf "%.2f", a / b }')"
grep -hE "snapshot to a learner|installing the leader's snapshot" "$dir/$leader/server.log" \
    "$dir/$follower/server.log" | cut -c1-160
