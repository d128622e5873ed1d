#!/usr/bin/env bash
# Self-supervised through-plane SR of ONE thick-slice volume, end to end (issue 13): no reference data.
#
# usage: pipelines/thickslice.sh IN.nii.gz OUT.nii.gz [--work DIR] [--steps N] [--ensemble K]
#                               [--slice-axis K] [--profile boxcar|gaussian] [--threads N] [--mbsr BIN]
#   IN          the acquired volume: fine in-plane, thick slices (slice thickness an integer multiple of the
#               in-plane voxel); NIfTI, NRRD, MHD or TIFF as mbsr reads them
#   OUT         the SR volume on IN's grid with the slice axis at the in-plane spacing, IN's intensity units;
#               beside it OUT's JSON sidecar and (with --ensemble) OUT_sd.nii.gz, the voxel-wise sd
#   --work DIR  patches and the trained network (default OUT without extension + "_work"; reused: a killed
#               run, started again, resumes)
#   --steps N   training steps (default 1500: a few minutes on 2 cores for the default network)
#   --ensemble K  axis reversals per in-plane order at apply (default 8; 1 = none). The in-vivo cohort
#               (results/invivo) showed the flip ensemble's mean ahead of Keys cubic where the single
#               pass was behind, and its sd ranking the error: it is on by default
#   --slice-axis, --profile   as mbsr prep --self-supervised (default: the largest voxel; boxcar)
# It runs: mbsr prep --self-supervised (pairs from IN's own in-plane axes, SMORE-style), mbsr train (ResNet
# 16 x 3, global residual), mbsr apply. Protocol and what it does and does not show: docs/user/invivo.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] && { [ "$1" = -h ] || [ "$1" = --help ]; } && { usage; exit 0; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
in=$1 out=$2; shift 2
work="" steps=1500 ens=8 axis="" profile=boxcar threads=$(nproc) mbsr=""
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --ensemble) ens=$2; shift 2 ;;
    --slice-axis) axis=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --mbsr) mbsr=$2; shift 2 ;;
    *) echo "thickslice.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -e "$in" ] || { echo "thickslice.sh: $in: no such file" >&2; exit 1; }
if [ -z "$mbsr" ]; then
  mbsr=$root/build/bin/mbsr
  [ -x "$mbsr" ] || mbsr=$(bash "$root/scripts/build.sh" | tail -n 1)/bin/mbsr
fi
[ -n "$work" ] || work=${out%.gz}; work=${work%.nii}_work
mkdir -p "$work/in"
work=$(cd "$work" && pwd)
ln -sf "$(readlink -f "$in")" "$work/in/$(basename "$in")"
q=(--threads "$threads")
t0=$(date +%s)
say() { printf '[thickslice %4ds] %s\n' $(( $(date +%s) - t0 )) "$*"; }

sa=(); [ -n "$axis" ] && sa=(--slice-axis "$axis")
if [ ! -s "$work/ss.h5" ]; then
  say "prep: self-supervised pairs from $(basename "$in")'s in-plane axes"
  "$mbsr" prep --self-supervised --inputs "$work/in" --out "$work/ss.h5" --patch 15 --patches-per-volume 4000 \
    --split 100,0,0 --seed 1 --profile "$profile" "${sa[@]}" "${q[@]}" --quiet
fi
pair=$(h5ls "$work/ss.h5/pairs" | awk '{print $1; exit}')
[ -n "$pair" ] || { echo "thickslice.sh: $work/ss.h5 has no pair" >&2; exit 1; }
say "train: pair $pair, $steps steps (resumes a killed run)"
"$mbsr" train --patches "$work/ss.h5" --pair "$pair" --out "$work/run" --arch resnet --channels 16 --blocks 3 \
  --global-residual --batch 8 --lr 1e-3 --max-steps "$steps" --patience 0 --seed 1 "${q[@]}" --quiet
say "apply: --ensemble $ens -> $out"
ea=(); [ "$ens" -gt 1 ] && ea=(--ensemble "$ens")
ck=$work/run/best.h5; [ -s "$ck" ] || ck=$work/run/last.h5 # best.h5 is written per epoch (no validation: the last)
"$mbsr" apply --model "$ck" "$in" "$out" "${ea[@]}" "${q[@]}" --quiet
say "done: $out"
