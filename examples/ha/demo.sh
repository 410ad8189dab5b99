#!/usr/bin/env bash
# HDFS NameNode HA in miniature: two "namenodes" (namenode.sh) share one edit log, each under
# a `paddock elect` controller, coordinated by a three-server Paddock ensemble.
#
#   examples/ha/demo.sh [--rounds N] [--zookeeper] [--no-partition] [--keep] [path/to/paddock]
#
# Faults, one after the other, each against whichever side is active at the time:
#   1. kill -9 the active namenode        (its controller's health check fails)
#   2. kill -9 the active's controller    (its session expires on the ensemble)
#   3. cut the active's controller off    (network namespace link down; needs root)
# After each the standby must become active (after fencing the old namenode) within the
# session timeout plus a margin, and the shared edit log must never show two writers at once:
# edits carry the writer's fencing token, and in file order the tokens never go down, each
# belonging to one writer. Finally the active controller exits cleanly and removes its
# breadcrumb. --rounds N repeats the three faults N times (default 1); --zookeeper coordinates
# through a three-server Apache ZooKeeper 3.8 ensemble instead of Paddock. Prints the measured
# failover times (median, min, max per fault) and "ha: PASS", or fails with the reason.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
partition=1
keep=0
rounds=1
system=paddock
paddock=$repo/target/release/paddock
while [ $# -gt 0 ]; do
    case $1 in
        --no-partition) partition=0 ;;
        --keep) keep=1 ;;
        --zookeeper) system=zookeeper ;;
        --rounds) rounds=${2:-}; shift ;;
        --rounds=*) rounds=${1#--rounds=} ;;
        *) paddock=$1 ;;
    esac
    shift
done
case $rounds in '' | *[!0-9]* | 0) echo "ha: --rounds needs a number >= 1" >&2; exit 2 ;; esac
[ -x "$paddock" ] || { echo "ha: $paddock not built (cargo build --release)" >&2; exit 1; }
if [ "$partition" = 1 ] && [ "$(id -u)" != 0 ]; then
    echo "ha: not root: the partition fault is skipped (it needs network namespaces)"
    partition=0
fi

session_ms=2000
tick_ms=200
# The longest failover accepted: a session timeout, the expiry sweep (a tick), the fence and
# the hooks; generous, as CI machines are slow.
limit_ms=$((session_ms + 3000))
work=$(mktemp -d /tmp/paddock-ha.XXXXXX)
tag=pha$$
br=br$tag
net=10.198.$(( $$ % 200 + 20 ))
base=$(( 26000 + ($$ % 200) * 10 ))
pids=()

cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    for s in a b; do
        [ -f "$work/$s.nn.pid" ] && kill -9 "$(cat "$work/$s.nn.pid")" 2>/dev/null
        [ -f "$work/$s.ctl.pid" ] && kill -9 "$(cat "$work/$s.ctl.pid")" 2>/dev/null
        if [ "$partition" = 1 ]; then
            ip netns del "$tag$s" 2>/dev/null
            ip link del "v$tag$s" 2>/dev/null
        fi
    done
    [ "$partition" = 1 ] && ip link del "$br" 2>/dev/null
    if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "ha: files kept in $work"; fi
}
trap cleanup EXIT

fail() {
    echo "ha: FAIL: $*" >&2
    for s in a b; do
        echo "--- controller $s (tail) ---" >&2
        tail -n 25 "$work/$s.ctl.log" >&2 2>/dev/null
    done
    echo "--- edit log (tail) ---" >&2
    tail -n 5 "$work/edits.log" >&2 2>/dev/null
    keep=1
    exit 1
}

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

# ---- the ensemble -----------------------------------------------------------
# Paddock by default; with --zookeeper, Apache ZooKeeper 3.8 (Debian's package, started by
# scripts/start-zookeeper.sh) with the same zoo.cfg: the controller speaks the public protocol.
for i in 1 2 3; do
    mkdir -p "$work/s$i/data"
    echo "$i" >"$work/s$i/data/myid"
    cfg=("tickTime=$tick_ms" "initLimit=10" "syncLimit=5" "dataDir=$work/s$i/data"
        "clientPort=$((base + i))" "clientPortAddress=0.0.0.0")
    for j in 1 2 3; do cfg+=("server.$j=127.0.0.1:$((base + 3 + 2 * j)):$((base + 4 + 2 * j))"); done
    if [ "$system" = zookeeper ]; then
        # The script writes its own zoo.cfg (later lines override its defaults) and prints the
        # JVM's pid once the server answers ruok.
        pid=$(bash "$repo/scripts/start-zookeeper.sh" "$((base + i))" "$work/s$i/data" "${cfg[@]}") ||
            fail "ZooKeeper server $i did not start"
        pids+=("$pid")
    else
        printf '%s\n' "${cfg[@]}" >"$work/s$i/zoo.cfg"
        "$paddock" server "$work/s$i/zoo.cfg" >"$work/s$i/log" 2>&1 &
        pids+=($!)
        disown $!
    fi
done

# ---- where the controllers run ------------------------------------------------
# With root each controller gets a network namespace of its own, joined to the ensemble by a
# veth pair on a bridge, so that one can be cut off; without, both run here.
host=127.0.0.1
if [ "$partition" = 1 ]; then
    host=$net.254
    ip link add "$br" type bridge
    ip addr add "$host/24" dev "$br"
    ip link set "$br" up
    k=1
    for s in a b; do
        ip netns add "$tag$s"
        ip netns exec "$tag$s" ip link set lo up
        ip link add "v$tag$s" type veth peer name eth0 netns "$tag$s"
        ip link set "v$tag$s" master "$br"
        ip link set "v$tag$s" up
        ip netns exec "$tag$s" ip addr add "$net.$k/24" dev eth0
        ip netns exec "$tag$s" ip link set eth0 up
        k=$((k + 1))
    done
fi
servers="$host:$((base + 1)),$host:$((base + 2)),$host:$((base + 3))"

in_ns() { # in_ns <side> <command...>: exec, so that a background call's $! is the command's
    if [ "$partition" = 1 ]; then exec ip netns exec "$tag$1" "${@:2}"; else exec "${@:2}"; fi
}

start_namenode() {
    "$here/namenode.sh" "$1" "$work" >/dev/null 2>&1 &
    disown $!
    local t=0
    until [ -f "$work/$1.nn.pid" ] && [ "$(cat "$work/$1.nn.pid")" = "$!" ]; do
        sleep 0.05; t=$((t + 1)); [ $t -lt 100 ] || fail "namenode $1 did not start"
    done
}

# The fence: kill the old active's namenode and succeed only once it is gone.
fence='p=$(cat "'"$work"'/$PADDOCK_FENCE_TARGET.nn.pid" 2>/dev/null) || exit 0
echo "$(date +%s.%N) $PADDOCK_ELECT_ID fences $PADDOCK_FENCE_TARGET" >>"'"$work"'/fence.log"
kill -9 "$p" 2>/dev/null
for i in $(seq 50); do kill -0 "$p" 2>/dev/null || exit 0; sleep 0.1; done
exit 1'

start_controller() {
    local s=$1
    in_ns "$s" "$paddock" elect /hdfs-ha -server "$servers" --id "$s" \
        --session-timeout "$session_ms" --health-interval 200 --retry-delay 500 \
        --on-active "echo active \$PADDOCK_FENCING_TOKEN > $work/$s.state" \
        --on-standby "echo standby > $work/$s.state" \
        --fence "$fence" \
        --health "kill -0 \$(cat $work/$s.nn.pid) 2>/dev/null" \
        >>"$work/$s.ctl.log" 2>&1 &
    echo $! >"$work/$s.ctl.pid"
    disown $!
}

# The writer of the last edit, once edits flow (empty while nobody writes).
last_writer() { tail -n 1 "$work/edits.log" 2>/dev/null | cut -d' ' -f1; }
writing() { # writing <side>: <side> appended an edit within the last 300 ms
    local line t
    line=$(tail -n 1 "$work/edits.log" 2>/dev/null) || return 1
    [ "${line%% *}" = "$1" ] || return 1
    t=${line##* }; t=${t/./}
    [ $(( ${EPOCHREALTIME/./} - t )) -lt 300000 ]
}
other() { [ "$1" = a ] && echo b || echo a; }

wait_for() { # wait_for <seconds> <what> <command...>
    local end=$(( SECONDS + $1 )) what=$2
    shift 2
    until "$@"; do
        [ $SECONDS -lt $end ] || fail "timed out waiting for $what"
        sleep 0.05
    done
}

# Waits for <side> to take over; prints the milliseconds since <t0>.
takeover() { # takeover <side> <t0>
    local end=$(( $(now_ms) + limit_ms + 5000 ))
    until writing "$1"; do
        [ "$(now_ms)" -lt "$end" ] || fail "$1 did not become active"
        sleep 0.01
    done
    # The first edit of the new token, from the log itself.
    local tok first
    tok=$(tail -n 1 "$work/edits.log" | cut -d' ' -f2)
    first=$(awk -v w="$1" -v t="$tok" '$1 == w && $2 == t { print $4; exit }' "$work/edits.log")
    echo $(( ${first/./} / 1000 - $2 ))
}

# How many lines of <side>'s controller log match <pattern>.
count() { grep -c "$2" "$work/$1.ctl.log" 2>/dev/null || true; }
more_than() { [ "$(count "$1" "$2")" -gt "$3" ]; }
# Waits until <side>'s controller stands by again (a new "standing by" line since <before>).
ready() { # ready <side> <before>
    wait_for 30 "$1 to stand by again" more_than "$1" "standing by" "$2"
}

record() { # record <fault> <ms>
    [ "$2" -le "$limit_ms" ] || fail "$1: failover took $2 ms (limit $limit_ms ms)"
    echo "$1|$2" >>"$work/times"
    echo "ha: $1: standby active after $2 ms"
}

for s in a b; do echo standby >"$work/$s.state"; start_namenode "$s"; done
start_controller a
sleep 0.3
start_controller b
someone_writes() { [ -n "$(last_writer)" ]; }
wait_for 30 "an active namenode" someone_writes
active=$(last_writer)
ready "$(other "$active")" 0
echo "ha: $active is active, $(other "$active") stands by"

for round in $(seq "$rounds"); do
[ "$rounds" = 1 ] || echo "ha: round $round of $rounds"
    # ---- 1. kill the active namenode ----------------------------------------------
    standby=$(other "$active")
    before=$(count "$active" "standing by")
    t0=$(now_ms)
    kill -9 "$(cat "$work/$active.nn.pid")"
    ms=$(takeover "$standby" "$t0")
    record "kill -9 the active namenode" "$ms"
    echo standby >"$work/$active.state"
    start_namenode "$active"
    ready "$active" "$before"
    active=$standby

    # ---- 2. kill the active's controller --------------------------------------------
    standby=$(other "$active")
    before=$(count "$active" "standing by")
    t0=$(now_ms)
    kill -9 "$(cat "$work/$active.ctl.pid")"
    ms=$(takeover "$standby" "$t0")
    record "kill -9 the active's controller" "$ms"
    # Its namenode was fenced by the new active; bring both back as standby.
    echo standby >"$work/$active.state"
    start_namenode "$active"
    start_controller "$active"
    ready "$active" "$before"
    active=$standby

    # ---- 3. partition the active's controller -------------------------------------------
    if [ "$partition" = 1 ]; then
        standby=$(other "$active")
        before=$(count "$active" "standing by")
        lost=$(count "$active" "session presumed lost")
        t0=$(now_ms)
        ip link set "v$tag$active" down
        ms=$(takeover "$standby" "$t0")
        record "cut the active's controller off the ensemble" "$ms"
        wait_for 10 "the cut-off controller to step down" more_than "$active" "session presumed lost" "$lost"
        ip link set "v$tag$active" up
        echo standby >"$work/$active.state"
        start_namenode "$active"
        ready "$active" "$before"
        active=$standby
    fi
done

# ---- the shared edit log: never two writers at once ---------------------------------------
awk '
    { if (($2 + 0) < last) { print "line " NR ": token " $2 " by " $1 " after token " last; bad = 1; exit }
      if (($2 in owner) && owner[$2] != $1) { print "line " NR ": token " $2 " used by " owner[$2] " and " $1; bad = 1; exit }
      owner[$2] = $1; last = $2 + 0 }
    END { exit bad }' "$work/edits.log" >"$work/check.txt" ||
    fail "interleaved writers in the edit log: $(cat "$work/check.txt")"
edits=$(wc -l <"$work/edits.log")
tokens=$(cut -d' ' -f2 "$work/edits.log" | uniq | wc -l)
fences=$(wc -l <"$work/fence.log" 2>/dev/null || echo 0)
[ "$fences" -ge 2 ] || fail "expected the old active to be fenced at least twice, saw $fences fences"

# ---- clean exit of the active removes its breadcrumb --------------------------------------
kill -TERM "$(cat "$work/$active.ctl.pid")"
standby=$(other "$active")
wait_for 20 "$standby to take over after a clean exit" writing "$standby"
wait_for 10 "the clean exit to be logged" grep -q "breadcrumb removed" "$work/$active.ctl.log"
# The new active found no breadcrumb of the old one, so it fenced nobody this time.
fences_after=$(wc -l <"$work/fence.log")
[ "$fences_after" = "$fences" ] || fail "a clean exit was fenced anyway"

echo
echo "== failover through $system, ms from the fault to the new active's first edit (session timeout $session_ms ms, tickTime $tick_ms ms, health check every 200 ms, $rounds round(s)) =="
printf '%-44s %8s %8s %8s %4s\n' fault median min max n
awk -F'|' '{ n[$1]++; v[$1, n[$1]] = $2; if (!($1 in order)) { order[$1] = ++k; name[k] = $1 } }
    END { for (i = 1; i <= k; i++) { f = name[i]; m = n[f]
            for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[f, b] < v[f, a]) { t = v[f, a]; v[f, a] = v[f, b]; v[f, b] = t }
            med = (m % 2) ? v[f, (m + 1) / 2] : int((v[f, m / 2] + v[f, m / 2 + 1]) / 2)
            printf "%-44s %8d %8d %8d %4d\n", f, med, v[f, 1], v[f, m], m } }' "$work/times"
echo "edit log: $edits edits under $tokens fencing tokens, never two writers at once; $fences fences"
echo "ha: PASS"
