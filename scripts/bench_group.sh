#!/bin/sh
# make bench-group: time `dcm batch` on a simulated group study — 40
# subjects x 4 models (datasets/group_demo: fwd, bwd, both, none), 3 regions
# and 360 scans each — with -j 2 and -j 1, print the wall times and the
# speed-up, check that both runs give the same summary.tsv, and compare the
# models with random-effects BMS.
#
#   sh scripts/bench_group.sh                  generate in a temporary folder, time, clean up
#   sh scripts/bench_group.sh --generate DIR   only write the study (manifest.tsv, sub-*/) to DIR
#   environment: DCM (default bin/dcm), NSUB (default 40), BENCH_GROUP_DIR (keep the files there),
#   DCM_OLD (an older dcm to time on the same study with -j 2, reported beside the new wall time;
#   default ../base41106/bin/dcm, the build of commit 41106a8 before the speed work, if present)
#
# Each subject's true parameters are the forward model's (Attention
# modulates V1 -> V5) with between-subject variability: every connection,
# modulation and input strength is drawn around the values of
# datasets/attention_design/truth.json by a seeded, portable generator, so
# the study is the same on every machine. Data: `dcm simulate --snr 3
# --seed <subject number>`.
set -e
dcm=${DCM:-bin/dcm}
nsub=${NSUB:-40}
design=datasets/group_demo
models="fwd bwd both none"

if [ ! -x "$dcm" ]; then
    echo "bench-group: $dcm not found; run make first" >&2
    exit 2
fi

# generate DIR: events.tsv, sub-NN/{truth.json,timeseries.tsv,<model>.json}, manifest.tsv
generate() {
    dir=$1
    mkdir -p "$dir"
    cp datasets/attention_design/events.tsv "$dir/events.tsv"
    printf 'subject\tmodel\tspec\n' > "$dir/manifest.tsv"
    # one line per subject: name and parameters (Park-Miller generator,
    # exact in double arithmetic; z ~ N(0,1) as a sum of 12 uniforms - 6)
    awk -v n="$nsub" 'function u() { x = (16807 * x) % 2147483647; return x / 2147483647 }
        function z(  s, k) { s = 0; for (k = 0; k < 12; k++) s += u(); return s - 6 }
        BEGIN { x = 20240611
            for (i = 1; i <= n; i++)
                printf "sub-%02d %d %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n", i, i,
                    0.45 + 0.10 * z(), -0.10 + 0.05 * z(), 0.35 + 0.10 * z(), -0.15 + 0.05 * z(),
                    0.30 + 0.08 * z(), 0.40 + 0.12 * z(), 0.60 + 0.075 * z() }' |
    while read -r sub seed v1v5 v5v1 v5spc spcv5 bmot batt cph; do
        mkdir -p "$dir/$sub"
        cat > "$dir/$sub/truth.json" <<JSON
{"A": [[0, $v5v1, 0], [$v1v5, 0, $spcv5], [0, $v5spc, 0]],
 "B": {"Motion":    [[0, 0, 0], [$bmot, 0, 0], [0, 0, 0]],
       "Attention": [[0, 0, 0], [$batt, 0, 0], [0, 0, 0]]},
 "C": [[$cph, 0, 0], [0, 0, 0], [0, 0, 0]]}
JSON
        for m in $models; do
            cp "$design/$m.json" "$dir/$sub/$m.json"
            printf '%s\t%s\t%s/%s.json\n' "$sub" "$m" "$sub" "$m" >> "$dir/manifest.tsv"
        done
        if ! "$dcm" simulate "$dir/$sub/fwd.json" --params "$dir/$sub/truth.json" --snr 3 \
                --seed "$seed" -o "$dir/$sub/timeseries.tsv" 2> "$dir/$sub/simulate.log"; then
            cat "$dir/$sub/simulate.log" >&2
            exit 3
        fi
    done
}

if [ "$1" = "--generate" ]; then
    [ -n "$2" ] || { echo "usage: sh scripts/bench_group.sh --generate DIR" >&2; exit 1; }
    generate "$2"
    echo "bench-group: wrote $nsub subjects x 4 models to $2 (manifest: $2/manifest.tsv)"
    exit 0
fi

if [ -n "$BENCH_GROUP_DIR" ]; then
    work=$BENCH_GROUP_DIR
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
now() { date +%s.%N; }

echo "bench-group: simulating $nsub subjects (3 regions, 360 scans, SNR 3) in $work"
t=$(now); generate "$work"; gen=$(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
njobs=$((nsub * 4))
echo "bench-group: $njobs estimates ($nsub subjects x 4 models: $models); data simulated in $gen s"

rm -rf "$work/out_j2" "$work/out_j1"
t=$(now); "$dcm" batch -q -j 2 "$work/manifest.tsv" -o "$work/out_j2"; t2=$(awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }')
t=$(now); "$dcm" batch -q -j 1 "$work/manifest.tsv" -o "$work/out_j1"; t1=$(awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }')
old=${DCM_OLD:-../base41106/bin/dcm}
told=
if [ -x "$old" ]; then
    rm -rf "$work/out_old"
    t=$(now); "$old" batch -q -j 2 "$work/manifest.tsv" -o "$work/out_old"; told=$(awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }')
fi

cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
awk -v t1="$t1" -v t2="$t2" -v n="$njobs" -v c="$cores" 'BEGIN {
    printf "  -j 2: %6.2f s  (%.3f s per estimate)\n", t2, t2 / n
    printf "  -j 1: %6.2f s  (%.3f s per estimate)\n", t1, t1 / n
    printf "  speed-up with 2 threads: %.2fx (cores online: %s)\n", t1 / t2, c
    printf "  target for -j 2 (<= 20 s): %s\n", t2 <= 20 ? "met" : "MISSED" }'
if [ -n "$told" ]; then
    awk -v t2="$t2" -v to="$told" -v old="$old" 'BEGIN {
        printf "  old (%s) -j 2: %6.2f s; new -j 2: %6.2f s; speed-up %.2fx\n", old, to, t2, to / t2 }'
    # the free energies of old and new (summary.tsv: a subject per row, F per model column)
    awk -F '\t' 'FNR == 1 { next } NR == FNR { for (i = 2; i <= NF; i++) f[FNR, i] = $i; next }
        { for (i = 2; i <= NF; i++) { d = $i - f[FNR, i]; if (d < 0) d = -d; if (d > m) m = d } }
        END { printf "  max |F new - F old| over the estimates: %.2g\n", m }' \
        "$work/out_old/summary.tsv" "$work/out_j2/summary.tsv"
else
    echo "  (no older dcm at $old: set DCM_OLD to time one beside this build)"
fi

if cmp -s "$work/out_j2/summary.tsv" "$work/out_j1/summary.tsv"; then
    echo "  summary.tsv: identical for -j 1 and -j 2"
else
    echo "bench-group: summary.tsv differs between -j 1 and -j 2" >&2
    exit 3
fi
echo "== random-effects BMS over the $nsub subjects (true model: fwd)"
"$dcm" compare --rfx --lme "$work/out_j2/summary.tsv" ||
    echo "bench-group: (dcm compare --rfx --lme is not available in this build)"
