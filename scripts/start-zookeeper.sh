#!/usr/bin/env bash
# Start Apache ZooKeeper 3.8 (Debian's package) standalone in the background,
# as the reference server for tests and benchmarks.
#
#   scripts/start-zookeeper.sh <port> <datadir> [extra zoo.cfg lines...]
#   e.g. scripts/start-zookeeper.sh 22181 /tmp/zk1 maxClientCnxns=0
#
# Writes <datadir>/zoo.cfg and <datadir>/log4j.properties, logs to
# <datadir>/zookeeper.log, waits until the server answers `ruok` and serves, and prints
# the java PID on stdout (stop it with: kill <pid>). Exits non-zero if the
# server does not come up within ZK_START_TIMEOUT seconds (default 60).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 <port> <datadir> [extra zoo.cfg lines...]" >&2
    exit 2
fi
port=$1
datadir=$2
shift 2

jars=/usr/share/java
if [ ! -f "$jars/zookeeper.jar" ]; then
    echo "start-zookeeper: $jars/zookeeper.jar missing; run scripts/install-deps.sh" >&2
    exit 1
fi
# zookeeper.jar's manifest Class-Path lacks netty-codec & co, needed as soon as
# serverCnxnFactory=NettyServerCnxnFactory or TLS is configured.
cp=$jars/zookeeper.jar:$jars/netty-codec.jar:$jars/netty-resolver.jar:$jars/netty-transport-native-unix-common.jar:$jars/slf4j-log4j12.jar:$jars/log4j-1.2.jar
# The AdminServer (admin.enableServer=true) needs Jetty, the servlet API and Jackson, which
# Debian installs with the package but leaves off the manifest's Class-Path.
for j in jetty9-server jetty9-servlet jetty9-http jetty9-io jetty9-util jetty9-util-ajax \
    jetty9-security servlet-api jackson-databind jackson-core jackson-annotations; do
    cp=$cp:$jars/$j.jar
done
# Snapshots compressed with snappy (snapshot.compression.method=snappy) need snappy-java.
[ -f "$jars/snappy-java.jar" ] && cp=$cp:$jars/snappy-java.jar

mkdir -p "$datadir"
datadir=$(cd "$datadir" && pwd)

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "start-zookeeper: port $port is already in use" >&2
    exit 1
fi

{
    echo "tickTime=2000"
    echo "dataDir=$datadir"
    echo "clientPort=$port"
    echo "4lw.commands.whitelist=*"
    # Off unless asked for (an extra line admin.enableServer=true wins): port 8080 may be taken.
    echo "admin.enableServer=false"
    for line in "$@"; do echo "$line"; done
} >"$datadir/zoo.cfg"

cat >"$datadir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${zookeeper.log.dir}/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
EOF

# setsid: detach from the caller's process group so its Ctrl-C / job control
# does not hit the server; the caller stops it by PID.
setsid /usr/bin/java -Xmx2g -cp "$cp" \
    -Dzookeeper.log.dir="$datadir" \
    -Dlog4j.configuration="file:$datadir/log4j.properties" \
    -Djava.awt.headless=true \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$datadir/zoo.cfg" \
    >>"$datadir/zookeeper.out" 2>&1 </dev/null &
pid=$!

deadline=$(( $(date +%s) + ${ZK_START_TIMEOUT:-60} ))
until [ "$( { echo ruok | nc -w 2 127.0.0.1 "$port"; } 2>/dev/null)" = imok ]; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
        echo "start-zookeeper: server did not come up on port $port; last log lines:" >&2
        tail -n 30 "$datadir/zookeeper.log" "$datadir/zookeeper.out" >&2 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.3
done
# `ruok` answers while the database is still loading; until it is loaded, connections are
# refused ("ZooKeeperServer not running") and `srvr` says it is not serving. Wait that out.
while { echo srvr | nc -w 2 127.0.0.1 "$port"; } 2>/dev/null | grep -q "not currently serving"; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
        echo "start-zookeeper: server on port $port did not start serving; last log lines:" >&2
        tail -n 30 "$datadir/zookeeper.log" >&2 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
echo "$pid"
