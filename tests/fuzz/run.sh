#!/bin/sh
# run.sh SECONDS TARGET...: runs each libFuzzer target for SECONDS from its
# committed seed corpus (tests/fuzz/corpus/<target>/, read only; what the run
# finds goes to build/fuzz/corpus/<target>/). Any crash, leak, timeout or
# sanitizer report fails the target; its input is kept in
# build/fuzz/artifacts/ (copy it into the seed corpus as a regression).
# Prints the executions of each target and closes with 'N passed, N failed'.
set -u
seconds=${1:?usage: run.sh SECONDS TARGET...}
shift
here=$(cd "$(dirname "$0")/../.." && pwd)
passed=0
failed=0
# FUZZ_RUNS=N (make test's smoke run): a fixed seed and at most N inputs, so
# the smoke run explores the same inputs on every machine and a CI run cannot
# fail on a discovery nobody can reproduce; `make fuzz` explores freely.
repeatable=""
[ -n "${FUZZ_RUNS:-}" ] && repeatable="-seed=1 -runs=$FUZZ_RUNS"
for target in "$@"; do
    name=$(basename "$target")
    seeds="$here/tests/fuzz/corpus/$name"
    work="$here/build/fuzz/corpus/$name"
    arts="$here/build/fuzz/artifacts"
    log="$here/build/fuzz/logs/$name.log"
    mkdir -p "$work" "$arts" "$seeds" "$here/build/fuzz/logs"
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        "$target" -max_total_time="$seconds" $repeatable -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$arts/$name-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        echo "PASS $name: ${execs:-?} executions in ${seconds}s"
    else
        failed=$((failed + 1))
        echo "FAIL $name (exit $rc): ${execs:-?} executions; see $log"
        grep -E "^==[0-9]+==ERROR|runtime error|^SUMMARY|Test unit written" "$log" | head -5
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
