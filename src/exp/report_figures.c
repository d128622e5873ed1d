/* The figures of a report, drawn by gnuplot (pngcairo) from numbers and volumes; nothing here knows
 * about experiments or sweeps. Each figure keeps its script and data in DIR/fig_src/ (re-run by hand:
 * gnuplot -e "set output 'x.png'" fig_src/x.png.gp); gnuplot is started without a shell and writes a
 * temporary PNG that is renamed when complete. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/decorr.h"

int mbsr__fig_src_path(const char *png, const char *suffix, char *buf, size_t n) {
  const char *sl = strrchr(png, '/');
  int dl = sl ? (int)(sl - png) : 0;
  int rc = mbsr_pathf(buf, n, "%.*s%sfig_src", dl, png, sl ? "/" : "");
  if (!rc) rc = mbsr_mkdir_p(buf);
  size_t w = strlen(buf);
  return rc ? rc : mbsr_pathf(buf + w, n - w, "/%s%s", sl ? sl + 1 : png, suffix);
}

int mbsr__run_gnuplot(const char *script_path, const char *out_png) {
  char tmp[4200], set[8600], log[4300];
  int rc = mbsr_tmp_path(out_png, tmp, sizeof tmp);
  if (!rc) rc = mbsr_pathf(log, sizeof log, "%s.log", script_path);
  if (rc) return rc;
  /* gnuplot's single-quoted string: a quote inside is doubled */
  size_t k = (size_t)snprintf(set, sizeof set, "set output '");
  for (const char *c = tmp; *c; c++) {
    if (k + 4 >= sizeof set) return mbsr_error(MBSR_ERANGE, "%s: path too long for gnuplot", tmp);
    if (*c == '\'') set[k++] = '\'';
    set[k++] = *c;
  }
  set[k++] = '\'';
  set[k] = 0;
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

/* ---------------------------------------------------------------- paired plot (Figure 4 style) */
int mbsr__fig_paired(const fig_paired_data *d, const char *out_png) {
  char dat[4200], gp[4200];
  int rc = mbsr__fig_src_path(out_png, ".dat", dat, sizeof dat);
  if (!rc) rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (rc) return rc;
  FILE *f = fopen(dat, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", dat);
  for (int g = 0; g < d->ng; g++)
    for (int k = 0; k < d->npts[g]; k++) fprintf(f, "%d %.9g\n%d %.9g\n\n", 2 * g, d->a[g][k], 2 * g + 1, d->b[g][k]);
  if (fclose(f)) return mbsr_error(MBSR_EIO, "%s: write failed", dat);
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  fprintf(g, "set terminal pngcairo size %d,480 font 'sans,10'\n", 200 + 110 * d->ng);
  fprintf(g, "set title \"%s\"\nset ylabel '%s'\nunset key\nset xtics rotate by -35 font ',8'\nset grid ytics\n", d->title, d->ylabel);
  fprintf(g, "set xrange [-0.6:%g]\nset xtics (", 2 * d->ng - 0.4);
  for (int i = 0; i < d->ng; i++) fprintf(g, "%s\"%s\" %d, \"%s\" %d", i ? ", " : "", d->label_a[i], 2 * i, d->label_b[i], 2 * i + 1);
  fprintf(g, ")\nplot '%s' using 1:2 with linespoints lw 1.5 pt 7 ps 0.8 lc rgb '#3060a0'\n", dat);
  if (fclose(g)) return mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return mbsr__run_gnuplot(gp, out_png);
}

/* ---------------------------------------------------------------- montage (Figure 3 style) */
static int write_slice_bin(const char *path, const mbsr_volume *v, int axis, int64_t idx, int64_t x0, int64_t y0, int64_t w,
                           int64_t h) {
  /* axis 2: image (i, j) at k = idx; axis 1: image (i, k) at j = idx. */
  FILE *f = fopen(path, "wb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", path);
  for (int64_t y = y0; y < y0 + h; y++)
    for (int64_t x = x0; x < x0 + w; x++) {
      int64_t i = x, j = axis == 2 ? y : idx, k = axis == 2 ? idx : y;
      float val = v->data[i + v->nx * (j + v->ny * k)];
      fwrite(&val, 4, 1, f);
    }
  return fclose(f) ? mbsr_error(MBSR_EIO, "%s: write failed", path) : 0;
}

mbsr_volume *mbsr__nearest_like(const mbsr_volume *lr, const mbsr_volume *hr) {
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

/* The layout of a montage: the slices, the zoom window, the panel sizes. */
typedef struct {
  int64_t nx, ny, nz, kz, jy, zw, zh, zx, zy;
  double pw, tb, head, rh[3], cw, ch;
} montage_layout;

/* zoom box: the window of the reference's axial slice with the most gradient energy (the finest detail) */
static void montage_plan(const mbsr_volume *hr, int ncol, montage_layout *L) {
  L->nx = hr->nx, L->ny = hr->ny, L->nz = hr->nz;
  const int64_t nx = L->nx, ny = L->ny, nz = L->nz;
  L->kz = nz / 2 + nz / 10, L->jy = ny / 2;
  L->zw = nx / 3 > 8 ? nx / 3 : nx, L->zh = ny / 4 > 8 ? ny / 4 : ny, L->zx = 0, L->zy = 0;
  double best = -1;
  const float *sl = hr->data + nx * ny * L->kz;
  for (int64_t y0 = 0; y0 + L->zh <= ny; y0 += 2)
    for (int64_t x0 = 0; x0 + L->zw <= nx; x0 += 2) {
      double en = 0;
      for (int64_t y = y0; y < y0 + L->zh - 1; y++)
        for (int64_t x = x0; x < x0 + L->zw - 1; x++) {
          double gx = sl[x + 1 + nx * y] - sl[x + nx * y], gy = sl[x + nx * (y + 1)] - sl[x + nx * y];
          en += gx * gx + gy * gy;
        }
      if (en > best) best = en, L->zx = x0, L->zy = y0;
    }
  /* panels placed by hand: every row as tall as its images' aspect needs (+ a title band) */
  L->pw = 200.0, L->tb = 22.0, L->head = 34.0;
  L->rh[0] = L->pw * (double)ny / nx + L->tb, L->rh[1] = L->pw * (double)nz / nx + L->tb, L->rh[2] = L->pw * (double)L->zh / L->zw + L->tb;
  L->cw = L->pw * ncol, L->ch = L->head + L->rh[0] + L->rh[1] + L->rh[2];
}

/* One panel: its slice data and its lines of the script. */
static int montage_panel(FILE *g, const montage_layout *L, const mbsr_volume *v, const char *title, int row, int c, int ncol,
                         double ytop, const char *out_png) {
  char bin[4400], suf[32];
  snprintf(suf, sizeof suf, ".r%dc%d.bin", row, c);
  int rc = mbsr__fig_src_path(out_png, suf, bin, sizeof bin);
  const int64_t w = row == 2 ? L->zw : L->nx, h = row == 0 ? L->ny : row == 1 ? L->nz : L->zh;
  if (rc) return rc;
  if (row == 0) rc = write_slice_bin(bin, v, 2, L->kz, 0, 0, L->nx, L->ny);
  else if (row == 1) rc = write_slice_bin(bin, v, 1, L->jy, 0, 0, L->nx, L->nz);
  else rc = write_slice_bin(bin, v, 2, L->kz, L->zx, L->zy, L->zw, L->zh);
  if (rc) return rc;
  const double pw = L->pw, cw = L->cw, ch = L->ch, rh = L->rh[row];
  fprintf(g, "set origin %.5f,%.5f\nset size %.5f,%.5f\n", c * pw / cw, ytop / ch, pw / cw, rh / ch);
  fprintf(g, "set lmargin at screen %.5f\nset rmargin at screen %.5f\nset bmargin at screen %.5f\nset tmargin at screen %.5f\n",
          (c * pw + 2) / cw, ((c + 1) * pw - 2) / cw, (ytop + 1) / ch, (ytop + rh - L->tb) / ch);
  fprintf(g, "set title \"%s\" offset 0,-0.3\nset xrange [-0.5:%g]\nset yrange [-0.5:%g]\n",
          row == 0 ? title : row == 1 ? (c == 0 ? "coronal" : "") : (c == 0 ? "zoom (red box)" : ""), w - 0.5, h - 0.5);
  if (row == 0 && c == ncol - 1)
    fprintf(g, "set object 1 rectangle from %g,%g to %g,%g front fillstyle empty border rgb 'red' lw 2\n", L->zx - 0.5, L->zy - 0.5,
            L->zx + L->zw - 0.5, L->zy + L->zh - 0.5);
  fprintf(g, "plot '%s' binary array=(%lld,%lld) format='%%float' with image\n", bin, (long long)w, (long long)h);
  if (row == 0 && c == ncol - 1) fprintf(g, "unset object 1\n");
  return 0;
}

int mbsr__fig_montage(const char *title, const mbsr_volume *const *cols, const char *const *titles, int ncol, const char *out_png) {
  const mbsr_volume *hr = cols[ncol - 1];
  char gp[4200];
  int rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (rc) return rc;
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  montage_layout L;
  montage_plan(hr, ncol, &L);
  /* display window from the HR reference */
  float mn, mx;
  mbsr_volume_minmax(hr, &mn, &mx);
  fprintf(g, "set terminal pngcairo size %d,%d font 'sans,10'\n", (int)L.cw, (int)L.ch);
  fprintf(g, "set palette gray\nunset colorbox\nunset key\nunset tics\nunset border\nset cbrange [%g:%g]\n", mn, mx * 0.95);
  fprintf(g, "set multiplot title \"%s\"\n", title);
  double ytop = L.ch - L.head;
  for (int row = 0; row < 3 && !rc; row++) {
    ytop -= L.rh[row];
    for (int c = 0; c < ncol && !rc; c++) rc = montage_panel(g, &L, cols[c], titles[c], row, c, ncol, ytop, out_png);
  }
  fprintf(g, "unset multiplot\n");
  if (fclose(g) && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return rc ? rc : mbsr__run_gnuplot(gp, out_png);
}

/* ---------------------------------------------------------------- decorrelation (Figure 6C style) */
/* The curves of the central axial slice of v into the data file dat; its kc into *kc. */
static int decorr_curves(const mbsr_volume *v, const char *dat, double *kc, int *ngc) {
  mbsr_decorr_opts o;
  mbsr_decorr_opts_default(&o);
  o.px = v->vox[0];
  mbsr_decorr_curves *cv = mbsr_decorr_curves_new(o.nr, o.ng);
  if (!cv) return mbsr_error(MBSR_ENOMEM, "decorr curves: out of memory");
  *ngc = cv->ng;
  mbsr_decorr_result r;
  int64_t k = v->nz / 2 + v->nz / 10;
  int rc = mbsr_decorr_2d(v->data + v->nx * v->ny * k, v->nx, v->ny, &o, &r, cv);
  FILE *f = rc ? NULL : fopen(dat, "w");
  if (!rc && !f) rc = mbsr_error(MBSR_EIO, "%s: cannot write", dat);
  if (f) {
    *kc = r.kc_max;
    /* block 0: d0; blocks 1..: high-pass curves (first pass on r1, refined on r2) */
    for (int i = 0; i < cv->nr; i++) fprintf(f, "%g %g\n", cv->r1[i], cv->d0[i]);
    for (int c = 0; c < 2 * cv->ng + 1; c++) {
      fprintf(f, "\n\n");
      const double *rr = c <= cv->ng ? cv->r1 : cv->r2;
      for (int i = 0; i < cv->nr; i++) fprintf(f, "%g %g\n", rr[i], cv->d[c * cv->nr + i]);
    }
    if (fclose(f)) rc = mbsr_error(MBSR_EIO, "%s: write failed", dat);
  }
  mbsr_decorr_curves_free(cv);
  return rc;
}

int mbsr__fig_decorr(const char *title_suffix, const mbsr_volume *const *v, const char *const *keys, const char *const *titles, int nv,
                     double hr_um, const char *out_png) {
  char dat[3][4200], gp[4200];
  double kcs[3] = {0};
  int rc = nv > 3 ? mbsr_error(MBSR_EINVAL, "decorrelation figure: %d panels (at most 3)", nv) : 0, ngc = 10;
  for (int m = 0; m < nv && !rc; m++) {
    char suf[48];
    snprintf(suf, sizeof suf, ".%s.dat", keys[m]);
    rc = mbsr__fig_src_path(out_png, suf, dat[m], sizeof dat[m]);
    if (!rc) rc = decorr_curves(v[m], dat[m], &kcs[m], &ngc);
  }
  if (!rc) rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (rc) return rc;
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  fprintf(g, "set terminal pngcairo size 1200,400 font 'sans,10'\nset multiplot layout 1,%d title "
             "\"Decorrelation analysis, central axial slice%s (gray: high-pass curves, blue: d0, red: kc)\"\n",
          nv, title_suffix);
  for (int m = 0; m < nv; m++) {
    fprintf(g, "set title \"%s: kc = %.3f, resolution = %.0f um\"\nset xlabel 'normalised frequency'\nset ylabel 'd'\n"
               "set xrange [0:1]\nset yrange [0:*]\nunset key\nset arrow 1 from %g, graph 0 to %g, graph 1 nohead lc rgb 'red' lw 2\n",
            titles[m], kcs[m], kcs[m] > 0 ? 2000.0 * hr_um / 1000.0 / kcs[m] : INFINITY, kcs[m], kcs[m]);
    fprintf(g, "plot for [b=1:%d] '%s' index b using 1:2 with lines lc rgb '#999999', '%s' index 0 using 1:2 with lines lw 2 lc rgb 'blue'\n",
            2 * ngc + 1, dat[m], dat[m]);
  }
  fprintf(g, "unset multiplot\n");
  if (fclose(g)) return mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return mbsr__run_gnuplot(gp, out_png);
}

/* ---------------------------------------------------------------- voxel-wise scatter (Figure 6F-G style) */
/* Pearson r inside the mask (every third voxel written to dat, the points shown) and over the whole volume. */
static int scatter_data(const mbsr_volume *xv, const mbsr_volume *yv, const mbsr_volume *mask, const char *dat, mbsr_corr r[2]) {
  int64_t n = mbsr_volume_nvox(xv), k = 0;
  double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
  FILE *f = x && y ? fopen(dat, "w") : NULL;
  int rc = f ? 0 : mbsr_error(MBSR_EIO, "%s: cannot write (or out of memory)", dat);
  for (int64_t i = 0; !rc && i < n; i++)
    if (mask->data[i] > 0.5f) {
      x[k] = xv->data[i], y[k] = yv->data[i];
      if (k % 3 == 0) fprintf(f, "%g %g\n", x[k], y[k]);
      k++;
    }
  if (f && fclose(f) && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", dat);
  if (!rc) rc = mbsr_pearson(x, y, (int)k, &r[0]);
  for (int64_t i = 0; !rc && i < n; i++) x[i] = xv->data[i], y[i] = yv->data[i];
  if (!rc) rc = mbsr_pearson(x, y, (int)n, &r[1]);
  free(x), free(y);
  return rc;
}

int mbsr__fig_scatter(const mbsr_volume *x, const mbsr_volume *y, const mbsr_volume *mask, fig_scatter_data *d, const char *out_png) {
  char dat[2600], gp[2600];
  int rc = mbsr__fig_src_path(out_png, ".dat", dat, sizeof dat);
  if (!rc) rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (!rc) rc = scatter_data(x, y, mask, dat, d->r);
  if (rc) return rc;
  d->r_ok = 1;
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  fprintf(g, "set terminal pngcairo size 680,520 font 'sans,10'\nunset key\n"
             "set title \"%s, voxel-wise: R = %.2f in the brain mask (n = %d, shown);\\nR = %.2f over the whole "
             "volume incl. background (n = %d)\"\n"
             "set xlabel '%s'\nset ylabel '%s'\n"
             "set fit quiet\nset fit logfile '/dev/null'\nf(x) = a*x + b\nfit f(x) '%s' via a, b\n"
             "plot '%s' using 1:2 with points pt 7 ps 0.3 lc rgb '#40000080', f(x) lw 2 lc rgb 'red'\n",
          d->title, d->r[0].r, d->r[0].n, d->r[1].r, d->r[1].n, d->xlabel, d->ylabel, dat, dat);
  if (fclose(g)) return mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return mbsr__run_gnuplot(gp, out_png);
}
