#!/usr/bin/env bash
# `paddock import-zk` against Apache ZooKeeper 3.8's own start-up on the same data directory.
#
# ZooKeeper (Debian's package) is given ZNODES znodes of 100 bytes (`paddock bench`'s populate
# workload), restarted so that its start-up writes a snapshot holding them, then SETS setData of
# SET_BYTES each (about 1 GB by default) go into the log after that snapshot. ZooKeeper is
# stopped, and on copies of its directory:
#   - ZooKeeper starts: the time from launch until it answers `srvr` at the last zxid (it loads
#     the snapshot, replays the log, and, being ZooKeeper, writes a new snapshot first);
#   - `paddock import-zk` runs: its wall time;
#   - Paddock starts on the import: the time until it answers `srvr`.
# Prints the three times and the ratio import / ZooKeeper's start.
#
#   bench/migration.sh                                  # 1,000,000 znodes, 10,000 x 100 kB
#   ZNODES=100000 SETS=1000 bench/migration.sh          # a quick look
#
# Needs about 4 GB of disk under TMPDIR (the directory and two copies).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$(pwd)/${PADDOCK_BIN:-target/release/paddock}
znodes=${ZNODES:-1000000}
sets=${SETS:-10000}
set_bytes=${SET_BYTES:-100000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/paddock-migration-bench.XXXX")
port=24701
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
srvr_zxid() { { echo srvr | nc -w 2 127.0.0.1 "$port"; } 2>/dev/null | sed -n 's/^Zxid: //p'; }
stop() {
    kill "$1" 2>/dev/null || true
    while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
}
# Starts ZooKeeper on a directory; its pid once it serves (`ruok` answers while the database
# still loads, `srvr` only once it is loaded).
zk() {
    local pid
    pid=$(ZK_START_TIMEOUT=1200 scripts/start-zookeeper.sh "$port" "$1" snapCount=100000000 | tail -1)
    until [ -n "$(srvr_zxid)" ]; do sleep 0.05; done
    echo "$pid"
}

echo "== ZooKeeper: $znodes znodes of 100 B"
pid=$(zk "$dir/zk")
pids+=("$pid")
"$bin" bench run --server "127.0.0.1:$port" --workloads populate --znodes "$znodes" \
    --per-parent 1000 --value-size 100 --duration 1200s --warmup 0s --format table --quiet
stop "$pid"
echo "== ZooKeeper restarted (its start-up writes a snapshot of them), then $sets setData of $set_bytes B"
pid=$(zk "$dir/zk")
pids+=("$pid")
"$bin" bench run --server "127.0.0.1:$port" --workloads setdata --keys 100 \
    --value-size "$set_bytes" --ops "$sets" --warmup 0s --duration 1200s --format table --quiet
last=$(srvr_zxid)
stop "$pid"
ls -la "$dir/zk/version-2"
snap=$(ls -S "$dir/zk/version-2" | grep '^snapshot\.' | head -1)
log_bytes=$(find "$dir/zk/version-2" -name 'log.*' -newer "$dir/zk/version-2/$snap" -printf '%s\n' |
    awk '{s += $1} END {print s + 0}')
echo "   last zxid $last; largest snapshot $snap; $log_bytes bytes of log after it"

cp -a "$dir/zk" "$dir/zk-start"
cp -a "$dir/zk" "$dir/zk-import"
rm -rf "$dir/zk"

echo "== ZooKeeper's start-up on the directory"
t0=$(now_ms)
pid=$(zk "$dir/zk-start")
pids+=("$pid")
until [ "$(srvr_zxid)" = "$last" ]; do sleep 0.05; done
zk_ms=$(( $(now_ms) - t0 ))
stop "$pid"
grep -E "Snapshot loaded in|Snapshotting" "$dir/zk-start/zookeeper.log" | tail -3 || true

echo "== paddock import-zk"
t0=$(now_ms)
"$bin" import-zk "$dir/zk-import" --to "$dir/paddock"
import_ms=$(( $(now_ms) - t0 ))

echo "== Paddock's start-up on the import"
cat > "$dir/paddock.cfg" <<EOF
tickTime=2000
dataDir=$dir/paddock
clientPort=$port
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
admin.enableServer=false
EOF
t0=$(now_ms)
"$bin" server "$dir/paddock.cfg" > "$dir/paddock.log" 2>&1 &
pids+=("$!")
until [ -n "$(srvr_zxid)" ]; do sleep 0.05; done
pd_ms=$(( $(now_ms) - t0 ))

echo
echo "ZooKeeper start-up          ${zk_ms} ms"
echo "paddock import-zk           ${import_ms} ms"
echo "Paddock start-up on import  ${pd_ms} ms"
awk -v a="$import_ms" -v b="$zk_ms" 'BEGIN { printf "import / ZooKeeper start    %.2f\n", a / b }'
