#!/bin/sh
# The group-analysis example of MANUAL.md, end to end:
# simulate 16 subjects (two groups of 8 that differ in how strongly
# attention modulates V1 -> V5), fit two hypotheses per subject in
# parallel, compare them with random effects, explain the fwd model's
# modulations with a between-subject design (PEB), prune one subject's
# model automatically and average parameters over models.
# Usage: sh scripts/group_example.sh [OUTDIR]   (default group_out)
set -e
dcm=${DCM:-bin/dcm}
out=${1:-group_out}
rm -rf "$out"
mkdir -p "$out/specs"
cp datasets/attention_design/events.tsv "$out/specs/"

# two hypotheses: attention modulates the forward or the backward connection
for model in fwd bwd; do
    if [ $model = fwd ]; then att='"V1 -> V5"'; else att='"SPC -> V5"'; fi
    for s in $(seq -w 1 16); do
        cat > "$out/specs/sub-${s}_$model.json" <<JSON
{"TR": 3.22, "TE": 0.04, "scans": 360, "timeseries": "sub-${s}.tsv",
 "regions": ["V1", "V5", "SPC"], "events": "events.tsv",
 "inputs": ["Photic", "Motion", "Attention"],
 "a": ["V1 -> V5", "V5 -> V1", "V5 -> SPC", "SPC -> V5"],
 "b": {"Motion": ["V1 -> V5"], "Attention": [$att]},
 "c": {"Photic": ["V1"]}}
JSON
    done
done

# subjects' true parameters (fwd structure): a common network with
# subject-level variability; group 2 has +0.4 on B:Attention:V1->V5
printf 'subject\tmodel\tspec\n' > "$out/manifest.tsv"
printf 'subject\tintercept\tgroup\n' > "$out/design.tsv"
for s in $(seq -w 1 16); do
    awk -v seed="$s" -v grp=$(( ${s#0} > 8 )) 'BEGIN {
        srand(seed)
        for (i = 0; i < 7; i++) { u1 = rand(); u2 = rand(); z[i] = sqrt(-2*log(u1))*cos(6.283185307*u2) * 0.05 }
        printf "{\"A\": [[0, %.3f, 0], [%.3f, 0, %.3f], [0, %.3f, 0]],\n", -0.1+z[0], 0.4+z[1], -0.1+z[2], 0.3+z[3]
        printf " \"B\": {\"Motion\": [[0,0,0],[%.3f,0,0],[0,0,0]], \"Attention\": [[0,0,0],[%.3f,0,0],[0,0,0]]},\n", 0.3+z[4], 0.2+0.4*grp+z[5]
        printf " \"C\": [[%.3f,0,0],[0,0,0],[0,0,0]]}\n", 0.7+z[6]
    }' > "$out/specs/sub-${s}_truth.json"
    $dcm simulate "$out/specs/sub-${s}_fwd.json" --params "$out/specs/sub-${s}_truth.json" \
        --snr 5 --seed "${s#0}" -o "$out/specs/sub-${s}.tsv"
    for model in fwd bwd; do
        printf 'sub-%s\t%s\tspecs/sub-%s_%s.json\n' "$s" "$model" "$s" "$model" >> "$out/manifest.tsv"
    done
    if [ "${s#0}" -gt 8 ]; then g=0.5; else g=-0.5; fi
    printf 'sub-%s\t1\t%s\n' "$s" "$g" >> "$out/design.tsv"
done

echo "== dcm batch: 16 subjects x 2 models"
$dcm batch "$out/manifest.tsv" -o "$out/results" -q
echo "== dcm compare --rfx"
$dcm compare --rfx --lme "$out/results/summary.tsv"
echo "== dcm peb (B parameters, design: intercept + group)"
$dcm peb "$out/results" --model fwd --design "$out/design.tsv" --params 'B:*' -o "$out/peb.json"
echo "== dcm reduce --search (sub-01, fwd)"
$dcm reduce "$out/results/sub-01/fwd.json" --search | head -3
echo "== dcm average --batch (group BMA of the two models)"
$dcm average --batch "$out/results" | head -12
