#!/usr/bin/env bash
# A stand-in for an HDFS NameNode: while its state file says "active <token>", it appends
# edits to the shared edit log, one line every 10 ms: "<id> <token> <seq> <time>".
# Its controller's hooks write the state file; fencing kills this process.
#
#   namenode.sh <id> <dir>     (state in <dir>/<id>.state, pid in <dir>/<id>.nn.pid,
#                               shared log <dir>/edits.log)
set -u
id=$1
dir=$2
echo $$ >"$dir/$id.nn.pid"
seq=0
while :; do
    state=
    # `read` is a builtin: no process per loop, so many loops per second stay cheap.
    read -r state token <"$dir/$id.state" 2>/dev/null || true
    if [ "$state" = active ]; then
        seq=$((seq + 1))
        echo "$id $token $seq $EPOCHREALTIME" >>"$dir/edits.log"
    fi
    sleep 0.01
done
