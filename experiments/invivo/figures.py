#!/usr/bin/python3
"""In-vivo evaluation, figures (experiments/invivo/run.sh), drawn by gnuplot (pngcairo):
  montage.png: one test scan in a plane ALONG the slice axis (array column i = 40: dorsal-ventral x
    anterior-posterior), each panel at its physical aspect ("mm" of the x10 header): the acquired volume
    (the reference), the degraded input (20 "mm" slices), the network's 2.5 "mm" output, the three
    restorations on the acquired grid, and their absolute errors against the reference (inside the mask).
  paired.png: per mouse, RMSE / PSNR / SSIM of Keys, B-spline, Keys x8 + block average x4 (the network's
    starting point) and the network, one line per mouse, the mean in black.
usage: figures.py OUT RESULTS [SCAN]
"""
import csv
import os
import subprocess
import sys

import nibabel as nib
import numpy as np

out, res = sys.argv[1], sys.argv[2]
scan = sys.argv[3] if len(sys.argv) > 3 else "mouse01_ses1"
tmp = os.path.join(res, ".fig")
os.makedirs(tmp, exist_ok=True)
I = 40


def plane(path):
    a = np.asanyarray(nib.load(path).dataobj).astype(np.float64)
    return a[I, :, :]  # (j, k)


ref = plane(f"{out}/ref/{scan}_ref.nii.gz")
mask = plane(f"{out}/ref/{scan}_mask.nii.gz") > 0.5
panels = [("acquired (reference), 10 mm slices", ref, 10.0, "img"),
          ("input: slices degraded x2 (20 mm)", plane(f"{out}/deg/{scan}.nii.gz")[:, :8], 20.0, "img"),
          ("network output, 2.5 mm slices", plane(f"{out}/sr/ss_thin/{scan}.nii.gz"), 2.5, "img")]
for m, name in (("keys", "Keys cubic"), ("bspline", "cubic B-spline"), ("ss", "network, block-averaged to 10 mm")):
    panels.append((name, plane(f"{out}/sr/{m}/{scan}.nii.gz"), 10.0, "img"))
for m, name in (("keys", "Keys"), ("bspline", "B-spline"), ("ss", "network")):
    panels.append((f"|{name} - reference| in the mask", np.where(mask, np.abs(plane(f"{out}/sr/{m}/{scan}.nii.gz") - ref), 0), 10.0, "err"))
hi = float(np.percentile(ref[mask], 99.5))
ehi = float(max(np.percentile(p[1][mask], 99.5) for p in panels if p[3] == "err"))
g = ["set terminal pngcairo noenhanced size 1500,1500 font ',11'", f"set output '{res}/montage.png'", "set multiplot layout 3,3 title "
     f"\"{scan}: plane i = {I} along the slice axis (x: anterior -> posterior, 'mm' of the x10 header; y: ventral -> dorsal)\"",
     "set palette gray", "unset key", "set size ratio -1", "set xrange [0:160]", "set yrange [0:200]", "set tics out"]
for n, (title, a, s, kind) in enumerate(panels):
    f = os.path.join(tmp, f"p{n}.txt")
    np.savetxt(f, a, fmt="%.5g")  # rows = j, columns = k
    g += [f"set title '{title}'", f"set cbrange [0:{hi if kind == 'img' else ehi:.4g}]",
          "set palette defined (0 'black', 1 'white')" if kind == "img" else "set palette defined (0 'black', 0.5 'red', 1 'yellow')",
          f"plot '{f}' matrix using (($1 + 0.5) * {s}):(($2 + 0.5) * 2.5):3 with image"]
g.append("unset multiplot")

pm = list(csv.DictReader(open(os.path.join(res, "per_mouse.csv"))))
ORDER = ("keys", "bspline", "keys8", "ss")
for k in ("rmse", "psnr", "ssim"):
    with open(os.path.join(tmp, f"paired_{k}.txt"), "w") as f:
        for r in pm:
            f.write("".join(f"{x} {r[f'{m}_{k}']}\n" for x, m in enumerate(ORDER, 1)) + "\n\n")
    with open(os.path.join(tmp, f"mean_{k}.txt"), "w") as f:
        f.write("".join(f"{x} {np.mean([float(r[f'{m}_{k}']) for r in pm])}\n" for x, m in enumerate(ORDER, 1)))
p = ["set terminal pngcairo noenhanced size 1500,500 font ',11'", f"set output '{res}/paired.png'",
     f"set multiplot layout 1,3 title 'per mouse (n = {len(pm)}), 2-fold cross-validation over mice; black = mean'",
     "set xrange [0.7:4.3]", "set xtics ('Keys x2' 1, 'B-spline x2' 2, 'Keys x8, box x4' 3, 'network' 4)", "unset key", "set grid ytics"]
for k, name in (("rmse", "RMSE (a.u.)"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
    p += [f"set title '{name}'", f"plot '{tmp}/paired_{k}.txt' with linespoints lc rgb '#8080a0' pt 7 ps 0.5, "
          f"'{tmp}/mean_{k}.txt' with linespoints lc rgb 'black' lw 3 pt 7 ps 1.2"]
p.append("unset multiplot")
for script in (g, p):
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
print("figures:", f"{res}/montage.png", f"{res}/paired.png")
