/* The tables of a report: stats.csv (every test, full precision), table.csv and table.md (Table 1
 * layout with the paper's values beside, when report.table1; all metrics by cell and method) and
 * table.tex (LaTeX, booktabs: one row per cell, as table.csv). */
#include <math.h>
#include <string.h>

#include "exp_internal.h"

#define MIN_BRAINS_FOR_TESTS MBSR__MIN_BRAINS_FOR_TESTS

/* "m ± sd" (n >= 2), "m" (n = 1) */
static void msd(const double *x, int n, char *buf, size_t bn, const char *fmt) {
  double m, s;
  int ok = 0;
  for (int i = 0; i < n; i++) ok += isfinite(x[i]);
  if (ok < n || n < 1) {
    snprintf(buf, bn, "n/a");
    return;
  }
  mbsr_mean_sd(x, n, &m, &s);
  char f[64];
  snprintf(f, sizeof f, "%s ± %s", fmt, fmt);
  if (n < 2) snprintf(buf, bn, fmt, m);
  else snprintf(buf, bn, f, m, s);
}

/* One p-value format everywhere (table.md, table.tex): 3 significant digits, "< 0.001" below. */
static void pfmt(int ok, double p, char *b, size_t n) {
  if (!ok || !isfinite(p)) snprintf(b, n, "—");
  else if (p < 1e-3) snprintf(b, n, "< 0.001");
  else snprintf(b, n, "%#.3g", p);
}

/* The improvement column appended to b: mean ± sd [95 % CI] with >= 3 brains; each brain's value otherwise. */
static void imp_cell(const cell_stats *c, mbsr__sbuf *b) {
  if (mbsr__tested(c)) {
    char m[64];
    msd(c->imp, c->n, m, sizeof m, "%.1f");
    mbsr__sb_add(b, "%s [%.1f, %.1f]", m, c->imp_lo, c->imp_hi);
    return;
  }
  for (int k = 0; k < c->n; k++) mbsr__sb_add(b, "%s%+.1f (%s)", k ? "; " : "", c->imp[k], c->brain[k]);
}

/* The network's SSIM minus cubic's: mean difference [95 % CI of the paired t-test] with >= 3 brains;
 * the mean difference otherwise. math: LaTeX math mode. */
static void dssim_cell(const cell_stats *c, int math, char *b, size_t n) {
  double d[MBSR__MAXSUB], m;
  for (int k = 0; k < c->n; k++) d[k] = c->ssim[1][k] - c->ssim[0][k];
  mbsr_mean_sd(d, c->n, &m, NULL);
  const char *q = math ? "$" : "";
  if (c->ok_ssim) snprintf(b, n, "%s%+.4f%s [%s%.4f%s, %s%.4f%s]", q, c->t_ssim.mean_diff, q, q, c->t_ssim.ci_lo, q, q, c->t_ssim.ci_hi, q);
  else if (isfinite(m)) snprintf(b, n, "%s%+.4f%s", q, m, q);
  else snprintf(b, n, "n/a");
}

/* The paper's Table 1 (Liang & Zhang 2023): improvement over cubic in RMSE, %, mean ± sd. */
static const struct {
  int lr, hr, n;
  const char *v;
  double mean, sd;
} PAPER_T1[] = {{400, 200, 5000, "4.4 ± 1.1", 4.4, 1.1},   {200, 100, 5000, "-0.8 ± 0.9", -0.8, 0.9}, {100, 50, 5000, "-2 ± 1.5", -2, 1.5},
                {400, 200, 20000, "4.7 ± 2.0", 4.7, 2.0}, {200, 100, 20000, "3.0 ± 1.4", 3.0, 1.4}, {100, 50, 20000, "2.1 ± 0.8", 2.1, 0.8}};
#define N_PAPER_T1 ((int)(sizeof PAPER_T1 / sizeof *PAPER_T1))

const char *mbsr__pair_label(const mbsr_res_pair *p, const char *dash, char *buf, size_t n) {
  char nm[MBSR_PAIR_NAME_MAX];
  mbsr_res_pair_name(p, nm, sizeof nm);
  const size_t k = strcspn(nm, "-");
  snprintf(buf, n, "%.*s%s%s", (int)k, nm, dash, nm + k + 1);
  return buf;
}

/* The paper's pairs are isotropic: an anisotropic pair matches none (lr -1). */
static int iso_lr(const mbsr_res_pair *p) { return mbsr_res_pair_isotropic(p) ? p->lr_um[0] : -1; }

int mbsr__paper_table1_num(const mbsr_res_pair *p, int samples, double *mean, double *sd) {
  const int lr = iso_lr(p), hr = p->hr_um;
  for (int i = 0; i < N_PAPER_T1; i++)
    if (PAPER_T1[i].lr == lr && PAPER_T1[i].hr == hr && PAPER_T1[i].n == samples) return *mean = PAPER_T1[i].mean, *sd = PAPER_T1[i].sd, 1;
  return 0;
}

static const char *paper_table1(const mbsr_res_pair *p, int samples, char *buf, size_t n) {
  const int lr = iso_lr(p), hr = p->hr_um;
  for (int i = 0; i < N_PAPER_T1; i++)
    if (PAPER_T1[i].lr == lr && PAPER_T1[i].hr == hr && PAPER_T1[i].n == samples) return PAPER_T1[i].v;
  for (int i = 0; i < N_PAPER_T1; i++) /* another sample count: both of the paper's */
    if (PAPER_T1[i].lr == lr && PAPER_T1[i].hr == hr) {
      snprintf(buf, n, "%s (5,000) / %s (20,000)", PAPER_T1[i].v, PAPER_T1[i + 3].v);
      return buf;
    }
  return "—";
}

void mbsr__write_stats_csv(const mbsr_experiment *e, const cell_stats *cs, const mbsr_welch *an, const int *an_ok, mbsr__sbuf *t) {
  mbsr__sb_add(t, "test,cell,metric,n_brains,statistic,df1,df2,p,p_holm,mean_diff,sd_diff,ci95_lo,ci95_hi\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    for (int m = 0; m < 2; m++) {
      const mbsr_ttest *tt = m ? &cs[c].t_ssim : &cs[c].t_rmse;
      if (!(m ? cs[c].ok_ssim : cs[c].ok_rmse)) continue;
      mbsr__sb_add(t, "paired_t,%s,%s,%d,%.15g,%.15g,,%.15g,%.15g,%.15g,%.15g,%.15g,%.15g\n", e->cells[c].name, m ? "ssim" : "rmse",
             cs[c].n, tt->t, tt->df, tt->p, m ? cs[c].p_ssim_holm : cs[c].p_rmse_holm, tt->mean_diff, tt->sd_diff, tt->ci_lo,
             tt->ci_hi);
    }
  }
  for (int m = 0; m < 2; m++)
    if (an_ok[m])
      mbsr__sb_add(t, "welch_anova,all,%s,%d,%.15g,%.15g,%.15g,%.15g,,,,,\n", m ? "ssim" : "rmse", an[m].n, an[m].F, an[m].df1, an[m].df2,
             an[m].p);
}

/* table.csv; the paper's column is quoted (RFC 4180): "4.4 ± 1.1 (5,000) / ..." holds commas. */
void mbsr__write_table_csv(const mbsr_experiment *e, const cell_stats *cs, mbsr__sbuf *t) {
  mbsr__sb_add(t, "cell,arch,train_pair,test_pair,samples,train_data,test_data,finetune,n_brains,n_units,brains,"
            "rmse_improvement_pct_mean,rmse_improvement_pct_sd,rmse_improvement_ci95_lo,rmse_improvement_ci95_hi,p_rmse,p_rmse_holm,"
            "rmse_cubic_mean,rmse_net_mean,ssim_cubic_mean,ssim_net_mean,p_ssim,p_ssim_holm,psnr_cubic_mean,psnr_net_mean,"
            "res_um_cubic,res_um_net,res_um_hr,paper_improvement\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    const mbsr_exp_cell *cl = &e->cells[c];
    const cell_stats *s = &cs[c];
    double im, isd, a[9];
    mbsr_mean_sd(s->imp, s->n, &im, &isd);
    const double *src[9] = {s->rmse[0], s->rmse[1], s->ssim[0], s->ssim[1], s->psnr[0], s->psnr[1], s->res[0], s->res[1], s->res[2]};
    for (int k = 0; k < 9; k++) mbsr_mean_sd(src[k], s->n, &a[k], NULL);
    mbsr__sbuf brains = {0};
    for (int k = 0; k < s->n; k++) mbsr__sb_add(&brains, "%s%s", k ? ";" : "", s->brain[k]);
    char pap[96], trn[MBSR_PAIR_NAME_MAX], ten[MBSR_PAIR_NAME_MAX];
    mbsr__sb_add(t, "%s,%s,%s,%s,%d,%s,%s,%d,%d,%d,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,\"%s\"\n",
           cl->name, cl->arch, mbsr_res_pair_name(&cl->train_pair, trn, sizeof trn), mbsr_res_pair_name(&cl->test_pair, ten, sizeof ten), cl->samples,
           mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data), cl->finetune, s->n, s->n_units, brains.s ? brains.s : "", im,
           s->n > 1 ? isd : NAN, s->imp_lo, s->imp_hi, s->ok_rmse ? s->t_rmse.p : NAN, s->ok_rmse ? s->p_rmse_holm : NAN, a[0], a[1],
           a[2], a[3], s->ok_ssim ? s->t_ssim.p : NAN, s->ok_ssim ? s->p_ssim_holm : NAN, a[4], a[5], a[6], a[7], a[8],
           e->table1 ? paper_table1(&cl->train_pair, cl->samples, pap, sizeof pap) : "");
    mbsr__sb_free(&brains);
  }
}

void mbsr__write_table_md(const mbsr_experiment *e, const cell_stats *cs, int synth, const mbsr_welch *an, const int *an_ok,
                           mbsr__sbuf *md) {
  int any_untested = 0, any_tested = 0;
  for (int c = 0; c < e->n_cells; c++)
    if (cs[c].present) any_tested |= mbsr__tested(&cs[c]), any_untested |= !mbsr__tested(&cs[c]);
  if (e->table1) {
    mbsr__sb_add(md, "**Table 1.** Improvement over cubic interpolation in RMSE, %% (positive = the network's RMSE is lower)%s. "
               "The unit is an independent brain; with %d or more brains: mean ± sd [95 %% CI], and the paired two-sided "
               "t-test of the network's RMSE against cubic's, Holm-adjusted across the rows; with fewer: each brain's value, "
               "no test. The paper's values (Liang & Zhang 2023, Table 1; 10 test brains) are beside.\n\n",
           synth ? " on the SYNTHETIC phantom cohort" : "", MIN_BRAINS_FOR_TESTS);
    mbsr__sb_add(md, "| Training resolution (µm) | # of training samples | Improvement over cubic in RMSE, %% | p (Holm) | brains (units) | paper |\n");
    mbsr__sb_add(md, "|---|---:|---|---:|---:|---:|\n");
    for (int c = 0; c < e->n_cells; c++) {
      if (!cs[c].present) continue;
      char pp[32], pap[96], pl[64];
      mbsr__sbuf a = {0};
      imp_cell(&cs[c], &a);
      pfmt(cs[c].ok_rmse, cs[c].p_rmse_holm, pp, sizeof pp);
      mbsr__sb_add(md, "| %s | %d | %s | %s | %d (%d) | %s |\n", mbsr__pair_label(&e->cells[c].train_pair, "–", pl, sizeof pl),
                   e->cells[c].samples, a.s ? a.s : "", pp, cs[c].n, cs[c].n_units,
                   paper_table1(&e->cells[c].train_pair, e->cells[c].samples, pap, sizeof pap));
      mbsr__sb_free(&a);
    }
    mbsr__sb_add(md, "\n");
  }
  mbsr__sb_add(md, "**All metrics** (mean ± sd over the brains; RMSE, PSNR and SSIM inside the brain mask on the SR contract's scale "
             "[clip((x - lo)/(hi - lo), 0, 1), lo and hi the contract's percentiles of the cubic input]; effective resolution "
             "by decorrelation analysis, median over slices)\n\n");
  mbsr__sb_add(md, "| cell | method | train | test | samples | data | brains | RMSE | Δ RMSE %% | p RMSE (Holm) | SSIM | Δ SSIM [95 %% CI] | p SSIM (Holm) | PSNR (dB) | eff. res. (µm) |\n");
  mbsr__sb_add(md, "|---|---|---|---|---:|---|---:|---:|---|---:|---:|---|---:|---:|---:|\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    const mbsr_exp_cell *cl = &e->cells[c];
    for (int w = 0; w < 3; w++) {
      char r[64] = "", s_[64] = "", ds[96] = "", ps[64] = "", rs[64], p1[32] = "", p2[32] = "", data[64];
      mbsr__sbuf im = {0};
      if (w < 2) {
        msd(cs[c].rmse[w], cs[c].n, r, sizeof r, "%.4f");
        msd(cs[c].ssim[w], cs[c].n, s_, sizeof s_, "%.4f");
        msd(cs[c].psnr[w], cs[c].n, ps, sizeof ps, "%.2f");
      }
      msd(cs[c].res[w], cs[c].n, rs, sizeof rs, "%.0f");
      if (w == 1) {
        imp_cell(&cs[c], &im);
        pfmt(cs[c].ok_rmse, cs[c].p_rmse_holm, p1, sizeof p1);
        pfmt(cs[c].ok_ssim, cs[c].p_ssim_holm, p2, sizeof p2);
        dssim_cell(&cs[c], 0, ds, sizeof ds);
      }
      snprintf(data, sizeof data, "%s→%s%s", mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data),
               cl->finetune ? " +TL" : "");
      char trl[64], tel[64];
      mbsr__sb_add(md, "| %s | %s | %s | %s | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", cl->name,
             w == 0 ? "cubic" : w == 1 ? cl->arch : "HR (reference)", mbsr__pair_label(&cl->train_pair, "–", trl, sizeof trl),
             mbsr__pair_label(&cl->test_pair, "–", tel, sizeof tel), cl->samples, data, cs[c].n, r, im.s ? im.s : "", p1, s_, ds, p2, ps, rs);
      mbsr__sb_free(&im);
    }
  }
  if (any_untested)
    mbsr__sb_add(md, "\nRows with fewer than %d independent brains are descriptive: each brain's improvement is listed, and no "
               "p-value is given (a t-test on 1 or 2 brains, or on slabs of one brain, says nothing about other brains).\n",
           MIN_BRAINS_FOR_TESTS);
  if (e->anova) {
    mbsr__sb_add(md, "\nWelch's one-way ANOVA across cubic and every cell's network, per brain (R `oneway.test(var.equal = FALSE)`):\n\n");
    for (int m = 0; m < 2; m++) {
      char pp[32];
      pfmt(an_ok[m], an[m].p, pp, sizeof pp);
      if (an_ok[m]) mbsr__sb_add(md, "- %s: F = %.3f, df = (%.0f, %.2f), p = %s\n", m ? "SSIM" : "RMSE", an[m].F, an[m].df1, an[m].df2, pp);
      else mbsr__sb_add(md, "- %s: not computed (fewer than %d brains per group, or zero variance)\n", m ? "SSIM" : "RMSE", MIN_BRAINS_FOR_TESTS);
    }
  }
  (void)any_tested;
}

/* ---------------------------------------------------------------- table.tex */
/* text with LaTeX's special characters escaped */
static void tex_text(mbsr__sbuf *t, const char *s) {
  for (; s && *s; s++) {
    if (strchr("_%&#${}", *s)) mbsr__sb_add(t, "\\%c", *s);
    else if (*s == '~' || *s == '^' || *s == '\\')
      mbsr__sb_add(t, "%s", *s == '~' ? "\\textasciitilde{}" : *s == '^' ? "\\textasciicircum{}" : "\\textbackslash{}");
    else mbsr__sb_add(t, "%c", *s);
  }
}

/* a p-value cell: the same format as table.md */
static void tex_p(mbsr__sbuf *t, int ok, double p) {
  char b[32];
  pfmt(ok, p, b, sizeof b);
  if (!strcmp(b, "—")) mbsr__sb_add(t, "---");
  else if (!strncmp(b, "< ", 2)) mbsr__sb_add(t, "$<%s$", b + 2);
  else mbsr__sb_add(t, "%s", b);
}

/* mean (± sd with n >= 2) of x in math mode */
static void tex_msd(mbsr__sbuf *t, const double *x, int n, int prec) {
  double m, sd;
  mbsr_mean_sd(x, n, &m, &sd);
  if (!isfinite(m)) mbsr__sb_add(t, "n/a");
  else if (n < 2) mbsr__sb_add(t, "$%.*f$", prec, m);
  else mbsr__sb_add(t, "$%.*f \\pm %.*f$", prec, m, prec, sd);
}

/* the improvement: mean ± sd [95 % CI] when tested; each brain's value otherwise */
static void tex_imp(mbsr__sbuf *t, const cell_stats *c) {
  if (mbsr__tested(c)) {
    tex_msd(t, c->imp, c->n, 1);
    mbsr__sb_add(t, " [$%.1f$, $%.1f$]", c->imp_lo, c->imp_hi);
    return;
  }
  for (int k = 0; k < c->n; k++) mbsr__sb_add(t, "%s$%+.1f$", k ? "; " : "", c->imp[k]);
}

static void tex_row(mbsr__sbuf *t, const mbsr_experiment *e, const cell_stats *s, const mbsr_exp_cell *cl) {
  char pap[96], trl[64], tel[64];
  mbsr__sb_add(t, "%s & %s & ", mbsr__pair_label(&cl->train_pair, "--", trl, sizeof trl), mbsr__pair_label(&cl->test_pair, "--", tel, sizeof tel));
  tex_text(t, cl->arch);
  mbsr__sb_add(t, "%s & %d & ", cl->finetune ? " +TL" : "", cl->samples);
  tex_text(t, mbsr_dataset_name(cl->train_data));
  mbsr__sb_add(t, "$\\to$");
  tex_text(t, mbsr_dataset_name(cl->test_data));
  mbsr__sb_add(t, " & %d (%d) & ", s->n, s->n_units);
  tex_msd(t, s->rmse[0], s->n, 4), mbsr__sb_add(t, " & "), tex_msd(t, s->rmse[1], s->n, 4), mbsr__sb_add(t, " & ");
  tex_imp(t, s), mbsr__sb_add(t, " & "), tex_p(t, s->ok_rmse, s->p_rmse_holm), mbsr__sb_add(t, " & ");
  tex_msd(t, s->ssim[0], s->n, 4), mbsr__sb_add(t, " & "), tex_msd(t, s->ssim[1], s->n, 4), mbsr__sb_add(t, " & ");
  dssim_cell(s, 1, pap, sizeof pap), mbsr__sb_add(t, "%s & ", pap);
  tex_p(t, s->ok_ssim, s->p_ssim_holm);
  if (e->table1) {
    const char *v = paper_table1(&cl->train_pair, cl->samples, pap, sizeof pap);
    mbsr__sb_add(t, " & ");
    for (const char *c = v; *c; c++) /* "4.4 ± 1.1" -> $4.4 \pm 1.1$; "—" -> --- */
      if (!strncmp(c, "±", strlen("±"))) mbsr__sb_add(t, "$\\pm$"), c += strlen("±") - 1;
      else if (!strncmp(c, "—", strlen("—"))) mbsr__sb_add(t, "---"), c += strlen("—") - 1;
      else if (*c == '-' && c[1] >= '0' && c[1] <= '9') mbsr__sb_add(t, "$-$");
      else mbsr__sb_add(t, "%c", *c);
  }
  mbsr__sb_add(t, " \\\\\n");
}

void mbsr__write_table_tex(const mbsr_experiment *e, const cell_stats *cs, int synth, const mbsr_welch *an, const int *an_ok,
                           mbsr__sbuf *t) {
  mbsr__sb_add(t, "%% %s: written by mbsr report; needs \\usepackage{booktabs}. One row per cell (as table.csv).\n", e->name);
  mbsr__sb_add(t, "\\begin{table}[htbp]\n\\centering\n\\caption{");
  tex_text(t, e->title);
  mbsr__sb_add(t, "%s. Mean $\\pm$ sd over the independent brains (units of one brain averaged first); RMSE and SSIM inside the "
                  "brain mask on the SR contract's scale. Improvement over cubic in RMSE, \\%%: with %d or more brains mean $\\pm$ sd "
                  "[95\\%% CI] and paired two-sided $t$-tests against cubic, Holm-adjusted across the rows; with fewer, each "
                  "brain's value and no test. $\\Delta$SSIM: network minus cubic, mean [95\\%% CI of the paired $t$-test].%s}\n",
               synth ? " (SYNTHETIC phantom data)" : "", MBSR__MIN_BRAINS_FOR_TESTS,
               e->table1 ? " Paper: Liang \\& Zhang 2023, Table 1 (10 test brains)." : "");
  mbsr__sb_add(t, "\\label{tab:");
  tex_text(t, e->name);
  mbsr__sb_add(t, "}\n\\footnotesize\n\\setlength{\\tabcolsep}{3pt}\n\\begin{tabular}{lllrlrrrlrrrlr%s}\n\\toprule\n", e->table1 ? "l" : "");
  mbsr__sb_add(t, "Train ($\\mu$m) & Test ($\\mu$m) & Network & Samples & Data & Brains (units) & RMSE cubic & RMSE network & "
                  "Improvement (\\%%) & $p$ (Holm) & SSIM cubic & SSIM network & $\\Delta$SSIM [95\\%% CI] & $p$ SSIM (Holm)%s \\\\\n\\midrule\n",
               e->table1 ? " & Paper (\\%)" : "");
  for (int c = 0; c < e->n_cells; c++)
    if (cs[c].present) tex_row(t, e, &cs[c], &e->cells[c]);
  mbsr__sb_add(t, "\\bottomrule\n\\end{tabular}\n");
  for (int m = 0; m < 2 && e->anova; m++)
    if (an_ok[m]) {
      mbsr__sb_add(t, "\\par\\smallskip Welch's ANOVA, %s: $F = %.3f$, df $= (%.0f, %.2f)$, $p$ = ", m ? "SSIM" : "RMSE", an[m].F, an[m].df1, an[m].df2);
      tex_p(t, 1, an[m].p);
      mbsr__sb_add(t, "\n");
    }
  mbsr__sb_add(t, "\\end{table}\n");
}
