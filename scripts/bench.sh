#!/bin/sh
# make bench: seconds per estimate of SPM's attention models (fwd, bwd),
# iterations, and peak memory. Needs ../shared (SPM's attention data).
shared=${DCM_SHARED:-../shared}
data="$shared/datasets/attention"
if [ ! -f "$data/timeseries.tsv" ]; then
    echo "bench: $data not found; the benchmark needs ../shared beside the repository (or DCM_SHARED)" >&2
    exit 2
fi
data=$(cd "$data" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
done
# spectral DCM (resting state) on spectral_4, when ../shared has it
specs="attention_fwd.json attention_bwd.json"
sdata="$shared/datasets/spectral/spectral_4"
if [ -f "$sdata/timeseries.tsv" ]; then
    sdata=$(cd "$sdata" && pwd)
    for model in full reduced; do
        if [ $model = full ]; then a='[[1,1,1,1],[1,1,1,1],[1,1,1,1],[1,1,1,1]]'; else a='[[1,1,1,0],[1,1,1,1],[1,1,1,1],[1,1,1,1]]'; fi
        cat > "$tmp/spectral_$model.json" <<JSON
{"analysis": "csd", "TR": 2, "timeseries": "$sdata/timeseries.tsv",
 "regions": ["R1", "R2", "R3", "R4"], "a": $a}
JSON
        specs="$specs spectral_$model.json"
    done
fi
echo "SPM12 under Octave on this kind of machine (reference files): about 27.6 s per attention model;"
echo "spectral_4: 36.7 s (full), 28.3 s (reduced)"
cd "$tmp" && "$OLDPWD/bin/dcm-bench" $specs
cd "$OLDPWD" && sh scripts/bench_rdcm.sh
