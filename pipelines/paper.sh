#!/usr/bin/env bash
# The paper's experiments at full scale, for a networked cluster:
#   fetch 100 AMBCA volumes (25 um auto-fluorescence) -> every experiment (mbsr sweep: prep, train,
#   apply, evaluate) -> reports (Table 1, figures) in results/paper/<experiment>/README.md.
#
# usage: pipelines/paper.sh [--dry-run] [--slurm | --mpirun N] [--data DIR] [--results DIR]
#                           [--experiments "table1 networks ..."] [--threads T]
#   --dry-run       print the plan, the download list (API URLs) and the compute estimate
#                   (measured by `mbsr train --dry-run` on this machine); runs nothing
#   --slurm         submit every experiment as a Slurm array (slurm/submit, one task per cell,
#                   report job with an afterok dependency); SBATCH_* variables pass options
#   --mpirun N      run each sweep under `mpirun -n N` here (default: 1 process)
#   --data DIR      where the AMBCA volumes go (default data/ambca)
#   --results DIR   results root (default results)
#   --experiments L experiments to run (default: table1 networks resolution transfer human)
# Needs internet for the fetch (api.brain-map.org, download.alleninstitute.org); everything
# after that runs offline. The human experiment needs HCP MPRAGE volumes in data/hcp (not
# fetched: HCP data require an accepted data-use agreement) and the transfer experiment the
# user's MRI in data/mri (see experiments/transfer.yaml).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dry=0 mode=local np=1 data=data/ambca results=results threads=$(nproc)
exps="table1 networks resolution transfer human"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --slurm) mode=slurm; shift ;;
    --mpirun) mode=mpirun; np=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --experiments) exps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "paper.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=$threads
bash scripts/deps.sh all >&2
bdir=$(bash scripts/build.sh 2>/dev/null | tail -n 1)
mbsr="$bdir/bin/mbsr"
launch=("$mbsr")
if [ "$mode" = mpirun ]; then launch=(mpirun -n "$np" --bind-to none "$mbsr"); fi

api=http://api.brain-map.org
if [ "$dry" = 1 ]; then
  echo "== plan (pipelines/paper.sh --dry-run: nothing is run or downloaded) =="
  echo "1. fetch: mbsr fetch --out $data --n 100 --seed 1 --select wildtype --templates 25"
  echo "   -> $data/af25/<id>_af25.nii.gz (red = auto-fluorescence channel, 25 um, CCFv3 space)"
  echo "2. per experiment (scale 'paper'; the sweep preps the patches it needs, then trains, applies, evaluates):"
  total_cells=0
  for e in $exps; do
    n=$("$mbsr" sweep "experiments/$e.yaml" --scale paper --list --results "$results" | sed -n 's/^cells: *\([0-9]*\).*/\1/p')
    total_cells=$((total_cells + n))
    case $mode in
      slurm) echo "   $e: slurm/submit experiments/$e.yaml --scale paper   ($n array tasks + 1 report job)" ;;
      *) echo "   $e: ${launch[*]} sweep experiments/$e.yaml --scale paper --data-dir $data/af25 && $mbsr report experiments/$e.yaml --scale paper   ($n cells)" ;;
    esac
    "$mbsr" sweep "experiments/$e.yaml" --scale paper --list --results "$results" | tail -n +2 | sed 's/^/        cell /'
  done
  echo "   $total_cells cells in all"
  echo
  echo "== download list =="
  echo "# experiment list (mbsr fetch --select wildtype, the default; seeded selection of 100 ids at run time):"
  echo "$api/api/v2/data/query.json?q=service::mouse_connectivity_injection_structure[injection_structures\$eqgrey][primary_structure_only\$eqtrue][transgenic_lines\$eq0]"
  echo "# (mbsr fetch --select any asks instead:)"
  echo "$api/api/v2/data/query.json?q=model::SectionDataSet,rma::criteria,[failed\$eqfalse],products[id\$in5,31],rma::options[num_rows\$eq'all'][count\$eqfalse]"
  echo "# per selected experiment <ID> (x100): the 25 um volumes' well-known file, then its ZIP"
  echo "$api/api/v2/data/query.json?q=model::WellKnownFile,rma::criteria,well_known_file_type[name\$eq'ImagesResampledTo25MicronARA'][attachable_id\$eq<ID>]"
  echo "$api<download_link of the answer>   (e.g. /api/v2/well_known_file_download/269830017 for experiment 156198187)"
  echo "# reference template:"
  echo "http://download.alleninstitute.org/informatics-archive/current-release/mouse_ccf/average_template/average_template_25.nrrd"
  echo
  echo "== compute estimate (measured here: mbsr train --dry-run, paper network, 21^3 patches) =="
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # a small 21^3 patch file from 3 SYNTHETIC phantom volumes, only to time the paper's network
  "$mbsr" phantom --out "$tmp/ph" --n 3 --vox 0.05 --dims 112,136,88 --quiet
  "$mbsr" prep --inputs "$tmp/ph" --out "$tmp/p.h5" --res 50:100 --patch 21 --patches-per-volume 16 >/dev/null 2>&1 ||
    "$mbsr" prep --help | head -5
  declare -A per_epoch
  for arch in resnet ccnn gan; do
    echo "-- $arch (64 channels, 10 blocks), 20,000 training patches, global batch 8, 1 rank x $threads threads:"
    "$mbsr" train --patches "$tmp/p.h5" --pair 100-50 --out "$tmp/t" --arch $arch --channels 64 --blocks 10 --dry-run \
      --plan-patches 20000 --threads "$threads" >"$tmp/$arch.txt" 2>&1 || true
    grep -E 'FLOPs|measured|time' "$tmp/$arch.txt" | sed 's/^/   /'
    # seconds per global step -> seconds per epoch of 20,000 patches (2,500 steps of 8)
    sps=$(sed -n 's/.*measured *\([0-9.]*\) s per global step.*/\1/p' "$tmp/$arch.txt" | head -n 1)
    per_epoch[$arch]=$(awk -v s="${sps:-0}" 'BEGIN { printf "%.0f", s * 2500 }')
  done
  # every cell: its network's epoch time scaled by its training samples (human cells count as resnet)
  total=0
  for e in $exps; do
    while read -r idx name; do
      arch=${name#*_}; arch=${arch%%_*}
      n=$(echo "$name" | sed -n 's/.*_n\([0-9]*\).*/\1/p')
      t=$(awk -v a="${per_epoch[$arch]:-0}" -v n="${n:-20000}" 'BEGIN { printf "%.0f", a * n / 20000 }')
      total=$((total + t))
    done < <("$mbsr" sweep "experiments/$e.yaml" --scale paper --list --results "$results" | tail -n +2)
  done
  echo "   every cell, one epoch each: $(awk -v t="$total" 'BEGIN { printf "%.1f", t / 3600 }') hours (1 rank x $threads threads here);"
  echo "   at most 1000 epochs each (early stopping, patience 100): <= $(awk -v t="$total" 'BEGIN { printf "%.0f", t * 1000 / 86400 }') days on this machine."
  echo "   Measured under the machine's current load; divide by the number of ranks for data-parallel"
  echo "   training (mpirun -n P, or Slurm nodes x ranks per node)."
  exit 0
fi

echo "[paper] fetch 100 AMBCA volumes -> $data"
"${launch[@]}" fetch --out "$data" --n 100 --seed 1 --select wildtype --templates 25
for e in $exps; do
  if [ "$mode" = slurm ]; then
    echo "[paper] $e: submitting (slurm/submit)"
    bash slurm/submit "experiments/$e.yaml" --scale paper --results "$results" --data "$data/af25"
  else
    echo "[paper] $e: sweep"
    "${launch[@]}" sweep "experiments/$e.yaml" --scale paper --results "$results" --data-dir "$data/af25"
    "$mbsr" report "experiments/$e.yaml" --scale paper --results "$results"
    echo "[paper] $e: $results/paper/$e/README.md"
  fi
done
