#!/bin/sh
# make valgrind: `dcm estimate` on the demo design under memcheck; fails on
# any leak or memory error.
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp datasets/attention_design/events.tsv datasets/attention_design/fwd.json datasets/attention_design/truth.json "$tmp"/
bin/dcm simulate "$tmp/fwd.json" --params "$tmp/truth.json" --snr 2 --seed 3 -o "$tmp/timeseries.tsv"
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=9 bin/dcm estimate -q "$tmp/fwd.json" -o "$tmp/result.json"
echo "valgrind: no leaks or memory errors in dcm estimate"
