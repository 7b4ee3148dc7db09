#!/bin/sh
# make bench: ONE table of seconds per estimate (median and minimum over
# repeated runs), iterations, F, peak resident memory (one process per
# model) and the speed-up over SPM12 under Octave where ../shared/reference
# records its time (seconds_spm_octave), for
#  - SPM's attention models (fwd, bwd), the nonlinear fwd model (SPC gates
#    V1 -> V5) and spectral DCM on spectral_4 (full, reduced), when
#    ../shared (or DCM_SHARED) has them;
#  - spectral DCM on simulated resting-state networks of 8, 12 and 16
#    regions (512 scans, TR 2 s; bench/bench_csd_sim.h), which need nothing.
#    maxnodes is SPM's 8, so 12 and 16 regions fit under the eigenmode
#    constraint. Fewer repetitions for the big ones (the column says how many).
# then a scaling table: simulated chain networks of 3, 6, 9, 12, 16 and 24
# regions on the attention design (360 scans, TR 3.22 s; datasets/
# attention_design/events.tsv; `dcm simulate --snr 3`), which need nothing.
# "cpu s" (median processor time per fit) is the figure to compare on a
# shared machine; "median s" is wall time. Threads per estimate: BENCH_THREADS
# (dcm estimate -j; default 1).
shared=${DCM_SHARED:-../shared}
bench="$PWD/bin/dcm-bench"
dcm="$PWD/bin/dcm"
design="$PWD/datasets/attention_design"
threads=${BENCH_THREADS:-1}
# SPM12/Octave seconds recorded in a reference file ("-" when none)
octave() { [ -f "$1" ] && sed -n 's/.*"seconds_spm_octave": *\([0-9.]*\).*/\1/p' "$1" | head -n 1 || echo -; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
data="$shared/datasets/attention"
specs=""
if [ -f "$data/timeseries.tsv" ]; then
    data=$(cd "$data" && pwd)
    for model in fwd bwd nonlinear; do
        if [ $model = bwd ]; then att='[[0,0,0],[0,0,1],[0,0,0]]'; else att='[[0,0,0],[1,0,0],[0,0,0]]'; fi
        d=''; [ $model = nonlinear ] && d=', "d": {"SPC": ["V1 -> V5"]}'
        cat > "$tmp/attention_$model.json" <<JSON
{"TR": 3.22, "TE": 0.04,
 "timeseries": "$data/timeseries.tsv", "regions": ["V1", "V5", "SPC"],
 "confounds": "$data/confounds.tsv",
 "events": "$data/events.tsv", "inputs": ["Photic", "Motion", "Attention"],
 "a": [[1,1,0],[1,1,1],[0,1,1]],
 "b": {"Motion": [[0,0,0],[1,0,0],[0,0,0]], "Attention": $att},
 "c": [[1,0,0],[0,0,0],[0,0,0]],
 "delays": [1.61, 1.61, 1.61]$d}
JSON
        ref="$shared/reference/attention/spm_attention_$model.json"
        specs="$specs 5:attention_$model.json:$(octave "$ref")"
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
        specs="$specs 5:spectral_4_$model.json:$(octave "$shared/reference/spectral/spm_spectral_4_$model.json")"
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
    specs="$specs $reps:spectral_sim_$n.json:-"
done
# one row: dcm-bench's figures, then the Octave seconds and the speed-up
row() {
    "$bench" --reps "$1" --threads "$threads" "$2" > "$tmp/row" || exit $?
    awk -v oct="$3" '{ sp = (oct == "-" || oct == "") ? "-" : sprintf("%.0fx", oct / $3);
        printf "%s %9s %8s\n", $0, (oct == "-" || oct == "") ? "-" : sprintf("%.1f", oct), sp }' "$tmp/row"
}
echo "dcm $(git describe --always --dirty 2>/dev/null || echo '?'), $threads thread(s) per estimate; $(nproc) cores: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
printf "%-26s %5s %9s %9s %9s %10s %14s %8s %9s %8s\n" model runs "median s" "min s" "cpu s" iterations F "peak MB" "Octave s" speed-up
cd "$tmp" || exit 4
for s in $specs; do
    reps=${s%%:*}; rest=${s#*:}
    row "$reps" "${rest%%:*}" "${rest#*:}"
done
# scaling: chains R1 <-> R2 <-> ... on the attention design (Photic drives R1,
# Motion and Attention modulate R1 -> R2), simulated from known parameters
echo
echo "scaling: simulated chain networks (attention design, 360 scans, TR 3.22 s, SNR 3)"
printf "%-26s %5s %9s %9s %9s %10s %14s %8s\n" model runs "median s" "min s" "cpu s" iterations F "peak MB"
cp "$design/events.tsv" "$tmp/events.tsv"
for n in 3 6 9 12 16 24; do
    regions=$(awk -v n=$n 'BEGIN { for (i = 1; i <= n; i++) printf "%s\"R%d\"", (i > 1 ? ", " : ""), i }')
    a=$(awk -v n=$n 'BEGIN { for (i = 1; i < n; i++) printf "%s\"R%d -> R%d\", \"R%d -> R%d\"", (i > 1 ? ", " : ""), i, i + 1, i + 1, i }')
    p=$(awk -v n=$n 'BEGIN { printf "\"C:Photic->R1\": 0.6, \"B:Attention:R1->R2\": 0.3, \"B:Motion:R1->R2\": 0.2";
        for (i = 1; i < n; i++) printf ", \"A:R%d->R%d\": 0.4, \"A:R%d->R%d\": -0.1", i, i + 1, i + 1, i }')
    cat > "chain_$n.json" <<JSON
{"TR": 3.22, "TE": 0.04, "scans": 360, "timeseries": "chain_$n.tsv", "regions": [$regions],
 "events": "events.tsv", "inputs": ["Photic", "Motion", "Attention"],
 "a": [$a], "b": {"Motion": ["R1 -> R2"], "Attention": ["R1 -> R2"]}, "c": {"Photic": ["R1"]}}
JSON
    echo "{$p}" > "chain_$n.truth.json"
    "$dcm" simulate "chain_$n.json" --params "chain_$n.truth.json" --snr 3 --seed "$n" -o "chain_$n.tsv" || exit 3
    if [ $n -le 12 ]; then reps=5; else reps=3; fi
    "$bench" --reps $reps --threads "$threads" "chain_$n.json" || exit $?
done
cd "$OLDPWD" && echo && sh scripts/bench_rdcm.sh
