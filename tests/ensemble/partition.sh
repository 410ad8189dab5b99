#!/usr/bin/env bash
# A network partition of a three-server Paddock ensemble, with real network namespaces.
#
#   tests/ensemble/partition.sh [path/to/paddock]
#
# Each server runs in its own network namespace (pdkN), joined to a bridge in the root
# namespace by a veth pair; clients (paddock cli) run in the root namespace. The test cuts the
# leader off (its veth goes down), checks that it stops serving while the majority elects a
# new leader and takes writes, heals the link, and checks that the old leader rejoins and
# converges. `paddock status` is checked at each stage (exit 0 only while a quorum serves), and
# server 1 logs JSON lines (PADDOCK_LOG_FORMAT=json). Needs root and iproute2. Prints
# "partition: PASS" or fails with the reason.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
paddock=${1:-$repo/target/release/paddock}
[ -x "$paddock" ] || { echo "partition: $paddock not built" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "partition: needs root (network namespaces)" >&2; exit 1; }

tag=pdk$$
br=br$tag
net=10.199.$(( $$ % 200 + 20 ))
work=$(mktemp -d /tmp/paddock-partition.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for i in 1 2 3; do
        ip netns del "$tag$i" 2>/dev/null || true
        ip link del "v$tag$i" 2>/dev/null || true
    done
    ip link del "$br" 2>/dev/null || true
    if [ "${keep:-0}" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
    echo "partition: FAIL: $*" >&2
    for i in 1 2 3; do
        echo "--- server $i log (tail) ---" >&2
        tail -n 30 "$work/s$i/log" >&2 || true
    done
    keep=1
    echo "partition: files kept in $work" >&2
    exit 1
}

# ---- the network ----------------------------------------------------------
ip link add "$br" type bridge
ip addr add "$net.254/24" dev "$br"
ip link set "$br" up
for i in 1 2 3; do
    ns=$tag$i
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    ip link add "v$tag$i" type veth peer name eth0 netns "$ns"
    ip link set "v$tag$i" master "$br"
    ip link set "v$tag$i" up
    ip netns exec "$ns" ip addr add "$net.$i/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
done

# ---- the servers ----------------------------------------------------------
start() {
    local i=$1 format=text
    [ "$i" = 1 ] && format=json
    PADDOCK_LOG_FORMAT=$format ip netns exec "$tag$i" "$paddock" server "$work/s$i/zoo.cfg" >>"$work/s$i/log" 2>&1 &
    pids[$i]=$!
    disown "$!"
}
for i in 1 2 3; do
    mkdir -p "$work/s$i/data"
    echo "$i" >"$work/s$i/data/myid"
    cat >"$work/s$i/zoo.cfg" <<EOF
tickTime=200
initLimit=10
syncLimit=5
dataDir=$work/s$i/data
clientPort=2181
clientPortAddress=$net.$i
4lw.commands.whitelist=*
server.1=$net.1:2888:3888
server.2=$net.2:2888:3888
server.3=$net.3:2888:3888
EOF
    start "$i"
done

# srvr of server i, asked from inside its own namespace (works while it is cut off).
srvr() { ip netns exec "$tag$1" bash -c "exec 3<>/dev/tcp/$net.$1/2181; printf srvr >&3; cat <&3" 2>/dev/null || true; }
mode() { srvr "$1" | sed -n 's/^Mode: //p'; }
zxid() { srvr "$1" | sed -n 's/^Zxid: //p'; }
cli() { timeout 20 "$paddock" cli -server "$1" "${@:2}" 2>&1; }
all="$net.1:2181,$net.2:2181,$net.3:2181"

wait_for() { # wait_for <seconds> <description> <command...>
    local t=$1 what=$2
    shift 2
    local end=$(( SECONDS + t ))
    until "$@"; do
        [ $SECONDS -lt $end ] || fail "timed out waiting for $what"
        sleep 0.2
    done
}
leader() { for i in 1 2 3; do [ "$(mode "$i")" = leader ] && echo "$i"; done; return 0; }
one_leader() { [ "$(leader | wc -l)" = 1 ]; }

wait_for 20 "a leader" one_leader
old=$(leader)
echo "partition: leader is server $old"
status() { timeout 20 "$paddock" status -server "$all" --timeout 1000 2>&1; }
out=$(status) || fail "paddock status says no quorum with three servers up: $out"
[ "$(echo "$out" | grep -c ' leader ')" = 1 ] || fail "paddock status does not show one leader: $out"
echo "$out" | grep -q "3 of 3 serving; quorum: yes" || fail "paddock status: $out"
cli "$all" create /before v1 | grep -q "Created /before" || fail "first write failed"

# ---- cut the leader off ---------------------------------------------------
ip link set "v$tag$old" down
echo "partition: server $old cut off"
not_serving() { srvr "$old" | grep -q "not currently serving"; }
wait_for 15 "the cut-off leader to stop serving" not_serving
majority=()
for i in 1 2 3; do [ "$i" = "$old" ] || majority+=("$net.$i:2181"); done
new_leader() { local l; l=$(leader); [ -n "$l" ] && [ "$l" != "$old" ]; }
wait_for 15 "a new leader in the majority" new_leader
echo "partition: server $(leader) leads the majority"
out=$(status) || fail "paddock status says no quorum while the majority serves: $out"
echo "$out" | grep -q "2 of 3 serving; quorum: yes" || fail "paddock status during the partition: $out"
maj=$(IFS=,; echo "${majority[*]}")
for k in 1 2 3 4 5; do
    cli "$maj" create "/during$k" "v$k" | grep -q "Created /during$k" || fail "write $k to the majority failed"
done
# The cut-off server must not take writes: a client that can reach only it gets no answer.
out=$(ip netns exec "$tag$old" timeout 8 "$paddock" cli -timeout 2000 -server "$net.$old:2181" create /minority x 2>&1 || true)
if echo "$out" | grep -q "Created /minority"; then fail "the minority took a write"; fi

# ---- heal -----------------------------------------------------------------
ip link set "v$tag$old" up
echo "partition: healed"
follows() { [ "$(mode "$old")" = follower ]; }
wait_for 20 "the old leader to rejoin as a follower" follows
same_zxid() { local a b c; a=$(zxid 1); b=$(zxid 2); c=$(zxid 3); [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]; }
wait_for 20 "the three servers to converge" same_zxid
for i in 1 2 3; do
    got=$(cli "$net.$i:2181" ls /)
    for p in before during1 during2 during3 during4 during5; do
        echo "$got" | grep -q "$p" || fail "server $i lacks /$p after healing: $got"
    done
    if echo "$got" | grep -q minority; then fail "server $i has /minority"; fi
done
# Server 1's log is JSON lines.
python3 -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines and all(l["level"] and l["message"] and l["timestamp"] for l in lines)' "$work/s1/log" \
    || fail "server 1 (PADDOCK_LOG_FORMAT=json) did not log JSON lines"
converged=$(zxid 1)
# Two servers gone: no quorum, and paddock status says so by its exit status.
kill -9 "${pids[1]}" "${pids[2]}"
no_quorum() { ! status >/dev/null; }
wait_for 15 "paddock status to report no quorum" no_quorum
echo "partition: PASS (old leader $old stopped serving, majority went on, converged at $converged; paddock status followed)"
