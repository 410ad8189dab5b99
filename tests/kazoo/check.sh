#!/usr/bin/env bash
# Conformance gate: run kazoo's test suite against Paddock and fail if any test
# listed in tests/kazoo/passing.txt did not pass.
#
#   tests/kazoo/check.sh [--update] [--cluster N] [paddock|zookeeper] [pytest args...]
#
#   --update     append tests that passed but are not yet listed to the list
#                (the list only grows; it is never pruned automatically)
#   --cluster N  run against an ensemble of N servers (run.sh --cluster N); for
#                N > 1 the list is passing-ensemble.txt and the results go to
#                out/<mode>-N, so the one-server gate and its list are untouched
#   zookeeper    run against Apache ZooKeeper instead (to try the gate itself;
#                --update is refused then, the list is Paddock's)
#
# Listed tests that fail (up to 20) are re-run on their own, up to twice (KAZOO_RETRY=0
# disables, KAZOO_RETRY=N sets the number of re-runs), so that a flake is reported as such
# instead of failing the gate; a test that fails every time is a regression (a real one
# fails deterministically, so the gate stays strict).
#
# Environment: PASSING_LIST (default tests/kazoo/passing.txt, or
# tests/kazoo/passing-ensemble.txt with --cluster N > 1), and everything
# run.sh reads; defaults here: KAZOO_TEST_TIMEOUT=60, KAZOO_SUITE_TIMEOUT=1800.
# Prints "kazoo: N passed, M failed, K skipped" (errors count as failed).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
update=0
mode=paddock
cluster=1
while [ $# -gt 0 ]; do
    case $1 in
        --update) update=1; shift ;;
        --cluster) cluster=${2:-}; shift 2 || shift ;;
        --cluster=*) cluster=${1#--cluster=}; shift ;;
        paddock | zookeeper) mode=$1; shift ;;
        *) break ;;
    esac
done
case $cluster in
    '' | *[!0-9]* | 0) echo "check.sh: --cluster needs a number of servers >= 1" >&2; exit 2 ;;
esac
if [ "$cluster" -eq 1 ]; then
    list=${PASSING_LIST:-$here/passing.txt}
    out=${KAZOO_OUT_DIR:-$here/out/$mode}
else
    list=${PASSING_LIST:-$here/passing-ensemble.txt}
    out=${KAZOO_OUT_DIR:-$here/out/$mode-$cluster}
fi
if [ "$update" = 1 ] && [ "$mode" != paddock ]; then
    echo "check.sh: --update only records Paddock's results" >&2
    exit 2
fi
if [ "$update" = 1 ] && [ $# -gt 0 ]; then
    # Allowed (e.g. -k lock), but say so: only what ran can be added.
    echo "check.sh: --update with a selection: only the selected tests can be added" >&2
fi

export KAZOO_TEST_TIMEOUT=${KAZOO_TEST_TIMEOUT:-60}
export KAZOO_SUITE_TIMEOUT=${KAZOO_SUITE_TIMEOUT:-1800}
export KAZOO_QUIET=${KAZOO_QUIET:-1}
export KAZOO_OUT_DIR=$out

# Test ids from the list: drop comments and blank lines.
listed() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$list" 2>/dev/null; }

results=$out/results.txt
"$here/run.sh" --cluster "$cluster" "$mode" "$@"
rc=$?
# 0/1: pytest ran (1 = some test failed), 124: suite timeout, results partial.
# Anything else (run.sh setup error, pytest usage/internal error) means the
# results file is not this run's or not usable.
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 124 ]; then
    echo "check.sh: the kazoo suite did not run properly (run.sh exit $rc); see $out/pytest.log" >&2
    echo "kazoo: 0 passed, 1 failed, 0 skipped"
    exit 1
fi
[ "$rc" -eq 124 ] && echo "check.sh: suite timeout hit (${KAZOO_SUITE_TIMEOUT}s); unfinished tests count as not passed" >&2

outcome_of() { awk -v id="$1" '$2 == id { o = $1 } END { print (o == "" ? "not run" : o) }' "$results"; }

count() { grep -c "^$1 " "$results" || true; }
n_pass=$(count passed)
n_fail=$(( $(count failed) + $(count error) ))
n_skip=$(count skipped)

# Failures (of any test, listed or not) for the log.
if [ "$n_fail" -gt 0 ]; then
    echo "--- kazoo tests not passing ($n_fail): ---"
    grep -E '^(failed|error) ' "$results" | sort -k2
fi

# Listed tests that did not pass.
missing=()
while IFS= read -r id; do
    o=$(outcome_of "$id")
    [ "$o" = passed ] || missing+=("$id")
done < <(listed)

regressions=()
retries=${KAZOO_RETRY:-2}
case $retries in '' | *[!0-9]*) retries=2 ;; esac
# Retry only a handful: many failures at once are a real breakage, not flakes.
if [ ${#missing[@]} -gt 0 ] && [ ${#missing[@]} -le 20 ] && [ "$retries" -gt 0 ]; then
    pending=("${missing[@]}")
    for attempt in $(seq "$retries"); do
        [ ${#pending[@]} -gt 0 ] || break
        echo "--- re-run $attempt of ${#pending[@]} listed test(s) that did not pass ---"
        rdir=$out/retry$attempt
        KAZOO_OUT_DIR=$rdir KAZOO_SUITE_TIMEOUT=600 "$here/run.sh" --cluster "$cluster" "$mode" "${pending[@]}" >/dev/null 2>&1
        still=()
        for id in "${pending[@]}"; do
            o=$(awk -v id="$id" '$2 == id { o = $1 } END { print o }' "$rdir/results.txt" 2>/dev/null)
            if [ "$o" = passed ]; then
                echo "FLAKY (failed, then passed on re-run $attempt): $id"
            else
                echo "failed again on re-run $attempt: $id (${o:-not run}); log $rdir/pytest.log"
                still+=("$id")
            fi
        done
        pending=("${still[@]}")
    done
    regressions=("${pending[@]}")
else
    regressions=("${missing[@]}")
fi

for id in "${regressions[@]}"; do
    echo "REGRESSION: $id ($(outcome_of "$id")) is in $(basename "$list") but did not pass"
done
if [ ${#regressions[@]} -gt 0 ] && [ -n "${rdir:-}" ] && [ -f "$rdir/pytest.log" ]; then
    echo "--- the last re-run's failures ($rdir/pytest.log) ---"
    grep -E '^(E  |FAILED|ERROR)' "$rdir/pytest.log" | tail -20
fi

if [ "$update" = 1 ]; then
    new=$(comm -13 <(listed | sort -u) <(awk '$1 == "passed" { print $2 }' "$results" | sort -u))
    if [ -n "$new" ]; then
        {
            echo "# added $(date -u +%Y-%m-%d) by check.sh --update"
            echo "$new"
        } >>"$list"
        echo "check.sh: added $(echo "$new" | wc -l) test(s) to $list"
    else
        echo "check.sh: no new passing tests"
    fi
fi

servers=$([ "$cluster" -eq 1 ] && echo "$mode" || echo "$mode, $cluster servers")
echo "kazoo ($servers): listed $(listed | wc -l), not passing ${#regressions[@]}; full log $out/pytest.log"
echo "kazoo: $n_pass passed, $n_fail failed, $n_skip skipped"
if [ "$update" = 0 ] && [ -z "$(listed)" ]; then
    echo "check.sh: $(basename "$list") lists no test, so this gate checks nothing; fill it with --update" >&2
    exit 1
fi
[ ${#regressions[@]} -eq 0 ]
