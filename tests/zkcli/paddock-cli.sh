#!/usr/bin/env bash
# zkCli.sh stand-in for run.sh: ZKCLI=tests/zkcli/paddock-cli.sh runs `paddock cli` instead.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "${PADDOCK_BIN:-$here/../../target/release/paddock}" cli "$@"
