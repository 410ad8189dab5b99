#!/usr/bin/env bash
# `paddock server` configured as ZooKeeper's official container image is: by ZOO_* environment
# variables only, no zoo.cfg argument.
#
#   tests/ensemble/container_env.sh [path/to/paddock]
#
# 1. The image's default single-server setup (one server.1 line with ";<clientPort>",
#    standaloneEnabled): standalone, data where ZOO_DATA_DIR/ZOO_DATA_LOG_DIR say, myid written.
# 2. Three servers, each with ZOO_MY_ID and the same ZOO_SERVERS, as a StatefulSet gives them:
#    they elect and replicate; `paddock status` says a quorum serves.
# 3. An existing $ZOO_CONF_DIR/zoo.cfg is used as it is, as the image's entrypoint does.
# Prints "container-env: PASS" or fails with the reason.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
paddock=${1:-$repo/target/release/paddock}
[ -x "$paddock" ] || { echo "container-env: $paddock not built" >&2; exit 1; }
work=$(mktemp -d /tmp/paddock-container-env.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ "${keep:-0}" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
    echo "container-env: FAIL: $*" >&2
    for f in "$work"/*.log; do echo "--- $f (tail) ---" >&2; tail -n 20 "$f" >&2; done
    keep=1
    exit 1
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
srvr() { { exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3; } 2>/dev/null || true; }
wait_for() { # wait_for <seconds> <description> <command...>
    local end=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        [ $SECONDS -lt $end ] || fail "timed out waiting for $what"
        sleep 0.2
    done
}

# ---- 1. the image's default: one server line, standalone ------------------------------
c=$(port)
env -i PATH="$PATH" ZOO_CONF_DIR="$work/conf" ZOO_DATA_DIR="$work/one/data" \
    ZOO_DATA_LOG_DIR="$work/one/datalog" ZOO_TICK_TIME=200 \
    ZOO_SERVERS="server.1=127.0.0.1:$(port):$(port);127.0.0.1:$c" \
    ZOO_4LW_COMMANDS_WHITELIST="srvr,ruok" \
    "$paddock" server >"$work/one.log" 2>&1 &
pids+=($!)
disown "$!"
standalone() { srvr "$c" | grep -q "^Mode: standalone"; }
wait_for 20 "the single server to serve standalone" standalone
"$paddock" cli -server "127.0.0.1:$c" create /from-env v >/dev/null 2>&1 || fail "a write failed"
[ "$(cat "$work/one/data/myid")" = 1 ] || fail "myid not written as the image's entrypoint does"
find "$work/one/datalog" -type f -name 'log.*' | grep -q . \
    || fail "no transaction log under ZOO_DATA_LOG_DIR: $(find "$work/one" -type f)"
grep -q "ZOO_\* environment" "$work/one.log" || fail "the log does not say where the configuration came from"
kill "${pids[0]}"

# ---- 2. three servers as a StatefulSet starts them --------------------------------------
servers=""
conn=""
declare -A cport
for i in 1 2 3; do
    cport[$i]=$(port)
    servers="$servers server.$i=127.0.0.1:$(port):$(port);127.0.0.1:${cport[$i]}"
    conn="$conn${conn:+,}127.0.0.1:${cport[$i]}"
done
for i in 1 2 3; do
    env -i PATH="$PATH" ZOO_MY_ID=$i ZOO_SERVERS="$servers" ZOO_CONF_DIR="$work/conf$i" \
        ZOO_DATA_DIR="$work/s$i/data" ZOO_DATA_LOG_DIR="$work/s$i/datalog" \
        ZOO_TICK_TIME=200 ZOO_INIT_LIMIT=10 ZOO_SYNC_LIMIT=5 ZOO_CFG_EXTRA="forceSync=yes" \
        "$paddock" server >"$work/s$i.log" 2>&1 &
    pids+=($!)
    disown "$!"
done
quorum() { "$paddock" status -server "$conn" --timeout 1000 >/dev/null 2>&1; }
wait_for 30 "a quorum of the three" quorum
"$paddock" cli -server "127.0.0.1:${cport[1]}" create /replicated v >/dev/null 2>&1 || fail "a write to server 1 failed"
got=$("$paddock" cli -server "127.0.0.1:${cport[3]}" sync /replicated 2>&1; "$paddock" cli -server "127.0.0.1:${cport[3]}" get /replicated 2>&1)
echo "$got" | grep -q "^v$" || fail "server 3 does not have /replicated: $got"
for i in 1 2 3; do
    [ "$(cat "$work/s$i/data/myid")" = "$i" ] || fail "server $i's myid is not ZOO_MY_ID"
done
out=$("$paddock" status -server "$conn")
[ "$(echo "$out" | grep -c ' leader ')" = 1 ] || fail "not one leader: $out"

# ---- 3. an existing zoo.cfg in ZOO_CONF_DIR is used as it is --------------------------
mkdir -p "$work/conf9"
p9=$(port)
printf 'tickTime=200\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\n' "$work/nine" "$p9" >"$work/conf9/zoo.cfg"
env -i PATH="$PATH" ZOO_CONF_DIR="$work/conf9" ZOO_DATA_DIR="$work/nine" ZOO_TICK_TIME=5000 \
    "$paddock" server >"$work/nine.log" 2>&1 &
pids+=($!)
disown "$!"
serving9() { srvr "$p9" | grep -q "^Mode: standalone"; }
wait_for 20 "the server configured by ZOO_CONF_DIR/zoo.cfg" serving9
grep -q "configuration from ZOO_CONF_DIR" "$work/nine.log" || fail "ZOO_CONF_DIR/zoo.cfg was not used"
echo "container-env: PASS (the image's default, a three-server ensemble from ZOO_SERVERS/ZOO_MY_ID, ZOO_CONF_DIR/zoo.cfg)"
