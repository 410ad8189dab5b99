#!/usr/bin/env bash
# Run the zkCli script against two live servers and diff the masked transcripts.
#
#   tests/zkcli/compare.sh <paddock-addr> <zk-addr>
#
# Both servers must be fresh (empty tree) and started with
# extendedTypesEnabled=true, e.g. with scripts/start-paddock.sh and
# scripts/start-zookeeper.sh. Exit 0 iff the transcripts are identical.
# Transcripts: tests/zkcli/out/paddock.txt and tests/zkcli/out/zookeeper.txt.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 2 ]; then
    echo "usage: $0 <paddock-addr> <zk-addr>" >&2
    exit 2
fi
mkdir -p "$here/out"
"$here/run.sh" "$1" "$here/out/paddock.txt" || echo "compare: the paddock run reported problems" >&2
"$here/run.sh" "$2" "$here/out/zookeeper.txt" || echo "compare: the zookeeper run reported problems" >&2
if diff -u --label "zookeeper ($2)" --label "paddock ($1)" \
        "$here/out/zookeeper.txt" "$here/out/paddock.txt"; then
    echo "zkcli: transcripts identical"
else
    echo "zkcli: transcripts differ (- zookeeper, + paddock)"
    exit 1
fi
