/* mbsr report: aggregate an experiment's finished cells.
 *  - per cell and method: mean +- sd (n-1) of RMSE, SSIM, PSNR and effective resolution;
 *  - per cell: paired two-sided t-tests of the network against cubic over the test subjects
 *    (RMSE and SSIM; R t.test(net, cubic, paired = TRUE)); improvement over cubic in RMSE, % =
 *    100 (RMSE_cubic - RMSE_net) / RMSE_cubic per subject, mean +- sd;
 *  - Welch's one-way ANOVA (R oneway.test(var.equal = FALSE)) across cubic and every cell's
 *    network, on RMSE and SSIM, when the experiment file asks for it (report.anova);
 *  - table.md / table.csv (Table 1 layout when report.table1), stats.csv (every test, full
 *    precision), figures (gnuplot pngcairo) and README.md.
 * Statistics come from mbsr/stats.h (GSL distributions). */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"
#include "mbsr/decorr.h"
#include "mbsr/stats.h"

#define MAXSUB 512

typedef struct {
  int present;
  int n;                           /* paired subjects */
  char subj[MAXSUB][128];
  double rmse[2][MAXSUB], ssim[2][MAXSUB], psnr[2][MAXSUB], res[3][MAXSUB]; /* [0] cubic [1] net [2] hr */
  double imp[MAXSUB];
  mbsr_ttest t_rmse, t_ssim;
  int ok_rmse, ok_ssim;
} cell_stats;

static int read_cell(const char *path, const mbsr_exp_cell *c, cell_stats *cs) {
  mbsr_csv *t = NULL;
  int rc = mbsr_csv_read(path, &t);
  if (rc) return rc;
  int cs_ = mbsr_csv_col(t, "subject"), cm = mbsr_csv_col(t, "method"), cr = mbsr_csv_col(t, "rmse"),
      css = mbsr_csv_col(t, "ssim"), cp = mbsr_csv_col(t, "psnr"), cres = mbsr_csv_col(t, "res_um");
  if (cs_ < 0 || cm < 0 || cr < 0 || css < 0 || cp < 0 || cres < 0) {
    mbsr_csv_free(t);
    return MBSR_EFORMAT;
  }
  double *r = malloc(sizeof(double) * (size_t)(t->nrows + 1) * 4);
  double *s = r + t->nrows + 1, *p = s + t->nrows + 1, *res = p + t->nrows + 1;
  /* numbers (nan and inf allowed: the HR reference against itself has PSNR inf) */
  const int cols[4] = {cr, css, cp, cres};
  double *dst[4] = {r, s, p, res};
  for (int i = 0; i < t->nrows && !rc; i++)
    for (int j = 0; j < 4 && !rc; j++) {
      const char *txt = t->cells[i * t->ncols + cols[j]];
      char *end;
      dst[j][i] = strtod(txt, &end);
      if (end == txt || *end) rc = mbsr_error(MBSR_EFORMAT, "%s:%d: '%s' is not a number", path, t->line[i], txt);
    }
  cs->n = 0;
  for (int i = 0; i < t->nrows && !rc; i++) {
    const char *sub = t->cells[i * t->ncols + cs_], *meth = t->cells[i * t->ncols + cm];
    int w = !strcmp(meth, "cubic") ? 0 : !strcmp(meth, "hr") ? 2 : 1;
    int k;
    for (k = 0; k < cs->n; k++)
      if (!strcmp(cs->subj[k], sub)) break;
    if (k == cs->n) {
      if (cs->n >= MAXSUB) {
        rc = mbsr_error(MBSR_ERANGE, "%s: too many subjects", path);
        break;
      }
      snprintf(cs->subj[cs->n++], 128, "%s", sub);
      cs->rmse[0][k] = cs->rmse[1][k] = NAN;
    }
    if (w < 2) {
      cs->rmse[w][k] = r[i];
      cs->ssim[w][k] = s[i];
      cs->psnr[w][k] = p[i];
    }
    cs->res[w][k] = res[i];
  }
  (void)c;
  free(r);
  mbsr_csv_free(t);
  if (rc) return rc;
  for (int k = 0; k < cs->n; k++) {
    if (isnan(cs->rmse[0][k]) || isnan(cs->rmse[1][k])) return mbsr_error(MBSR_EFORMAT, "%s: subject %s lacks cubic or network rows", path, cs->subj[k]);
    cs->imp[k] = 100.0 * (cs->rmse[0][k] - cs->rmse[1][k]) / cs->rmse[0][k];
  }
  cs->ok_rmse = cs->n >= 2 && mbsr_ttest_paired(cs->rmse[1], cs->rmse[0], cs->n, &cs->t_rmse) == 0;
  cs->ok_ssim = cs->n >= 2 && mbsr_ttest_paired(cs->ssim[1], cs->ssim[0], cs->n, &cs->t_ssim) == 0;
  mbsr_error_clear();
  cs->present = 1;
  return 0;
}

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

static void pfmt(int ok, double p, char *b, size_t n) {
  if (!ok) snprintf(b, n, "n/a");
  else if (p < 1e-4) snprintf(b, n, "%.1e", p);
  else snprintf(b, n, "%.4f", p);
}

/* The AF data of this run came from the phantom (and the experiment uses AF data at all). */
static int is_synthetic_e(const mbsr_experiment *e, const char *dir) {
  int af = 0;
  for (int c = 0; c < e->n_cells; c++) af |= e->cells[c].train_data == MBSR_DS_AF || e->cells[c].test_data == MBSR_DS_AF;
  if (!af) return 0;
  char p[2400];
  snprintf(p, sizeof p, "%s/data/SOURCE.txt", dir);
  FILE *f = fopen(p, "r");
  if (!f) return 1;
  char line[4096] = "";
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  fclose(f);
  return strstr(line, "phantom") != NULL;
}

/* ---- figures through gnuplot ---- */
/* "DIR/fig_x.png" -> "DIR/fig_src/fig_x.png<suffix>" (gnuplot scripts and data kept for reuse). */
static void src_path(const char *png, const char *suffix, char *buf, size_t n) {
  const char *sl = strrchr(png, '/');
  int dl = sl ? (int)(sl - png) : 0;
  char d[4096];
  snprintf(d, sizeof d, "%.*s%sfig_src", dl, png, sl ? "/" : "");
  mbsr_mkdir_p(d);
  snprintf(buf, n, "%s/%s%s", d, sl ? sl + 1 : png, suffix);
}

/* Run a figure script (it sets the terminal, not the output): gnuplot writes a temporary PNG that is
 * renamed to out_png when complete. Re-run by hand: gnuplot -e "set output 'x.png'" fig_src/x.png.gp */
int mbsr__run_gnuplot(const char *script_path, const char *out_png) {
  char tmp[4200], cmd[9000];
  int rc = mbsr_tmp_path(out_png, tmp, sizeof tmp);
  if (rc) return rc;
  snprintf(cmd, sizeof cmd, "gnuplot -e \"set output '%s'\" '%s' 2>'%s.log'", tmp, script_path, script_path);
  int st = system(cmd);
  if (st != 0 || !mbsr_file_exists(tmp)) {
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "gnuplot failed on %s (see %s.log)", script_path, script_path);
  }
  return mbsr_commit_file(tmp, out_png);
}

static int write_slice_bin(const char *path, const mbsr_volume *v, int axis, int64_t idx, int64_t x0, int64_t y0,
                           int64_t w, int64_t h) {
  /* axis 2: image (i, j) at k = idx; axis 1: image (i, k) at j = idx. */
  FILE *f = fopen(path, "wb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", path);
  for (int64_t y = y0; y < y0 + h; y++)
    for (int64_t x = x0; x < x0 + w; x++) {
      int64_t i = x, j = axis == 2 ? y : idx, k = axis == 2 ? idx : y;
      float val = v->data[i + v->nx * (j + v->ny * k)];
      fwrite(&val, 4, 1, f);
    }
  fclose(f);
  return 0;
}

/* LR shown on the HR grid by nearest neighbour (blocky, as in the paper's Figure 3). */
static mbsr_volume *nearest_like(const mbsr_volume *lr, const mbsr_volume *hr) {
  mbsr_volume *o = mbsr_volume_new_like(hr);
  if (!o) return NULL;
  int64_t f[3] = {hr->nx / (lr->nx ? lr->nx : 1), hr->ny / (lr->ny ? lr->ny : 1), hr->nz / (lr->nz ? lr->nz : 1)};
  for (int a = 0; a < 3; a++)
    if (f[a] < 1) f[a] = 1;
  for (int64_t k = 0; k < hr->nz; k++)
    for (int64_t j = 0; j < hr->ny; j++)
      for (int64_t i = 0; i < hr->nx; i++) {
        int64_t a = i / f[0], b = j / f[1], c = k / f[2];
        a = a < lr->nx ? a : lr->nx - 1, b = b < lr->ny ? b : lr->ny - 1, c = c < lr->nz ? c : lr->nz - 1;
        o->data[i + hr->nx * (j + hr->ny * k)] = lr->data[a + lr->nx * (b + lr->ny * c)];
      }
  return o;
}

/* Figure 3-like montage: columns LR, cubic, SR of each listed cell, HR; rows: axial (k mid),
 * coronal (j mid), zoom of the axial. */
static int fig_montage(const mbsr_experiment *e, const char *dir, const int *cells, int nc, const char *out_png) {
  char p[4096];
  mbsr_volume *hr = NULL, *lr = NULL, *cub = NULL, *lrn = NULL;
  snprintf(p, sizeof p, "%s/cells/%s/vol_hr.nii.gz", dir, e->cells[cells[0]].name);
  int rc = mbsr_volume_read(p, NULL, &hr);
  snprintf(p, sizeof p, "%s/cells/%s/vol_lr.nii.gz", dir, e->cells[cells[0]].name);
  if (!rc) rc = mbsr_volume_read(p, NULL, &lr);
  snprintf(p, sizeof p, "%s/cells/%s/vol_cubic.nii.gz", dir, e->cells[cells[0]].name);
  if (!rc) rc = mbsr_volume_read(p, NULL, &cub);
  if (!rc && !(lrn = nearest_like(lr, hr))) rc = mbsr_error(MBSR_ENOMEM, "montage: out of memory");
  int ncol = nc + 3;
  const mbsr_volume **cols = calloc((size_t)ncol, sizeof *cols);
  mbsr_volume **srs = calloc((size_t)nc, sizeof *srs);
  char(*titles)[96] = calloc((size_t)ncol, sizeof *titles);
  if (!rc) {
    cols[0] = lrn;
    snprintf(titles[0], 96, "LR %d um", e->cells[cells[0]].test_lr_um);
    cols[1] = cub;
    snprintf(titles[1], 96, "cubic");
    for (int c = 0; c < nc && !rc; c++) {
      snprintf(p, sizeof p, "%s/cells/%s/vol_sr.nii.gz", dir, e->cells[cells[c]].name);
      rc = mbsr_volume_read(p, NULL, &srs[c]);
      cols[2 + c] = srs[c];
      const mbsr_exp_cell *cl = &e->cells[cells[c]];
      if (nc > 1 && e->s.n_arch > 1) snprintf(titles[2 + c], 96, "%s", cl->arch);
      else if (nc > 1 && e->s.n_samples > 1) snprintf(titles[2 + c], 96, "%s n=%d", cl->arch, cl->samples);
      else if (nc > 1) snprintf(titles[2 + c], 96, "%s %d-%d", cl->arch, cl->train_lr_um, cl->train_hr_um);
      else snprintf(titles[2 + c], 96, "%s", cl->arch);
    }
    cols[ncol - 1] = hr;
    snprintf(titles[ncol - 1], 96, "HR %d um", e->cells[cells[0]].test_hr_um);
  }
  char gp[4200];
  src_path(out_png, ".gp", gp, sizeof gp);
  FILE *g = NULL;
  if (!rc && !(g = fopen(gp, "w"))) rc = mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  if (!rc) {
    int64_t nx = hr->nx, ny = hr->ny, nz = hr->nz;
    int64_t kz = nz / 2 + nz / 10, jy = ny / 2;
    int64_t zw = nx / 3 > 8 ? nx / 3 : nx, zh = ny / 4 > 8 ? ny / 4 : ny, zx = 0, zy = 0;
    /* zoom box: the window of the HR axial slice with the most gradient energy (the finest detail) */
    double best = -1;
    const float *sl = hr->data + nx * ny * kz;
    for (int64_t y0 = 0; y0 + zh <= ny; y0 += 2)
      for (int64_t x0 = 0; x0 + zw <= nx; x0 += 2) {
        double en = 0;
        for (int64_t y = y0; y < y0 + zh - 1; y++)
          for (int64_t x = x0; x < x0 + zw - 1; x++) {
            double gx = sl[x + 1 + nx * y] - sl[x + nx * y], gy = sl[x + nx * (y + 1)] - sl[x + nx * y];
            en += gx * gx + gy * gy;
          }
        if (en > best) best = en, zx = x0, zy = y0;
      }
    /* display window from the HR reference inside the brain */
    float mn, mx;
    mbsr_volume_minmax(hr, &mn, &mx);
    /* panels placed by hand: every row as tall as its images' aspect needs (+ a title band) */
    const double pw = 200.0, tb = 22.0, head = 34.0;
    double rh[3] = {pw * (double)ny / nx + tb, pw * (double)nz / nx + tb, pw * (double)zh / zw + tb};
    double cw = pw * ncol, ch = head + rh[0] + rh[1] + rh[2];
    fprintf(g, "set terminal pngcairo size %d,%d font 'sans,10'\n", (int)cw, (int)ch);
    fprintf(g, "set palette gray\nunset colorbox\nunset key\nunset tics\nunset border\nset cbrange [%g:%g]\n", mn, mx * 0.95);
    fprintf(g, "set multiplot title \"%s%s\"\n", e->title, is_synthetic_e(e, dir) ? " - SYNTHETIC phantom" : "");
    double ytop = ch - head;
    for (int row = 0; row < 3; row++) {
      ytop -= rh[row];
      for (int c = 0; c < ncol; c++) {
        char bin[4400];
        char suf[32];
        snprintf(suf, sizeof suf, ".r%dc%d.bin", row, c);
        src_path(out_png, suf, bin, sizeof bin);
        int64_t w = row == 2 ? zw : nx, h = row == 0 ? ny : row == 1 ? nz : zh;
        if (row == 0) rc = write_slice_bin(bin, cols[c], 2, kz, 0, 0, nx, ny);
        else if (row == 1) rc = write_slice_bin(bin, cols[c], 1, jy, 0, 0, nx, nz);
        else rc = write_slice_bin(bin, cols[c], 2, kz, zx, zy, zw, zh);
        if (rc) break;
        fprintf(g, "set origin %.5f,%.5f\nset size %.5f,%.5f\n", c * pw / cw, ytop / ch, pw / cw, rh[row] / ch);
        fprintf(g, "set lmargin at screen %.5f\nset rmargin at screen %.5f\nset bmargin at screen %.5f\nset tmargin at screen %.5f\n",
                (c * pw + 2) / cw, ((c + 1) * pw - 2) / cw, (ytop + 1) / ch, (ytop + rh[row] - tb) / ch);
        fprintf(g, "set title \"%s\" offset 0,-0.3\nset xrange [-0.5:%g]\nset yrange [-0.5:%g]\n",
                row == 0 ? titles[c] : row == 1 ? (c == 0 ? "coronal" : "") : (c == 0 ? "zoom (red box)" : ""), w - 0.5, h - 0.5);
        if (row == 0 && c == ncol - 1)
          fprintf(g, "set object 1 rectangle from %g,%g to %g,%g front fillstyle empty border rgb 'red' lw 2\n",
                  zx - 0.5, zy - 0.5, zx + zw - 0.5, zy + zh - 0.5);
        fprintf(g, "plot '%s' binary array=(%lld,%lld) format='%%float' with image\n", bin, (long long)w, (long long)h);
        if (row == 0 && c == ncol - 1) fprintf(g, "unset object 1\n");
      }
    }
    fprintf(g, "unset multiplot\n");
  }
  if (g) fclose(g);
  if (!rc) rc = mbsr__run_gnuplot(gp, out_png);
  for (int c = 0; c < nc; c++) mbsr_volume_free(srs[c]);
  free(srs), free(cols), free(titles);
  mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(cub), mbsr_volume_free(lrn);
  return rc;
}

/* Figure 4-like box plots: one box per group (cubic of the first cell, then each cell's network). */
static int fig_box(const mbsr_experiment *e, const char *dir, const cell_stats *cs, int metric, const char *out_png) {
  char dat[4200], gp[4200];
  src_path(out_png, ".dat", dat, sizeof dat);
  src_path(out_png, ".gp", gp, sizeof gp);
  FILE *f = fopen(dat, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", dat);
  int ng = 0;
  /* per cell: cubic then network, side by side */
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    for (int w = 0; w < 2; w++) {
      for (int k = 0; k < cs[c].n; k++)
        fprintf(f, "%d %.9g\n", ng, metric == 0 ? cs[c].rmse[w][k] : cs[c].ssim[w][k]);
      ng++;
    }
  }
  fclose(f);
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  fprintf(g, "set terminal pngcairo size %d,480 font 'sans,10'\n", 160 + 70 * ng);
  fprintf(g, "set title \"%s per test subject%s\"\nset ylabel '%s'\nunset key\nset style fill solid 0.4 border -1\n"
             "set style boxplot outliers pointtype 7\nset boxwidth 0.6\nset xtics rotate by -35 font ',8'\n",
          metric == 0 ? "RMSE (brain mask, [0,1] intensities)" : "SSIM (3-D, brain mask)",
          is_synthetic_e(e, dir) ? " - SYNTHETIC phantom" : "", metric == 0 ? "RMSE" : "SSIM");
  fprintf(g, "set xrange [-0.7:%g]\nset xtics (", ng - 0.3);
  int gi = 0;
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    for (int w = 0; w < 2; w++) {
      const mbsr_exp_cell *cl = &e->cells[c];
      char lab[128];
      int ll = snprintf(lab, sizeof lab, "%s", w ? cl->arch : "cubic");
      if (w && (cl->train_lr_um != cl->test_lr_um || cl->train_hr_um != cl->test_hr_um))
        ll += snprintf(lab + ll, sizeof lab - ll, " tr%d-%d", cl->train_lr_um, cl->train_hr_um);
      ll += snprintf(lab + ll, sizeof lab - ll, " %d-%d", cl->test_lr_um, cl->test_hr_um);
      if (w) ll += snprintf(lab + ll, sizeof lab - ll, " n%d", cl->samples);
      if (cl->test_data != MBSR_DS_AF) ll += snprintf(lab + ll, sizeof lab - ll, " %s", mbsr_dataset_name(cl->test_data));
      if (w && cl->train_data != MBSR_DS_AF) ll += snprintf(lab + ll, sizeof lab - ll, " from %s", mbsr_dataset_name(cl->train_data));
      if (w && cl->finetune) snprintf(lab + ll, sizeof lab - ll, " +TL");
      fprintf(g, "%s\"%s\" %d", gi ? ", " : "", lab, gi);
      gi++;
    }
  }
  fprintf(g, ")\nplot for [i=0:%d] '%s' using (i):($1 == i ? $2 : NaN) with boxplot lc (i %% 2 ? 7 : 3), "
             "'%s' using 1:2 with points pt 7 ps 0.5 lc rgb 'black'\n",
          ng - 1, dat, dat);
  fclose(g);
  /* gnuplot boxplot with a factor column: "using (x):y:(width):factor" groups by factor */
  return mbsr__run_gnuplot(gp, out_png);
}

/* Figure 6C-like decorrelation curves of the central axial slice: cubic, network, HR. */
static int fig_decorr(const mbsr_experiment *e, const char *dir, int cell, const char *out_png) {
  const char *what[3] = {"cubic", "sr", "hr"};
  char title[3][64];
  snprintf(title[0], 64, "cubic");
  snprintf(title[1], 64, "%s", e->cells[cell].arch);
  snprintf(title[2], 64, "HR");
  char dat[3][4200], gp[4200];
  double kcs[3] = {0};
  int rc = 0, ngc = 10;
  for (int m = 0; m < 3 && !rc; m++) {
    char p[4096];
    mbsr_volume *v = NULL;
    snprintf(p, sizeof p, "%s/cells/%s/vol_%s.nii.gz", dir, e->cells[cell].name, what[m]);
    if ((rc = mbsr_volume_read(p, NULL, &v))) break;
    mbsr_decorr_opts o;
    mbsr_decorr_opts_default(&o);
    o.px = v->vox[0];
    mbsr_decorr_curves *cv = mbsr_decorr_curves_new(o.nr, o.ng);
    if (!cv) {
      mbsr_volume_free(v);
      rc = mbsr_error(MBSR_ENOMEM, "decorr curves: out of memory");
      break;
    }
    ngc = cv->ng;
    mbsr_decorr_result r;
    int64_t k = v->nz / 2 + v->nz / 10;
    rc = mbsr_decorr_2d(v->data + v->nx * v->ny * k, v->nx, v->ny, &o, &r, cv);
    if (!rc) {
      kcs[m] = r.kc_max;
      char suf[32];
      snprintf(suf, sizeof suf, ".%s.dat", what[m]);
      src_path(out_png, suf, dat[m], sizeof dat[m]);
      FILE *f = fopen(dat[m], "w");
      if (!f) rc = mbsr_error(MBSR_EIO, "%s: cannot write", dat[m]);
      else {
        /* block 0: d0; blocks 1..: high-pass curves (first pass on r1, refined on r2) */
        for (int i = 0; i < cv->nr; i++) fprintf(f, "%g %g\n", cv->r1[i], cv->d0[i]);
        for (int c = 0; c < 2 * cv->ng + 1; c++) {
          fprintf(f, "\n\n");
          const double *rr = c <= cv->ng ? cv->r1 : cv->r2;
          for (int i = 0; i < cv->nr; i++) fprintf(f, "%g %g\n", rr[i], cv->d[c * cv->nr + i]);
        }
        fclose(f);
      }
    }
    mbsr_decorr_curves_free(cv);
    mbsr_volume_free(v);
  }
  if (rc) return rc;
  src_path(out_png, ".gp", gp, sizeof gp);
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  fprintf(g, "set terminal pngcairo size 1200,400 font 'sans,10'\nset multiplot layout 1,3 title "
             "\"Decorrelation analysis, central axial slice%s (gray: high-pass curves, blue: d0, red: kc)\"\n",
          is_synthetic_e(e, dir) ? " - SYNTHETIC phantom" : "");
  for (int m = 0; m < 3; m++) {
    fprintf(g, "set title \"%s: kc = %.3f, resolution = %.0f um\"\nset xlabel 'normalised frequency'\nset ylabel 'd'\n"
               "set xrange [0:1]\nset yrange [0:*]\nunset key\nset arrow 1 from %g, graph 0 to %g, graph 1 nohead lc rgb 'red' lw 2\n",
            title[m], kcs[m], kcs[m] > 0 ? 2000.0 * e->cells[cell].test_hr_um / 1000.0 / kcs[m] : INFINITY, kcs[m], kcs[m]);
    fprintf(g, "plot for [b=1:%d] '%s' index b using 1:2 with lines lc rgb '#999999', '%s' index 0 using 1:2 with lines lw 2 lc rgb 'blue'\n",
            2 * ngc + 1, dat[m], dat[m]);
  }
  fprintf(g, "unset multiplot\n");
  fclose(g);
  return mbsr__run_gnuplot(gp, out_png);
}

/* ---- the report ---- */
int mbsr_report_run(const mbsr_experiment *e, const mbsr_report_opts *o) {
  char dir[2048];
  int rc = mbsr_exp_dir(e, o->results, dir, sizeof dir);
  if (rc) return rc;
  cell_stats *cs = calloc((size_t)e->n_cells, sizeof *cs);
  if (!cs) return mbsr_error(MBSR_ENOMEM, "out of memory");
  int npresent = 0;
  for (int c = 0; c < e->n_cells && !rc; c++) {
    char p[2600];
    snprintf(p, sizeof p, "%s/cells/%s/done", dir, e->cells[c].name);
    int st = mbsr__cell_state(e, o->results, c);
    if (st == 0) {
      mbsr_warn("report: cell %s is not finished (no %s): left out", e->cells[c].name, p);
      continue;
    }
    if (st < 0) {
      mbsr_warn("report: cell %s was computed with other parameters than %s now gives (run mbsr sweep): left out",
                e->cells[c].name, e->path);
      continue;
    }
    snprintf(p, sizeof p, "%s/cells/%s/metrics.csv", dir, e->cells[c].name);
    rc = read_cell(p, &e->cells[c], &cs[c]);
    npresent += cs[c].present;
  }
  if (!rc && npresent == 0) rc = mbsr_error(MBSR_EINVAL, "no finished cell in %s (run mbsr sweep first)", dir);
  if (rc) {
    free(cs);
    return rc;
  }
  const int synth = is_synthetic_e(e, dir);
  /* Welch ANOVA across cubic (first present cell) + every cell's network */
  mbsr_welch an[2];
  int an_ok[2] = {0, 0};
  if (e->anova) {
    int tot = 0, first = -1;
    for (int c = 0; c < e->n_cells; c++)
      if (cs[c].present) tot += cs[c].n, first = first < 0 ? c : first;
    tot += cs[first].n;
    double *y = malloc(sizeof(double) * (size_t)tot);
    int *gg = malloc(sizeof(int) * (size_t)tot);
    for (int m = 0; m < 2; m++) {
      int n = 0, gi = 0;
      for (int k = 0; k < cs[first].n; k++) y[n] = m ? cs[first].ssim[0][k] : cs[first].rmse[0][k], gg[n++] = 0;
      for (int c = 0; c < e->n_cells; c++) {
        if (!cs[c].present) continue;
        gi++;
        for (int k = 0; k < cs[c].n; k++) y[n] = m ? cs[c].ssim[1][k] : cs[c].rmse[1][k], gg[n++] = gi;
      }
      an_ok[m] = gi >= 1 && mbsr_welch_anova(y, gg, n, &an[m]) == 0;
      mbsr_error_clear();
    }
    free(y), free(gg);
  }
  /* stats.csv: every test at full precision */
  size_t cap = 4096 + (size_t)e->n_cells * 2048;
  char *t = malloc(cap);
  size_t l = (size_t)snprintf(t, cap, "test,cell,metric,n,statistic,df1,df2,p,mean_diff,sd_diff\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    if (cs[c].ok_rmse)
      l += (size_t)snprintf(t + l, cap - l, "paired_t,%s,rmse,%d,%.15g,%.15g,,%.15g,%.15g,%.15g\n", e->cells[c].name,
                            cs[c].n, cs[c].t_rmse.t, cs[c].t_rmse.df, cs[c].t_rmse.p, cs[c].t_rmse.mean_diff, cs[c].t_rmse.sd_diff);
    if (cs[c].ok_ssim)
      l += (size_t)snprintf(t + l, cap - l, "paired_t,%s,ssim,%d,%.15g,%.15g,,%.15g,%.15g,%.15g\n", e->cells[c].name,
                            cs[c].n, cs[c].t_ssim.t, cs[c].t_ssim.df, cs[c].t_ssim.p, cs[c].t_ssim.mean_diff, cs[c].t_ssim.sd_diff);
  }
  for (int m = 0; m < 2; m++)
    if (an_ok[m])
      l += (size_t)snprintf(t + l, cap - l, "welch_anova,all,%s,%d,%.15g,%.15g,%.15g,%.15g,,\n", m ? "ssim" : "rmse", an[m].n,
                            an[m].F, an[m].df1, an[m].df2, an[m].p);
  char p[2600];
  snprintf(p, sizeof p, "%s/stats.csv", dir);
  rc = mbsr__exp_write_text(p, t);
  /* table.csv */
  l = (size_t)snprintf(t, cap, "cell,arch,train_pair,test_pair,samples,train_data,test_data,finetune,n,"
                               "rmse_improvement_pct_mean,rmse_improvement_pct_sd,p_rmse,rmse_cubic_mean,rmse_net_mean,"
                               "ssim_cubic_mean,ssim_net_mean,p_ssim,psnr_cubic_mean,psnr_net_mean,res_um_cubic,res_um_net,res_um_hr\n");
  for (int c = 0; c < e->n_cells && !rc; c++) {
    if (!cs[c].present) continue;
    const mbsr_exp_cell *cl = &e->cells[c];
    const cell_stats *s = &cs[c];
    double im, isd, a[10], dummy;
    mbsr_mean_sd(s->imp, s->n, &im, &isd);
    mbsr_mean_sd(s->rmse[0], s->n, &a[0], &dummy);
    mbsr_mean_sd(s->rmse[1], s->n, &a[1], &dummy);
    mbsr_mean_sd(s->ssim[0], s->n, &a[2], &dummy);
    mbsr_mean_sd(s->ssim[1], s->n, &a[3], &dummy);
    mbsr_mean_sd(s->psnr[0], s->n, &a[4], &dummy);
    mbsr_mean_sd(s->psnr[1], s->n, &a[5], &dummy);
    mbsr_mean_sd(s->res[0], s->n, &a[6], &dummy);
    mbsr_mean_sd(s->res[1], s->n, &a[7], &dummy);
    mbsr_mean_sd(s->res[2], s->n, &a[8], &dummy);
    l += (size_t)snprintf(t + l, cap - l, "%s,%s,%d-%d,%d-%d,%d,%s,%s,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n",
                          cl->name, cl->arch, cl->train_lr_um, cl->train_hr_um, cl->test_lr_um, cl->test_hr_um, cl->samples,
                          mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data), cl->finetune, s->n, im,
                          s->n > 1 ? isd : NAN, s->ok_rmse ? s->t_rmse.p : NAN, a[0], a[1], a[2], a[3],
                          s->ok_ssim ? s->t_ssim.p : NAN, a[4], a[5], a[6], a[7], a[8]);
  }
  snprintf(p, sizeof p, "%s/table.csv", dir);
  if (!rc) rc = mbsr__exp_write_text(p, t);
  /* table.md */
  char *md = malloc(cap * 4);
  size_t ml = 0, mcap = cap * 4;
#define MD(...) ml += (size_t)snprintf(md + ml, mcap - ml, __VA_ARGS__)
  if (e->table1) {
    MD("**Table 1.** Improvement over cubic interpolation in RMSE, %%, mean ± sd over the test subjects%s "
       "(positive = the network's RMSE is lower), with the paired two-sided t-test of the network's RMSE against cubic's.\n\n",
       synth ? " (SYNTHETIC phantom cohort)" : "");
    MD("| Training resolution (µm) | # of training samples | Improvement over cubic interpolation in RMSE, %% | p (paired t) | n |\n");
    MD("|---|---:|---:|---:|---:|\n");
    for (int c = 0; c < e->n_cells; c++) {
      if (!cs[c].present) continue;
      char a[64], pp[32];
      msd(cs[c].imp, cs[c].n, a, sizeof a, "%.1f");
      pfmt(cs[c].ok_rmse, cs[c].t_rmse.p, pp, sizeof pp);
      MD("| %d–%d | %d | %s | %s | %d |\n", e->cells[c].train_lr_um, e->cells[c].train_hr_um, e->cells[c].samples, a, pp, cs[c].n);
    }
    MD("\n");
  }
  MD("**All metrics** (mean ± sd over the test subjects; RMSE, PSNR and SSIM inside the brain mask on [0,1]-normalised "
     "intensities; effective resolution by decorrelation analysis, median over slices)\n\n");
  MD("| cell | method | train | test | samples | data | n | RMSE | Δ RMSE %% | p RMSE | SSIM | p SSIM | PSNR (dB) | eff. res. (µm) |\n");
  MD("|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    const mbsr_exp_cell *cl = &e->cells[c];
    for (int w = 0; w < 3; w++) {
      char r[64] = "", s_[64] = "", ps[64] = "", rs[64], im[64] = "", p1[32] = "", p2[32] = "";
      if (w < 2) {
        msd(cs[c].rmse[w], cs[c].n, r, sizeof r, "%.4f");
        msd(cs[c].ssim[w], cs[c].n, s_, sizeof s_, "%.4f");
        msd(cs[c].psnr[w], cs[c].n, ps, sizeof ps, "%.2f");
      }
      msd(cs[c].res[w], cs[c].n, rs, sizeof rs, "%.0f");
      if (w == 1) {
        msd(cs[c].imp, cs[c].n, im, sizeof im, "%.1f");
        pfmt(cs[c].ok_rmse, cs[c].t_rmse.p, p1, sizeof p1);
        pfmt(cs[c].ok_ssim, cs[c].t_ssim.p, p2, sizeof p2);
      }
      char data[64];
      snprintf(data, sizeof data, "%s→%s%s", mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data),
               cl->finetune ? " +TL" : "");
      MD("| %s | %s | %d–%d | %d–%d | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", cl->name,
         w == 0 ? "cubic" : w == 1 ? cl->arch : "HR (reference)", cl->train_lr_um, cl->train_hr_um, cl->test_lr_um,
         cl->test_hr_um, cl->samples, data, cs[c].n, r, im, p1, s_, p2, ps, rs);
    }
  }
  if (e->anova) {
    MD("\nWelch's one-way ANOVA across cubic and every cell's network (R `oneway.test(var.equal = FALSE)`):\n\n");
    for (int m = 0; m < 2; m++) {
      char pp[32];
      pfmt(an_ok[m], an[m].p, pp, sizeof pp);
      if (an_ok[m]) MD("- %s: F = %.3f, df = (%.0f, %.2f), p = %s\n", m ? "SSIM" : "RMSE", an[m].F, an[m].df1, an[m].df2, pp);
      else MD("- %s: not computable (fewer than 2 subjects per group or zero variance)\n", m ? "SSIM" : "RMSE");
    }
  }
  snprintf(p, sizeof p, "%s/table.md", dir);
  if (!rc) rc = mbsr__exp_write_text(p, md);
  /* figures */
  char figs[8][256];
  int nf = 0;
  /* figures: a failing figure (e.g. no gnuplot) is a warning; the tables and README still come */
  int fig_failed = 0;
#define FIG(call, name)                                                     \
  do {                                                                      \
    if ((call) == 0) snprintf(figs[nf++], 256, "%s", name);                \
    else mbsr_warn("report: figure %s not made: %s", name, mbsr_last_error()), fig_failed++; \
  } while (0)
  if (!rc && o->figures) {
    char png[2600];
    snprintf(png, sizeof png, "%s/fig_box_rmse.png", dir);
    FIG(fig_box(e, dir, cs, 0, png), "fig_box_rmse.png");
    snprintf(png, sizeof png, "%s/fig_box_ssim.png", dir);
    FIG(fig_box(e, dir, cs, 1, png), "fig_box_ssim.png");
    /* montage: cells sharing the test pair of the "main" cell (the first at 200-100 if any) */
    int main_c = -1;
    for (int c = 0; c < e->n_cells; c++) {
      char vp[2800];
      snprintf(vp, sizeof vp, "%s/cells/%s/vol_sr.nii.gz", dir, e->cells[c].name);
      if (!cs[c].present || !mbsr_file_exists(vp)) continue;
      if (main_c < 0 || (e->cells[c].test_hr_um == 100 && e->cells[main_c].test_hr_um != 100)) main_c = c;
    }
    if (main_c >= 0) {
      int sel[MBSR_EXP_MAX_CELLS], ns = 0;
      for (int c = 0; c < e->n_cells; c++) {
        char vp[2800];
        snprintf(vp, sizeof vp, "%s/cells/%s/vol_sr.nii.gz", dir, e->cells[c].name);
        if (cs[c].present && mbsr_file_exists(vp) && e->cells[c].test_lr_um == e->cells[main_c].test_lr_um &&
            e->cells[c].test_hr_um == e->cells[main_c].test_hr_um && e->cells[c].test_data == e->cells[main_c].test_data && ns < 6)
          sel[ns++] = c;
      }
      snprintf(png, sizeof png, "%s/fig_montage.png", dir);
      FIG(fig_montage(e, dir, sel, ns, png), "fig_montage.png");
      /* decorrelation curves of the last selected cell (largest training set at that pair) */
      snprintf(png, sizeof png, "%s/fig_decorr.png", dir);
      FIG(fig_decorr(e, dir, sel[ns - 1], png), "fig_decorr.png");
    }
    if (mbsr__report_extra_figures(e, dir, figs, &nf, 8))
      mbsr_warn("report: AF-vs-MRI figure not made: %s", mbsr_last_error()), fig_failed++;
  }
#undef FIG
  /* README.md */
  if (!rc) {
    char *rd = malloc(mcap + 16384);
    size_t rl = 0, rcap = mcap + 16384;
#define RD(...) rl += (size_t)snprintf(rd + rl, rcap - rl, __VA_ARGS__)
    RD("# %s — %s scale%s\n\n", e->name, e->scale_name, synth ? " (SYNTHETIC phantom data)" : "");
    RD("%s. Reproduces %s of Liang & Zhang, *Mouse brain MR super-resolution using a deep learning network trained "
       "with optical imaging data*, Front. Radiol. 2023.\n\n",
       e->title, e->paper_ref[0] ? e->paper_ref : "an experiment");
    if (e->description[0]) RD("%s\n\n", e->description);
    RD("## Data\n\n");
    char src[4096] = "";
    snprintf(p, sizeof p, "%s/data/SOURCE.txt", dir);
    FILE *sf = fopen(p, "r");
    if (sf) {
      if (!fgets(src, sizeof src, sf)) src[0] = 0;
      fclose(sf);
      src[strcspn(src, "\n")] = 0;
    }
    int uses_af = 0;
    for (int c = 0; c < e->n_cells; c++) uses_af |= e->cells[c].train_data == MBSR_DS_AF || e->cells[c].test_data == MBSR_DS_AF;
    if (!uses_af)
      ;
    else if (synth)
      RD("**SYNTHETIC.** The AF volumes are the mbsr phantom cohort (`mbsr phantom`): computer-generated, AF-like "
         "mouse-brain volumes (ellipsoid brain with cortical laminae, cerebellar folia, a folded hippocampal band, "
         "tracts, nuclei and ventricles; per-subject deformation, bias field and noise). They are NOT real mouse "
         "brains: the numbers below show that the pipeline works and how the methods compare on this phantom, "
         "not what they do on real data. Source: `%s`.\n\n",
         src);
    else
      RD("Real volumes: `%s`. Allen Mouse Brain Connectivity Atlas / CCFv3 average template: Wang et al., Cell "
         "181:936 (2020), © Allen Institute (https://connectivity.brain-map.org); individual STPT brain: brainglobe "
         "brainreg test data (BSD-3-Clause); MRI: DSURQE (MICe; Dorr 2008, Steadman 2014, Ullmann 2013, Richards 2011, "
         "Qiu 2016) and the Duke CIVM diffusion template (via AIDAmri). The small number of real volumes here makes "
         "the statistics illustrative only.\n\n",
         src);
    int mri = 0, human = 0;
    for (int c = 0; c < e->n_cells; c++) {
      mri |= e->cells[c].test_data == MBSR_DS_T2W || e->cells[c].test_data == MBSR_DS_FA;
      human |= e->cells[c].train_data == MBSR_DS_HUMAN_T1;
    }
    if (mri)
      RD("MRI test data (real, `%s`): T2w = DSURQE ex-vivo T2-weighted consensus average resampled to 200 um in CCFv3 "
         "space, voxel-wise co-registered with the Allen AF template (MICe; Dorr et al. 2008, Steadman et al. 2014, "
         "Ullmann et al. 2013, Richards et al. 2011, Qiu et al. 2016; Allen Institute CCFv3, Wang et al. 2020); FA-like = "
         "quantitative anisotropy of the Duke CIVM ex-vivo diffusion template, 50 um (via Aswendt-Lab/AIDAmri). One "
         "volume per contrast: the first half along its longest axis is the HR data for fine-tuning (+TL cells), the "
         "second half is evaluated in slabs — test units, NOT independent subjects.\n\n",
         e->s.mri_dir);
    if (human)
      RD("Human training data (real): `%s` — Colin27 T1 ('ch2better', Holmes et al. 1998), shipped by Debian's "
         "mricron-data package; one brain, not the paper's 60 HCP subjects.\n\n",
         e->s.human_dir);
    int nts = 0;
    for (int c = 0; c < e->n_cells; c++)
      if (cs[c].present) nts = cs[c].n > nts ? cs[c].n : nts;
    int slabs = 0;
    for (int c = 0; c < e->n_cells; c++)
      if (cs[c].present && cs[c].n > 0 && strstr(cs[c].subj[0], "-slab")) slabs = 1;
    if (slabs)
      RD("Test units per cell: up to %d **slabs** (brain mask cut along the volume's longest axis) of too few test "
         "volumes: they are NOT independent subjects, and the p-values below are illustrative only. Units are listed "
         "in each `cells/<cell>/metrics.csv`.\n\n", nts);
    else
      RD("Test subjects per cell: %d (held out from training by the prep split; subjects listed in each "
         "`cells/<cell>/metrics.csv`).\n\n", nts);
    RD("## Results\n\n%s\n", md);
    for (int i = 0; i < nf; i++) RD("![%s](%s)\n\n", figs[i], figs[i]);
    RD("Figures: `fig_box_*` box plots per test subject (Figure 4 style: cubic and network side by side per cell); "
       "`fig_montage` LR (nearest-neighbour on the HR grid), cubic, network output(s) and HR reference of the first "
       "test subject, axial and coronal planes and a zoom into the red box (Figure 3 style); `fig_decorr` the "
       "decorrelation curves of the central axial slice (Figure 6C style).\n\n");
    RD("## How this was made\n\n");
    RD("- Parameters (every key, defaults included): [`params.yaml`](params.yaml); experiment file `%s`, scale `%s`.\n",
       e->path, e->scale_name);
    RD("- Networks: %s; %d channels x %d residual blocks%s (cCNN %d/%d; GAN discriminator %d x %d); %d^3 patches, batch %d, "
       "at most %d epochs (early-stopping patience %d%s), Adam lr %g, seed %llu; the checkpoint with the best validation "
       "loss is applied. Data: base grid %d um, %d training subjects (%.0f %% of them for validation), %d test subjects.\n",
       e->s.n_arch == 1 ? e->s.arch[0] : "see the cells", e->s.channels, e->s.blocks,
       e->s.global_residual ? " with a global residual (output = input + network)" : "", e->s.ccnn_c1, e->s.ccnn_c2,
       e->s.disc_channels, e->s.disc_blocks, e->s.patch, e->s.batch, e->s.epochs, e->s.patience,
       e->s.patience ? "" : " = off", e->s.lr, (unsigned long long)e->s.seed, e->s.base_um, e->s.n_train,
       100 * e->s.val_fraction, e->s.n_test);
    RD("- Commands: `mbsr sweep %s --scale %s%s%s` then `%s`.\n", e->path, e->scale_name,
       o->results && strcmp(o->results, "results") ? " --results " : "", o->results && strcmp(o->results, "results") ? o->results : "",
       o->command ? o->command : "mbsr report");
    RD("- Per test subject, the base volume is min/max-normalised to [0,1] and block-averaged to the test pair's HR and LR "
       "grids; cubic = Keys cubic convolution (a = -0.5, MATLAB imresize 'cubic') of LR onto the HR grid; the network "
       "runs on that cubic input in overlapping patches. RMSE and PSNR (data range 1) over the brain-mask voxels; SSIM "
       "= 3-D Gaussian SSIM (sigma 1.5, scikit-image conventions) averaged over the brain mask; effective resolution = "
       "decorrelation analysis (Descloux et al. 2019) per axial slice, median, 2 px / kc.\n");
    RD("- Statistics: paired two-sided t-test of the network against cubic per cell over the test subjects (R "
       "`t.test(x, y, paired = TRUE)`); improvement %% = 100 (RMSE_cubic - RMSE_net) / RMSE_cubic per subject; "
       "Welch's ANOVA = R `oneway.test(var.equal = FALSE)`; all tests at full precision in [`stats.csv`](stats.csv); "
       "the table as CSV in [`table.csv`](table.csv).\n");
    RD("- Generated by mbsr %s.\n", MBSR_VERSION);
    snprintf(p, sizeof p, "%s/README.md", dir);
    rc = mbsr__exp_write_text(p, rd);
    free(rd);
    if (!rc) mbsr_info("report: %s (table: %s/table.md, %d figure(s)%s)", p, dir, nf, fig_failed ? ", some failed: see the warnings" : "");
  }
  free(md);
  free(t);
  free(cs);
  return rc;
}
