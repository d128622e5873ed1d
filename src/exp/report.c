/* mbsr report: aggregate an experiment's finished cells (the driver): collect the cells whose done
 * marker carries the current parameters, their statistics (report_stats.c), the tables
 * (report_tables.c: stats.csv, table.csv, table.md), the figures (report_figures.c, from the cells'
 * numbers and saved volumes) and README.md (report_readme.c). A figure that fails (e.g. no gnuplot)
 * is a warning: the tables and README still come. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

#define MAX_FIGS 8

/* The state of one report. */
typedef struct {
  const mbsr_experiment *e;
  const mbsr_report_opts *o;
  char dir[2048];
  cell_stats *cs;
  int synth;
  char source[4096];             /* data/SOURCE.txt's first line */
  char figs[MAX_FIGS][256];
  int nf, fig_failed;
  double r_corr[2];
} report;

/* The first line of DIR/data/SOURCE.txt (without newline) into rep->source; "" when absent. */
static void read_source(report *rep) {
  char p[2600];
  rep->source[0] = 0;
  if (mbsr_pathf(p, sizeof p, "%s/data/SOURCE.txt", rep->dir)) return;
  FILE *f = fopen(p, "r");
  if (!f) return;
  if (!fgets(rep->source, sizeof rep->source, f)) rep->source[0] = 0;
  fclose(f);
  rep->source[strcspn(rep->source, "\n")] = 0;
}

/* The AF data of this run came from the phantom (and the experiment uses AF data at all); a run
 * without a SOURCE.txt counts as synthetic. */
static int is_synthetic(const report *rep) {
  int af = 0;
  for (int c = 0; c < rep->e->n_cells; c++) af |= rep->e->cells[c].train_data == MBSR_DS_AF || rep->e->cells[c].test_data == MBSR_DS_AF;
  if (!af) return 0;
  char p[2600];
  if (mbsr_pathf(p, sizeof p, "%s/data/SOURCE.txt", rep->dir) || !mbsr_file_exists(p)) return 1;
  return strstr(rep->source, "phantom") != NULL;
}

/* The finished cells' statistics (a cell not finished, or finished with other parameters, is left out). */
static int collect(report *rep) {
  const mbsr_experiment *e = rep->e;
  int rc = 0, npresent = 0;
  for (int c = 0; c < e->n_cells && !rc; c++) {
    char p[2600];
    if ((rc = mbsr_pathf(p, sizeof p, "%s/cells/%s/done", rep->dir, e->cells[c].name))) break;
    mbsr__cell_state_t st = mbsr__cell_state(e, rep->o->results, c);
    if (st == MBSR__CELL_OPEN) {
      mbsr_warn("report: cell %s is not finished (no %s): left out", e->cells[c].name, p);
      continue;
    }
    if (st == MBSR__CELL_OTHER) {
      mbsr_warn("report: cell %s was computed with other parameters than %s now gives (run mbsr sweep): left out", e->cells[c].name,
                e->path);
      continue;
    }
    if ((rc = mbsr_pathf(p, sizeof p, "%s/cells/%s/metrics.csv", rep->dir, e->cells[c].name))) break;
    rc = mbsr__read_cell_stats(p, &rep->cs[c]);
    npresent += rep->cs[c].present;
  }
  if (!rc && npresent == 0) rc = mbsr_error(MBSR_EINVAL, "no finished cell in %s (run mbsr sweep first)", rep->dir);
  return rc;
}

static int write_file(const report *rep, const char *name, mbsr__sbuf *b) {
  char p[2600];
  int rc = mbsr_pathf(p, sizeof p, "%s/%s", rep->dir, name);
  const char *text = rc ? NULL : mbsr__sb_text(b, p);
  return rc ? rc : text ? mbsr_write_text_atomic(p, text) : MBSR_ENOMEM;
}

/* stats.csv, table.csv, table.md (its text kept in md for the README), table.tex. */
static int write_tables(report *rep, mbsr__sbuf *md) {
  const mbsr_experiment *e = rep->e;
  mbsr__holm_cells(rep->cs, e->n_cells);
  mbsr_welch an[2];
  int an_ok[2] = {0, 0}, all_tested = 1;
  for (int c = 0; c < e->n_cells; c++) all_tested &= !rep->cs[c].present || mbsr__tested(&rep->cs[c]);
  for (int m = 0; m < 2 && e->anova && all_tested; m++) an_ok[m] = mbsr__welch_cells(rep->cs, e->n_cells, m, &an[m]);
  mbsr__sbuf st = {0}, tb = {0}, tx = {0};
  mbsr__write_stats_csv(e, rep->cs, an, an_ok, &st);
  mbsr__write_table_csv(e, rep->cs, &tb);
  mbsr__write_table_md(e, rep->cs, rep->synth, an, an_ok, md);
  mbsr__write_table_tex(e, rep->cs, rep->synth, an, an_ok, &tx);
  int rc = write_file(rep, "stats.csv", &st);
  if (!rc) rc = write_file(rep, "table.csv", &tb);
  if (!rc) rc = write_file(rep, "table.md", md);
  if (!rc) rc = write_file(rep, "table.tex", &tx);
  mbsr__sb_free(&st), mbsr__sb_free(&tb), mbsr__sb_free(&tx);
  return rc;
}

/* ---------------------------------------------------------------- figures */
static void fig_done(report *rep, int rc, const char *name) {
  if (rc == 0 && rep->nf < MAX_FIGS) snprintf(rep->figs[rep->nf++], 256, "%s", name);
  else if (rc) mbsr_warn("report: figure %s not made: %s", name, mbsr_last_error()), rep->fig_failed++;
}

/* A network column's label inside its group (the test pair and data are the group's). */
static void net_label(const mbsr_experiment *e, const mbsr_exp_cell *cl, char *lab, size_t n) {
  mbsr__sbuf b = {0};
  mbsr__sb_add(&b, "%s", cl->arch);
  char pn[MBSR_PAIR_NAME_MAX];
  if (!mbsr_res_pair_equal(&cl->train_pair, &cl->test_pair)) mbsr__sb_add(&b, " tr%s", mbsr_res_pair_name(&cl->train_pair, pn, sizeof pn));
  if (e->s.n_samples > 1) mbsr__sb_add(&b, " n=%d", cl->samples);
  if (cl->train_data != MBSR_DS_AF) mbsr__sb_add(&b, " from %s", mbsr_dataset_name(cl->train_data));
  if (cl->finetune) mbsr__sb_add(&b, " +TL");
  snprintf(lab, n, "%s", b.s && !b.failed ? b.s : "");
  mbsr__sb_free(&b);
}

/* The position of brain `name` in t (-1: absent). */
static int brain_pos(const cell_stats *t, const char *name) {
  for (int k = 0; k < t->n; k++)
    if (!strcmp(t->brain[k], name)) return k;
  return -1;
}

/* Cells a and b share their cubic numbers of metric m: the same test pair and data, the same brains,
 * equal cubic values (cubic does not depend on the network). */
static int same_cubic(const report *rep, int a, int b, int m) {
  const mbsr_exp_cell *x = &rep->e->cells[a], *y = &rep->e->cells[b];
  const cell_stats *s = &rep->cs[a], *t = &rep->cs[b];
  if (!mbsr_res_pair_equal(&x->test_pair, &y->test_pair) || x->test_data != y->test_data || s->n != t->n) return 0;
  for (int k = 0; k < s->n; k++) {
    int j = brain_pos(t, s->brain[k]);
    double u = m ? s->ssim[0][k] : s->rmse[0][k], w = j < 0 ? NAN : m ? t->ssim[0][j] : t->rmse[0][j];
    if (j < 0 || !(fabs(u - w) <= 1e-9 * fmax(fabs(u), fabs(w)))) return 0;
  }
  return 1;
}

/* The groups of a paired plot: grp[c] = the group of present cell c (-1: absent), first[g] = its first
 * cell, ncol[g] = 1 + its networks; the number of groups. */
static int paired_groups(const report *rep, int m, int *grp, int *first, int *ncol) {
  int ng = 0;
  for (int c = 0; c < rep->e->n_cells; c++) {
    grp[c] = -1;
    if (!rep->cs[c].present) continue;
    for (int g = 0; g < ng && grp[c] < 0; g++)
      if (same_cubic(rep, first[g], c, m)) grp[c] = g, ncol[g]++;
    if (grp[c] < 0) grp[c] = ng, first[ng] = c, ncol[ng++] = 2;
  }
  return ng;
}

/* The brains' names across cells (colours of the paired plot); the index of name, added if new. */
static int brain_index(const char **names, int *nn, const char *name) {
  for (int i = 0; i < *nn; i++)
    if (!strcmp(names[i], name)) return i;
  names[*nn] = name;
  return (*nn)++;
}

typedef struct {
  int *grp, *first, *ncol, *nb, **bid, nbrains;
  double **v;
  char (*labels)[160], (*glab)[160];
  const char **cl, **gl, **brains;
} paired_bufs;

static int paired_fill(const report *rep, int m, paired_bufs *p, int ng) {
  const mbsr_experiment *e = rep->e;
  for (int g = 0, k = 0; g < ng; g++) {
    const cell_stats *s0 = &rep->cs[p->first[g]];
    const mbsr_exp_cell *c0 = &e->cells[p->first[g]];
    p->nb[g] = s0->n;
    p->v[g] = malloc(sizeof(double) * (size_t)(p->ncol[g] * s0->n + 1));
    p->bid[g] = malloc(sizeof(int) * (size_t)(s0->n + 1));
    if (!p->v[g] || !p->bid[g]) return mbsr_error(MBSR_ENOMEM, "paired plot: out of memory");
    char pl[64];
    snprintf(p->glab[g], 160, "%s%s%s µm", c0->test_data != MBSR_DS_AF ? mbsr_dataset_name(c0->test_data) : "",
             c0->test_data != MBSR_DS_AF ? " " : "", mbsr__pair_label(&c0->test_pair, "–", pl, sizeof pl));
    p->gl[g] = p->glab[g];
    snprintf(p->labels[k], 160, "cubic"), p->cl[k] = p->labels[k], k++;
    for (int b = 0; b < s0->n; b++) {
      p->v[g][b] = m ? s0->ssim[0][b] : s0->rmse[0][b];
      p->bid[g][b] = brain_index(p->brains, &p->nbrains, s0->brain[b]);
    }
    for (int c = 0, col = 1; c < e->n_cells; c++) {
      if (p->grp[c] != g) continue;
      for (int b = 0; b < s0->n; b++) { /* in the first cell's order of brains */
        int j = brain_pos(&rep->cs[c], s0->brain[b]);
        p->v[g][col * s0->n + b] = m ? rep->cs[c].ssim[1][j] : rep->cs[c].rmse[1][j];
      }
      net_label(e, &e->cells[c], p->labels[k], 160), p->cl[k] = p->labels[k], k++, col++;
    }
  }
  return 0;
}

/* Paired plot of metric m (0 RMSE, 1 SSIM): per group of cells sharing their cubic, cubic then each
 * cell's network, one line per brain. */
static int fig_paired(report *rep, int m, const char *out_png) {
  const int n = rep->e->n_cells;
  int nbr = 0;
  for (int c = 0; c < n; c++) nbr += rep->cs[c].present ? rep->cs[c].n : 0;
  paired_bufs p = {0};
  p.grp = calloc((size_t)n + 1, sizeof(int)), p.first = calloc((size_t)n + 1, sizeof(int)), p.ncol = calloc((size_t)n + 1, sizeof(int));
  p.nb = calloc((size_t)n + 1, sizeof(int)), p.bid = calloc((size_t)n + 1, sizeof(int *)), p.v = calloc((size_t)n + 1, sizeof(double *));
  p.labels = calloc(2 * (size_t)n + 2, sizeof *p.labels), p.glab = calloc((size_t)n + 1, sizeof *p.glab);
  p.cl = calloc(2 * (size_t)n + 2, sizeof(char *)), p.gl = calloc((size_t)n + 1, sizeof(char *));
  p.brains = calloc((size_t)nbr + 1, sizeof(char *));
  int rc = p.grp && p.first && p.ncol && p.nb && p.bid && p.v && p.labels && p.glab && p.cl && p.gl && p.brains
               ? 0
               : mbsr_error(MBSR_ENOMEM, "%s: out of memory", out_png);
  int ng = rc ? 0 : paired_groups(rep, m, p.grp, p.first, p.ncol);
  if (!rc) rc = paired_fill(rep, m, &p, ng);
  char title[256];
  snprintf(title, sizeof title, "%s: cubic → network, one line per brain%s", m == 0 ? "RMSE" : "SSIM", rep->synth ? " (SYNTHETIC)" : "");
  fig_paired_data d = {title, m == 0 ? "RMSE (brain mask, contract scale; lower is better)" : "SSIM (3-D, brain mask; higher is better)", ng, p.ncol, p.nb,
                       (const double *const *)p.v, (const int *const *)p.bid, p.gl, p.cl, p.nbrains, p.brains};
  if (!rc) rc = mbsr__fig_paired(&d, out_png);
  for (int g = 0; g < ng; g++) free(p.v[g]), free(p.bid[g]);
  free(p.grp), free(p.first), free(p.ncol), free(p.nb), free(p.bid), free(p.v), free(p.labels), free(p.glab), free(p.cl), free(p.gl);
  free(p.brains);
  return rc;
}

/* A cell's saved volume vol_<what>.nii.gz. */
static int cell_volume(const report *rep, int cell, const char *what, mbsr_volume **v) {
  char p[4096];
  int rc = mbsr_pathf(p, sizeof p, "%s/cells/%s/vol_%s.nii.gz", rep->dir, rep->e->cells[cell].name, what);
  return rc ? rc : mbsr_volume_read(p, NULL, v);
}

static int has_volumes(const report *rep, int c) {
  char vp[2800];
  return rep->cs[c].present && !mbsr_pathf(vp, sizeof vp, "%s/cells/%s/vol_sr.nii.gz", rep->dir, rep->e->cells[c].name) &&
         mbsr_file_exists(vp);
}

/* The line of the improvement figure a cell belongs to: cells that differ only in their number of
 * training samples share it. */
static int same_line(const mbsr_exp_cell *x, const mbsr_exp_cell *y) {
  return !strcmp(x->arch, y->arch) && mbsr_res_pair_equal(&x->train_pair, &y->train_pair) &&
         mbsr_res_pair_equal(&x->test_pair, &y->test_pair) && x->train_data == y->train_data &&
         x->test_data == y->test_data && x->finetune == y->finetune;
}

static void line_label(const mbsr_experiment *e, const mbsr_exp_cell *cl, char *lab, size_t n) {
  mbsr__sbuf b = {0};
  char trl[64], tel[64];
  mbsr__pair_label(&cl->train_pair, "–", trl, sizeof trl), mbsr__pair_label(&cl->test_pair, "–", tel, sizeof tel);
  if (!mbsr_res_pair_equal(&cl->train_pair, &cl->test_pair)) mbsr__sb_add(&b, "train %s, test %s µm", trl, tel);
  else mbsr__sb_add(&b, "%s µm", tel);
  if (e->s.n_arch > 1) mbsr__sb_add(&b, " %s", cl->arch);
  if (cl->train_data != MBSR_DS_AF || cl->test_data != MBSR_DS_AF)
    mbsr__sb_add(&b, " %s→%s", mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data));
  if (cl->finetune) mbsr__sb_add(&b, " +TL");
  snprintf(lab, n, "%s", b.s && !b.failed ? b.s : "");
  mbsr__sb_free(&b);
}

static int cmp_point(const void *a, const void *b) {
  const fig_improve_point *p = a, *q = b;
  return p->line != q->line ? p->line - q->line : (p->x > q->x) - (p->x < q->x);
}

/* Figure 4B-like: improvement over cubic in RMSE vs the number of training samples, one line per
 * resolution pair (and architecture, data, fine-tuning); only when some line has 2 or more sample
 * counts. Returns 1 when the figure is not wanted. */
static int fig_improvement(report *rep, const char *out_png) {
  const mbsr_experiment *e = rep->e;
  const int n = e->n_cells;
  fig_improve_point *pt = calloc((size_t)n + 1, sizeof *pt);
  int *first = calloc((size_t)n + 1, sizeof(int)), *cnt = calloc((size_t)n + 1, sizeof(int)), nl = 0, np = 0, want = 0;
  char(*labs)[160] = calloc((size_t)n + 1, sizeof *labs);
  const char **lp = calloc((size_t)n + 1, sizeof(char *));
  int rc = pt && first && cnt && labs && lp ? 0 : mbsr_error(MBSR_ENOMEM, "%s: out of memory", out_png);
  for (int c = 0; c < n && !rc; c++) {
    const cell_stats *s = &rep->cs[c];
    if (!s->present) continue;
    int l = 0;
    while (l < nl && !same_line(&e->cells[first[l]], &e->cells[c])) l++;
    if (l == nl) first[nl] = c, line_label(e, &e->cells[c], labs[nl], sizeof labs[0]), lp[nl] = labs[nl], nl++;
    want |= ++cnt[l] >= 2;
    fig_improve_point *p = &pt[np++];
    double pm = NAN, psd = NAN;
    if (e->table1) mbsr__paper_table1_num(&e->cells[c].train_pair, e->cells[c].samples, &pm, &psd);
    *p = (fig_improve_point){l, s->n, e->cells[c].samples, s->imp_mean, s->imp_lo, s->imp_hi, pm, psd, s->imp};
  }
  if (!rc && want) {
    qsort(pt, (size_t)np, sizeof *pt, cmp_point);
    char title[256];
    snprintf(title, sizeof title, "Improvement over cubic in RMSE (mean over brains)%s", rep->synth ? " - SYNTHETIC" : "");
    fig_improve_data d = {title, nl, lp, np, pt};
    rc = mbsr__fig_improvement(&d, out_png);
  }
  free(pt), free(first), free(cnt), free(labs), free(lp);
  return rc ? rc : want ? 0 : 1;
}

/* The montage's volumes on the SR contract's scale of the cubic volume (0..1, as the metrics see
 * them); when that fails (a constant volume), as stored with the reference's range. */
static void montage_scale(const report *rep, mbsr_volume **v, int nv, const mbsr_volume *cub, fig_montage_data *d) {
  double lo, hi;
  if (mbsr_norm_fit(cub, rep->e->s.norm_pct[0], rep->e->s.norm_pct[1], &lo, &hi) == 0) {
    for (int i = 0; i < nv; i++) mbsr_norm_map(v[i]->data, v[i]->data, mbsr_volume_nvox(v[i]), lo, hi);
    d->lo = 0, d->hi = 1, d->cb_label = "intensity (SR contract scale)";
    return;
  }
  mbsr_error_clear();
  float mn, mx;
  mbsr_volume_minmax(v[nv - 1], &mn, &mx);
  d->lo = mn, d->hi = mn + 0.95 * (mx - mn), d->cb_label = "intensity (as stored)";
}

static int same_dims(const mbsr_volume *a, const mbsr_volume *b, const char *cell) {
  if (a->nx == b->nx && a->ny == b->ny && a->nz == b->nz) return 0;
  return mbsr_error(MBSR_EFORMAT, "montage: cell %s: a saved volume is %lldx%lldx%lld, the HR reference %lldx%lldx%lld", cell,
                    (long long)a->nx, (long long)a->ny, (long long)a->nz, (long long)b->nx, (long long)b->ny, (long long)b->nz);
}

/* Figure 3-like montage: LR (nearest neighbour), cubic, the SR of each listed cell, HR; errors against HR. */
static int fig_montage(report *rep, const int *cells, int nc, const char *out_png) {
  const mbsr_experiment *e = rep->e;
  const int ncol = nc + 3;
  mbsr_volume *lr = NULL, **vs = calloc((size_t)ncol, sizeof *vs); /* LR (nn), cubic, SR..., HR */
  char(*titles)[96] = calloc((size_t)ncol, sizeof *titles);
  const char **tp = calloc((size_t)ncol, sizeof *tp);
  int rc = vs && titles && tp ? 0 : mbsr_error(MBSR_ENOMEM, "montage: out of memory");
  if (!rc) rc = cell_volume(rep, cells[0], "hr", &vs[ncol - 1]);
  if (!rc) rc = cell_volume(rep, cells[0], "lr", &lr);
  if (!rc) rc = cell_volume(rep, cells[0], "cubic", &vs[1]);
  if (!rc && !(vs[0] = mbsr__nearest_like(lr, vs[ncol - 1]))) rc = mbsr_error(MBSR_ENOMEM, "montage: out of memory");
  for (int c = 0; c < nc && !rc; c++) {
    rc = cell_volume(rep, cells[c], "sr", &vs[2 + c]);
    if (!rc) rc = same_dims(vs[2 + c], vs[ncol - 1], e->cells[cells[c]].name);
    const mbsr_exp_cell *cl = &e->cells[cells[c]];
    if (nc > 1 && e->s.n_arch > 1) snprintf(titles[2 + c], 96, "%s", cl->arch);
    else if (nc > 1 && e->s.n_samples > 1) snprintf(titles[2 + c], 96, "%s n=%d", cl->arch, cl->samples);
    else if (nc > 1) {
      char pn[MBSR_PAIR_NAME_MAX];
      snprintf(titles[2 + c], 96, "%s %s%s", cl->arch, mbsr_res_pair_name(&cl->train_pair, pn, sizeof pn), cl->finetune ? " +TL" : "");
    }
    else snprintf(titles[2 + c], 96, "%s", cl->arch);
  }
  if (!rc) rc = same_dims(vs[1], vs[ncol - 1], e->cells[cells[0]].name);
  if (!rc) {
    char pn[MBSR_PAIR_NAME_MAX];
    mbsr_res_pair_name(&e->cells[cells[0]].test_pair, pn, sizeof pn);
    snprintf(titles[0], 96, "LR %.*s µm", (int)strcspn(pn, "-"), pn);
    snprintf(titles[1], 96, "cubic");
    snprintf(titles[ncol - 1], 96, "HR %d µm", e->cells[cells[0]].test_pair.hr_um);
    for (int c = 0; c < ncol; c++) tp[c] = titles[c];
    char title[400];
    snprintf(title, sizeof title, "%s%s", e->title, rep->synth ? " - SYNTHETIC phantom" : "");
    fig_montage_data d = {title, (const mbsr_volume *const *)vs, tp, ncol, 0, 1, ""};
    montage_scale(rep, vs, ncol, vs[1], &d);
    rc = mbsr__fig_montage(&d, out_png);
  }
  for (int c = 0; c < ncol && vs; c++) mbsr_volume_free(vs[c]);
  free(vs), free(titles), free(tp);
  mbsr_volume_free(lr);
  return rc;
}

/* Figure 6C-like decorrelation curves of the central axial slice: cubic, network, HR of one cell. */
static int fig_decorr(report *rep, int cell, const char *out_png) {
  const char *keys[3] = {"cubic", "sr", "hr"}, *titles[3] = {"cubic", rep->e->cells[cell].arch, "HR"};
  mbsr_volume *v[3] = {NULL, NULL, NULL};
  int rc = 0;
  for (int m = 0; m < 3 && !rc; m++) rc = cell_volume(rep, cell, keys[m], &v[m]);
  if (!rc)
    rc = mbsr__fig_decorr(rep->synth ? " - SYNTHETIC phantom" : "", (const mbsr_volume *const *)v, keys, titles, 3,
                          rep->e->cells[cell].test_pair.hr_um, out_png);
  for (int m = 0; m < 3; m++) mbsr_volume_free(v[m]);
  return rc;
}

/* Figure 6F-G: voxel-wise AF vs T2w (only the T2w is co-registered with the AF template here; the
 * diffusion template is in another space), with correlation.csv: Pearson r inside the brain mask
 * AND over the whole volume (background included, which inflates r: the paper's 0.72 matches the
 * latter). Only for the transfer experiment with T2w cells; absent files: a warning, no figure. */
static int fig_af_t2w(report *rep) {
  const mbsr_experiment *e = rep->e;
  int want = 0;
  for (int c = 0; c < e->n_cells; c++) want |= e->cells[c].test_data == MBSR_DS_T2W && !strcmp(e->name, "transfer");
  if (!want || rep->nf >= MAX_FIGS) return 0;
  char pa[2400], pt[2400], pm[2400], png[2600], csv[2600];
  int rc = mbsr_pathf(pa, sizeof pa, "%s/ccf200_af_template.nii.gz", e->s.mri_dir);
  if (!rc) rc = mbsr_pathf(pt, sizeof pt, "%s/ccf200_t2w_dsurqe.nii.gz", e->s.mri_dir);
  if (!rc) rc = mbsr_pathf(pm, sizeof pm, "%s/ccf200_af_template_mask.nii.gz", e->s.mri_dir);
  if (!rc) rc = mbsr_pathf(png, sizeof png, "%s/fig_scatter_af_t2w.png", rep->dir);
  if (!rc) rc = mbsr_pathf(csv, sizeof csv, "%s/correlation.csv", rep->dir);
  if (rc) return rc;
  if (!mbsr_file_exists(pa) || !mbsr_file_exists(pt) || !mbsr_file_exists(pm)) {
    mbsr_warn("report: %s: co-registered AF/T2w files absent: no AF-vs-MRI figure", e->s.mri_dir);
    return 0;
  }
  mbsr_volume *af = NULL, *t2 = NULL, *m = NULL;
  rc = mbsr_volume_read(pa, NULL, &af);
  if (!rc) rc = mbsr_volume_read(pt, NULL, &t2);
  if (!rc) rc = mbsr_volume_read(pm, NULL, &m);
  if (!rc) rc = mbsr_volume_check_same_grid(af, pa, t2, pt);
  if (!rc) rc = mbsr_volume_check_same_grid(af, pa, m, pm);
  fig_scatter_data d = {.title = "AF vs T2w", .xlabel = "AF (Allen CCFv3 template, 200 um)", .ylabel = "T2w (DSURQE, as stored)"};
  if (!rc) rc = mbsr__fig_scatter(af, t2, m, &d, png);
  if (d.r_ok) {
    char t[2048];
    snprintf(t, sizeof t,
             "region,x,y,n,r,t,df,p\n"
             "brain mask (ccf200_af_template_mask),AF (ccf200_af_template),T2w (ccf200_t2w_dsurqe),%d,%.15g,%.15g,%.15g,%.15g\n"
             "whole volume (background included),AF (ccf200_af_template),T2w (ccf200_t2w_dsurqe),%d,%.15g,%.15g,%.15g,%.15g\n",
             d.r[0].n, d.r[0].r, d.r[0].t, d.r[0].df, d.r[0].p, d.r[1].n, d.r[1].r, d.r[1].t, d.r[1].df, d.r[1].p);
    int crc = mbsr_write_text_atomic(csv, t);
    if (!crc) rep->r_corr[0] = d.r[0].r, rep->r_corr[1] = d.r[1].r;
    if (!rc) rc = crc;
  }
  if (!rc) snprintf(rep->figs[rep->nf++], 256, "fig_scatter_af_t2w.png");
  mbsr_volume_free(af), mbsr_volume_free(t2), mbsr_volume_free(m);
  return rc;
}

/* The montage's cells: those sharing the test pair and data of the "main" cell (the first at 100 um
 * HR if any) that saved volumes, at most 6; their count (0: none). */
static int montage_cells(const report *rep, int *sel) {
  const mbsr_experiment *e = rep->e;
  int main_c = -1, ns = 0;
  for (int c = 0; c < e->n_cells; c++) {
    if (!has_volumes(rep, c)) continue;
    if (main_c < 0 || (e->cells[c].test_pair.hr_um == 100 && e->cells[main_c].test_pair.hr_um != 100)) main_c = c;
  }
  if (main_c < 0) return 0;
  const mbsr_exp_cell *mc = &e->cells[main_c];
  for (int c = 0; c < e->n_cells && ns < 6; c++)
    if (has_volumes(rep, c) && mbsr_res_pair_equal(&e->cells[c].test_pair, &mc->test_pair) &&
        e->cells[c].test_data == mc->test_data)
      sel[ns++] = c;
  return ns;
}

static void make_figures(report *rep) {
  char png[2600];
  if (!mbsr_pathf(png, sizeof png, "%s/fig_paired_rmse.png", rep->dir)) fig_done(rep, fig_paired(rep, 0, png), "fig_paired_rmse.png");
  if (!mbsr_pathf(png, sizeof png, "%s/fig_paired_ssim.png", rep->dir)) fig_done(rep, fig_paired(rep, 1, png), "fig_paired_ssim.png");
  if (!mbsr_pathf(png, sizeof png, "%s/fig_improvement.png", rep->dir)) {
    int r = fig_improvement(rep, png);
    if (r <= 0) fig_done(rep, r, "fig_improvement.png");
  }
  int sel[6], ns = montage_cells(rep, sel);
  if (ns > 0) {
    if (!mbsr_pathf(png, sizeof png, "%s/fig_montage.png", rep->dir)) fig_done(rep, fig_montage(rep, sel, ns, png), "fig_montage.png");
    if (!mbsr_pathf(png, sizeof png, "%s/fig_decorr.png", rep->dir)) fig_done(rep, fig_decorr(rep, sel[ns - 1], png), "fig_decorr.png");
  }
  if (fig_af_t2w(rep)) mbsr_warn("report: AF-vs-MRI figure not made: %s", mbsr_last_error()), rep->fig_failed++;
}

int mbsr_report_run(const mbsr_experiment *e, const mbsr_report_opts *o) {
  report *rep = calloc(1, sizeof *rep);
  if (!rep) return mbsr_error(MBSR_ENOMEM, "report: out of memory");
  rep->e = e, rep->o = o, rep->r_corr[0] = rep->r_corr[1] = NAN;
  int rc = mbsr_exp_dir(e, o->results, rep->dir, sizeof rep->dir);
  if (!rc && !(rep->cs = calloc((size_t)e->n_cells, sizeof *rep->cs))) rc = mbsr_error(MBSR_ENOMEM, "report: out of memory");
  if (!rc) rc = collect(rep);
  mbsr__sbuf md = {0}, rd = {0};
  if (!rc) {
    read_source(rep);
    rep->synth = is_synthetic(rep);
    rc = write_tables(rep, &md);
  }
  if (!rc && o->figures) make_figures(rep);
  if (!rc) {
    readme_input in = {rep->dir, rep->source, rep->synth, md.s, rep->figs, rep->nf, {rep->r_corr[0], rep->r_corr[1]}};
    mbsr__write_readme(e, o, rep->cs, &in, &rd);
    rc = write_file(rep, "README.md", &rd);
    if (!rc)
      mbsr_info("report: %s/README.md (table: %s/table.md, %d figure(s)%s)", rep->dir, rep->dir, rep->nf,
                rep->fig_failed ? ", some failed: see the warnings" : "");
  }
  mbsr__sb_free(&md), mbsr__sb_free(&rd);
  free(rep->cs);
  free(rep);
  return rc;
}
