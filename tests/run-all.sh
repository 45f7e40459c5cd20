#!/bin/sh
# run-all.sh: everything `make test` runs, with one closing line.
#   1. unit tests (cmocka, ASan+UBSan)
#   2. the JSM test server's self-test
#   3. integration tests (real PostgreSQL, real curl, ASan+UBSan binary), twice:
#      with the SQLite tracker, and with the tracker in PostgreSQL
#      (WF2JSM_TRACKER_BACKEND=pg, adding the tests of hosts sharing it)
#   4. the valgrind pass (plain binary under memcheck), and its operator-tools
#      tests again with the PostgreSQL tracker (backups, admin writes, reports)
#   5. contract tests (Prism validating every request and response against
#      Atlassian's OpenAPI descriptions); WF2JSM_SKIP_CONTRACT=1 skips them
#   6. fuzz smoke: each libFuzzer target (tests/fuzz/) from its seed corpus,
#      with a fixed seed, for FUZZ_SMOKE_RUNS inputs (default 20000) or
#      FUZZ_SMOKE_SECONDS (default 60, a cap a slow machine never reaches),
#      whichever ends first; `make fuzz` runs
#      the long, free version
#
# The parts run at the same time, in four lanes: the valgrind pass (3
# workers; the longest part, as valgrind costs CPU, so it starts at once);
# the SQLite-tracker integration pass, then the valgrind PostgreSQL-tracker
# pass (2 workers); the PostgreSQL-tracker integration pass; and unit tests,
# self-test, contract tests and fuzz smoke, one after the other. Integration
# passes run WF2JSM_TEST_JOBS workers (default 4; fewer for valgrind; see
# tests/integration/run.py). Nothing is shared between parts: every
# integration worker has its own PostgreSQL and JSM test server, on ports the
# system hands out. Most of the integration tests' time is waiting (servers,
# sleeps between kills), so on two cores this takes about a third of the time
# of one part after the other.
# Each part's output goes to its own file and is printed whole, in the order
# of the list above, once it and the parts before it have ended (with the
# seconds it took): parts never interleave. Each part prints its own
# 'N passed, N failed'; the last line sums them. Ctrl-C or SIGTERM stops
# every part (each stops its servers).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
status=0
it_jobs=${WF2JSM_TEST_JOBS:-4}
vg_jobs=$((it_jobs < 3 ? it_jobs : 3))
vg_pg_jobs=$((it_jobs < 2 ? it_jobs : 2))

# part N NAME COMMAND...: runs COMMAND as part N with its output in N.out;
# N.rc (written last, by a rename) says it ended. N.pid is the command's pid,
# for stop_parts. Runs nothing once stop_parts has begun.
part() {
    n=$1; name=$2; shift 2
    echo "$name" >"$parts/$n.name"
    if [ -e "$parts/stopping" ]; then
        echo "not started: the run was interrupted" >"$parts/$n.out"
        echo 130 >"$parts/$n.rc.tmp"; mv "$parts/$n.rc.tmp" "$parts/$n.rc"
        return
    fi
    start=$(date +%s)
    "$@" >"$parts/$n.out" 2>&1 &
    echo $! >"$parts/$n.pid"
    wait $!
    rc=$?
    echo $(($(date +%s) - start)) >"$parts/$n.secs"
    echo $rc >"$parts/$n.rc.tmp"
    mv "$parts/$n.rc.tmp" "$parts/$n.rc"
}

# A shell without job control starts background commands with SIGINT
# ignored, so Ctrl-C would not reach the parts: stop them here with SIGTERM
# (tests/integration/run.py and contract/run.sh stop their servers on it).
# The second round catches a part that started during the first (and
# signals no part twice: a second signal could cut its cleanup short).
stop_parts() {
    : >"$parts/stopping"
    signalled=" "
    for round in 1 2; do
        for f in "$parts"/*.pid; do
            [ -e "$f" ] && [ ! -e "${f%.pid}.rc" ] || continue
            pid=$(cat "$f")
            case $signalled in *" $pid "*) continue ;; esac
            kill -TERM "$pid" 2>/dev/null
            signalled="$signalled$pid "
        done
        [ "$round" = 1 ] && sleep 1
    done
    wait
    # What the parts not printed yet had written before they stopped.
    for m in 1 2 3 4 5 6 7 8; do
        [ "$m" -ge "$next" ] && [ -e "$parts/$m.out" ] || continue
        echo "==> $(cat "$parts/$m.name") (stopped)"
        cat "$parts/$m.out"
    done
    echo "==> interrupted"
    exit 130
}
next=1
trap stop_parts INT TERM

if [ "${WF2JSM_SKIP_CONTRACT:-0}" = 1 ]; then
    contract="echo contract tests skipped (WF2JSM_SKIP_CONTRACT=1)"
else
    contract="bash contract/run.sh"
fi
fuzz_targets=$(for f in tests/fuzz/fuzz_*.c; do b=${f##*/}; echo "build/fuzz/${b%.c}"; done)

# The valgrind pass is the longest: it starts at once, with the most workers
# its CPU use allows; its short PostgreSQL half follows the SQLite pass.
part 5 "valgrind" python3 tests/integration/run.py --valgrind -j "$vg_jobs" &
{
    part 3 "integration tests" python3 tests/integration/run.py -j "$it_jobs"
    part 6 "valgrind, PostgreSQL tracker" \
        env WF2JSM_TRACKER_BACKEND=pg python3 tests/integration/run.py --valgrind -j "$vg_pg_jobs" -k test_operator_tools
} &
part 4 "integration tests, PostgreSQL tracker" \
    env WF2JSM_TRACKER_BACKEND=pg python3 tests/integration/run.py -j "$it_jobs" &
{
    part 1 "unit tests" sh tests/run-unit.sh build/test/test_*
    part 2 "JSM test server self-test" python3 tests/test_jsm_server.py
    # shellcheck disable=SC2086
    part 7 "contract tests" $contract
    # shellcheck disable=SC2086
    part 8 "fuzz smoke" env FUZZ_RUNS="${FUZZ_SMOKE_RUNS:-20000}" sh tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-60}" \
        $fuzz_targets
} &

# Print each part whole, in order, as soon as it and those before it ended.
for n in 1 2 3 4 5 6 7 8; do
    next=$n
    while [ ! -e "$parts/$n.rc" ]; do sleep 1; done
    rc=$(cat "$parts/$n.rc")
    echo "==> $(cat "$parts/$n.name") ($(cat "$parts/$n.secs" 2>/dev/null || echo 0)s)"
    cat "$parts/$n.out"
    cat "$parts/$n.out" >>"$parts/all.log"
    [ "$rc" = 0 ] || { echo "==> $(cat "$parts/$n.name") FAILED (exit $rc)"; status=1; }
    next=$((n + 1))
done
wait

# Sum every 'N passed, N failed' line the parts printed, plus the self-test's
# unittest lines ('Ran N tests', then 'OK' or 'FAILED (failures=N...)').
counts=$(awk '
    match($0, /[0-9]+ passed, [0-9]+ failed/) { split(substr($0, RSTART, RLENGTH), a, /[^0-9]+/); p += a[1]; f += a[2] }
    /^Ran [0-9]+ tests?/ { ran = $2 }
    /^OK/ && ran { p += ran; ran = 0 }
    /^FAILED \(/ && ran { f += 1; p += 0; ran = 0 }
    END { print p + 0, f + 0 }' "$parts/all.log")
passed=${counts% *}; failed=${counts#* }
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "all: $passed passed, $failed failed"
exit $status
