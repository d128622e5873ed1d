#!/usr/bin/env bash
# The real-data study: Table 1 on the real auto-fluorescence brains in ../shared/data, cross-validated
# across brains (leave one brain out; the 100-50 pair, which only the STPT brain has, across its two
# halves), the AF -> MRI transfer under the same SR contract, and the shipped models.
#
# usage: pipelines/real.sh [--data DIR] [--work DIR] [--threads N] [--no-models] [--only table1|transfer]
#   --data DIR     data root holding af/ and mri/ (default ../shared/data)
#   --work DIR     working files: patches, checkpoints, evaluation volumes (default work/real; not committed)
#   --threads N    OpenMP threads (default: all cores)
#   --no-models    do not (re)write models/ (the shipped inference-only checkpoints + manifest.json)
#   --only X       run one of the two studies
# Writes results/real/table1/ and results/real/transfer/ (README.md with the table, figures, the exact
# command, commit, CPU and duration; tables and per-cell metrics; what is committed), and models/.
# A killed run, started again, resumes: finished cells and trained networks are reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=../shared/data work=work/real threads=$(nproc) models=1 only=""
cmdline="bash pipelines/real.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --no-models) models=0; shift ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "real.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -d "$data/af" ] || { echo "real.sh: $data/af not found (give --data DIR, the folder with af/ and mri/)" >&2; exit 1; }
t0=$(date +%s)
say() { printf '[real %5ds] %s\n' $(( $(date +%s) - t0 )) "$*"; }
bash scripts/deps.sh build
bdir=$(bash scripts/build.sh | tail -n 1)
mbsr="$bdir/bin/mbsr"
export OMP_NUM_THREADS=$threads OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
flags=$(grep -o -w 'avx512f\|avx512_bf16\|amx_tile\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)

# copy what people look at (not patches, checkpoints or volumes) into results/real/<experiment>
publish() {
  local src=$1 dst=results/real/$2
  rm -rf "$dst.tmp" && mkdir -p "$dst.tmp/cells"
  cp "$src"/README.md "$src"/table.md "$src"/table.csv "$src"/stats.csv "$src"/params.yaml "$dst.tmp/"
  cp "$src"/*.png "$src"/*.pdf "$src"/*.svg "$dst.tmp/" 2>/dev/null || true
  [ -f "$src/table.tex" ] && cp "$src/table.tex" "$dst.tmp/"
  [ -f "$src/correlation.csv" ] && cp "$src/correlation.csv" "$dst.tmp/"
  for c in "$src"/cells/*/; do
    n=$(basename "$c")
    mkdir -p "$dst.tmp/cells/$n"
    cp "$c"metrics.csv "$dst.tmp/cells/$n/"
    sed "s#$work/##g" "$c"done > "$dst.tmp/cells/$n/done"
  done
  rm -rf "$dst" && mv "$dst.tmp" "$dst"
}

run_study() { # experiment-file experiment-name
  local e=$1 name=$2 ts
  ts=$(date +%s)
  say "$name: mbsr sweep $e --scale real --data-dir $data --results $work"
  "$mbsr" sweep "$e" --scale real --data-dir "$data" --results "$work"
  "$mbsr" report "$e" --scale real --results "$work" --quiet >/dev/null
  publish "$work/real/$name" "$name"
  cat >> "results/real/$name/README.md" <<EOF

## This run

- Command: \`$cmdline\` (it runs \`mbsr sweep $e --scale real --data-dir $data --results $work\`, then \`mbsr report\`).
- Commit: $commit$dirty; mbsr $("$mbsr" --help 2>&1 | sed -n 's/^mbsr \([^:]*\):.*/\1/p' | head -n 1).
- CPU: $cpu, $(nproc) cores ($flags), $threads OpenMP threads; finished $(date -u '+%Y-%m-%d %H:%M UTC').
- Duration: $(( $(date +%s) - ts )) s for this study (cells reused from an earlier run count as 0).
EOF
  say "$name: results/real/$name/README.md"
}

[ "$only" = "" ] || [ "$only" = table1 ] && run_study experiments/table1.yaml table1
[ "$only" = "" ] || [ "$only" = transfer ] && run_study experiments/transfer.yaml transfer

if [ "$models" = 1 ] && { [ "$only" = "" ] || [ "$only" = table1 ]; }; then
  # the shipped models: each pair's final network (every brain of that grid) of the largest training set
  # (the same weights give the same bytes: a re-run leaves an unchanged model's sha256 as it is)
  res=$work/real/table1
  ch=$(sed -n 's/^ *channels: \([0-9]*\).*/\1/p' "$res/params.yaml" | head -n 1)
  bl=$(sed -n 's/^ *blocks: \([0-9]*\).*/\1/p' "$res/params.yaml" | head -n 1)
  steps=$(awk '/^ *epochs:/ {e=$2} /^ *steps_per_epoch:/ {s=$2} END {print e*s}' "$res/params.yaml")
  for pair in 400-200 200-100 100-50; do
    cell=$(awk -F, -v p="$pair" 'NR > 1 && $3 == p { print $5, $1 }' "$res/table.csv" | sort -n | tail -n 1 | cut -d' ' -f2)
    [ -n "$cell" ] || continue
    ck=$(sed -n 's/^final //p' "$res/cells/$cell/done")
    n=$(awk -F, -v c="$cell" 'NR > 1 && $1 == c { print $5 }' "$res/table.csv")
    brains=$(awk -F, -v c="$cell" 'NR > 1 && $1 == c { print $9 }' "$res/table.csv")
    # each held-out unit's RMSE improvement over cubic (metrics.csv: cubic and resnet rows per fold)
    units=$(awk -F, 'NR > 1 && $5 == "cubic" { c[$2] = $6 } NR > 1 && $5 == "resnet" { r[$2] = $6; o[++k] = $2 }
                     END { for (i = 1; i <= k; i++) printf "%s%s %+.1f %%", (i > 1 ? ", " : ""), o[i], 100 * (c[o[i]] - r[o[i]]) / c[o[i]] }' \
            "$res/cells/$cell/metrics.csv")
    within=""; [ "$brains" = 1 ] && within=" (within one brain: its two halves)"
    "$mbsr" models --add "af-$pair" --from "$ck" --dir models \
      --description "ResNet ($ch channels x $bl blocks, global residual) for auto-fluorescence-like contrast, ${pair%-*} -> ${pair#*-} um; trained on every real AF brain of ../shared/data on that grid ($brains brain(s)), $n patches, $steps steps" \
      --cv "leave-one-out$within, same recipe: RMSE vs Keys cubic on the held-out unit: $units (results/real/table1, cell $cell); descriptive: $brains brain(s) allow no test"
  done
  "$mbsr" models
fi
say "done in $(( $(date +%s) - t0 )) s"
