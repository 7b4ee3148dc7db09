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
echo "SPM12 under Octave on this kind of machine: about 27.6 s per model (reference files)"
cd "$tmp" && "$OLDPWD/bin/dcm-bench" attention_fwd.json attention_bwd.json
