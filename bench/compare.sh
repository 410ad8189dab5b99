#!/usr/bin/env bash
# Paddock against Apache ZooKeeper 3.8 (Debian's `zookeeper` package), side by side:
# standalone, forceSync=yes on both, the same workloads alternately (Paddock, ZooKeeper,
# Paddock, ZooKeeper, ...), medians and Paddock/ZooKeeper ratios, memory per znode and
# restart time. A thin wrapper over `paddock bench compare`; every flag is passed through
# (see `paddock bench compare --help`), e.g.
#
#   bench/compare.sh                               # 3 rounds x 12 workloads x 5 s, ~12 minutes
#   bench/compare.sh --rounds 5 --duration 10s
#   bench/compare.sh --force-sync no               # labelled NOT durable in every output
#   bench/compare.sh --docs docs/benchmarks.md     # also refresh the docs table and chart
#
# Results go to bench/results/ (compare.jsonl, summary.md, chart.svg) unless --out-dir says
# otherwise. Uses client ports 23181 and 23182 unless --port says otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${PADDOCK_BIN:-target/release/paddock}
if [ ! -x "$bin" ]; then
    echo "compare: $bin missing; building it" >&2
    cargo build --release -p paddock >&2
fi
command -v java >/dev/null || { echo "compare: java missing: install Debian's zookeeper package (scripts/install-deps.sh)" >&2; exit 1; }
[ -f /usr/share/java/zookeeper.jar ] || [[ " $* " == *" --zk-jars"* ]] || {
    echo "compare: /usr/share/java/zookeeper.jar missing: install Debian's zookeeper package (scripts/install-deps.sh)" >&2; exit 1; }

echo "compare: machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
invoked="bench/compare.sh $*"
[ -n "${PADDOCK_BIN:-}" ] && invoked="PADDOCK_BIN=$PADDOCK_BIN $invoked"
PADDOCK_BENCH_INVOKED_AS="$invoked" exec "$bin" bench compare --paddock-bin "$bin" "$@"
