/* The statistics of a report, from the cells' metrics.csv files; nothing here knows about sweeps.
 *  - The unit of statistics is an independent BRAIN (metrics.csv's brain column): the rows of the
 *    units of one brain (its halves, its slabs) are averaged first, so slabs or halves of one brain
 *    are never the n of a test;
 *  - per cell and method: mean +- sd over the brains of RMSE, SSIM, PSNR and effective resolution;
 *    improvement over cubic in RMSE, % = 100 (RMSE_cubic - RMSE_net) / RMSE_cubic per brain;
 *  - with 3 or more brains: paired two-sided t-tests of the network against cubic (RMSE, SSIM; R
 *    t.test(net, cubic, paired = TRUE)) with the 95 % CI of the mean difference, the 95 % CI of the
 *    mean improvement, and Holm-adjusted p-values across the cells of the table (R p.adjust "holm");
 *    Welch's one-way ANOVA (R oneway.test(var.equal = FALSE)) across cubic and every cell's network.
 *    With fewer than 3 brains: descriptive only.
 * The tests come from mbsr/stats.h (GSL distributions). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

#define MAXSUB MBSR__MAXSUB

int mbsr__tested(const cell_stats *c) { return c->n >= MBSR__MIN_BRAINS_FOR_TESTS; }

/* The columns of metrics.csv a report reads; brain is optional (absent: one brain per subject). */
typedef struct {
  int subject, method, val[4], brain; /* val: rmse, ssim, psnr, res_um */
} metric_cols;

static int find_cols(const mbsr_csv *t, const char *path, metric_cols *mc) {
  const char *need[6] = {"subject", "method", "rmse", "ssim", "psnr", "res_um"};
  int *dst[6] = {&mc->subject, &mc->method, &mc->val[0], &mc->val[1], &mc->val[2], &mc->val[3]};
  for (int i = 0; i < 6; i++)
    if ((*dst[i] = mbsr_csv_col(t, need[i])) < 0) return mbsr_error(MBSR_EFORMAT, "report: %s: no column '%s'", path, need[i]);
  mc->brain = -1;
  for (int j = 0; j < t->ncols; j++) mc->brain = !strcmp(t->names[j], "brain") ? j : mc->brain;
  return 0;
}

/* Per-brain means from the sums in cs and the counts cnt; the improvement of each brain. */
static int brain_means(const char *path, cell_stats *cs, double (*cnt)[MAXSUB]) {
  for (int k = 0; k < cs->n; k++) {
    if (cnt[0][k] == 0 || cnt[1][k] == 0 || cnt[0][k] != cnt[1][k])
      return mbsr_error(MBSR_EFORMAT, "%s: brain %s lacks paired cubic and network rows", path, cs->brain[k]);
    for (int w = 0; w < 3; w++) {
      double c = cnt[w][k] > 0 ? cnt[w][k] : NAN;
      if (w < 2) cs->rmse[w][k] /= c, cs->ssim[w][k] /= c, cs->psnr[w][k] /= c;
      cs->res[w][k] /= c;
    }
    cs->imp[k] = 100.0 * (cs->rmse[0][k] - cs->rmse[1][k]) / cs->rmse[0][k];
  }
  return 0;
}

static void cell_tests(cell_stats *cs) {
  cs->imp_mean = cs->imp_lo = cs->imp_hi = NAN;
  mbsr_mean_sd(cs->imp, cs->n, &cs->imp_mean, NULL);
  if (mbsr__tested(cs)) {
    cs->ok_rmse = mbsr_ttest_paired(cs->rmse[1], cs->rmse[0], cs->n, &cs->t_rmse) == 0;
    cs->ok_ssim = mbsr_ttest_paired(cs->ssim[1], cs->ssim[0], cs->n, &cs->t_ssim) == 0;
    mbsr_mean_ci(cs->imp, cs->n, 0.95, &cs->imp_mean, &cs->imp_lo, &cs->imp_hi);
  }
  mbsr_error_clear();
}

/* The sums of row i into its brain's slots (found or added). */
static int add_row(const mbsr_csv *t, const metric_cols *mc, int i, const char *path, cell_stats *cs, char (*units)[128],
                   double (*cnt)[MAXSUB]) {
  const char *sub = t->cells[i * t->ncols + mc->subject], *meth = t->cells[i * t->ncols + mc->method];
  const char *br = mc->brain >= 0 ? t->cells[i * t->ncols + mc->brain] : sub;
  double v[4];
  for (int j = 0; j < 4; j++) {
    const char *txt = t->cells[i * t->ncols + mc->val[j]];
    char *end;
    v[j] = strtod(txt, &end); /* nan and inf allowed: the HR reference against itself has PSNR inf */
    if (end == txt || *end) return mbsr_error(MBSR_EFORMAT, "%s:%d: '%s' is not a number", path, t->line[i], txt);
  }
  int w = !strcmp(meth, "cubic") ? 0 : !strcmp(meth, "hr") ? 2 : 1, k, u;
  for (k = 0; k < cs->n; k++)
    if (!strcmp(cs->brain[k], br)) break;
  for (u = 0; u < cs->n_units; u++)
    if (!strcmp(units[u], sub)) break;
  if (k == cs->n || u == cs->n_units) {
    if (cs->n >= MAXSUB || cs->n_units >= MAXSUB) return mbsr_error(MBSR_ERANGE, "%s: more than %d units", path, MAXSUB);
    if (u == cs->n_units) snprintf(units[cs->n_units++], 128, "%s", sub);
    if (k == cs->n) snprintf(cs->brain[cs->n++], 128, "%s", br);
  }
  if (w < 2) cs->rmse[w][k] += v[0], cs->ssim[w][k] += v[1], cs->psnr[w][k] += v[2];
  cs->res[w][k] += v[3];
  cnt[w][k] += 1;
  return 0;
}

int mbsr__read_cell_stats(const char *path, cell_stats *cs) {
  mbsr_csv *t = NULL;
  int rc = mbsr_csv_read(path, &t);
  if (rc) return rc;
  metric_cols mc;
  double(*cnt)[MAXSUB] = calloc(3, sizeof *cnt);
  char(*units)[128] = calloc(MAXSUB, sizeof *units);
  memset(cs, 0, sizeof *cs);
  rc = find_cols(t, path, &mc);
  if (!rc && (!cnt || !units)) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  for (int i = 0; i < t->nrows && !rc; i++) rc = add_row(t, &mc, i, path, cs, units, cnt);
  mbsr_csv_free(t);
  if (!rc) rc = brain_means(path, cs, cnt);
  free(cnt), free(units);
  if (rc) return rc;
  cell_tests(cs);
  cs->present = 1;
  return 0;
}

int mbsr__welch_cells(const cell_stats *cs, int ncells, int m, mbsr_welch *an) {
  int tot = 0, first = -1;
  for (int c = 0; c < ncells; c++)
    if (cs[c].present) tot += cs[c].n, first = first < 0 ? c : first;
  if (first < 0) return 0;
  tot += cs[first].n;
  double *y = malloc(sizeof(double) * (size_t)tot);
  int *gg = malloc(sizeof(int) * (size_t)tot), n = 0, gi = 0, ok = 0;
  if (y && gg) {
    for (int k = 0; k < cs[first].n; k++) y[n] = m ? cs[first].ssim[0][k] : cs[first].rmse[0][k], gg[n++] = 0;
    for (int c = 0; c < ncells; c++) {
      if (!cs[c].present) continue;
      gi++;
      for (int k = 0; k < cs[c].n; k++) y[n] = m ? cs[c].ssim[1][k] : cs[c].rmse[1][k], gg[n++] = gi;
    }
    ok = gi >= 1 && mbsr_welch_anova(y, gg, n, an) == 0;
  }
  mbsr_error_clear();
  free(y), free(gg);
  return ok;
}

void mbsr__holm_cells(cell_stats *cs, int ncells) {
  double *p = calloc(2 * (size_t)(ncells + 1), sizeof(double));
  if (!p) return;
  double *q = p + ncells + 1;
  for (int m = 0; m < 2; m++) {
    for (int c = 0; c < ncells; c++) {
      int ok = cs[c].present && (m ? cs[c].ok_ssim : cs[c].ok_rmse);
      p[c] = ok ? (m ? cs[c].t_ssim.p : cs[c].t_rmse.p) : NAN;
    }
    if (mbsr_p_adjust_holm(p, ncells, q)) continue;
    for (int c = 0; c < ncells; c++) *(m ? &cs[c].p_ssim_holm : &cs[c].p_rmse_holm) = q[c];
  }
  free(p);
}
