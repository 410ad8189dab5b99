#!/usr/bin/env bash
# Start Paddock standalone in the background with the same zoo.cfg that
# scripts/start-zookeeper.sh writes for Apache ZooKeeper, so both can be
# tested or benchmarked side by side.
#
#   scripts/start-paddock.sh <port> <datadir> [extra zoo.cfg lines...]
#
# Writes <datadir>/zoo.cfg, logs to <datadir>/paddock.log, waits until the port
# accepts connections, prints the PID on stdout (stop it with: kill <pid>).
# PADDOCK_BIN overrides the binary (default <repo>/target/release/paddock).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 <port> <datadir> [extra zoo.cfg lines...]" >&2
    exit 2
fi
port=$1
datadir=$2
shift 2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${PADDOCK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/paddock}
if [ ! -x "$bin" ]; then
    echo "start-paddock: binary not found: $bin (cargo build --release)" >&2
    exit 1
fi

mkdir -p "$datadir"
datadir=$(cd "$datadir" && pwd)

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "start-paddock: port $port is already in use" >&2
    exit 1
fi

{
    echo "tickTime=2000"
    echo "dataDir=$datadir"
    echo "clientPort=$port"
    echo "4lw.commands.whitelist=*"
    echo "admin.enableServer=false"
    for line in "$@"; do echo "$line"; done
} >"$datadir/zoo.cfg"

# setsid: keep the caller's Ctrl-C / job control away from the server.
setsid "$bin" server "$datadir/zoo.cfg" >>"$datadir/paddock.log" 2>&1 </dev/null &
pid=$!

deadline=$(( $(date +%s) + ${PADDOCK_START_TIMEOUT:-30} ))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
        echo "start-paddock: server did not come up on port $port; last log lines:" >&2
        # Without the backtrace frames (RUST_BACKTRACE may be set): the error is what matters.
        grep -Ev '^ +([0-9]+: |at )' "$datadir/paddock.log" | tail -n 30 >&2 || true
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.2
done
echo "$pid"
