#!/usr/bin/env bash
# The recipe tests (crates/recipes/tests) against Apache ZooKeeper 3.8 instead of Paddock: the
# recipes use only the public protocol, so they must work on both.
#
#   tests/recipes/zookeeper.sh [cargo test filters...]
#
# Starts Debian's ZooKeeper (scripts/start-zookeeper.sh) with the tickTime the tests expect
# (200 ms), points the tests at it with RECIPES_SERVER, and stops it afterwards. Uses the
# release build (cargo test --release), like every other suite.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
port=${RECIPES_ZK_PORT:-22790}
dir=$(mktemp -d /tmp/paddock-recipes-zk.XXXXXX)
pid=$(bash scripts/start-zookeeper.sh "$port" "$dir" tickTime=200 maxClientCnxns=0 forceSync=no)
cleanup() {
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$dir"
}
trap cleanup EXIT
echo "recipes: Apache ZooKeeper 3.8 on 127.0.0.1:$port (pid $pid)"
# Every test target of the recipes crate, selected by name with --workspace: `-p` alone would
# resolve features for that package only and rebuild the whole dependency tree.
targets=()
for f in crates/recipes/tests/*.rs; do targets+=(--test "$(basename "$f" .rs)"); done
RECIPES_SERVER=127.0.0.1:$port cargo test --release --workspace "${targets[@]}" "$@"
echo "recipes: PASS against Apache ZooKeeper 3.8"
