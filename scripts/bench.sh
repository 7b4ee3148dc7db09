#!/bin/sh
# make bench: seconds per estimate (median and minimum over repeated runs),
# iterations, F and peak resident memory (one process per model) of
#  - SPM's attention models (fwd, bwd) and spectral DCM on spectral_4 (full,
#    reduced), when ../shared (or DCM_SHARED) has them;
#  - spectral DCM on simulated resting-state networks of 8, 12 and 16
#    regions (512 scans, TR 2 s; bench/bench_csd_sim.h), which need nothing.
#    maxnodes is SPM's 8, so 12 and 16 regions fit under the eigenmode
#    constraint. Fewer repetitions for the big ones (the column says how many).
# "cpu s" (median processor time per fit) is the figure to compare on a
# shared machine; "median s" is wall time.
shared=${DCM_SHARED:-../shared}
bench="$PWD/bin/dcm-bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
data="$shared/datasets/attention"
specs=""
if [ -f "$data/timeseries.tsv" ]; then
    data=$(cd "$data" && pwd)
    for model in fwd bwd; do
        if [ $model = fwd ]; then att='[[0,0,0],[1,0,0],[0,0,0]]'; else att='[[0,0,0],[0,0,1],[0,0,0]]'; fi
        cat > "$tmp/attention_$model.json" <<JSON
{"TR": 3.22, "TE": 0.04,
 "timeseries": "$data/timeseries.tsv", "regions": ["V1", "V5", "SPC"],
 "confounds": "$data/confounds.tsv",
 "events": "$data/events.tsv", "inputs": ["Photic", "Motion", "Attention"],
 "a": [[1,1,0],[1,1,1],[0,1,1]],
 "b": {"Motion": [[0,0,0],[1,0,0],[0,0,0]], "Attention": $att},
 "c": [[1,0,0],[0,0,0],[0,0,0]],
 "delays": [1.61, 1.61, 1.61]}
JSON
        specs="$specs 5:attention_$model.json"
    done
else
    echo "bench: $data not found: the attention and spectral_4 rows need ../shared beside the repository (or DCM_SHARED)" >&2
fi
sdata="$shared/datasets/spectral/spectral_4"
if [ -f "$sdata/timeseries.tsv" ]; then
    sdata=$(cd "$sdata" && pwd)
    for model in full reduced; do
        if [ $model = full ]; then a='[[1,1,1,1],[1,1,1,1],[1,1,1,1],[1,1,1,1]]'; else a='[[1,1,1,0],[1,1,1,1],[1,1,1,1],[1,1,1,1]]'; fi
        cat > "$tmp/spectral_4_$model.json" <<JSON
{"analysis": "csd", "TR": 2, "timeseries": "$sdata/timeseries.tsv",
 "regions": ["R1", "R2", "R3", "R4"], "a": $a}
JSON
        specs="$specs 5:spectral_4_$model.json"
    done
fi
# simulated resting-state networks, fully connected models
for n in 8 12 16; do
    "$bench" --csd-sim $n 512 2 $n "$tmp/sim_$n.tsv" || exit 3
    regions=$(awk -v n=$n 'BEGIN { for (i = 1; i <= n; i++) printf "%s\"R%d\"", (i > 1 ? ", " : ""), i }')
    ones=$(awk -v n=$n 'BEGIN { for (i = 1; i <= n; i++) { printf "%s[", (i > 1 ? "," : ""); for (j = 1; j <= n; j++) printf "%s1", (j > 1 ? "," : ""); printf "]" } }')
    cat > "$tmp/spectral_sim_$n.json" <<JSON
{"analysis": "csd", "TR": 2, "timeseries": "$tmp/sim_$n.tsv", "regions": [$regions], "a": [$ones]}
JSON
    if [ $n -le 8 ]; then reps=5; else reps=3; fi
    specs="$specs $reps:spectral_sim_$n.json"
done
echo "SPM12 under Octave on this kind of machine (reference files): about 27.6 s per attention model;"
echo "spectral_4: 36.7 s (full), 28.3 s (reduced)"
printf "%-26s %5s %9s %9s %9s %10s %14s %8s\n" model runs "median s" "min s" "cpu s" iterations F "peak MB"
cd "$tmp" || exit 4
for s in $specs; do
    "$bench" --reps "${s%%:*}" "${s#*:}" || exit $?
done
cd "$OLDPWD" && sh scripts/bench_rdcm.sh
