#!/bin/sh
# run-all.sh: everything `make test` runs, in order, with one closing line.
#   1. unit tests (cmocka, ASan+UBSan)
#   2. the JSM test server's self-test
#   3. integration tests (real PostgreSQL, real curl, ASan+UBSan binary), twice:
#      with the SQLite tracker, then with the tracker in PostgreSQL
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
# Each part prints its own 'N passed, N failed'; the last line sums them.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0


run_part() {
    name=$1; shift
    echo "==> $name"
    { "$@"; echo $? >"$log.rc"; } 2>&1 | tee -a "$log"
    rc=$(cat "$log.rc"); rm -f "$log.rc"
    [ "$rc" = 0 ] || { echo "==> $name FAILED (exit $rc)"; status=1; }
}

run_part "unit tests" sh tests/run-unit.sh build/test/test_*
run_part "JSM test server self-test" python3 tests/test_jsm_server.py
run_part "integration tests" python3 tests/integration/run.py
run_part "integration tests, PostgreSQL tracker" env WF2JSM_TRACKER_BACKEND=pg python3 tests/integration/run.py
run_part "valgrind" python3 tests/integration/run.py --valgrind
run_part "valgrind, PostgreSQL tracker" env WF2JSM_TRACKER_BACKEND=pg python3 tests/integration/run.py --valgrind -k test_operator_tools
if [ "${WF2JSM_SKIP_CONTRACT:-0}" = 1 ]; then
    echo "==> contract tests skipped (WF2JSM_SKIP_CONTRACT=1)"
else
    run_part "contract tests" bash contract/run.sh
fi

fuzz_targets=$(for f in tests/fuzz/fuzz_*.c; do b=${f##*/}; echo "build/fuzz/${b%.c}"; done)
# shellcheck disable=SC2086
run_part "fuzz smoke" env FUZZ_RUNS="${FUZZ_SMOKE_RUNS:-20000}" sh tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-60}" $fuzz_targets

# Sum every 'N passed, N failed' line the parts printed, plus the self-test's
# unittest lines ('Ran N tests', then 'OK' or 'FAILED (failures=N...)').
counts=$(awk '
    match($0, /[0-9]+ passed, [0-9]+ failed/) { split(substr($0, RSTART, RLENGTH), a, /[^0-9]+/); p += a[1]; f += a[2] }
    /^Ran [0-9]+ tests?/ { ran = $2 }
    /^OK/ && ran { p += ran; ran = 0 }
    /^FAILED \(/ && ran { f += 1; p += 0; ran = 0 }
    END { print p + 0, f + 0 }' "$log")
passed=${counts% *}; failed=${counts#* }
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "all: $passed passed, $failed failed"
exit $status
