#!/usr/bin/python3
"""In-vivo evaluation, step 5 (experiments/invivo/run.sh): per-scan metrics -> per mouse (the mean of
its scans: the unit of analysis), then, with --tables, the README table from mbsr stats' JSON.

Effect size of a paired comparison: Cohen's d_z = mean difference / sd of the differences, its 95 % CI
by inverting the noncentral t distribution (scipy.stats.nct; Cumming & Finch 2001), beside the mean
difference's own 95 % CI from `mbsr stats ttest`.
usage: aggregate.py OUT RESULTS [--tables]
"""
import csv
import json
import os
import sys

import numpy as np
from scipy import optimize, stats

out, res = sys.argv[1], sys.argv[2]
METHODS = [("keys", "Keys cubic"), ("bspline", "cubic B-spline"), ("keys8", "Keys x8 + block average x4"),
           ("ss", "self-supervised ResNet")]
METRICS = [("rmse", "RMSE (a.u.)", "lower"), ("psnr", "PSNR (dB)", "higher"), ("ssim", "SSIM", "higher")]


def per_mouse():
    rows = list(csv.DictReader(open(os.path.join(out, "scans.tsv")), delimiter="\t"))
    scans, mice = [], {}
    for r in rows:
        if r["masked"] != "1":
            continue
        rec = {"scan": r["scan"], "mouse": r["mouse"], "fold": r["fold"]}
        for m, _ in METHODS:
            j = json.load(open(os.path.join(out, "metrics", f"{r['scan']}_{m}.json")))
            for k, _, _ in METRICS:
                rec[f"{m}_{k}"] = j[k]
        scans.append(rec)
        mice.setdefault(r["mouse"], []).append(rec)
    cols = [f"{m}_{k}" for m, _ in METHODS for k, _, _ in METRICS]
    with open(os.path.join(res, "per_scan.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scan", "mouse", "fold"] + cols)
        for s in scans:
            w.writerow([s["scan"], s["mouse"], s["fold"]] + [f"{s[c]:.10g}" for c in cols])
    with open(os.path.join(res, "per_mouse.csv"), "w", newline="") as f, open(os.path.join(res, "per_mouse_long.csv"), "w", newline="") as g:
        w, wl = csv.writer(f), csv.writer(g)
        w.writerow(["mouse", "fold", "scans"] + cols)
        wl.writerow(["mouse", "method"] + [k for k, _, _ in METRICS])
        for mouse in sorted(mice):
            v = {c: np.mean([s[c] for s in mice[mouse]]) for c in cols}
            w.writerow([mouse, mice[mouse][0]["fold"], len(mice[mouse])] + [f"{v[c]:.10g}" for c in cols])
            for m, _ in METHODS:
                wl.writerow([mouse, m] + [f"{v[f'{m}_{k}']:.10g}" for k, _, _ in METRICS])


def dz_ci(t, n):
    df, d = n - 1, t / np.sqrt(n)
    lo = optimize.brentq(lambda nc: stats.nct.cdf(t, df, nc) - 0.975, t - 20, t + 20)
    hi = optimize.brentq(lambda nc: stats.nct.cdf(t, df, nc) - 0.025, t - 20, t + 20)
    return d, lo / np.sqrt(n), hi / np.sqrt(n)


def fmt_p(p):
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def tables():
    pm = list(csv.DictReader(open(os.path.join(res, "per_mouse.csv"))))
    n = len(pm)
    L = [f"Per mouse (n = {n} mice; each mouse = the mean of its 1-2 scans), inside the brain mask, on the acquired grid.", "",
         "| metric | " + " | ".join(name for _, name in METHODS) + " | Welch ANOVA across methods |", "|---|" + "---|" * (len(METHODS) + 1)]
    for k, name, _ in METRICS:
        cells = []
        for m, _ in METHODS:
            v = np.array([float(r[f"{m}_{k}"]) for r in pm])
            cells.append(f"{v.mean():.4g} ± {v.std(ddof=1):.2g}")
        wj = json.load(open(os.path.join(res, f"welch_{k}.json")))
        L.append(f"| {name} | " + " | ".join(cells) + f" | F({wj['df1']:.0f}, {wj['df2']:.1f}) = {wj['F']:.3g}, p {fmt_p(wj['p'])} |")
    L += ["", "Paired comparisons over mice (two-sided paired t-test, `mbsr stats ttest`; d_z = mean difference / sd of the "
          "differences, 95 % CI from the noncentral t):", "",
          "| metric | comparison | mean difference [95 % CI] | t (df) | p | d_z [95 % CI] | mice better |", "|---|---|---|---|---|---|---|"]
    names = dict(METHODS)
    for k, name, better in METRICS:
        for a, b in (("ss", "keys"), ("ss", "bspline"), ("ss", "keys8"), ("bspline", "keys")):
            j = json.load(open(os.path.join(res, f"ttest_{k}_{a}_vs_{b}.json")))
            d, lo, hi = dz_ci(j["t"], j["n"])
            diff = np.array([float(r[f"{a}_{k}"]) - float(r[f"{b}_{k}"]) for r in pm])
            nb = int((diff < 0).sum() if better == "lower" else (diff > 0).sum())
            L.append(f"| {name} | {names[a]} − {names[b]} | {j['mean_diff']:.4g} [{j['ci_lo']:.4g}, {j['ci_hi']:.4g}] | "
                     f"{j['t']:.3g} ({j['df']:.0f}) | {fmt_p(j['p'])} | {d:.2f} [{lo:.2f}, {hi:.2f}] | {nb}/{j['n']} |")
    open(os.path.join(res, "table.md"), "w").write("\n".join(L) + "\n")
    print("\n".join(L))


if "--tables" in sys.argv:
    tables()
else:
    per_mouse()
