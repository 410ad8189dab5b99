#!/usr/bin/env bash
# Run tests/zkcli/script.zk through Debian's zkCli.sh (the Java client of
# ZooKeeper 3.8) against one server, in ONE interactive session, and write a
# transcript with volatile fields masked, so transcripts of two servers diff.
#
#   tests/zkcli/run.sh <host:port> [out.txt]
#
# Default out: tests/zkcli/out/<host_port>.txt (masked) + .raw.txt (unmasked).
# The server must be fresh (empty tree) and have extendedTypesEnabled=true.
#
# zkCli without jline ("JLine support is disabled": zookeeper.jar's manifest
# names /usr/share/java/jline.jar, but Debian's zookeeper does not depend on
# libjline2-java, so it is absent) reads commands line by line from stdin and
# prints no prompt and no echo. To know where one command's output ends, we send a probe after each
# command: "printwatches " (bare printwatches only prints "printwatches is on|off"
# and touches no server; the trailing space keeps it apart in `history`).
# WATCHER events are printed by zkCli's event thread and can interleave with the
# command's own output; each section therefore lists the command's output
# first and then its events, one line per event, in arrival order.
#
# Environment: ZKCLI (zkCli.sh path), ZKCLI_SCRIPT, ZKCLI_QUIET (s of silence that
# ends a section, default 0.15), ZKCLI_DEADLINE (whole run, s, default 300).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 1 ]; then
    echo "usage: $0 <host:port> [out.txt]" >&2
    exit 2
fi
addr=$1
out=${2:-$here/out/${addr//[^A-Za-z0-9.]/_}.txt}
raw=${out%.txt}.raw.txt
script=${ZKCLI_SCRIPT:-$here/script.zk}
zkcli=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
quiet=${ZKCLI_QUIET:-0.15}
deadline=$(( $(date +%s) + ${ZKCLI_DEADLINE:-300} ))
cmd_timeout=45    # > zkCli's 30 s session timeout, after which a hung op fails
await_timeout=15
probe='printwatches '

[ -x "$zkcli" ] || { echo "run.sh: $zkcli not found; run scripts/install-deps.sh" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
: >"$raw"

# UTF-8 whatever the locale (CI may have none): the script has non-ASCII data.
export CLIENT_JVMFLAGS="-Dfile.encoding=UTF-8 -Dsun.stdout.encoding=UTF-8 -Dsun.stderr.encoding=UTF-8"
export JVMFLAGS=
# setsid: zkCli.sh does not exec java, so give both a process group of their own
# that we can kill by id if the run is aborted.
coproc ZK { exec setsid "$zkcli" -server "$addr" 2>&1; }
# shellcheck disable=SC2153  # ZK_PID is set by coproc
zk_pid=$ZK_PID
# Bash closes a coproc's fds when it exits; keep our own copies to read its last words.
exec {zk_in}<&"${ZK[0]}" {zk_out}>&"${ZK[1]}"

pending=''      # partial line carried over from a read that timed out
eof=0
# read_line TIMEOUT: sets LINE; returns 0 = got a line, 1 = timeout, 2 = EOF
read_line() {
    local part rc
    [ "$eof" = 1 ] && return 2
    IFS= read -r -t "$1" -u "$zk_in" part
    rc=$?
    if [ "$rc" = 0 ]; then
        LINE=$pending$part; pending=''; return 0
    fi
    if [ "$rc" -gt 128 ]; then
        pending+=$part; return 1
    fi
    eof=1
    if [ -n "$pending$part" ]; then LINE=$pending$part; pending=''; return 0; fi
    return 2
}

# Per-section state.
out_lines=()    # the command's own output
ev_lines=()     # WATCHER events
held_empty=0    # an empty line that may be the first half of a WATCHER block

# classify LINE into the current section. Returns 0 normally, 3 if LINE was a
# probe answer ("printwatches is ...").
classify() {
    local l=$LINE
    case $l in
        # JVM/logging noise on stderr: slf4j's NOP-binding warning (Debian's
        # classpath has no binding), JAVA_TOOL_OPTIONS echo, and log lines in
        # case a logging binding is ever on the classpath.
        SLF4J:* | "Picked up "*) return 0 ;;
        [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]" "[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*) return 0 ;;
    esac
    if [ -z "$l" ]; then
        [ "$held_empty" = 1 ] && out_lines+=("")
        held_empty=1
        return 0
    fi
    # zkCli prints "\nWATCHER::" and "\nWatchedEvent ..." (one write each): the
    # blank line before them belongs to the event and is dropped.
    case $l in
        WATCHER::) held_empty=0; return 0 ;;
        "WatchedEvent "*) held_empty=0; ev_lines+=("WATCHER:: $l"); return 0 ;;
    esac
    [ "$held_empty" = 1 ] && out_lines+=("")
    held_empty=0
    case $l in
        "printwatches is on" | "printwatches is off") out_lines+=("$l"); return 3 ;;
    esac
    out_lines+=("$l")
    return 0
}

section_has() {
    local l
    for l in "${out_lines[@]}" "${ev_lines[@]}"; do
        case $l in *"$1"*) return 0 ;; esac
    done
    return 1
}

flush_section() {
    [ "$held_empty" = 1 ] && out_lines+=("")
    held_empty=0
    {
        printf 'zk> %s\n' "$1"
        [ ${#out_lines[@]} -gt 0 ] && printf '%s\n' "${out_lines[@]}"
        [ ${#ev_lines[@]} -gt 0 ] && printf '%s\n' "${ev_lines[@]}"
    } >>"$raw"
    out_lines=(); ev_lines=()
}

note() { out_lines+=("!! $*"); }

# While disconnected, the probe's answer is followed by zkCli's "Not connected":
# swallow_nc=1 drops the next main-thread line if it is that. Event-thread lines
# (a WATCHER block, e.g. state:Closed right after `close`) may come in between.
swallow_nc=0
take_line() {
    if [ "$swallow_nc" = 1 ]; then
        case $LINE in
            "Not connected") swallow_nc=0; return 0 ;;
            "" | WATCHER:: | "WatchedEvent "*) ;;
            *) swallow_nc=0 ;;
        esac
    fi
    classify
}

# Read until silence (quiet seconds without a line) or EOF.
drain_quiet() {
    while read_line "$quiet"; do take_line; done
    swallow_nc=0
}

# Read until a line containing $1 has been seen in this section.
await() {
    local until=$(( $(date +%s) + await_timeout ))
    section_has "$1" && return 0
    while [ "$(date +%s)" -lt "$until" ]; do
        read_line 1
        case $? in
            0) take_line; section_has "$1" && return 0 ;;
            2) break ;;
        esac
    done
    note "no output containing '$1' within ${await_timeout}s"
    return 1
}

# Send one command plus the probe; read up to and including the probe answer.
# $2 = number of "printwatches is" lines the command itself prints (0 or 1).
run_command() {
    local cmd=$1 own=$2 want until rc
    want=$(( own + 1 ))
    printf '%s\n%s\n' "$cmd" "$probe" >&"$zk_out" || { note "zkCli is gone"; return 1; }
    until=$(( $(date +%s) + cmd_timeout ))
    local seen=0
    while :; do
        read_line 1; rc=$?
        if [ "$rc" = 0 ]; then
            classify
            if [ $? = 3 ]; then
                seen=$((seen + 1))
                if [ "$seen" = "$want" ]; then
                    unset 'out_lines[${#out_lines[@]}-1]'     # the probe's own answer
                    out_lines=("${out_lines[@]}")
                    break
                fi
            fi
        elif [ "$rc" = 2 ]; then
            note "zkCli exited"; return 1
        elif [ "$(date +%s)" -ge "$until" ]; then
            note "no response within ${cmd_timeout}s; aborting"; return 1
        fi
    done
    swallow_nc=1
    return 0
}

mapfile -t lines <"$script"
status=0

# Startup: banner and the first SyncConnected.
header="(start) zkCli.sh -server @SERVER@"
await "state:SyncConnected" || status=1
drain_quiet
if section_has "JLine support is enabled"; then
    # With jline (libjline2-java installed), zkCli echoes and prompts: the
    # transcript format assumes plain stdin mode.
    note "zkCli runs with jline; remove libjline2-java (plain stdin mode needed)"
    echo "run.sh: zkCli runs with jline (libjline2-java installed?); this driver needs plain stdin mode" >&2
    flush_section "$header"
    kill -TERM -- "-$zk_pid" 2>/dev/null
    exit 1
fi
flush_section "$header"

i=0
n=${#lines[@]}
while [ "$i" -lt "$n" ]; do
    line=${lines[$i]}
    i=$((i + 1))
    case $line in
        "" | "#"[!#]* | "#") continue ;;
        "##"*) printf '%s\n' "$line" >>"$raw"; continue ;;
        "!await "*) continue ;;       # consumed together with its command below
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        note "run deadline (${ZKCLI_DEADLINE:-300}s) passed; aborting"
        flush_section "$line"; status=1; break
    fi
    cmd=${line//@SERVER@/$addr}
    if [ "$cmd" = quit ]; then
        printf 'quit\n' >&"$zk_out"
        until=$(( $(date +%s) + await_timeout ))
        while [ "$(date +%s)" -lt "$until" ]; do
            read_line 1
            case $? in 0) classify ;; 2) break ;; esac
        done
        [ "$eof" = 1 ] || { note "zkCli did not exit after quit"; status=1; }
        flush_section "$line"
        break
    fi
    # A bare `printwatches` answers like the probe does.
    own=0
    read -r -a words <<<"$cmd"
    [ "${#words[@]}" = 1 ] && [ "${words[0]}" = printwatches ] && own=1
    if ! run_command "$cmd" "$own"; then
        flush_section "$line"; status=1; break
    fi
    # Directives that belong to this command.
    while [ "$i" -lt "$n" ]; do
        case ${lines[$i]} in
            "!await "*) await "${lines[$i]#!await }" || status=1; i=$((i + 1)) ;;
            *) break ;;
        esac
    done
    drain_quiet
    flush_section "$line"
done

# Stop zkCli if it is still there (abort paths).
kill -TERM -- "-$zk_pid" 2>/dev/null
wait "$zk_pid" 2>/dev/null

# Mask what legitimately differs between servers and runs.
sed -E \
    -e 's/^(cZxid|mZxid|pZxid) = 0x[0-9a-fA-F]+$/\1 = <ZXID>/' \
    -e 's/^(ctime|mtime) = .*/\1 = <TIME>/' \
    -e 's/^ephemeralOwner = 0x0*[1-9a-fA-F][0-9a-fA-F]*$/ephemeralOwner = <SESSION>/' \
    -e 's/^Connecting to .*/Connecting to <SERVER>/' \
    -e 's/0x[0-9a-fA-F]{9,16}\b/<SESSION>/g' \
    "$raw" >"$out"

echo "zkcli: transcript $out ($(grep -c '^zk> ' "$out") commands)" >&2
exit "$status"
