#!/usr/bin/env bash
# The ZooKeeper C client (Debian's libzookeeper-mt) against a fresh Paddock server: builds
# smoke.c and runs it. Usage: tests/cclient/run.sh [zookeeper]  (the argument runs it against
# Apache ZooKeeper 3.8 instead, to check the test itself).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

gcc -O1 -Wall -Werror -o "$work/smoke" "$here/smoke.c" -lzookeeper_mt
port=$((26000 + RANDOM % 1000))
if [ "${1:-}" = zookeeper ]; then
    pid=$("$repo/scripts/start-zookeeper.sh" "$port" "$work/data")
else
    pid=$("$repo/scripts/start-paddock.sh" "$port" "$work/data")
fi
"$work/smoke" "127.0.0.1:$port"
