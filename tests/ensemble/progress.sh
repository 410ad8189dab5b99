#!/usr/bin/env bash
# Progress bars show on a terminal only: a server restarted on a data directory with a large
# snapshot (over 16 MiB) draws "loading snapshot" when its stderr is a terminal (a pseudo
# terminal from util-linux `script`), and writes no bar when its stderr is a file.
#
#   tests/ensemble/progress.sh [path/to/paddock]
#
# Prints "progress: PASS" or fails with the reason.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
paddock=${1:-$repo/target/release/paddock}
py=$repo/.venv/bin/python
[ -x "$paddock" ] || { echo "progress: $paddock not built" >&2; exit 1; }
work=$(mktemp -d /tmp/paddock-progress.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    pkill -9 -f "paddock server $work/zoo.cfg" 2>/dev/null || true
    if [ "${keep:-0}" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
    echo "progress: FAIL: $*" >&2
    keep=1
    echo "progress: files kept in $work" >&2
    exit 1
}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/zoo.cfg" <<EOF
tickTime=200
dataDir=$work/data
clientPort=$port
clientPortAddress=127.0.0.1
snapCount=100
EOF
serving() { { exec 3<>"/dev/tcp/127.0.0.1/$port" && printf srvr >&3 && cat <&3; } 2>/dev/null | grep -q "^Mode: "; }
wait_serving() {
    local end=$((SECONDS + 30))
    until serving; do
        [ $SECONDS -lt $end ] || fail "the server did not serve: $(tail -5 "$1")"
        sleep 0.2
    done
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

"$paddock" server "$work/zoo.cfg" >"$work/first.log" 2>&1 &
pid=$!
wait_serving "$work/first.log"
# 400 znodes of 100 KB: snapshots (every 100 or so transactions) of tens of megabytes.
"$py" - "$port" <<'EOF' || fail "could not fill the tree"
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=f"127.0.0.1:{sys.argv[1]}", timeout=10)
zk.start(10)
zk.ensure_path("/big")
blob = b"x" * 100_000
for i in range(400):
    zk.create(f"/big/n{i:04d}", blob)
zk.stop()
EOF
# The snapshot the next start loads (the newest whole one) must be over the bar's threshold:
# wait for the snapshot thread to finish one that is.
big_enough() {
    local newest
    newest=$(ls -t "$work"/data/snapshots/snap.* 2>/dev/null | grep -v '\.tmp$' | head -1)
    [ -n "$newest" ] && size=$(stat -c %s "$newest") && [ "$size" -ge $((16 << 20)) ]
}
end=$((SECONDS + 30))
until big_enough; do
    [ $SECONDS -lt $end ] || fail "no snapshot over 16 MiB: $(ls -l "$work"/data/snapshots)"
    sleep 0.2
done
stop

# Stderr a file: log lines, no bar.
"$paddock" server "$work/zoo.cfg" >"$work/plain.log" 2>&1 &
pid=$!
wait_serving "$work/plain.log"
stop
grep -q "loaded snapshot" "$work/plain.log" || fail "no 'loaded snapshot' line: $(tail -3 "$work/plain.log")"
if grep -q "loading snapshot" "$work/plain.log"; then fail "a progress bar in a log file"; fi

# Stderr a terminal: the bar is drawn.
script -qfec "$paddock server $work/zoo.cfg" /dev/null >"$work/tty.log" 2>&1 &
pid=$!
wait_serving "$work/tty.log"
stop
pkill -f "paddock server $work/zoo.cfg" 2>/dev/null || true
grep -q "loading snapshot" "$work/tty.log" || fail "no progress bar on a terminal: $(tail -c 400 "$work/tty.log")"
echo "progress: PASS (a ${size}-byte snapshot: a bar on a terminal, none in a log file)"
