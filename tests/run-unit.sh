#!/bin/sh
# run-unit.sh BINARY...: runs the cmocka unit test binaries (built with
# ASan+UBSan by `make unit`), shows their output, and sums cmocka's
#   [  PASSED  ] N test(s).
#   [  FAILED  ] N test(s), listed below:
# lines into a last line "unit: N passed, N failed". A binary that exits
# non-zero without reporting a failed test (a crash, a sanitizer report, a
# leak found at exit, a missing binary) counts as one failure. Exits 0 only
# when nothing failed.
set -u

if [ "$#" -eq 0 ]; then
    echo "usage: sh tests/run-unit.sh build/test/test_*" >&2
    exit 2
fi

# Leak checking on; keep whatever else the caller asked for. UBSan stops at
# the first report so that undefined behaviour fails the run.
ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS UBSAN_OPTIONS

out=$(mktemp "${TMPDIR:-/tmp}/run-unit.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
crashed=""

for bin in "$@"; do
    echo "== $bin"
    if [ ! -x "$bin" ]; then
        echo "run-unit: $bin: not found or not executable"
        failed=$((failed + 1))
        crashed="$crashed $bin"
        continue
    fi
    "$bin" >"$out" 2>&1
    status=$?
    cat "$out"
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s += $1} END {print s + 0}')
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | awk '{s += $1} END {print s + 0}')
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "run-unit: $bin exited with status $status without a cmocka failure (crash, sanitizer or leak report)"
        failed=$((failed + 1))
        crashed="$crashed $bin"
    elif [ "$status" -eq 0 ] && [ "$p" -eq 0 ]; then
        echo "run-unit: $bin reported no passed test"
        failed=$((failed + 1))
        crashed="$crashed $bin"
    fi
done

[ -n "$crashed" ] && echo "run-unit: did not finish cleanly:$crashed"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
