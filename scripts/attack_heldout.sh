#!/bin/bash
# attack_heldout.sh — adversarial and slip cases in the spirit of issues 8
# and 9, run against the ASan+UBSan binary. For every case: no signal, no
# sanitizer report, a message and exit 1-4 on failure, inputs unchanged
# (checksums), no temporary file left, no NaN in an output; slips end in a
# refusal or a non-empty "warnings"; good inputs end with no warning.
# usage: scripts/attack_heldout.sh [FILTER]   (env DCM_BIN, DCM_SHARED)
REPO=$(cd "$(dirname "$0")/.." && pwd)
DCM=${DCM_BIN:-$REPO/build/san/bin/dcm}
REL=${DCM_RELEASE_BIN:-$REPO/bin/dcm}
SH=${DCM_SHARED:-$REPO/../shared}   # SPM reference files beside the repository
W=${ATTACK_DIR:-/tmp/dcm_attack.$$}
FILTER=${1:-}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
rm -rf "$W"; mkdir -p "$W/base"
pass=0; fail=0; failed=()

# --- base data: the bundled attention design simulated, both fits --------
B=$W/base
cp "$REPO"/datasets/attention_design/{events.tsv,fwd.json,bwd.json,truth.json} "$B"/
"$REL" simulate "$B/fwd.json" --params "$B/truth.json" --snr 2 --seed 1 -o "$B/timeseries.tsv" 2>/dev/null
( cd "$B" && "$REL" estimate -q fwd.json -o r_fwd.json && "$REL" estimate -q bwd.json -o r_bwd.json ) 2>/dev/null
# permuted regions: same data, regions listed V5, SPC, V1
awk -F'\t' -v OFS='\t' '{print $2,$3,$1}' "$B/timeseries.tsv" > "$B/ts_perm.tsv"
sed -e 's/"timeseries.tsv"/"ts_perm.tsv"/' -e 's/\["V1", "V5", "SPC"\]/["V5", "SPC", "V1"]/' "$B/fwd.json" > "$B/fwd_perm.json"
( cd "$B" && "$REL" estimate -q fwd_perm.json -o r_fwd_perm.json ) 2>/dev/null
# renamed region V1 -> V1x
sed '1s/V1/V1x/' "$B/timeseries.tsv" > "$B/ts_ren.tsv"
sed -e 's/"timeseries.tsv"/"ts_ren.tsv"/' -e 's/V1/V1x/g' "$B/fwd.json" > "$B/fwd_ren.json"
( cd "$B" && "$REL" estimate -q fwd_ren.json -o r_fwd_ren.json ) 2>/dev/null
# fewer scans (300)
head -301 "$B/timeseries.tsv" > "$B/ts_300.tsv"
sed -e 's/"timeseries.tsv"/"ts_300.tsv"/' -e 's/"scans": 360/"scans": 300/' "$B/fwd.json" > "$B/fwd_300.json"
( cd "$B" && "$REL" estimate -q fwd_300.json -o r_fwd_300.json ) 2>/dev/null
# a small batch layout: 3 subjects x (fwd, bwd), sub-03 fitted with permuted regions
for s in 01 02 03; do
  mkdir -p "$B/grp/sub-$s"
  "$REL" simulate "$B/fwd.json" --params "$B/truth.json" --snr 2 --seed 1$s -o "$B/grp/sub-$s/timeseries.tsv" 2>/dev/null
  sed 's#"events.tsv"#"../events.tsv"#' "$B/fwd.json" > "$B/grp/sub-$s/fwd.json"
  sed 's#"events.tsv"#"../events.tsv"#' "$B/bwd.json" > "$B/grp/sub-$s/bwd.json"
done
cp "$B/events.tsv" "$B/grp/"
printf 'subject\tmodel\tspec\n' > "$B/grp/manifest.tsv"
for s in 01 02 03; do printf 'sub-%s\tfwd\tsub-%s/fwd.json\nsub-%s\tbwd\tsub-%s/bwd.json\n' $s $s $s $s >> "$B/grp/manifest.tsv"; done
"$REL" batch -q "$B/grp/manifest.tsv" -o "$B/gout" -j 2 2>/dev/null
printf 'subject\tintercept\tgroup\nsub-01\t1\t1\nsub-02\t1\t-1\nsub-03\t1\t1\n' > "$B/design.tsv"
python3 "$REPO/scripts/mknii.py" "$B/bold.nii" 4 4 4 60 2 signal
python3 "$REPO/scripts/mknii.py" "$B/mask.nii" 4 4 4 1 2 mask
python3 "$REPO/scripts/mknii.py" "$B/bold_nan.nii" 4 4 4 60 2 nan
python3 "$REPO/scripts/mknii.py" "$B/bold_zero.nii" 4 4 4 60 2 zero
if [ -f "$SH/datasets/attention/timeseries.tsv" ]; then
  mkdir -p "$B/spm"; cp "$SH"/datasets/attention/{timeseries.tsv,confounds.tsv,events.tsv} "$B/spm/"
  for k in fwd bwd; do
    m='[[0,0,0],[1,0,0],[0,0,0]]'; [ $k = bwd ] && m='[[0,0,0],[0,0,1],[0,0,0]]'
    cat > "$B/spm/$k.json" <<J
{"TR": 3.22, "TE": 0.04, "timeseries": "timeseries.tsv", "regions": ["V1", "V5", "SPC"],
 "confounds": "confounds.tsv", "events": "events.tsv", "inputs": ["Photic", "Motion", "Attention"],
 "a": [[1,1,0],[1,1,1],[0,1,1]], "b": {"Motion": [[0,0,0],[1,0,0],[0,0,0]], "Attention": $m},
 "c": [[1,0,0],[0,0,0],[0,0,0]]}
J
  done
fi

# --- one case -------------------------------------------------------------
# case ID KIND OUT SETUP CMD
#   KIND: refuse (exit != 0), warn (refusal or warnings in OUT), good (exit 0,
#   no warning), clean (either, but clean); OUT: file that may be written
#   (relative to the case dir), or '-' (stdout is the output)
case_() {
  local id=$1 kind=$2 out=$3 setup=$4 cmd=$5
  [ -n "$FILTER" ] && [[ $id != *$FILTER* ]] && return
  local d=$W/c_$id; rm -rf "$d"; cp -a "$B" "$d"
  ( cd "$d" && eval "$setup" ) >/dev/null 2>&1
  local before; before=$(cd "$d" && find . -type f ! -path "./${out%/}" -print0 | sort -z | xargs -0 sha256sum)
  local existed=0; [ -e "$d/$out" ] && existed=1
  local rc; ( cd "$d" && eval "timeout 120 $cmd" ) > "$d.stdout" 2> "$d.stderr"; rc=$?
  local why=()
  [ $rc -ge 124 ] && why+=("signal/timeout rc=$rc")
  grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehavior' "$d.stderr" && why+=("sanitizer report")
  if [ $rc -ne 0 ]; then
    [ -s "$d.stderr" ] || why+=("no message")
    [ $rc -ge 1 ] && [ $rc -le 4 ] || why+=("exit $rc")
    [ "$out" != - ] && [ $existed = 0 ] && [ -e "$d/$out" ] && why+=("output left after failure")
  fi
  local after; after=$(cd "$d" && find . -type f ! -path "./${out%/}" -print0 | sort -z | xargs -0 sha256sum)
  # files that existed before must be unchanged (new files may appear only on success)
  local changed; changed=$(diff <(echo "$before") <(echo "$after") | grep '^<' | head -3)
  [ -n "$changed" ] && why+=("input changed: $changed")
  [ -n "$(find "$d" -name '*.tmp.*' | head -1)" ] && why+=("temp file left")
  local o=$d/$out; [ "$out" = - ] && o=$d.stdout
  local nwarn=-1
  if [ $rc -eq 0 ] && [ -f "$o" ]; then
    # NaN/Inf as a value: a JSON constant, or a table cell / word outside quotes
    if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$o" 2>/dev/null; then
      python3 -c 'import json,sys
def bad(c): raise SystemExit(1)
json.load(open(sys.argv[1]), parse_constant=bad)' "$o" || why+=("NaN/Inf in JSON output")
    else
      sed 's/"[^"]*"//g' "$o" | grep -qiwE -- '-?(nan|inf|infinity)' && why+=("NaN/Inf in output")
    fi
    nwarn=$(python3 -c 'import json,sys
try: r=json.load(open(sys.argv[1]))
except Exception: print(-1); sys.exit()
w=r.get("warnings") if isinstance(r,dict) else None
if isinstance(r,dict) and isinstance(r.get("warning"),str): w=[r["warning"]]
print(len(w) if isinstance(w,list) else -1)' "$o")
  fi
  case $kind in
    refuse) [ $rc -ne 0 ] || why+=("accepted (exit 0)");;
    warn) if [ $rc -eq 0 ]; then [ "$nwarn" -gt 0 ] 2>/dev/null || why+=("slip accepted with no warning (warnings=$nwarn)"); fi;;
    good) [ $rc -eq 0 ] || why+=("good input refused rc=$rc"); [ "$nwarn" -gt 0 ] 2>/dev/null && why+=("false alarm: $nwarn warnings");
          grep -qi 'warning' "$d.stderr" && why+=("warning on stderr");;
  esac
  [ -n "$EXTRA" ] && { local x; x=$(cd "$d" && eval "$EXTRA" 2>&1) || why+=("extra: $x"); }
  local msg; msg=$(grep -v '^ *$' "$d.stderr" | tail -1 | cut -c1-150)
  if [ ${#why[@]} -eq 0 ]; then pass=$((pass+1)); printf 'PASS %-28s rc=%d %s\n' "$id" $rc "$msg"
  else fail=$((fail+1)); failed+=("$id"); printf 'FAIL %-28s rc=%d [%s] %s\n' "$id" $rc "$(IFS=';'; echo "${why[*]}")" "$msg"; fi
}
EXTRA=
setspec() { sed -i "$1" fwd.json; }      # used in SETUP strings
est='$DCM estimate -q fwd.json -o r.json'

# --- issue 8: design slips -------------------------------------------------
case_ tr_0.003      refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": 0.003/"' "$est"
case_ tr_3.22e3     refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": 3.22e3/"' "$est"
case_ tr_neg        refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": -3.22/"' "$est"
case_ tr_zero       refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": 0/"' "$est"
case_ tr_overflow   refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": 1e400/"' "$est"
case_ tr_string     refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": \"3.22\"/"' "$est"
case_ tr_30.5       refuse r.json 'setspec "s/\"TR\": 3.22/\"TR\": 30.5/"' "$est"
case_ tr_2.5        warn   r.json 'setspec "s/\"TR\": 3.22/\"TR\": 2.5/"' "$est"
case_ tr_6.44       warn   r.json 'setspec "s/\"TR\": 3.22/\"TR\": 6.44/"' "$est"
case_ onsets_ms     warn   r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$1=\$1*1000}1" events.tsv > e && mv e events.tsv' "$est"
case_ onsets_scans  warn   r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$1=\$1/3.22}1" events.tsv > e && mv e events.tsv' "$est"
case_ both_in_scans warn   r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$1=\$1/3.22;\$2=\$2/3.22}1" events.tsv > e && mv e events.tsv' "$est"
case_ dur_in_scans  warn   r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$2=\$2/3.22}1" events.tsv > e && mv e events.tsv' "$est"
case_ dur_ms        warn   r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$2=\$2*1000}1" events.tsv > e && mv e events.tsv' "$est"
case_ short_input   warn   r.json 'awk -F"\t" -v OFS="\t" "NR==1||\$3!=\"Attention\"" events.tsv > e && printf "100\t1\tAttention\n" >> e && mv e events.tsv' "$est"
case_ spike_region  warn   r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$3=(NR==100)?5:0}1" timeseries.tsv > t && mv t timeseries.tsv' "$est"
case_ const_region  refuse r.json 'awk -F"\t" -v OFS="\t" "NR>1{\$2=1.5}1" timeseries.tsv > t && mv t timeseries.tsv' "$est"
case_ nan_in_ts     refuse r.json 'awk -F"\t" -v OFS="\t" "NR==50{\$2=\"NaN\"}1" timeseries.tsv > t && mv t timeseries.tsv' "$est"
case_ inf_in_ts     refuse r.json 'awk -F"\t" -v OFS="\t" "NR==50{\$2=\"-inf\"}1" timeseries.tsv > t && mv t timeseries.tsv' "$est"
case_ empty_cell_ts refuse r.json 'awk -F"\t" -v OFS="\t" "NR==50{\$2=\"\"}1" timeseries.tsv > t && mv t timeseries.tsv' "$est"
case_ ts_truncated  refuse r.json 'head -c 20000 timeseries.tsv > t && mv t timeseries.tsv' "$est"
case_ dup_case_reg  warn   r.json 'sed -i "1s/SPC/v1/" timeseries.tsv; setspec "s/\"SPC\"/\"v1\"/g; s/SPC/v1/g"' "$est"
case_ trail_space_reg refuse r.json 'sed -i "1s/SPC/SPC /" timeseries.tsv; setspec "s/\"SPC\"\\]/\"SPC \"]/"' "$est"
case_ ts_hdr_space  clean  r.json 'sed -i "1s/SPC/SPC /" timeseries.tsv' "$est"
case_ dup_case_input warn  r.json 'sed -i "s/Attention/photic/" events.tsv; setspec "s/Attention/photic/g"' "$est"
case_ arrow_in_name refuse r.json 'sed -i "1s/SPC/S->C/" timeseries.tsv; setspec "s/\"SPC\"/\"S->C\"/g; s/SPC/S->C/g"' "$est"
case_ maxit_neg     refuse r.json '' '$DCM estimate -q fwd.json -o r.json --maxit -5'
case_ maxit_huge    refuse r.json '' '$DCM estimate -q fwd.json -o r.json --maxit 99999999999999999999'
case_ maxit_spec_huge refuse r.json 'setspec "s/\"TE\": 0.04,/\"TE\": 0.04, \"options\": {\"maxit\": 1e12},/"' "$est"
case_ events_crlf   good   r.json 'sed -i "s/\$/\r/" events.tsv' "$est"
case_ events_bom    good   r.json 'printf "\xef\xbb\xbf" > e && cat events.tsv >> e && mv e events.tsv' "$est"
case_ ts_crlf       good   r.json 'sed -i "s/\$/\r/" timeseries.tsv' "$est"
case_ events_negdur refuse r.json 'sed -i "2s/96.60/-96.60/" events.tsv' "$est"
case_ scans_mismatch refuse r.json 'setspec "s/\"scans\": 360/\"scans\": 300/"' "$est"
# --- good inputs: no false alarms ------------------------------------------
case_ good_fwd      good   r.json '' "$est"
case_ good_bwd      good   r.json '' '$DCM estimate -q bwd.json -o r.json'
case_ good_perm     good   r.json '' '$DCM estimate -q fwd_perm.json -o r.json'
[ -d "$B/spm" ] && case_ good_spm_fwd good r.json '' '$DCM estimate -q spm/fwd.json -o r.json'
[ -d "$B/spm" ] && case_ good_spm_bwd good r.json '' '$DCM estimate -q spm/bwd.json -o r.json'
case_ good_batch    good gout2/warnings.tsv '' '$DCM batch -q grp/manifest.tsv -o gout2 -j 2 && test ! -s gout2/warnings.tsv -o "$(wc -l < gout2/warnings.tsv)" -le 1'
case_ good_extract  good ex.json '' '$DCM extract bold.nii --mask mask.nii --name R -o ex'
# --- issue 9: outputs -----------------------------------------------------
case_ o_events      refuse events.tsv '' '$DCM estimate -q fwd.json -o events.tsv'
case_ o_confounds   refuse spm/confounds.tsv '' '$DCM estimate -q spm/fwd.json -o spm/confounds.tsv'
case_ o_symlink_spec refuse l.json 'ln -s fwd.json l.json' '$DCM estimate -q fwd.json -o l.json'
case_ o_hardlink_ts refuse h.tsv 'ln timeseries.tsv h.tsv' '$DCM estimate -q fwd.json -o h.tsv'
case_ o_dir_is_file refuse fwd.json/x.json '' '$DCM estimate -q fwd.json -o fwd.json/x.json'
case_ o_is_dir      refuse grp '' '$DCM estimate -q fwd.json -o grp'
case_ o_devnull     refuse - '' '$DCM estimate -q fwd.json -o /dev/null'
case_ mat_eq_o      refuse r.json '' '$DCM estimate -q fwd.json -o r.json --mat r.json'
case_ mat_eq_o_rel  refuse r.json '' '$DCM estimate -q fwd.json -o r.json --mat ./r.json'
case_ mat_eq_spec   refuse r.json '' '$DCM estimate -q fwd.json -o r.json --mat fwd.json'
case_ mat_bad_dir   refuse r.json 'echo old > r.json' '$DCM estimate -q fwd.json -o r.json --mat nodir/x.mat'
case_ report_o_input refuse r_fwd.json '' '$DCM report r_fwd.json -o r_fwd.json'
case_ report_o_link refuse rep.html 'ln -s r_bwd.json rep.html' '$DCM report r_fwd.json r_bwd.json -o rep.html'
case_ reduce_o_hard refuse h.json 'ln r_fwd.json h.json' '$DCM reduce r_fwd.json --off "B:Motion:V1->V5" -o h.json'
case_ average_o_in  refuse r_bwd.json '' '$DCM average r_fwd.json r_bwd.json -o r_bwd.json'
case_ simulate_o_spec refuse fwd.json '' '$DCM simulate fwd.json --params truth.json -o fwd.json'
case_ batch_o_study refuse grp/x '' '$DCM batch -q grp/manifest.tsv -o grp'
case_ batch_o_file  refuse fwd.json '' '$DCM batch -q grp/manifest.tsv -o fwd.json'
case_ extract_o_bold_sidecar refuse bold.tsv 'echo "{\"RepetitionTime\": 2}" > bold.json' '$DCM extract bold.nii --mask mask.nii --name R -o bold'
case_ extract_o_bold refuse bold.tsv '' '$DCM extract bold.nii --mask mask.nii --name R -o bold'
case_ peb_o_design  refuse design.tsv '' '$DCM peb gout --model fwd --design design.tsv --params "B:*" -o design.tsv'
# --- issue 9: results that meet -------------------------------------------
EXTRA='python3 - <<P
import json
a=json.load(open("avg.json")); s=json.dumps(a)
r=json.load(open("r_fwd.json"))
assert "V1->V5" in s, "no V1->V5 in the average"
P'
case_ average_perm  clean avg.json '' '$DCM average r_fwd.json r_fwd_perm.json --json -o avg.json'
EXTRA=
case_ average_renamed refuse avg.json '' '$DCM average r_fwd.json r_fwd_ren.json -o avg.json'
case_ average_300   refuse avg.json '' '$DCM average r_fwd.json r_fwd_300.json -o avg.json'
case_ compare_300   refuse - '' '$DCM compare r_fwd.json r_fwd_300.json --json'
case_ compare_renamed refuse - '' '$DCM compare r_fwd.json r_fwd_ren.json --json'
case_ peb_perm_subject clean - 'cp r_fwd_perm.json gout/sub-03/fwd.json' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_300_subject clean - 'cp r_fwd_300.json gout/sub-03/fwd.json' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_renamed_subject refuse - 'cp r_fwd_ren.json gout/sub-03/fwd.json' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
# sub-03's fwd refitted with its regions in another order: the group average must not change
permsub='cd grp/sub-03 && awk -F"\t" -v OFS="\t" "{print \$2,\$3,\$1}" timeseries.tsv > ts_perm.tsv && sed -e "s/\"timeseries.tsv\"/\"ts_perm.tsv\"/" -e "s/\[\"V1\", \"V5\", \"SPC\"\]/[\"V5\", \"SPC\", \"V1\"]/" fwd.json > fwd_perm.json && $REL estimate -q fwd_perm.json -o ../../gout/sub-03/fwd.json'
# same_as_base ARGS: the case's stdout equals (1e-3) ARGS run in the unchanged base
same_as_base() { echo '( cd '"$B"' && $REL '"$1"' ) > ref.json && python3 - "$OLDPWD" <<P
import json, os
a=json.load(open("ref.json")); b=json.load(open(os.path.dirname(os.getcwd()) + "/" + os.path.basename(os.getcwd()) + ".stdout"))
def flat(x, pre=""):
    if isinstance(x, dict):
        for k, v in x.items(): yield from flat(v, pre + "/" + k)
    elif isinstance(x, list):
        for i, v in enumerate(x): yield from flat(v, pre + "/" + str(i))
    elif isinstance(x, (int, float)) and not isinstance(x, bool): yield pre, x
fa, fb = dict(flat(a)), dict(flat(b))
diff = [k for k in fa if k in fb and abs(fa[k] - fb[k]) > 1e-3 * (1 + abs(fa[k]))]
assert not diff, "result changed with region order: %s" % diff[:3]
P'; }
EXTRA=$(same_as_base 'average --batch gout --json')
case_ avg_batch_perm clean - "$permsub" '$DCM average --batch gout --json'
EXTRA=$(same_as_base 'peb gout --model fwd --design design.tsv --params "A:*" --json')
case_ peb_batch_perm clean - "$permsub" '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
EXTRA=
lme() { printf 'subject\tm1\tm2\tm3\n'; printf 's1\t%s\t-10\t-12\ns2\t-11\t-10\t-13\ns3\t-9\t-10\t-12\n' "$1"; }
for v in inf -inf nan 1e308 -1e308 1e999; do
  case_ lme_$v clean - "lme $v > l.tsv" '$DCM compare --lme l.tsv --json'
  case_ lme_rfx_$v clean - "lme $v > l.tsv" '$DCM compare --rfx --lme l.tsv --json'
done
case_ lme_crlf      clean - 'lme -12 | sed "s/\$/\r/" > l.tsv' '$DCM compare --rfx --lme l.tsv --json'
case_ lme_bom       clean - '{ printf "\xef\xbb\xbf"; lme -12; } > l.tsv' '$DCM compare --lme l.tsv --json'
case_ lme_huge_all  clean - 'printf "subject\tm1\tm2\ns1\t1e308\t-1e308\ns2\t1e308\t-1e308\n" > l.tsv' '$DCM compare --rfx --lme l.tsv --json'
case_ manifest_crlf clean gout3/summary.tsv 'sed -i "s/\$/\r/" grp/manifest.tsv' '$DCM batch -q grp/manifest.tsv -o gout3 -j 2'
case_ manifest_bom  clean gout3/summary.tsv '{ printf "\xef\xbb\xbf"; cat grp/manifest.tsv; } > m && mv m grp/manifest.tsv' '$DCM batch -q grp/manifest.tsv -o gout3 -j 2'
case_ manifest_dup_case clean gout3/summary.tsv 'sed -i "s/^sub-03\tbwd/sub-03\tFWD/" grp/manifest.tsv' '$DCM batch -q grp/manifest.tsv -o gout3 -j 2'
case_ truncated_result refuse - 'head -c 3000 r_fwd.json > t && mv t r_fwd.json' '$DCM compare r_fwd.json r_bwd.json'
case_ trunc_review  refuse - 'head -c 3000 r_fwd.json > t && mv t r_fwd.json' '$DCM review r_fwd.json'
edit() { echo "python3 -c \"import json;r=json.load(open('r_fwd.json'));v=r['vector'];$1;json.dump(r,open('r_fwd.json','w'))\""; }
infep='sed -i "0,/\"A\": \[/s//\"A\": [1e999, /" r_fwd.json'
for c in "compare r_fwd.json r_bwd.json --json" "average r_fwd.json r_bwd.json --json" "reduce r_fwd.json --off B:Motion:V1-\>V5 --json" "review r_fwd.json" "check --json r_fwd.json" "report r_fwd.json -o rep.html"; do
  n=${c%% *}
  case_ nullEp_$n  clean - "$(edit "v['posterior_mean'][1]=None")" "\$DCM $c"
  case_ hugeEp_$n  clean - "$(edit "v['posterior_mean'][1]=1e308")" "\$DCM $c"
  case_ negCp_$n   clean - "$(edit "v['posterior_cov'][1][1]=-1.0")" "\$DCM $c"
  case_ nullF_$n   clean - "$(edit "r['free_energy']=None")" "\$DCM $c"
  case_ infEp_$n   clean - "$infep" "\$DCM $c"
done
case_ huge_F_compare clean - 'sed -i "s/\"free_energy\": [^,]*/\"free_energy\": 1e308/" r_fwd.json' '$DCM compare r_fwd.json r_bwd.json --json'
case_ extract_allnan refuse ex.json '' '$DCM extract bold_nan.nii --mask mask.nii --name R -o ex'
case_ extract_zero  refuse ex.json '' '$DCM extract bold_zero.nii --mask mask.nii --name R -o ex'
case_ extract_halfnan clean ex.json 'python3 -c "
import struct;b=bytearray(open(\"bold.nii\",\"rb\").read())
for t in range(60):
  for v in range(0,64,2): struct.pack_into(\"<f\",b,352+4*(t*64+v),float(\"nan\"))
open(\"bold.nii\",\"wb\").write(b)"' '$DCM extract bold.nii --mask mask.nii --name R -o ex'

# --- more unit slips and odd inputs ---------------------------------------
case_ te_ms         refuse r.json 'setspec "s/\"TE\": 0.04/\"TE\": 40/"' "$est"
case_ te_zero       refuse r.json 'setspec "s/\"TE\": 0.04/\"TE\": 0/"' "$est"
case_ delays_ms     refuse r.json 'setspec "s/\"TE\": 0.04,/\"TE\": 0.04, \"delays\": [1610, 1610, 1610],/"' "$est"
case_ delays_neg    refuse r.json 'setspec "s/\"TE\": 0.04,/\"TE\": 0.04, \"delays\": [-1, 0, 0],/"' "$est"
case_ events_na_dur clean  r.json 'sed -i "2s/96.60/n\/a/" events.tsv' "$est"
case_ events_inf_dur refuse r.json 'sed -i "2s/96.60/inf/" events.tsv' "$est"
case_ events_spaces refuse r.json 'tr "\t" " " < events.tsv > e && mv e events.tsv' "$est"
case_ ts_spaces     refuse r.json 'tr "\t" " " < timeseries.tsv > e && mv e timeseries.tsv' "$est"
case_ ts_one_row    refuse r.json 'head -2 timeseries.tsv > t && mv t timeseries.tsv; setspec "s/\"scans\": 360,//"' "$est"
case_ ts_fifo       refuse r.json 'rm timeseries.tsv && mkfifo timeseries.tsv' "$est"
case_ spec_is_dir   refuse r.json '' '$DCM estimate -q grp -o r.json'
case_ o_trailing_slash refuse out/ '' '$DCM estimate -q fwd.json -o out/'
case_ mat_symlink_ts refuse r.json 'ln -s timeseries.tsv m.mat' '$DCM estimate -q fwd.json -o r.json --mat m.mat'
case_ conf_nan      refuse r.json 'awk "{print (NR==7)?\"nan\":1+NR%3}" timeseries.tsv > c.tsv; setspec "s/\"TE\": 0.04,/\"TE\": 0.04, \"confounds\": \"c.tsv\",/"' "$est"
case_ conf_rows     refuse r.json 'head -300 timeseries.tsv | cut -f1 | tail -n +2 > c.tsv; setspec "s/\"TE\": 0.04,/\"TE\": 0.04, \"confounds\": \"c.tsv\",/"' "$est"
case_ sim_huge_param clean sim.tsv 'echo "{\"A:V1->V5\": 1e308, \"C:Photic->V1\": 0.6}" > p.json' '$DCM simulate fwd.json --params p.json -o sim.tsv'
case_ sim_big_param clean sim.tsv 'echo "{\"A:V1->V5\": 40, \"A:V5->V1\": 40, \"C:Photic->V1\": 0.6}" > p.json' '$DCM simulate fwd.json --params p.json -o sim.tsv'
case_ sim_snr_neg   refuse sim.tsv '' '$DCM simulate fwd.json --params truth.json --snr -1 -o sim.tsv'
case_ sim_snr_nan   refuse sim.tsv '' '$DCM simulate fwd.json --params truth.json --snr nan -o sim.tsv'
case_ sim_vary_neg  refuse sim.tsv '' '$DCM simulate fwd.json --params truth.json --vary "A:*=-0.1" -o sim.tsv'
case_ sim_vary_huge clean sim.tsv '' '$DCM simulate fwd.json --params truth.json --vary "A:*=1e300" -o sim.tsv'
case_ sim_o_events  refuse events.tsv '' '$DCM simulate fwd.json --params truth.json -o events.tsv'
case_ sim_params_out_eq_o refuse sim.tsv '' '$DCM simulate fwd.json --params truth.json -o sim.tsv --params-out sim.tsv'
case_ sim_params_out_truth refuse truth.json '' '$DCM simulate fwd.json --params truth.json -o sim.tsv --params-out truth.json'
case_ extract_tr_ms refuse ex.tsv '' '$DCM extract bold.nii --mask mask.nii --name R -o ex --tr 2000'
case_ extract_tr_tiny warn ex.json '' '$DCM extract bold.nii --mask mask.nii --name R -o ex --tr 0.002'
case_ extract_hpf_neg refuse ex.tsv '' '$DCM extract bold.nii --mask mask.nii --name R -o ex --hpf -128'
case_ extract_o_mask clean mask.nii '' '$DCM extract bold.nii --mask mask.nii --name R -o mask.nii'
case_ extract_name_arrow refuse ex.tsv '' '$DCM extract bold.nii --mask mask.nii --name "R->S" -o ex'
case_ extract_name_space refuse ex.tsv '' '$DCM extract bold.nii --mask mask.nii --name "R " -o ex'
case_ lme_dup_model clean - 'printf "subject\tm1\tm1\ns1\t-10\t-12\ns2\t-11\t-10\n" > l.tsv' '$DCM compare --lme l.tsv --json'
case_ lme_dup_model_case clean - 'printf "subject\tm1\tM1 \ns1\t-10\t-12\ns2\t-11\t-10\n" > l.tsv' '$DCM compare --lme l.tsv --json'
case_ lme_dup_subject clean - 'printf "subject\tm1\tm2\ns1\t-10\t-12\ns1\t-11\t-10\n" > l.tsv' '$DCM compare --rfx --lme l.tsv --json'
case_ lme_header_only refuse - 'printf "subject\tm1\tm2\n" > l.tsv' '$DCM compare --rfx --lme l.tsv --json'
case_ lme_spaces    refuse - 'printf "subject m1 m2\ns1 -10 -12\n" > l.tsv' '$DCM compare --lme l.tsv --json'
case_ lme_empty_cell refuse - 'printf "subject\tm1\tm2\ns1\t\t-12\ns2\t-1\t-2\n" > l.tsv' '$DCM compare --lme l.tsv --json'
case_ compare_same_twice clean - '' '$DCM compare r_fwd.json r_fwd.json --json'
case_ compare_same_basename clean - 'mkdir a b; cp r_fwd.json a/r.json; cp r_bwd.json b/r.json' '$DCM compare a/r.json b/r.json --json'
case_ report_same_basename clean rep.html 'mkdir a b; cp r_fwd.json a/r.json; cp r_bwd.json b/r.json' '$DCM report a/r.json b/r.json -o rep.html'
case_ report_o_lme  refuse l.tsv 'printf "subject\tm1\tm2\ns1\t-10\t-12\n" > l.tsv' '$DCM report --lme l.tsv -o l.tsv'
case_ report_png_file refuse rep.html '' '$DCM report r_fwd.json -o rep.html --png fwd.json'
case_ check_on_spec refuse - '' '$DCM check fwd.json'
case_ review_on_events refuse - '' '$DCM review events.tsv'
case_ average_same_twice clean - '' '$DCM average r_fwd.json r_fwd.json --json'
case_ manifest_spaces refuse gout3/summary.tsv 'tr "\t" " " < grp/manifest.tsv > m && mv m grp/manifest.tsv' '$DCM batch -q grp/manifest.tsv -o gout3'
case_ manifest_trailing_space_model clean gout3/summary.tsv 'sed -i "2s/\tfwd\t/\tfwd \t/" grp/manifest.tsv' '$DCM batch -q grp/manifest.tsv -o gout3'
case_ manifest_traversal refuse gout3/summary.tsv 'sed -i "2s/^sub-01/..\/..\/evil/" grp/manifest.tsv' '$DCM batch -q grp/manifest.tsv -o gout3'
case_ manifest_spec_fifo refuse gout3/summary.tsv 'rm grp/sub-01/fwd.json; mkfifo grp/sub-01/fwd.json' '$DCM batch -q grp/manifest.tsv -o gout3'
case_ batch_o_symlink_study refuse gl/x 'ln -s grp gl' '$DCM batch -q grp/manifest.tsv -o gl'
case_ peb_design_crlf clean - 'sed -i "s/\$/\r/" design.tsv' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_design_bom clean - '{ printf "\xef\xbb\xbf"; cat design.tsv; } > d && mv d design.tsv' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_design_const refuse - 'printf "subject\tintercept\tzero\nsub-01\t1\t0\nsub-02\t1\t0\nsub-03\t1\t0\n" > design.tsv' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_design_dup_case clean - 'printf "subject\tintercept\nsub-01\t1\nSUB-01\t1\nsub-03\t1\n" > design.tsv' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_model_typo refuse - '' '$DCM peb gout --model Fwd --design design.tsv --params "A:*"'

case_ maxit_1       warn   r.json '' '$DCM estimate -q fwd.json -o r.json --maxit 1'
mkmat='$REL estimate -q fwd.json -o r0.json --mat DCM_fwd.mat'
case_ mat_in_o_same refuse DCM_fwd.mat "$mkmat" '$DCM estimate -q DCM_fwd.mat -o DCM_fwd.mat'
case_ mat_in_mat_same refuse r.json "$mkmat" '$DCM estimate -q DCM_fwd.mat -o r.json --mat DCM_fwd.mat'
case_ mat_truncated refuse r.json "$mkmat"' && head -c 2000 DCM_fwd.mat > t.mat && mv t.mat DCM_fwd.mat' '$DCM estimate -q DCM_fwd.mat -o r.json'
case_ mat_roundtrip good   r.json "$mkmat" '$DCM estimate -q DCM_fwd.mat -o r.json'
case_ batch_j0      refuse gout3/summary.tsv '' '$DCM batch -q grp/manifest.tsv -o gout3 -j 0'
case_ batch_jneg    refuse gout3/summary.tsv '' '$DCM batch -q grp/manifest.tsv -o gout3 -j -1'
case_ batch_jhuge   clean  gout3/summary.tsv '' '$DCM batch -q grp/manifest.tsv -o gout3 -j 100000'
case_ family_unknown refuse - '' '$DCM compare --lme gout/summary.tsv --family a=fwd,nope --family b=bwd'
case_ family_twice  refuse - '' '$DCM compare --lme gout/summary.tsv --family a=fwd,bwd --family b=bwd'
case_ sim_seed_big  refuse sim.tsv '' '$DCM simulate fwd.json --params truth.json --seed 4294967296 -o sim.tsv'
case_ report_png_study clean rep.html '' '$DCM report r_fwd.json -o rep.html --png grp'
case_ report_o_dir_file refuse fwd.json/rep.html '' '$DCM report r_fwd.json -o fwd.json/rep.html'

case_ report_png_collide refuse q/rep.html 'mkdir q && cp r_fwd.json q/r.json && cp r_bwd.json q/r_fit.png' '$DCM report q/r.json q/r_fit.png -o q/rep.html --png q'
case_ report_png_is_html refuse q/r_inputs.png 'mkdir q && cp r_fwd.json q/r.json' '$DCM report q/r.json -o q/r_inputs.png --png q'
case_ spec_bom      good  r.json '{ printf "\xef\xbb\xbf"; cat fwd.json; } > f && mv f fwd.json' "$est"
case_ spec_crlf     good   r.json 'sed -i "s/\$/\r/" fwd.json' "$est"
case_ ts_bom        clean  r.json '{ printf "\xef\xbb\xbf"; cat timeseries.tsv; } > f && mv f timeseries.tsv' "$est"
case_ events_extra_cols good r.json 'awk -F"\t" -v OFS="\t" "{print \$0, (NR==1)?\"response_time\":\"n/a\"}" events.tsv > e && mv e events.tsv' "$est"
case_ events_col_order good r.json 'awk -F"\t" -v OFS="\t" "{print \$3,\$1,\$2}" events.tsv > e && mv e events.tsv' "$est"
case_ events_trail_space_type clean r.json 'sed -i "s/\tAttention\$/\tAttention /" events.tsv' "$est"
case_ events_case_type warn r.json 'sed -i "s/\tAttention\$/\tattention/" events.tsv' "$est"
case_ long_region_name good r.json 'n=$(printf "R%.0s" $(seq 3000)); sed -i "1s/SPC/$n/" timeseries.tsv; setspec "s/SPC/$n/g"' "$est"
if mount -t tmpfs -o size=1k tmpfs "$W/.mnt_probe" 2>/dev/null || { mkdir -p "$W/.mnt_probe" && mount -t tmpfs -o size=1k tmpfs "$W/.mnt_probe" 2>/dev/null; }; then
  umount "$W/.mnt_probe"
  full='mkdir full && mount -t tmpfs -o size=400k tmpfs full && cp r_fwd.json full/r.json && (dd if=/dev/zero of=full/pad bs=1k count=400 2>/dev/null; true)'
  case_ full_disk_o   refuse full/r.json "$full" '$DCM estimate -q fwd.json -o full/r.json'
  case_ full_disk_mat refuse full/r.json "$full" '$DCM estimate -q fwd.json -o full/r.json --mat full/x.mat'
  case_ full_disk_mat_only refuse r.json "$full"' && cp r_fwd.json r.json' '$DCM estimate -q fwd.json -o r.json --mat full/x.mat'
  case_ full_disk_report refuse full/rep.html "$full" '$DCM report r_fwd.json -o full/rep.html --png full/figs'
  case_ full_disk_batch refuse full/out/summary.tsv "$full" '$DCM batch -q grp/manifest.tsv -o full/out'
  case_ full_disk_sim refuse full/sim.tsv "$full" '$DCM simulate fwd.json --params truth.json -o full/sim.tsv'
fi

EXTRA='python3 -c "import json; json.load(open(\"gout/sub-01/fwd.json\"))"'
case_ batch_resume_truncated clean gout/sub-01/fwd.json 'head -c 5000 gout/sub-01/fwd.json > t && mv t gout/sub-01/fwd.json' '$DCM batch -q grp/manifest.tsv -o gout -j 2'
EXTRA=
case_ avg_batch_missing_model clean - 'rm gout/sub-02/bwd.json' '$DCM average --batch gout --json'
case_ peb_one_subject refuse - 'printf "subject\tintercept\nsub-01\t1\n" > design.tsv' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_subject_absent refuse - 'printf "subject\tintercept\nsub-01\t1\nsub-09\t1\n" > design.tsv' '$DCM peb gout --model fwd --design design.tsv --params "A:*" --json'
case_ peb_params_none refuse - '' '$DCM peb gout --model fwd --design design.tsv --params "D:*" --json'
case_ compare_one   refuse - '' '$DCM compare r_fwd.json'
case_ check_truncated refuse - 'head -c 3000 r_fwd.json > t && mv t r_fwd.json' '$DCM check r_fwd.json'
case_ review_warned clean - '' '$DCM review r_fwd_300.json'
case_ reduce_all_off clean - '' '$DCM reduce r_fwd.json --off "A:*" --off "B:*" --off "C:*" --json'

# --- signals: SIGINT/SIGTERM mid-run, the earlier output survives -----------
sigcase() {
  local id=$1 sig=$2 delay=$3 cmd=$4 check=$5
  [ -n "$FILTER" ] && [[ $id != *$FILTER* ]] && return
  local d=$W/s_$id; rm -rf "$d"; cp -a "$B" "$d"
  ( cd "$d" || exit; echo '{"old": true}' > r.json; eval "exec $cmd" > "$W/s_$id.stdout" 2> "$W/s_$id.stderr" & p=$!
    sleep $delay; kill -$sig $p 2>/dev/null; wait $p; echo $? > "$W/s_$id.rc" )
  local rc; rc=$(cat "$W/s_$id.rc"); local why=()
  grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$W/s_$id.stderr" && why+=("sanitizer report")
  [ -n "$(find "$d" -name '*.tmp.*' | head -1)" ] && why+=("temp file left")
  local x; x=$(cd "$d" && eval "$check" 2>&1) || why+=("$x")
  if [ ${#why[@]} -eq 0 ]; then pass=$((pass+1)); printf 'PASS %-28s rc=%s\n' "$id" "$rc"
  else fail=$((fail+1)); failed+=("$id"); printf 'FAIL %-28s rc=%s [%s]\n' "$id" "$rc" "$(IFS=';'; echo "${why[*]}")"; fi
}
okjson='python3 -c "import json;r=json.load(open(\"r.json\"));assert r.get(\"old\") or \"free_energy\" in r, \"r.json neither old nor whole\""'
for dl in 0.05 0.2 0.4; do
  sigcase est_int_$dl INT $dl '$DCM estimate -q fwd.json -o r.json --integrator ode' "$okjson"
  sigcase est_term_$dl TERM $dl '$DCM estimate -q fwd.json -o r.json --integrator ode' "$okjson"
done
sigcase report_int_0.3 INT 0.3 '$DCM report r_fwd.json r_bwd.json -o r.json' "$okjson"
sigcase extract_term_0.1 TERM 0.1 '$DCM extract bold.nii --mask mask.nii --name R -o r' 'test ! -e r.tsv -o -s r.tsv'
bcheck='for f in $(find bout -name "*.json"); do python3 -c "import json,sys;json.load(open(sys.argv[1]))" $f || { echo "broken $f"; exit 1; }; done; $DCM batch -q grp/manifest.tsv -o bout -j 2 >/dev/null 2>&1 || { echo "rerun failed"; exit 1; }; test $(find bout -name "*.json" | wc -l) -ge 6 || { echo "rerun incomplete"; exit 1; }'
for dl in 0.3 1.0; do
  sigcase batch_int_$dl INT $dl '$DCM batch -q grp/manifest.tsv -o bout -j 2' "$bcheck"
  sigcase batch_term_$dl TERM $dl '$DCM batch -q grp/manifest.tsv -o bout -j 2' "$bcheck"
done

for m in $(grep -o " $W/[^ ]*" /proc/mounts); do umount "$m" 2>/dev/null; done
echo "== $pass passed, $fail failed${failed:+: ${failed[*]}}"
echo "   case folders and stderr under $W"
[ $fail -eq 0 ]
