#!/usr/bin/env bash
# Start a fresh Paddock on a free port, run the zkCli script against it, and
# diff the masked transcript against tests/zkcli/expected.txt (Apache
# ZooKeeper 3.8's). Used by scripts/test-all.sh. Exit 0 iff identical.
#
#   tests/zkcli/check.sh            # PADDOCK_BIN overrides the binary
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PADDOCK_BIN=${PADDOCK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/paddock}
if [ ! -x "$PADDOCK_BIN" ]; then
    echo "zkcli: FAIL: paddock binary not found: $PADDOCK_BIN" >&2
    exit 1
fi

# A free port: first one from a random start that nothing answers on, below the kernel's
# ephemeral range (32768-60999): a port there may be the local end of some client's
# connection, which nothing answers on but which a listener cannot bind.
port=$(( 25000 + RANDOM % 7000 ))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

data=$(mktemp -d /tmp/paddock-zkcli.XXXXXX)
pid=$("$repo/scripts/start-paddock.sh" "$port" "$data" extendedTypesEnabled=true) || {
    echo "zkcli: FAIL: paddock did not start" >&2
    rm -rf "$data"; exit 1
}
trap 'kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT

mkdir -p "$here/out"
actual=$here/out/paddock.txt
"$here/run.sh" "127.0.0.1:$port" "$actual"
run_rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "zkcli: paddock exited during the run; last log lines:"
    tail -n 30 "$data/paddock.log"
fi
if diff -u --label expected.txt --label "paddock transcript" "$here/expected.txt" "$actual"; then
    echo "zkcli: transcript matches expected.txt"
    exit 0
fi
echo "zkcli: transcript differs from expected.txt (- ZooKeeper 3.8, + Paddock; run.sh exit $run_rc)"
echo "zkcli: $(diff "$here/expected.txt" "$actual" | grep -c '^[<>]') differing lines; full transcript $actual"
exit 1
