#!/bin/sh
# make demo: simulate the bundled attention design from known (fwd)
# parameters, fit the forward and backward hypotheses, compare them.
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
bin/dcm compare "$out/results/fwd.json" "$out/results/bwd.json"
