#!/usr/bin/env bash
# Regenerate tests/zkcli/expected.txt from Apache ZooKeeper 3.8 (Debian's
# package), after script.zk changed. Starts a fresh ZooKeeper on a free port,
# runs the script twice (two fresh servers) and refuses to write a transcript
# that is not reproducible.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$here/out"

run_once() {
    local out=$1 port data pid rc
    port=$(( 25000 + RANDOM % 7000 ))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    data=$(mktemp -d /tmp/zk-zkcli.XXXXXX)
    pid=$("$repo/scripts/start-zookeeper.sh" "$port" "$data" extendedTypesEnabled=true) || return 1
    "$here/run.sh" "127.0.0.1:$port" "$out"
    rc=$?
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -rf "$data"
    return "$rc"
}

run_once "$here/out/zookeeper-1.txt" || { echo "update-expected: run 1 reported problems" >&2; exit 1; }
run_once "$here/out/zookeeper-2.txt" || { echo "update-expected: run 2 reported problems" >&2; exit 1; }
if ! diff -u "$here/out/zookeeper-1.txt" "$here/out/zookeeper-2.txt"; then
    echo "update-expected: two ZooKeeper runs differ; fix the script or the masking first" >&2
    exit 1
fi
cp "$here/out/zookeeper-1.txt" "$here/expected.txt"
echo "update-expected: wrote $here/expected.txt ($(grep -c '^zk> ' "$here/expected.txt") commands)"
