#!/bin/sh
# make demo: simulate the bundled attention design from known (fwd)
# parameters, fit the forward and backward hypotheses, compare them.
# The truth keeps the data within SPM's 4 % range, so nothing is rescaled
# and the estimates are directly comparable with datasets/attention_design/truth.json.
set -e
out=demo_out
rm -rf "$out"
mkdir -p "$out/results"
cp datasets/attention_design/events.tsv datasets/attention_design/fwd.json \
   datasets/attention_design/bwd.json datasets/attention_design/truth.json "$out"/
echo "== simulating $out/timeseries.tsv from $out/truth.json (SNR 2, seed 1)"
bin/dcm simulate "$out/fwd.json" --params "$out/truth.json" --snr 2 --seed 1 -o "$out/timeseries.tsv"
echo "== fitting the forward model"
bin/dcm estimate -q "$out/fwd.json" -o "$out/results/fwd.json"
echo "== fitting the backward model"
bin/dcm estimate -q "$out/bwd.json" -o "$out/results/bwd.json"
echo "== comparing"
bin/dcm compare "$out/results/fwd.json" "$out/results/bwd.json" > "$out/compare.txt"
cat "$out/compare.txt"
awk -v out="$out" '/^log Bayes factor fwd vs bwd:/ {
    if ($NF > 3)
        printf "== done: the forward model, which generated the data, wins (log Bayes factor %s > 3: strong evidence)\n", $NF
    else if ($NF > 0)
        printf "== done: the forward model, which generated the data, wins (log Bayes factor %s: weak evidence)\n", $NF
    else
        printf "== done, but the backward model wins (log Bayes factor fwd vs bwd %s): not the expected outcome\n", $NF
    printf "   estimates next to the truth: bin/dcm review %s/results/fwd.json (truth: %s/truth.json)\n", out, out
}' "$out/compare.txt"
