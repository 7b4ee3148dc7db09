#!/bin/sh
# Run every test program, show its output, and close with one line that
# adds them up: "tests: N passed, N failed, N skipped".
#
# CUnit has no "skipped" state: a test that returns early (no ../shared,
# no MPI build) counts as passed there. Such a test prints
# "SKIP: [test name] reason" (tests/test_util.h's test_skip); each named
# test is counted once as skipped and taken off CUnit's passed count, so
# a skipped test is never reported as passed.
passed=0; failed=0; skipped=0; status=0
log=$(mktemp)
for t in "$@"; do
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    # CUnit's run summary: "tests  Total Ran Passed Failed Inactive"
    line=$(grep -E '^ +tests +[0-9]' "$log" | tail -n 1)
    p=$(echo "$line" | awk '{print $4}'); f=$(echo "$line" | awk '{print $5}')
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
    # one per skipped test: "[name]" lines deduplicated, any older-style
    # SKIP line counted on its own
    s=$(grep '^SKIP: ' "$log" | sed -n 's/^SKIP: \(\[[^]]*\]\).*/\1/p;/^SKIP: [^[]/p' | sort -u | wc -l)
    [ "$s" -le "$p" ] || s=$p
    p=$((p - s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$t exited with status $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    [ "$rc" -eq 0 ] || status=1
done
rm -f "$log"
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$skipped" -eq 0 ] || echo "note: $skipped skipped tests did not run (see the SKIP lines above); skipped is not passed"
exit $status
