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

/* stats.csv, table.csv, table.md (its text kept in md for the README). */
static int write_tables(report *rep, mbsr__sbuf *md) {
  const mbsr_experiment *e = rep->e;
  mbsr__holm_cells(rep->cs, e->n_cells);
  mbsr_welch an[2];
  int an_ok[2] = {0, 0}, all_tested = 1;
  for (int c = 0; c < e->n_cells; c++) all_tested &= !rep->cs[c].present || mbsr__tested(&rep->cs[c]);
  for (int m = 0; m < 2 && e->anova && all_tested; m++) an_ok[m] = mbsr__welch_cells(rep->cs, e->n_cells, m, &an[m]);
  mbsr__sbuf st = {0}, tb = {0};
  mbsr__write_stats_csv(e, rep->cs, an, an_ok, &st);
  mbsr__write_table_csv(e, rep->cs, &tb);
  mbsr__write_table_md(e, rep->cs, rep->synth, an, an_ok, md);
  int rc = write_file(rep, "stats.csv", &st);
  if (!rc) rc = write_file(rep, "table.csv", &tb);
  if (!rc) rc = write_file(rep, "table.md", md);
  mbsr__sb_free(&st), mbsr__sb_free(&tb);
  return rc;
}

/* ---------------------------------------------------------------- figures */
static void fig_done(report *rep, int rc, const char *name) {
  if (rc == 0 && rep->nf < MAX_FIGS) snprintf(rep->figs[rep->nf++], 256, "%s", name);
  else if (rc) mbsr_warn("report: figure %s not made: %s", name, mbsr_last_error()), rep->fig_failed++;
}

/* A cell's label on the figures' x axis. */
static void cell_label(const mbsr_exp_cell *cl, int net, char *lab, size_t n) {
  mbsr__sbuf b = {0};
  mbsr__sb_add(&b, "%s", net ? cl->arch : "cubic");
  if (net && (cl->train_lr_um != cl->test_lr_um || cl->train_hr_um != cl->test_hr_um))
    mbsr__sb_add(&b, " tr%d-%d", cl->train_lr_um, cl->train_hr_um);
  mbsr__sb_add(&b, " %d-%d", cl->test_lr_um, cl->test_hr_um);
  if (net) mbsr__sb_add(&b, " n%d", cl->samples);
  if (cl->test_data != MBSR_DS_AF) mbsr__sb_add(&b, " %s", mbsr_dataset_name(cl->test_data));
  if (net && cl->train_data != MBSR_DS_AF) mbsr__sb_add(&b, " from %s", mbsr_dataset_name(cl->train_data));
  if (net && cl->finetune) mbsr__sb_add(&b, " +TL");
  snprintf(lab, n, "%s", b.s && !b.failed ? b.s : "");
  mbsr__sb_free(&b);
}

/* Paired plot of metric m (0 RMSE, 1 SSIM): per present cell, cubic and network, one line per brain. */
static int fig_paired(report *rep, int m, const char *out_png) {
  const mbsr_experiment *e = rep->e;
  int n = e->n_cells, ng = 0;
  int *npts = calloc((size_t)n + 1, sizeof *npts);
  const double **a = calloc((size_t)n + 1, sizeof *a), **b = calloc((size_t)n + 1, sizeof *b);
  char(*labels)[160] = calloc(2 * (size_t)n + 2, sizeof *labels);
  const char **la = calloc((size_t)n + 1, sizeof *la), **lb = calloc((size_t)n + 1, sizeof *lb);
  int rc = npts && a && b && labels && la && lb ? 0 : mbsr_error(MBSR_ENOMEM, "%s: out of memory", out_png);
  for (int c = 0; c < n && !rc; c++) {
    const cell_stats *s = &rep->cs[c];
    if (!s->present) continue;
    npts[ng] = s->n;
    a[ng] = m == 0 ? s->rmse[0] : s->ssim[0];
    b[ng] = m == 0 ? s->rmse[1] : s->ssim[1];
    cell_label(&e->cells[c], 0, labels[2 * ng], sizeof labels[0]);
    cell_label(&e->cells[c], 1, labels[2 * ng + 1], sizeof labels[0]);
    la[ng] = labels[2 * ng], lb[ng] = labels[2 * ng + 1];
    ng++;
  }
  char title[256];
  snprintf(title, sizeof title, "%s per brain (one line per brain: cubic -> network)%s",
           m == 0 ? "RMSE (brain mask, contract scale)" : "SSIM (3-D, brain mask)", rep->synth ? " - SYNTHETIC" : "");
  fig_paired_data d = {title, m == 0 ? "RMSE" : "SSIM", ng, npts, a, b, la, lb};
  if (!rc) rc = mbsr__fig_paired(&d, out_png);
  free(npts), free(a), free(b), free(labels), free(la), free(lb);
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

/* Figure 3-like montage: LR (nearest neighbour), cubic, the SR of each listed cell, HR. */
static int fig_montage(report *rep, const int *cells, int nc, const char *out_png) {
  const mbsr_experiment *e = rep->e;
  const int ncol = nc + 3;
  mbsr_volume *hr = NULL, *lr = NULL, *cub = NULL, *lrn = NULL;
  const mbsr_volume **cols = calloc((size_t)ncol, sizeof *cols);
  mbsr_volume **srs = calloc((size_t)nc, sizeof *srs);
  char(*titles)[96] = calloc((size_t)ncol, sizeof *titles);
  const char **tp = calloc((size_t)ncol, sizeof *tp);
  int rc = cols && srs && titles && tp ? 0 : mbsr_error(MBSR_ENOMEM, "montage: out of memory");
  if (!rc) rc = cell_volume(rep, cells[0], "hr", &hr);
  if (!rc) rc = cell_volume(rep, cells[0], "lr", &lr);
  if (!rc) rc = cell_volume(rep, cells[0], "cubic", &cub);
  if (!rc && !(lrn = mbsr__nearest_like(lr, hr))) rc = mbsr_error(MBSR_ENOMEM, "montage: out of memory");
  for (int c = 0; c < nc && !rc; c++) {
    rc = cell_volume(rep, cells[c], "sr", &srs[c]);
    const mbsr_exp_cell *cl = &e->cells[cells[c]];
    if (nc > 1 && e->s.n_arch > 1) snprintf(titles[2 + c], 96, "%s", cl->arch);
    else if (nc > 1 && e->s.n_samples > 1) snprintf(titles[2 + c], 96, "%s n=%d", cl->arch, cl->samples);
    else if (nc > 1) snprintf(titles[2 + c], 96, "%s %d-%d", cl->arch, cl->train_lr_um, cl->train_hr_um);
    else snprintf(titles[2 + c], 96, "%s", cl->arch);
    cols[2 + c] = srs[c];
  }
  if (!rc) {
    cols[0] = lrn, cols[1] = cub, cols[ncol - 1] = hr;
    snprintf(titles[0], 96, "LR %d um", e->cells[cells[0]].test_lr_um);
    snprintf(titles[1], 96, "cubic");
    snprintf(titles[ncol - 1], 96, "HR %d um", e->cells[cells[0]].test_hr_um);
    for (int c = 0; c < ncol; c++) tp[c] = titles[c];
    char title[400];
    snprintf(title, sizeof title, "%s%s", e->title, rep->synth ? " - SYNTHETIC phantom" : "");
    rc = mbsr__fig_montage(title, cols, tp, ncol, out_png);
  }
  for (int c = 0; c < nc && srs; c++) mbsr_volume_free(srs[c]);
  free(srs), free(cols), free(titles), free(tp);
  mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(cub), mbsr_volume_free(lrn);
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
                          rep->e->cells[cell].test_hr_um, out_png);
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
    if (main_c < 0 || (e->cells[c].test_hr_um == 100 && e->cells[main_c].test_hr_um != 100)) main_c = c;
  }
  if (main_c < 0) return 0;
  const mbsr_exp_cell *mc = &e->cells[main_c];
  for (int c = 0; c < e->n_cells && ns < 6; c++)
    if (has_volumes(rep, c) && e->cells[c].test_lr_um == mc->test_lr_um && e->cells[c].test_hr_um == mc->test_hr_um &&
        e->cells[c].test_data == mc->test_data)
      sel[ns++] = c;
  return ns;
}

static void make_figures(report *rep) {
  char png[2600];
  if (!mbsr_pathf(png, sizeof png, "%s/fig_paired_rmse.png", rep->dir)) fig_done(rep, fig_paired(rep, 0, png), "fig_paired_rmse.png");
  if (!mbsr_pathf(png, sizeof png, "%s/fig_paired_ssim.png", rep->dir)) fig_done(rep, fig_paired(rep, 1, png), "fig_paired_ssim.png");
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
