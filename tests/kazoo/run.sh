#!/usr/bin/env bash
# Run kazoo's own test suite (kazoo/tests inside the installed kazoo package,
# unchanged) against one standalone server, or an ensemble of N servers:
# Paddock or Apache ZooKeeper 3.8.
#
#   tests/kazoo/run.sh [--cluster N] [paddock|zookeeper] [pytest args...]
#
#   --cluster N  the harness starts N servers (ZOOKEEPER_CLUSTER_SIZE=N; default 1),
#                each with its own zoo.cfg (server.1..N lines) and dataDir/myid,
#                client ports base, base+10, ..., and the suite connects to all of them
#
# Examples:
#   tests/kazoo/run.sh zookeeper
#   tests/kazoo/run.sh paddock test_client.py::TestClient -x
#   tests/kazoo/run.sh paddock -k "lock and not eventlet"
#   tests/kazoo/run.sh --cluster 3 paddock test_client.py::TestClient::test_update_host_list
#
# Test ids are relative to kazoo/tests, e.g. test_client.py::TestClient::test_create.
#
# Environment:
#   PADDOCK_BIN            server binary (default: <repo>/target/release/paddock)
#   ZOOKEEPER_PORT_OFFSET  base port of the harness (default 20000; server i uses
#                          base+10i .. base+10i+4)
#   KAZOO_TEST_TIMEOUT     per-test timeout in seconds (default 120)
#   KAZOO_SUITE_TIMEOUT    whole-run timeout in seconds, 0 = none (default 0)
#   KAZOO_OUT_DIR          where results go (default tests/kazoo/out/<mode>, or
#                          tests/kazoo/out/<mode>-N with --cluster N for N > 1)
#
# Output in $KAZOO_OUT_DIR: results.txt ("<outcome> <test id>" per test, written
# as tests finish), junit.xml (only if pytest got to the end), pytest.log.
# Exit status: pytest's (0 = all selected tests passed), 124 on suite timeout.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

mode=paddock
cluster=1
while [ $# -gt 0 ]; do
    case $1 in
        paddock | zookeeper) mode=$1; shift ;;
        --cluster) cluster=${2:-}; shift 2 || shift ;;
        --cluster=*) cluster=${1#--cluster=}; shift ;;
        *) break ;;
    esac
done
case $cluster in
    '' | *[!0-9]* | 0) echo "run.sh: --cluster needs a number of servers >= 1" >&2; exit 2 ;;
esac

py=$repo/.venv/bin/python
if [ ! -x "$py" ]; then
    echo "run.sh: $py missing; run scripts/install-deps.sh first" >&2
    exit 2
fi
kazoo_tests=$("$py" -c 'import os, kazoo.tests; print(os.path.dirname(kazoo.tests.__file__))') || exit 2

# Debian's zookeeper.jar lists most of its dependencies in its manifest Class-Path,
# but not netty-codec (+ resolver, unix-common), which the harness' choice of
# NettyServerCnxnFactory needs: without them every connection dies with
# NoClassDefFoundError io/netty/handler/codec/ByteToMessageDecoder. The harness'
# log4j.properties needs log4j 1.2 and its slf4j binding.
zk_jar=/usr/share/java/zookeeper.jar
jars=/usr/share/java
export ZOOKEEPER_PATH=/usr/share/zookeeper
export ZOOKEEPER_CLASSPATH=$zk_jar:$jars/netty-codec.jar:$jars/netty-resolver.jar:$jars/netty-transport-native-unix-common.jar:$jars/slf4j-log4j12.jar:$jars/log4j-1.2.jar
export ZOOKEEPER_VERSION=3.8.0
# The harness starts servers 1..N (ids = myid), in reverse order, and hands the
# suite every client port as the connect string.
export ZOOKEEPER_CLUSTER_SIZE=$cluster
export ZOOKEEPER_PORT_OFFSET=${ZOOKEEPER_PORT_OFFSET:-20000}
# Tests set these themselves; a leftover value would change the server config.
unset ZOOKEEPER_JAAS_AUTH ZOOKEEPER_LOCAL_SESSION_RO ZOOKEEPER_OBSERVER_START_ID KRB5_TEST_ENV
# kazoo's GSSAPI tests need a Kerberos realm (KAZOOTEST.ORG, KRB5_TEST_ENV pointing at the
# keytabs): a KDC of the run's own, with Debian's krb5-kdc (tests/security/kdc.sh). Without
# those tools the two tests skip, and tests/kazoo/check.sh reports them as not passing.
kdc_dir=
if command -v krb5kdc >/dev/null && command -v kadmin.local >/dev/null; then
    kdc_dir=$(mktemp -d "${TMPDIR:-/tmp}/paddock-kdc.XXXXXX")
    if kdc_env=$("$repo/tests/security/kdc.sh" start "$kdc_dir"); then
        eval "$kdc_env"
    else
        echo "run.sh: the test KDC did not start ($kdc_dir/setup.log); the GSSAPI tests will skip" >&2
    fi
fi
stop_kdc() { [ -n "$kdc_dir" ] && { "$repo/tests/security/kdc.sh" stop "$kdc_dir"; rm -rf "$kdc_dir"; }; }
# kazoo's tests read CI: with it set, test_build.py checks that the server's `envi`
# reports ZOOKEEPER_VERSION, and version probes use ZOOKEEPER_VERSION. Pin it so a
# local run and a CI run (which has CI=true) select and run exactly the same tests.
export CI=true

export KAZOO_SERVER=$mode
export PATH=$here/bin:$PATH
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1

if [ "$mode" = paddock ]; then
    export PADDOCK_BIN=${PADDOCK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/paddock}
    if [ ! -x "$PADDOCK_BIN" ]; then
        echo "run.sh: paddock binary not found: $PADDOCK_BIN (build it: cargo build --release)" >&2
        exit 2
    fi
else
    if [ ! -f "$zk_jar" ] || [ ! -x /usr/bin/java ]; then
        echo "run.sh: Apache ZooKeeper not installed ($zk_jar); run scripts/install-deps.sh" >&2
        exit 2
    fi
fi

# A stale server on the harness' ports would silently be tested instead of ours.
# Server i (0-based) uses base+10i: client, +1 election, +2 quorum, +3 admin, +4 TLS.
for ((i = 0; i < cluster; i++)); do
    for p in 0 1 2 3 4; do
        port=$((ZOOKEEPER_PORT_OFFSET + 10 * i + p))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "run.sh: something already listens on 127.0.0.1:$port; stop it or set ZOOKEEPER_PORT_OFFSET" >&2
            exit 2
        fi
    done
done

if [ "$cluster" -eq 1 ]; then
    out=${KAZOO_OUT_DIR:-$here/out/$mode}
else
    out=${KAZOO_OUT_DIR:-$here/out/$mode-$cluster}
fi
mkdir -p "$out"
# Two runs sharing an output dir would mix their results: refuse the second one.
# (fd 9 is inherited by pytest, so the lock lasts as long as the run.)
exec 9>"$out/.lock"
if ! flock -n 9; then
    echo "run.sh: another run is using $out; set KAZOO_OUT_DIR (and ZOOKEEPER_PORT_OFFSET) to run in parallel" >&2
    exit 2
fi
rm -f "$out/results.txt" "$out/junit.xml"
: >"$out/pytest.log"
export KAZOO_RESULT_LOG=$out/results.txt

args=(
    -c /dev/null --rootdir="$kazoo_tests"   # ids relative to kazoo/tests, no stray ini files
    -p no:cacheprovider -p kazoo_resultlog
    -v -rfE --tb=short
    --timeout="${KAZOO_TEST_TIMEOUT:-120}"
    --junitxml="$out/junit.xml"
    # Client-only test that fails whenever anything listens on 127.0.0.1:2181
    # (see tests/kazoo/excluded.md); it says nothing about the server.
    --deselect test_utils.py::TestCreateTCPConnection::test_slow_connect
)
if [ "$cluster" -eq 1 ]; then
    # Tests that need a three-server cluster and fail against a standalone Apache ZooKeeper
    # 3.8 as well (tests/kazoo/excluded.md, first table): about 35 s of a run, never a
    # signal about the server. The ensemble run (--cluster 3) keeps them.
    args+=(
        --deselect test_client.py::TestClient::test_update_host_list
        --deselect test_eventlet_handler.py::TestEventletClient::test_update_host_list
        --deselect test_gevent_handler.py::TestGeventClient::test_update_host_list
        --deselect test_client.py::TestReconfig::test_add_remove_observer
        --deselect test_client.py::TestReconfig::test_bad_input
        --deselect test_client.py::TestReconfig::test_no_super_auth
        --deselect test_connection.py::TestReadOnlyMode::test_read_only
    )
fi

timeout_cmd=()
if [ "${KAZOO_SUITE_TIMEOUT:-0}" -gt 0 ]; then
    timeout_cmd=(timeout --kill-after=30 "$KAZOO_SUITE_TIMEOUT")
fi

# Run pytest in its own session/process group: servers started by the harness
# are in it too, so anything left behind (timeout, crash, Ctrl-C) is killed
# by group id afterwards and cannot leak into the next run.
cd "$kazoo_tests" || exit 2
start=$(date +%s)
setsid "${timeout_cmd[@]}" "$py" -m pytest "${args[@]}" "$@" >"$out/pytest.log" 2>&1 </dev/null &
pgid=$!
cleanup() { kill -TERM -- "-$pgid" 2>/dev/null; sleep 1; kill -KILL -- "-$pgid" 2>/dev/null; }
trap 'cleanup; stop_kdc; exit 130' INT TERM
if [ "${KAZOO_QUIET:-0}" = 1 ]; then
    wait "$pgid"; rc=$?
else
    tail -n +1 -f "$out/pytest.log" --pid="$pgid" &
    wait "$pgid"; rc=$?
    wait
fi
trap - INT TERM
cleanup
stop_kdc
secs=$(( $(date +%s) - start ))

count() { grep -c "^$1 " "$out/results.txt" 2>/dev/null || true; }
servers=$([ "$cluster" -eq 1 ] && echo "$mode" || echo "$mode, $cluster servers")
echo "kazoo ($servers): $(count passed) passed, $(count failed) failed, $(count error) errors, $(count skipped) skipped, $(count deselected) deselected in ${secs}s (pytest exit $rc)"
[ "$rc" -eq 124 ] && echo "run.sh: suite timeout (${KAZOO_SUITE_TIMEOUT}s) hit; results.txt is partial" >&2
exit "$rc"
