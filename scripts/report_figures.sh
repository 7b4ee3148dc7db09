#!/bin/sh
# Regenerate the figures of MANUAL.md (chapter 14): the worked example of
# `make demo` (the bundled attention design, simulated from the forward
# model's parameters, SNR 2, seed 1), fitted with the forward and backward
# models, then `dcm report --png` at scale 1 (small files for the repo).
# Prints `dcm review` of the forward model, as quoted in MANUAL.md (chapter 14).
#   sh scripts/report_figures.sh            uses bin/dcm (run `make` first)
#   DCM=path/to/dcm sh scripts/report_figures.sh
set -e
dcm=${DCM:-bin/dcm}
[ -x "$dcm" ] || { echo "report_figures: $dcm not found; run make first (or set DCM=...)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp datasets/attention_design/events.tsv datasets/attention_design/fwd.json \
   datasets/attention_design/bwd.json datasets/attention_design/truth.json "$work"/
mkdir -p "$work/results" docs/figures
"$dcm" simulate "$work/fwd.json" --params "$work/truth.json" --snr 2 --seed 1 -o "$work/timeseries.tsv" 2>/dev/null
"$dcm" estimate -q "$work/fwd.json" -o "$work/results/fwd.json"
"$dcm" estimate -q "$work/bwd.json" -o "$work/results/bwd.json"
"$dcm" report "$work/results/fwd.json" "$work/results/bwd.json" -o "$work/report.html" \
    --png "$work/figs" --scale 1
for f in comparison fwd_fit fwd_inputs fwd_network fwd_parameters fwd_free_energy; do
    cp "$work/figs/$f.png" "docs/figures/report_$f.png"
done
ls -l docs/figures/report_*.png
echo
"$dcm" review "$work/results/fwd.json"
