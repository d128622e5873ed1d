#!/bin/bash
# In-vivo evaluation of self-supervised through-plane SR (issue 13, item 3); protocol in
# docs/user/invivo.md. Unit = one mouse (both scans together); 2-fold cross-validation over mice.
#   bash experiments/invivo/run.sh MBSR OUT [STEPS]
# MBSR: the mbsr binary; OUT: a work directory (volumes, models, metrics); STEPS: training steps per
# fold (default 1500). Writes OUT/results/ (README table inputs, CSVs, stats JSON, figures); copy it to
# results/invivo/. Data: $MBSR_INVIVO or ../shared/data/invivo_epi beside the repository.
set -euo pipefail
MBSR=$(readlink -f "$1")
OUT=$(mkdir -p "$2" && cd "$2" && pwd) # absolute: the training folders hold symlinks
STEPS=${3:-1500}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${MBSR_INVIVO:-$HERE/../../../shared/data/invivo_epi}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
Q="--quiet --threads $THREADS"
mkdir -p "$OUT"
t0=$(date +%s)

# 1. references (acquired volumes and masks, even slice count) and the folds
$PY "$HERE/prepare.py" "$DATA" "$OUT"

# 2. the test input: every scan's slice axis degraded x2 with the slice profile (boxcar): 10 -> 20 "mm"
mkdir -p "$OUT/deg"
tail -n +2 "$OUT/scans.tsv" | while IFS=$'\t' read -r scan mouse fold masked; do
  [ -s "$OUT/deg/$scan.nii.gz" ] || $MBSR downsample "$DATA/${scan}_epi.nii.gz" "$OUT/deg/$scan.nii.gz" --factor 1,1,2 --profile boxcar $Q
done

# 3. per fold: self-supervised pairs from the OTHER fold's degraded scans (their own in-plane axes
#    degraded to the 20 "mm" thickness, factor 8), training, then the fold's scans restored
for f in 0 1; do
  d="$OUT/fold$f"
  mkdir -p "$d/train"
  tail -n +2 "$OUT/scans.tsv" | while IFS=$'\t' read -r scan mouse fold masked; do
    [ "$fold" != "$f" ] && ln -sf "$OUT/deg/$scan.nii.gz" "$d/train/$scan.nii.gz"
    true
  done
  [ -s "$d/ss.h5" ] || $MBSR prep --self-supervised --inputs "$d/train" --out "$d/ss.h5" --patch 15 --patches-per-volume 64 \
    --split 90,10,0 --seed 1 $Q
  [ -s "$d/run/last.h5" ] || $MBSR train --patches "$d/ss.h5" --pair 2500x2500x20000-2500 --out "$d/run" --arch resnet --channels 16 \
    --blocks 3 --global-residual --batch 8 --lr 1e-3 --max-steps "$STEPS" --ckpt-every 0 --patience 0 --seed 1 $Q
done
ts=$(date +%s)

# 4. every masked scan: Keys, B-spline (x2 onto the acquired grid) and the network (x8 onto the
#    2.5 "mm" grid, then block-averaged x4: the boxcar acquisition model, back on the acquired grid; the
#    network's best checkpoint on its training mice's validation patches); control keys8 = the
#    network's own starting point (Keys x8, the same block average x4)
mkdir -p "$OUT/sr/keys" "$OUT/sr/bspline" "$OUT/sr/ss" "$OUT/sr/ss_thin" "$OUT/sr/keys8" "$OUT/sr/keys8_thin" "$OUT/metrics"
tail -n +2 "$OUT/scans.tsv" | while IFS=$'\t' read -r scan mouse fold masked; do
  [ "$masked" = 1 ] || continue
  in="$OUT/deg/$scan.nii.gz"
  $MBSR upsample "$in" "$OUT/sr/keys/$scan.nii.gz" --factor 1,1,2 --interp keys $Q
  $MBSR upsample "$in" "$OUT/sr/bspline/$scan.nii.gz" --factor 1,1,2 --interp bspline $Q
  $MBSR apply --model "$OUT/fold$fold/run/best.h5" "$in" "$OUT/sr/ss_thin/$scan.nii.gz" $Q
  $MBSR downsample "$OUT/sr/ss_thin/$scan.nii.gz" "$OUT/sr/ss/$scan.nii.gz" --factor 1,1,4 --profile boxcar $Q
  $MBSR upsample "$in" "$OUT/sr/keys8_thin/$scan.nii.gz" --factor 1,1,8 --interp keys $Q
  $MBSR downsample "$OUT/sr/keys8_thin/$scan.nii.gz" "$OUT/sr/keys8/$scan.nii.gz" --factor 1,1,4 --profile boxcar $Q
  for m in keys bspline keys8 ss; do
    $MBSR metrics "$OUT/sr/$m/$scan.nii.gz" "$OUT/ref/${scan}_ref.nii.gz" --mask "$OUT/ref/${scan}_mask.nii.gz" --quiet \
      > "$OUT/metrics/${scan}_$m.json"
  done
done
te=$(date +%s)

# 4b. uncertainty (issue 13, item 4): the network applied with --ensemble 8 (the 8 axis flips) on the
#     2.5 "mm" grid, its mean and sd block-averaged x4 onto the acquired grid like the single pass (the
#     block mean of the sd bounds the sd of the block mean from above), then the sd against |error|
mkdir -p "$OUT/sr/ens_thin" "$OUT/sr/ens" "$OUT/sr/ens_sd"
tail -n +2 "$OUT/scans.tsv" | while IFS=$'\t' read -r scan mouse fold masked; do
  [ "$masked" = 1 ] || continue
  $MBSR apply --model "$OUT/fold$fold/run/best.h5" "$OUT/deg/$scan.nii.gz" "$OUT/sr/ens_thin/$scan.nii.gz" --ensemble 8 $Q
  $MBSR downsample "$OUT/sr/ens_thin/$scan.nii.gz" "$OUT/sr/ens/$scan.nii.gz" --factor 1,1,4 --profile boxcar $Q
  $MBSR downsample "$OUT/sr/ens_thin/${scan}_sd.nii.gz" "$OUT/sr/ens_sd/$scan.nii.gz" --factor 1,1,4 --profile boxcar $Q
  $MBSR metrics "$OUT/sr/ens/$scan.nii.gz" "$OUT/ref/${scan}_ref.nii.gz" --mask "$OUT/ref/${scan}_mask.nii.gz" \
    --sd "$OUT/sr/ens_sd/$scan.nii.gz" --quiet > "$OUT/metrics/${scan}_ens.json"
done
tu=$(date +%s)

# 5. per mouse (mean of its scans), paired t-tests, Welch ANOVA, effect sizes, figures
R="$OUT/results"
mkdir -p "$R"
$PY "$HERE/aggregate.py" "$OUT" "$R"
for metric in rmse psnr ssim; do
  for pair in "ss keys" "ss bspline" "ss keys8" "bspline keys"; do
    set -- $pair
    $MBSR stats ttest "$R/per_mouse.csv" --a "${1}_$metric" --b "${2}_$metric" --quiet > "$R/ttest_${metric}_${1}_vs_${2}.json"
  done
  $MBSR stats welch "$R/per_mouse_long.csv" --value "$metric" --group method --quiet > "$R/welch_$metric.json"
done
$PY "$HERE/aggregate.py" "$OUT" "$R" --tables
$PY "$HERE/figures.py" "$OUT" "$R"
$PY "$HERE/uncertainty.py" "$OUT" "$R"
cat > "$R/run.json" <<J
{"steps_per_fold": $STEPS, "threads": $THREADS, "seconds_total": $(( $(date +%s) - t0 )), "seconds_prep_train": $(( ts - t0 )),
 "seconds_apply_metrics": $(( te - ts )), "seconds_uncertainty": $(( tu - te )), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')",
 "nproc": $(nproc), "mbsr": "$($MBSR --version 2>/dev/null | head -1)", "commit": "$(git -C "$HERE" rev-parse HEAD)"}
J
echo "in-vivo evaluation: $R ($(( $(date +%s) - t0 )) s)"
