#!/bin/sh
# Run every test program, show its output, and close with one line that
# adds them up: "tests: N passed, N failed, N skipped".
passed=0; failed=0; skipped=0; status=0
log=$(mktemp)
for t in "$@"; do
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    # CUnit's run summary: "tests  Total Ran Passed Failed Inactive"
    line=$(grep -E '^ +tests +[0-9]' "$log" | tail -n 1)
    p=$(echo "$line" | awk '{print $4}'); f=$(echo "$line" | awk '{print $5}')
    s=$(grep -c '^SKIP:' "$log")
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
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
exit $status
