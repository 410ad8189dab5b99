#!/usr/bin/env bash
# Ensembles, Paddock beside Apache ZooKeeper 3.8 (Debian's `zookeeper` package), on this machine,
# one ensemble at a time: 3 voters on 127.0.0.1-3 (tickTime=2000, initLimit=10, syncLimit=5,
# forceSync=yes, fresh data directories), the workloads setdata, getdata, mixed and create-100
# with sessions spread over every server; the same with 2 observers added; then 5 rounds of
# failover (SIGKILL of the leader while one client per server writes synchronously: the time
# to each client's next acknowledged write). Ratios Paddock/ZooKeeper. A thin wrapper over
# `paddock bench ensemble`; every flag is passed through (see `paddock bench ensemble --help`):
#
#   bench/ensemble.sh                          # everything, ~7 minutes
#   bench/ensemble.sh --rounds 3 --failover-rounds 10
#   bench/ensemble.sh --systems paddock        # Paddock alone
#   bench/ensemble.sh --smoke                  # CI: Paddock only, short, exits non-zero on any failure
#
# Results go to bench/results/ensemble/ (ensemble.jsonl, summary.md) unless --out-dir says
# otherwise; smoke runs write to a temporary directory. Ports: 23401-23445 (Paddock) and
# 23501-23545 (ZooKeeper) on 127.0.0.1-5 unless --port says otherwise. The servers' directories
# are under /tmp/paddock-bench-ensemble (kept when something fails).
#
# The paddock binary is copied first, so a rebuild during the run does not change the servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${PADDOCK_BIN:-target/release/paddock}
if [ ! -x "$bin" ]; then
    echo "ensemble: $bin missing; building it" >&2
    cargo build --release -p paddock >&2
fi
smoke=0
for arg in "$@"; do [ "$arg" = --smoke ] && smoke=1; done
if [ "$smoke" = 0 ]; then
    command -v java >/dev/null || { echo "ensemble: java missing: install Debian's zookeeper package (scripts/install-deps.sh), or pass --systems paddock" >&2; exit 1; }
fi

scratch=$(mktemp -d /tmp/paddock-bench-ensemble-bin.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cp "$bin" "$scratch/paddock"

extra=()
if [ "$smoke" = 1 ]; then
    extra+=(--out-dir "$scratch/results" --work-dir "$scratch/work")
fi

echo "ensemble: machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
invoked="bench/ensemble.sh${*:+ $*}"
[ -n "${PADDOCK_BIN:-}" ] && invoked="PADDOCK_BIN=$PADDOCK_BIN $invoked"
status=0
PADDOCK_BENCH_INVOKED_AS="$invoked" "$scratch/paddock" bench ensemble --paddock-bin "$scratch/paddock" \
    "${extra[@]}" "$@" || status=$?
if [ "$smoke" = 1 ] && [ "$status" -ne 0 ] && [ -d "$scratch/work" ]; then
    # Keep what the servers logged: the scratch directory goes away on exit.
    keep=/tmp/paddock-bench-ensemble-smoke-failed.$$
    cp -r "$scratch/work" "$keep" 2>/dev/null || true
    echo "ensemble: smoke FAILED (exit $status); server directories copied to $keep" >&2
fi
exit "$status"
