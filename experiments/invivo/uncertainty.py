#!/usr/bin/python3
"""In-vivo uncertainty calibration (experiments/invivo/run.sh, step 4b): how well the ensemble sd (8 axis
flips of the self-supervised network, block-averaged onto the acquired grid) tracks the actual error
|mean - reference| inside the mask. Unit = one mouse: each scan's numbers (Pearson r of sd with |error|
over its mask voxels, error by sd decile) are averaged over the mouse's scans first.
Writes RESULTS/uncertainty.csv (per mouse), uncertainty.md (summary with 95 % t-intervals over mice)
and uncertainty.png (mean |error| by sd decile, one line per mouse, the mean over mice in black).
usage: uncertainty.py OUT RESULTS
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
from scipy import stats

out, res = sys.argv[1], sys.argv[2]
scans = list(csv.DictReader(open(f"{out}/scans.tsv"), delimiter="\t"))
per = {}
for s in scans:
    if s["masked"] != "1":
        continue
    e = json.load(open(f"{out}/metrics/{s['scan']}_ens.json"))
    one = json.load(open(f"{out}/metrics/{s['scan']}_ss.json"))
    keys = json.load(open(f"{out}/metrics/{s['scan']}_keys.json"))
    d = per.setdefault(s["mouse"], {"r": [], "err": [], "sd": [], "rmse_ens": [], "rmse_one": [], "rmse_keys": [],
                                    "ssim_ens": [], "ssim_keys": []})
    d["rmse_keys"].append(keys["rmse"])
    d["ssim_ens"].append(e["ssim"])
    d["ssim_keys"].append(keys["ssim"])
    d["r"].append(e["sd_err_corr"])
    d["err"].append([b["err_mean"] for b in e["sd_deciles"]])
    d["sd"].append([b["sd_mean"] for b in e["sd_deciles"]])
    d["rmse_ens"].append(e["rmse"])
    d["rmse_one"].append(one["rmse"])

mice = sorted(per)
rows = []
for m in mice:
    d = per[m]
    err, sd = np.mean(d["err"], axis=0), np.mean(d["sd"], axis=0)
    rows.append({"mouse": m, "scans": len(d["r"]), "r_sd_err": np.mean(d["r"]), "err_top_over_bottom": err[9] / err[0],
                 "rho_decile": stats.spearmanr(np.arange(10), err)[0], "rmse_ensemble": np.mean(d["rmse_ens"]),
                 "rmse_single": np.mean(d["rmse_one"]), "rmse_keys": np.mean(d["rmse_keys"]),
                 "ssim_ensemble": np.mean(d["ssim_ens"]), "ssim_keys": np.mean(d["ssim_keys"]), "err": err, "sd": sd})
with open(f"{res}/uncertainty.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["mouse", "scans", "r_sd_err", "err_top_over_bottom_decile", "spearman_decile_err", "rmse_ensemble_mean",
                "rmse_single_pass", "rmse_keys", "ssim_ensemble_mean", "ssim_keys"] + [f"err_decile{i + 1}" for i in range(10)] + [f"sd_decile{i + 1}" for i in range(10)])
    for r in rows:
        w.writerow([r["mouse"], r["scans"], f"{r['r_sd_err']:.4f}", f"{r['err_top_over_bottom']:.4f}", f"{r['rho_decile']:.4f}",
                    f"{r['rmse_ensemble']:.6g}", f"{r['rmse_single']:.6g}", f"{r['rmse_keys']:.6g}",
                    f"{r['ssim_ensemble']:.6g}", f"{r['ssim_keys']:.6g}"] + [f"{v:.6g}" for v in r["err"]] +
                   [f"{v:.6g}" for v in r["sd"]])


def ci(v):
    v = np.asarray(v, dtype=float)
    m, se = v.mean(), v.std(ddof=1) / np.sqrt(len(v))
    h = stats.t.ppf(0.975, len(v) - 1) * se
    return m, m - h, m + h


n = len(rows)
r = [x["r_sd_err"] for x in rows]
ratio = [x["err_top_over_bottom"] for x in rows]
rho = [x["rho_decile"] for x in rows]
dr = [x["rmse_ensemble"] - x["rmse_single"] for x in rows]
rel = [100 * (x["rmse_ensemble"] - x["rmse_single"]) / x["rmse_single"] for x in rows]
tt = stats.ttest_rel([x["rmse_ensemble"] for x in rows], [x["rmse_single"] for x in rows])
lines = [f"Uncertainty calibration over {n} mice (each mouse's scans averaged first; 95 % t-intervals over mice):", "",
         "| quantity | mean over mice | 95 % CI | mice |", "|---|---:|---|---|"]
m, lo, hi = ci(r)
lines.append(f"| Pearson r(sd, abs error) over mask voxels | {m:.3f} | [{lo:.3f}, {hi:.3f}] | {sum(v > 0 for v in r)} of {n} with r > 0 |")
m, lo, hi = ci(ratio)
lines.append(f"| mean abs error, top sd decile / bottom decile | {m:.2f} | [{lo:.2f}, {hi:.2f}] | {sum(v > 1 for v in ratio)} of {n} above 1 |")
m, lo, hi = ci(rho)
lines.append(f"| Spearman rho(decile, mean abs error) | {m:.3f} | [{lo:.3f}, {hi:.3f}] | {sum(v > 0.9 for v in rho)} of {n} above 0.9 |")
m, lo, hi = ci(rel)
lines.append(f"| RMSE of the ensemble mean vs the single pass | {m:+.2f} % | [{lo:+.2f}, {hi:+.2f}] % | {sum(v < 0 for v in dr)} of {n} lower; paired t p = {tt.pvalue:.2g} |")
es = np.mean([x["err"] / x["sd"] for x in rows], axis=0)
lines += ["", f"Scale: the sd is smaller than the actual error in every decile (mean abs error / mean sd, averaged over mice:",
          f"{es[0]:.1f} in the lowest sd decile, {es[4]:.1f} in the 5th, {es[9]:.1f} in the highest). The flip sd ranks voxels by",
          "their risk of error; it is not an error bar (it leaves out what all flips get wrong alike)."]
lines += ["", "The ensemble mean as a restoration (not the protocol's pre-specified method: a comparison made after",
          "seeing the single pass lose to Keys, on the same mice and folds), paired over mice:", "",
          "| comparison | mean difference [95 % CI] | relative | t (df) | p | d_z | mice better |", "|---|---|---:|---|---|---:|---|"]
for name, a, b, lower in (("RMSE: ensemble mean - Keys cubic", "rmse_ensemble", "rmse_keys", True),
                          ("RMSE: single pass - Keys cubic", "rmse_single", "rmse_keys", True),
                          ("SSIM: ensemble mean - Keys cubic", "ssim_ensemble", "ssim_keys", False)):
    va, vb = np.array([x[a] for x in rows]), np.array([x[b] for x in rows])
    dd = va - vb
    m, lo, hi = ci(dd)
    t = stats.ttest_rel(va, vb)
    better = int(np.sum(dd < 0)) if lower else int(np.sum(dd > 0))
    lines.append(f"| {name} | {m:.4g} [{lo:.4g}, {hi:.4g}] | {100 * np.mean(dd / vb):+.2f} % | {t.statistic:.3g} ({n - 1}) | "
                 f"{t.pvalue:.2g} | {m / dd.std(ddof=1):.2f} | {better}/{n} |")
open(f"{res}/uncertainty.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

tmp = os.path.join(res, ".fig")
os.makedirs(tmp, exist_ok=True)
dat = os.path.join(tmp, "unc.txt")
with open(dat, "w") as f:
    for x in rows:
        for i in range(10):
            f.write(f"{i + 1} {x['err'][i]:.6g}\n")
        f.write("\n\n")
    mean = np.mean([x["err"] for x in rows], axis=0)
    for i in range(10):
        f.write(f"{i + 1} {mean[i]:.6g}\n")
g = ["set terminal pngcairo noenhanced size 900,600 font ',11'", f"set output '{res}/uncertainty.png'",
     f"set title 'In-vivo, {n} held-out mice: actual error by decile of the ensemble sd (8 flips)'",
     "set xlabel 'sd decile (1 = lowest predicted sd)'", "set ylabel 'mean |SR - reference| in the mask'",
     "set xrange [0.5:10.5]", "set xtics 1", "set key top left", "set grid",
     f"plot for [k=0:{n - 1}] '{dat}' index k using 1:2 with lines lc rgb '#b0b0ff' notitle, "
     f"'{dat}' index {n} using 1:2 with linespoints lw 3 pt 7 lc rgb 'black' title 'mean over mice'"]
subprocess.run(["gnuplot"], input="\n".join(g), text=True, check=True)
