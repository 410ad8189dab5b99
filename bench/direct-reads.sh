#!/usr/bin/env bash
# Reads off the core, measured (issue 19): the same Paddock binary with directReads=true (the
# default) and directReads=false (every read through the core task), alternating on fresh
# servers, for each round. Prints, per workload and mode, throughput, p99, the server's CPU and
# its CPU time per operation, and, during getdata, each server thread's share of a core.
#
#   bench/direct-reads.sh                      # 3 rounds of getdata, getchildren, mixed
#   bench/direct-reads.sh --rounds 1 --workloads getdata
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${PADDOCK_BIN:-target/release/paddock}
rounds=3
workloads=getdata,getchildren,mixed
duration=6s
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --workloads) workloads=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        *) echo "direct-reads: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "direct-reads: $bin missing (cargo build --release)" >&2; exit 1; }

# A free port in 23000-23999 (the range this project's machines reserve for its tools).
port=
for _ in $(seq 1 200); do
    p=$((23000 + RANDOM % 1000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "direct-reads: no free port in 23000-23999" >&2; exit 1; }

work=$(mktemp -d /tmp/paddock-direct-reads.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Per-thread CPU of process $1 over $2 seconds, from /proc (utime + stime in clock ticks).
thread_cpu() {
    local pid=$1 secs=$2 tck
    tck=$(getconf CLK_TCK)
    snap() {
        for t in /proc/"$pid"/task/*; do
            local stat rest
            stat=$(cat "$t/stat" 2>/dev/null) || continue
            rest=${stat##*) }
            # shellcheck disable=SC2086
            set -- $rest
            echo "${t##*/} $(cat "$t/comm") ${12} ${13}"
        done | sort
    }
    snap >"$work/a"
    sleep "$secs"
    snap >"$work/b"
    join "$work/a" "$work/b" | awk -v s="$secs" -v t="$tck" \
        '{d=($6+$7)-($3+$4); if (d>0) printf "    thread %s %s: %.0f%% of a core\n",$1,$2,100*d/t/s}' |
        sort -t: -k2 -rn
}

for round in $(seq 1 "$rounds"); do
    for mode in true false; do
        rm -rf "$work/data"
        PADDOCK_LOG=warn "$bin" server -Dzookeeper.clientPort="$port" \
            -Dzookeeper.clientPortAddress=127.0.0.1 -Dzookeeper.dataDir="$work/data" \
            -Dzookeeper.4lw.commands.whitelist='*' -Dzookeeper.admin.enableServer=false \
            -DdirectReads="$mode" >"$work/server.log" 2>&1 &
        server_pid=$!
        for _ in $(seq 1 100); do
            [ "$( { echo ruok | nc -w 1 127.0.0.1 "$port"; } 2>/dev/null)" = imok ] && break
            sleep 0.1
        done
        for w in ${workloads//,/ }; do
            if [ "$w" = getdata ]; then
                # Sampled in the middle of the measured time.
                (sleep 3 && thread_cpu "$server_pid" 3 >"$work/threads") &
                sampler=$!
            fi
            "$bin" bench --server "127.0.0.1:$port" --pid "$server_pid" --workloads "$w" \
                --duration "$duration" --warmup 1s --format json --quiet 2>/dev/null |
                python3 -c "
import json, sys
for line in sys.stdin:
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get('kind') != 'workload':
        continue
    cpu = j['servers'][0]['cpu_pct'] if j.get('servers') else 0
    ops = max(1, j['ops_per_sec'])
    print(f\"round $round directReads=$mode {j['workload']:12} {ops:>12,.0f} ops/s  p99 {j['p99_us'] / 1000:6.2f} ms  server CPU {cpu:4.0f}%  {cpu * 10000 / ops:6.2f} us/op\")
"
            if [ "$w" = getdata ]; then
                wait "$sampler"
                cat "$work/threads"
            fi
        done
        echo "    direct reads: $( { echo mntr | nc -w 1 127.0.0.1 "$port"; } | awk '$1=="zk_direct_read_count"{d=$2} $1=="zk_packets_received"{r=$2} END{printf "%d of %d requests", d, r}')"
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    done
done
