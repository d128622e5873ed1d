#!/usr/bin/env bash
# A thick-slice volume made from an isotropic brain, restored by the one-command self-supervised pipeline
# (pipelines/thickslice.sh) and compared with the isotropic original (issue 13, "How it is checked").
# The Allen CCFv3 100 um average template is block-averaged x4 along array axis k (100 x 100 x 400 um,
# boxcar); pipelines/thickslice.sh trains on that thick volume alone (no reference) and restores k to
# 100 um; Keys cubic and cubic B-spline x4 along k are the baselines. RMSE against the original inside
# the Allen annotation (> 0), over the slices the thick volume covers (4 x 28 = 112 of 114).
# usage: experiments/thickslice/allen.sh [MBSR] [WORK]      (2 cores: about 1 minute)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
B=$(readlink -f "${1:-$here/build/bin/mbsr}")
W=${2:-/tmp/mbsr-thickslice}
D=${MBSR_SHARED:-$here/../shared}/data/af
mkdir -p "$W"
"$B" convert "$D/allen_ccf_average_template_100um.nrrd" "$W/hr.nii.gz" --quiet
"$B" convert "$D/allen_ccf_annotation_100um.nrrd" "$W/ann.nii.gz" --quiet
"$B" downsample "$W/hr.nii.gz" "$W/thick.nii.gz" --factor 1,1,4 --profile boxcar --quiet
t0=$(date +%s)
bash "$here/pipelines/thickslice.sh" "$W/thick.nii.gz" "$W/sr.nii.gz" --mbsr "$B"
t1=$(date +%s)
"$B" apply --model "$W/sr_work/run/best.h5" "$W/thick.nii.gz" "$W/sr1.nii.gz" --quiet
"$B" upsample "$W/thick.nii.gz" "$W/keys.nii.gz" --factor 1,1,4 --interp keys --quiet
"$B" upsample "$W/thick.nii.gz" "$W/bspline.nii.gz" --factor 1,1,4 --interp bspline --quiet
/usr/bin/python3 - "$W" $(( t1 - t0 )) <<'PY'
import sys
import nibabel as nib
import numpy as np
w, secs = sys.argv[1], sys.argv[2]
hr = nib.load(f"{w}/hr.nii.gz")
H = np.asarray(hr.dataobj, dtype=np.float64)
ann = np.asarray(nib.load(f"{w}/ann.nii.gz").dataobj) > 0
lo, hi = np.percentile(H[ann], [0.1, 99.9])
names = {"keys": "Keys cubic x4", "bspline": "cubic B-spline x4", "sr1": "self-supervised ResNet, single pass",
         "sr": "self-supervised ResNet, --ensemble 8 (the pipeline's default)"}
rmse = {}
for m in names:
    im = nib.load(f"{w}/{m}.nii.gz")
    A = np.asarray(im.dataobj, dtype=np.float64)
    n = A.shape[2]
    assert A.shape[:2] == H.shape[:2] and n <= H.shape[2] and np.allclose(im.affine, hr.affine, atol=1e-6), m
    M = ann[:, :, :n]
    rmse[m] = float(np.sqrt(np.mean((A[:, :, :n] - H[:, :, :n])[M] ** 2)))
print(f"Allen CCFv3 100 um template, k block-averaged x4 (100x100x400 um), restored to 100 um; {int(ann[:, :, :n].sum())} "
      f"voxels in the annotation over {n} slices; pipeline {secs} s")
print("| method | RMSE (template units) | RMSE / (p99.9 - p0.1) | vs Keys cubic |")
print("|---|---:|---:|---:|")
for m, name in names.items():
    print(f"| {name} | {rmse[m]:.3f} | {rmse[m] / (hi - lo):.4f} | {100 * (rmse['keys'] - rmse[m]) / rmse['keys']:+.1f} % |")
PY
