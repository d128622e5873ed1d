#!/usr/bin/env bash
# The whole mbsr chain at demo scale, offline, in minutes on 2 cores:
#   install missing Debian packages -> build -> SYNTHETIC phantom cohort -> prep -> train ->
#   apply/evaluate (mbsr sweep experiments/table1.yaml --scale demo) -> report (Table 1, figures).
# Ends with results/demo/table1/README.md (table + figures).
#
# usage: pipelines/demo.sh [--results DIR] [--threads N] [--experiment FILE]
#   (the real-data study, cross-validated across real brains: bash pipelines/real.sh)
#   --results DIR  results root (default: results)
#   --threads N    OpenMP threads (default: all cores)
#   --experiment F experiment file (default: experiments/table1.yaml)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
results=results threads=$(nproc) exp=experiments/table1.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    --data) echo "demo.sh: the real-data study is bash pipelines/real.sh (cross-validated across brains)" >&2; exit 2 ;;
    --results) results=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --experiment) exp=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
t0=$(date +%s)
say() { printf '[demo %4ds] %s\n' $(( $(date +%s) - t0 )) "$*"; }

say "1/5 dependencies (scripts/deps.sh build)"
bash scripts/deps.sh build
say "2/5 build (scripts/build.sh)"
mkdir -p "$results/demo"
if ! bdir=$(bash scripts/build.sh 2>"$results/demo/build.log" | tail -n 1) || [ -z "$bdir" ]; then
  cat "$results/demo/build.log" >&2; echo "demo.sh: build failed" >&2; exit 1
fi
say "   built $bdir/bin/mbsr (compiler messages: $results/demo/build.log)"
mbsr="$bdir/bin/mbsr"
export OMP_NUM_THREADS=$threads OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
name=$(sed -n 's/^experiment: *//p' "$exp" | head -n 1)
pdir=$(sed -n '/^  demo:/,$p' "$exp" | sed -n 's/.*dir: *\([^,}]*\).*/\1/p' | head -n 1)
dims=$(sed -n '/^  demo:/,$p' "$exp" | sed -n 's/.*dims: *\[\([0-9, ]*\)\].*/\1/p' | head -n 1 | tr -d ' ')
n=$(sed -n '/^  demo:/,$p' "$exp" | sed -n 's/.*phantom: {n: *\([0-9]*\).*/\1/p' | head -n 1)
if ls "$pdir"/phantom-*_af*.nii.gz >/dev/null 2>&1; then
  say "3/5 SYNTHETIC phantom cohort: reusing $pdir"
else
  say "3/5 SYNTHETIC phantom cohort: mbsr phantom --out $pdir --n ${n:-12} --vox 0.05 --dims ${dims:-112,136,88}"
  "$mbsr" phantom --out "$pdir" --n "${n:-12}" --seed 1 --vox 0.05 --dims "${dims:-112,136,88}"
fi
say "4/5 sweep (prep -> train -> apply -> evaluate): mbsr sweep $exp --scale demo --results $results"
"$mbsr" sweep "$exp" --scale demo --results "$results" --threads "$threads"
say "5/5 report: mbsr report $exp --scale demo --results $results"
"$mbsr" report "$exp" --scale demo --results "$results"
out="$results/demo/$name"
echo
sed -n '/^\*\*Table 1/,/^$/p;/^| Training/,/^$/p' "$out/table.md" | head -n 12
echo
say "done in $(( $(date +%s) - t0 )) s"
echo "Table 1 and the figures: $out/README.md"
echo "  table: $out/table.md, $out/table.csv; statistics: $out/stats.csv"
echo "  figures: $(cd "$out" && ls fig_*.png | tr '\n' ' ')"
