#!/bin/sh
# make bench (rDCM rows, called from scripts/bench.sh): wall seconds and peak
# memory of whole `dcm estimate` commands (reading the data, fitting, writing
# the result) for regression DCM:
#   smith50 rDCM (TAPAS's 50-region case; target <= 0.25 s)
#   smith50 ordered sparse rDCM over TAPAS's 19-value p0 grid (<= 2 s)
#   smith50 sparse rDCM, 100 random restarts per region: at TAPAS's tutorial p0 0.15, and
#   over the 19-value grid (<= 30 s; run once)
#   200 regions x 1200 scans resting state, every connection (<= 5 s; data generated here)
#   400 regions x 1200 scans resting state: peak memory (<= 1 GB)
# Needs ../shared (or DCM_SHARED) for smith50, jq to write its spec, and
# /usr/bin/time for the peak memory. Run from the repository root.
shared=${DCM_SHARED:-../shared}
data="$shared/datasets/rdcm/smith50"
bin="$(pwd)/bin/dcm"
jobs=${DCM_BENCH_JOBS:-2}
if [ ! -x "$bin" ]; then
    echo "bench_rdcm: $bin not built (make all)" >&2
    exit 2
fi
if [ ! -x /usr/bin/time ]; then
    echo "bench_rdcm: /usr/bin/time is needed for the peak memory (apt-get install time)" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME SPEC: one whole command; prints "NAME  seconds  peak MB  F"
run() {
    name=$1
    spec=$2
    shift 2
    if ! /usr/bin/time -f "%e %M" -o "$tmp/time" "$bin" estimate "$spec" -o "$tmp/out.json" -q -j "$jobs" "$@" \
        > "$tmp/log" 2>&1; then
        echo "bench_rdcm: $name failed:" >&2
        cat "$tmp/log" >&2
        return 1
    fi
    read -r secs kb < "$tmp/time"
    F=$(sed -n 's/.*F = \([-0-9.]*\).*/\1/p' "$tmp/log" | head -n 1)
    printf "%-52s %8.2f s %8.0f MB   F = %s\n" "$name" "$secs" "$((kb / 1024))" "$F"
}

echo "regression DCM (whole command: read, fit, write; -j $jobs):"
if [ -f "$data/bold.tsv.gz" ] && command -v jq > /dev/null; then
    data=$(cd "$data" && pwd)
    for variant in ridge ordered random tutorial; do
        case $variant in
            ridge) method=rdcm; opts='{"data": "simulated"}' ;;
            ordered) method=sparse_rdcm; opts='{"data": "simulated", "order": "fixed"}' ;;
            random) method=sparse_rdcm; opts='{"data": "simulated", "restarts": 100}' ;;
            tutorial) method=sparse_rdcm; opts='{"data": "simulated", "restarts": 100, "p0": 0.15}' ;;
        esac
        jq --arg m $method --argjson o "$opts" --arg d "$data" \
            '{method: $m, TR: .TR, timeseries: ($d + "/bold.tsv.gz"), events: ($d + "/events.tsv"),
              regions: .regions, inputs: .inputs, a: .a, c: .c, rdcm: $o}' \
            "$data/model.json" > "$tmp/smith50_$variant.json"
    done
    # median of five for the short ones (the machine is shared: the median
    # is what a user sees, the best of five what an idle machine gives)
    median() {
        : > "$tmp/lines"
        for k in 1 2 3 4 5; do
            run "$@" >> "$tmp/lines" || return 1
        done
        # seconds are the field before "s" (names have spaces): sort on it
        awk '{for (i = NF; i > 0; i--) if ($i == "s") {print $(i - 1) "\t" $0; break}}' "$tmp/lines" |
            sort -n | cut -f 2- > "$tmp/sorted"
        sed -n 3p "$tmp/sorted" | sed 's/$/   (median of 5)/'
        printf "%-52s %8.2f s (best of 5)\n" "" "$(head -n 1 "$tmp/sorted" | awk '{for (i = NF; i > 0; i--) if ($i == "s") {print $(i - 1); break}}')"
    }
    median "smith50 rDCM (TAPAS: 73.6 s whole call)" "$tmp/smith50_ridge.json" || exit 1
    median "smith50 sparse rDCM, ordered, 19 p0 (TAPAS: 61 s)" "$tmp/smith50_ordered.json" || exit 1
    run "smith50 sparse rDCM, 100 restarts, p0 0.15 (TAPAS: 425 s)" "$tmp/smith50_tutorial.json" || exit 1
    run "smith50 sparse rDCM, 100 restarts, 19 p0 (TAPAS: 3914 s)" "$tmp/smith50_random.json" || exit 1
else
    echo "  smith50 skipped: needs $data (../shared or DCM_SHARED) and jq"
fi

# resting state: n regions, 1200 scans of coupled AR(1) noise (TR 0.72 s, HCP-like)
rest() {
    n=$1
    awk -v n="$n" -v N=1200 'BEGIN {
        srand(1);
        for (j = 1; j <= n; j++) printf "%sR%03d", (j > 1 ? "\t" : ""), j; printf "\n";
        for (t = 1; t <= N; t++) {
            for (j = 1; j <= n; j++) {
                e = 0; for (q = 0; q < 6; q++) e += rand() - 0.5;
                x[j] = 0.6 * x[j] + 0.3 * (j > 1 ? x[j - 1] : 0) + e;
                printf "%s%.5f", (j > 1 ? "\t" : ""), x[j];
            }
            printf "\n";
        }
    }' > "$tmp/rest$n.tsv"
    awk -v n="$n" -v ts="$tmp/rest$n.tsv" 'BEGIN {
        printf "{\"method\": \"rdcm\", \"TR\": 0.72, \"timeseries\": \"%s\", \"regions\": [", ts;
        for (j = 1; j <= n; j++) printf "%s\"R%03d\"", (j > 1 ? ", " : ""), j;
        printf "],\n \"a\": [";
        for (i = 1; i <= n; i++) {
            printf "%s[", (i > 1 ? ",\n" : "");
            for (j = 1; j <= n; j++) printf "%s1", (j > 1 ? "," : "");
            printf "]";
        }
        printf "]}\n";
    }' > "$tmp/rest$n.json"
}
rest 200
run "200 regions x 1200 scans, resting state, all 40000 A" "$tmp/rest200.json" || exit 1
rest 400
run "400 regions x 1200 scans, resting state, all 160000 A" "$tmp/rest400.json" || exit 1
