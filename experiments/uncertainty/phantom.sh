#!/bin/bash
# Calibration of the ensemble uncertainty on the synthetic phantom (issue 13): a small ResNet trained for
# 150 Adam steps (one epoch, about 40 s on 2 cores) on 5 phantom brains (200 um -> 100 um, flip and
# permutation augmentation), applied with `--ensemble 8` (all axis flips) to a held-out 6th brain
# block-averaged to 200 um; `mbsr metrics --sd` then reports the correlation of the sd with |SR - HR|
# over the brain mask and the error by sd decile.
# usage: bash experiments/uncertainty/phantom.sh [MBSR_BINARY] [WORKDIR]     (2 cores: about 2 minutes)
set -euo pipefail
B=${1:-build/bin/mbsr}
D=${2:-/tmp/mbsr-uncertainty}
T=${THREADS:-2}
mkdir -p "$D"
"$B" phantom --out "$D/ph" --n 6 --vox 0.1 --dims 84,100,64 --seed 1 --quiet --threads "$T"
ls "$D/ph" | grep '_af100um.nii.gz$' | grep -v phantom-05 > "$D/ph/train.txt"
"$B" prep --inputs "$D/ph/train.txt" --out "$D/p.h5" --pair 200-100 --patch 17 --patches-per-volume 300 --split 80,20,0 \
  --seed 1 --quiet --threads "$T"
"$B" train --patches "$D/p.h5" --pair 200-100 --out "$D/run" --arch resnet --channels 8 --blocks 2 --global-residual \
  --augment --epochs 1000 --patience 0 --max-steps "${STEPS:-150}" --seed 1 --quiet --threads "$T"
"$B" downsample "$D/ph/phantom-05_af100um.nii.gz" "$D/lr200.nii.gz" --factor 2 --quiet
"$B" apply --model "$D/run/best.h5" "$D/lr200.nii.gz" "$D/sr.nii.gz" --ensemble 8 --quiet --threads "$T"
"$B" upsample "$D/lr200.nii.gz" "$D/cubic.nii.gz" --factor 2 --interp keys --quiet
HR="$D/ph/phantom-05_af100um.nii.gz" MASK="$D/ph/phantom-05_mask100um.nii.gz"
"$B" metrics "$D/sr.nii.gz" "$HR" --mask "$MASK" --sd "$D/sr_sd.nii.gz" --out "$D/metrics_sr.json" --quiet > /dev/null
"$B" metrics "$D/cubic.nii.gz" "$HR" --mask "$MASK" --out "$D/metrics_cubic.json" --quiet > /dev/null
/usr/bin/python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
m, c = json.load(open(d + "/metrics_sr.json")), json.load(open(d + "/metrics_cubic.json"))
print(f"held-out phantom brain, 200 -> 100 um, {m['n']} brain voxels")
print(f"RMSE: SR (mean of 8 flips) {m['rmse']:.4g}, Keys cubic {c['rmse']:.4g}")
print(f"Pearson r(sd, |SR - HR|) over the brain: {m['sd_err_corr']:.3f}")
print("sd decile  sd range            mean sd   mean |SR-HR|")
for i, b in enumerate(m["sd_deciles"]):
    print(f"{i + 1:9d}  {b['sd_lo']:8.4g}..{b['sd_hi']:<8.4g}  {b['sd_mean']:8.4g}  {b['err_mean']:8.4g}")
PY
