#!/usr/bin/python3
"""In-vivo evaluation, step 1 (experiments/invivo/run.sh): the references and the folds.

For every scan with a brain mask: the acquired volume and its mask cut to an even number of slices
(2 floor(n/2): the slices the x2 slice degradation covers; mbsr downsample crops the same trailing
slice), written unchanged otherwise (same affine). Mice without any mask (23) take no part.
Folds: the mice with a mask, sorted, alternately in fold 0 and 1 (2-fold cross-validation by mouse:
both scans of a mouse always in the same fold).
usage: prepare.py DATA_DIR OUT_DIR
"""
import os
import re
import sys

import nibabel as nib
import numpy as np

data, out = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(out, "ref"), exist_ok=True)
scans = sorted(f[:-len("_epi.nii.gz")] for f in os.listdir(data) if f.endswith("_epi.nii.gz"))
masked = [s for s in scans if os.path.exists(os.path.join(data, s + "_mask.nii.gz"))]
mice = sorted({re.match(r"(mouse\d+)_", s).group(1) for s in masked})
fold = {m: i % 2 for i, m in enumerate(mice)}
with open(os.path.join(out, "folds.tsv"), "w") as f:
    f.write("mouse\tfold\n")
    for m in mice:
        f.write(f"{m}\t{fold[m]}\n")
with open(os.path.join(out, "scans.tsv"), "w") as f:
    f.write("scan\tmouse\tfold\tmasked\n")
    for s in scans:
        m = s.split("_")[0]
        if m in fold:
            f.write(f"{s}\t{m}\t{fold[m]}\t{int(s in masked)}\n")
for s in masked:
    for kind in ("epi", "mask"):
        img = nib.load(os.path.join(data, f"{s}_{kind}.nii.gz"))
        a = np.asanyarray(img.dataobj)
        n = 2 * (a.shape[2] // 2)
        o = nib.Nifti1Image(a[:, :, :n].astype(np.float32), img.affine, img.header)
        o.set_data_dtype(np.float32)
        nib.save(o, os.path.join(out, "ref", f"{s}_{'ref' if kind == 'epi' else 'mask'}.nii.gz"))
print(f"{len(mice)} mice ({sum(1 for m in mice if fold[m] == 0)} in fold 0), {len(masked)} masked scans, "
      f"{sum(1 for s in scans if s.split('_')[0] in fold)} scans of those mice")
