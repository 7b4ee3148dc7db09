#!/bin/sh
# evidence_study.sh — the heavy runs behind `dcm evidence` (issue 16; not in
# make test): the attention fwd and bwd models fitted, their sampled log
# evidence with the defaults (log Bayes factor beside F's 24.71), and a
# convergence study of the standard error against the samples per chain.
# usage: sh scripts/evidence_study.sh [OUTDIR]   (needs ../shared: DCM_SHARED)
set -eu
DCM=${DCM_BIN:-$(pwd)/bin/dcm}
SHARED=${DCM_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
D=$SHARED/datasets/attention
[ -f "$D/timeseries.tsv" ] || { echo "evidence_study: no $D (set DCM_SHARED)" >&2; exit 0; }
OUT=${1:-$(mktemp -d /tmp/evidence_study.XXXXXX)}
mkdir -p "$OUT"
spec() {   # $1 name, $2 the Attention modulation matrix
    cat > "$OUT/$1_spec.json" <<JSON
{"TR": 3.22, "TE": 0.04,
 "timeseries": "$D/timeseries.tsv", "regions": ["V1", "V5", "SPC"],
 "confounds": "$D/confounds.tsv",
 "events": "$D/events.tsv", "inputs": ["Photic", "Motion", "Attention"],
 "a": [[1,1,0],[1,1,1],[0,1,1]],
 "b": {"Motion": [[0,0,0],[1,0,0],[0,0,0]], "Attention": $2},
 "c": [[1,0,0],[0,0,0],[0,0,0]], "delays": [1.61, 1.61, 1.61],
 "options": {"two_state": false, "centre": false, "maxit": 128}}
JSON
    "$DCM" estimate -q "$OUT/$1_spec.json" -o "$OUT/$1.json"
}
spec fwd '[[0,0,0],[1,0,0],[0,0,0]]'
spec bwd '[[0,0,0],[0,0,1],[0,0,0]]'
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(str(d[k]) for k in sys.argv[2:]))" "$@"; }
echo "== defaults (fwd, bwd), 2 threads"
for m in fwd bwd; do
    "$DCM" evidence "$OUT/$m.json" --json -j 2 --samples-out "$OUT/${m}_samples.tsv" > "$OUT/${m}_evidence.json"
    echo "$m $(field "$OUT/${m}_evidence.json" log_evidence se free_energy kl_gap acceptance_top swap_rate rhat seconds cpu_seconds)"
done
python3 - "$OUT" <<'PY'
import json, math, sys
o = sys.argv[1]
f, b = (json.load(open(f"{o}/{m}_evidence.json")) for m in ("fwd", "bwd"))
lbf = f["log_evidence"] - b["log_evidence"]
se = math.hypot(f["se"], b["se"])
print(f"log BF fwd - bwd: sampled {lbf:.2f} +- {se:.2f}, F {f['free_energy'] - b['free_energy']:.2f}")
for m, d in (("fwd", f), ("bwd", b)):
    off = [p["name"] for p in d["parameters"] if abs(p["sample_mean"] - p["laplace_mean"]) > 2 * max(p["mcse"], 1e-12)]
    print(f"{m}: sample means beyond 2 MC SE of the Laplace means: {', '.join(off) or 'none'}")
    print(f"{m}: noise log-precision Laplace {d['noise_log_precision']['laplace']}, sampled {d['noise_log_precision']['sampled']}")
PY
echo "== convergence (fwd): samples per chain, 4 chains, 2 threads"
printf 'samples\tlog_evidence\tse\tseconds\tcpu_seconds\n' > "$OUT/convergence.tsv"
for n in 125 250 500 1000 2000; do
    "$DCM" evidence "$OUT/fwd.json" --json -j 2 --samples $n --seed 7 > "$OUT/conv_$n.json"
    printf '%s\t%s\n' $n "$(field "$OUT/conv_$n.json" log_evidence se seconds cpu_seconds | tr ' ' '\t')" >> "$OUT/convergence.tsv"
done
cat "$OUT/convergence.tsv"
echo "== prior path (classical power posteriors), fwd, defaults otherwise"
"$DCM" evidence "$OUT/fwd.json" --json -j 2 --path prior > "$OUT/fwd_prior_path.json"
echo "prior path: $(field "$OUT/fwd_prior_path.json" log_evidence se seconds cpu_seconds)"
echo "outputs in $OUT"
