/* The figures of a report, drawn by gnuplot from numbers and volumes; nothing here knows about
 * experiments or sweeps. Each figure is written three times from one script: PNG (pngcairo), PDF
 * (pdfcairo) and SVG, beside each other; the script and its data stay in DIR/fig_src/ (re-run by
 * hand: gnuplot -e "fmt='pdf'; set output 'x.pdf'" fig_src/x.png.gp; fmt png, pdf or svg). gnuplot
 * is started without a shell and writes temporary files that are renamed when complete. */
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

/* The terminal lines of a figure script: the variable fmt (png when unset) picks pngcairo (w x h
 * pixels), pdfcairo or svg at the same proportions (pngcairo sets its fonts at 96 dpi: w/96 inches). */
void mbsr__fig_terminal(FILE *g, int w, int h) {
  fprintf(g, "set encoding utf8\nif (!exists(\"fmt\")) fmt = 'png'\n"
             "if (fmt eq 'pdf') {\n  set terminal pdfcairo size %.4fin,%.4fin font 'sans,10'\n} else {\n"
             "  if (fmt eq 'svg') {\n    set terminal svg size %d,%d font 'sans,10' background rgb 'white'\n  } else {\n"
             "    set terminal pngcairo size %d,%d font 'sans,10'\n  }\n}\nset termoption noenhanced\n",
          w / 96.0, h / 96.0, w, h, w, h);
}

int mbsr__fig_vector_path(const char *png, const char *ext, char *buf, size_t n) {
  size_t l = strlen(png);
  int stem = l > 4 && !strcmp(png + l - 4, ".png") ? (int)(l - 4) : (int)l;
  return mbsr_pathf(buf, n, "%.*s.%s", stem, png, ext);
}

/* gnuplot's SVG embeds images as PNGs that viewers smooth when they scale them up; as in the PDF
 * (/Interpolate false), the pixels of a montage stay square: image-rendering on the root element
 * (an inherited property) of the SVG file at path, rewritten in place. */
static int svg_pixelated(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot read", path);
  char *b = NULL;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
  fclose(f);
  if (!b) return mbsr_error(MBSR_EIO, "%s: cannot read", path);
  b[n] = 0;
  char *root = strstr(b, "<svg");
  int rc = root ? 0 : mbsr_error(MBSR_EFORMAT, "%s: no <svg> element", path);
  FILE *o = rc ? NULL : fopen(path, "wb");
  if (!rc && !o) rc = mbsr_error(MBSR_EIO, "%s: cannot write", path);
  if (o) {
    size_t head = (size_t)(root - b) + 4;
    fwrite(b, 1, head, o);
    fputs(" image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\"", o);
    fwrite(b + head, 1, (size_t)n - head, o);
    if (fclose(o)) rc = mbsr_error(MBSR_EIO, "%s: write failed", path);
  }
  free(b);
  return rc;
}

/* One run of gnuplot: gnuplot -e "fmt='FMT'; set output '<tmp>'" SCRIPT (no shell; stderr to
 * SCRIPT.log, appended), the temporary file renamed to out when gnuplot succeeded. */
static int gnuplot_once(const char *script_path, const char *fmt, const char *out) {
  char tmp[4200], set[8600], log[4300];
  int rc = mbsr_tmp_path(out, tmp, sizeof tmp);
  if (!rc) rc = mbsr_pathf(log, sizeof log, "%s.log", script_path);
  if (rc) return rc;
  /* gnuplot's single-quoted string: a quote inside is doubled */
  size_t k = (size_t)snprintf(set, sizeof set, "fmt='%s'; set output '", fmt);
  for (const char *c = tmp; *c; c++) {
    if (k + 4 >= sizeof set) return mbsr_error(MBSR_ERANGE, "%s: path too long for gnuplot", tmp);
    if (*c == '\'') set[k++] = '\'';
    set[k++] = *c;
  }
  set[k++] = '\'';
  set[k] = 0;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
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
    return mbsr_error(MBSR_EIO, "gnuplot failed on %s, %s (see %s)", script_path, fmt, log);
  }
  if (!strcmp(fmt, "svg") && (rc = svg_pixelated(tmp))) return mbsr_abandon_file(tmp), rc;
  return mbsr_commit_file(tmp, out);
}

int mbsr__run_gnuplot(const char *script_path, const char *out_png) {
  char log[4300], out[4200];
  int rc = mbsr_pathf(log, sizeof log, "%s.log", script_path);
  if (rc) return rc;
  unlink(log);
  /* the PNG is the figure; a PDF or SVG that fails (a gnuplot without pdfcairo) is a warning */
  if ((rc = gnuplot_once(script_path, "png", out_png))) return rc;
  static const char *const fmts[2] = {"pdf", "svg"};
  for (int f = 0; f < 2 && !rc; f++) {
    rc = mbsr__fig_vector_path(out_png, fmts[f], out, sizeof out);
    if (!rc && gnuplot_once(script_path, fmts[f], out)) mbsr_warn("report: %s: no %s: %s", out_png, fmts[f], mbsr_last_error()), mbsr_error_clear();
  }
  return rc;
}

/* ---------------------------------------------------------------- paired plot (Figure 4 style) */
/* A double-quoted gnuplot string (backslash and quote escaped; the terminals run noenhanced). */
void mbsr__gp_str(FILE *g, const char *s) {
  fputc('"', g);
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', g);
    fputc(*s == '\n' ? ' ' : *s, g);
  }
  fputc('"', g);
}

/* Eight colours (Okabe-Ito, colour-blind safe) as line types 1..8. */
static void gp_colours(FILE *g) {
  static const char *const C[8] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"};
  for (int i = 0; i < 8; i++) fprintf(g, "set linetype %d lc rgb '%s' lw 1.5 pt 7 ps 0.8\n", i + 1, C[i]);
  fprintf(g, "set linetype cycle 8\n");
}

/* The x position of column c of group g: groups side by side, one empty slot between them. */
static int paired_x(const fig_paired_data *d, int g, int c) {
  int x = 0;
  for (int i = 0; i < g; i++) x += d->ncol[i] + 1;
  return x + c;
}

static int paired_data(const fig_paired_data *d, const char *dat, const char *mean) {
  FILE *f = fopen(dat, "w"), *m = fopen(mean, "w");
  int rc = f && m ? 0 : mbsr_error(MBSR_EIO, "%s: cannot write", f ? mean : dat);
  for (int g = 0, col0 = 0; g < d->ng && !rc; col0 += d->ncol[g], g++) {
    for (int b = 0; b < d->nb[g]; b++) {
      for (int c = 0; c < d->ncol[g]; c++) fprintf(f, "%d %.9g %d\n", paired_x(d, g, c), d->v[g][c * d->nb[g] + b], d->brain_id[g][b] + 1);
      fprintf(f, "\n");
    }
    for (int c = 0; c < d->ncol[g]; c++) {
      double s = 0;
      for (int b = 0; b < d->nb[g]; b++) s += d->v[g][c * d->nb[g] + b];
      fprintf(m, "%d %.9g\n", paired_x(d, g, c), s / (d->nb[g] ? d->nb[g] : 1));
    }
    fprintf(m, "\n");
  }
  if (f && fclose(f) && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", dat);
  if (m && fclose(m) && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", mean);
  return rc;
}

/* x tics (one per column), the group labels above the plot and dotted separators between groups. */
static void paired_axes(FILE *g, const fig_paired_data *d) {
  int ncols = 0, longest = 0, k = 0;
  for (int i = 0; i < d->ng; i++) ncols += d->ncol[i];
  for (int i = 0; i < ncols; i++) longest = (int)strlen(d->col_label[i]) > longest ? (int)strlen(d->col_label[i]) : longest;
  fprintf(g, "set xrange [-0.6:%g]\nset xtics nomirror %s\nset xtics (", paired_x(d, d->ng - 1, d->ncol[d->ng - 1] - 1) + 0.6,
          longest > 10 ? "rotate by -30 font ',8'" : "");
  for (int i = 0; i < d->ng; i++)
    for (int c = 0; c < d->ncol[i]; c++, k++) {
      fprintf(g, "%s", k ? ", " : "");
      mbsr__gp_str(g, d->col_label[k]);
      fprintf(g, " %d", paired_x(d, i, c));
    }
  fprintf(g, ")\n");
  for (int i = 0; i < d->ng; i++) {
    fprintf(g, "set label %d ", i + 1);
    mbsr__gp_str(g, d->group_label[i]);
    fprintf(g, " at %g, graph 1 center offset 0,0.8 font ',9'\n", paired_x(d, i, 0) + 0.5 * (d->ncol[i] - 1));
    if (i) fprintf(g, "set arrow %d from %d, graph 0 to %d, graph 1 nohead dt 3 lc rgb '#888888'\n", i, paired_x(d, i, 0) - 1, paired_x(d, i, 0) - 1);
  }
}

int mbsr__fig_paired(const fig_paired_data *d, const char *out_png) {
  char dat[4200], mean[4200], gp[4200];
  int rc = d->ng < 1 ? mbsr_error(MBSR_EINVAL, "%s: nothing to plot", out_png) : 0, ncols = 0, maxnb = 0;
  if (!rc) rc = mbsr__fig_src_path(out_png, ".dat", dat, sizeof dat);
  if (!rc) rc = mbsr__fig_src_path(out_png, ".mean.dat", mean, sizeof mean);
  if (!rc) rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (!rc) rc = paired_data(d, dat, mean);
  if (rc) return rc;
  for (int i = 0; i < d->ng; i++) ncols += d->ncol[i], maxnb = d->nb[i] > maxnb ? d->nb[i] : maxnb;
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  int keyed = d->nbrains <= 8, w = 160 + 64 * (ncols + d->ng), h = 480 + (keyed ? 18 * ((d->nbrains + 2) / 3) : 0);
  mbsr__fig_terminal(g, w < 640 ? 640 : w, h);
  gp_colours(g);
  fprintf(g, "set title ");
  mbsr__gp_str(g, d->title);
  fprintf(g, " offset 0,1\nset ylabel ");
  mbsr__gp_str(g, d->ylabel);
  fprintf(g, "\nset grid ytics\nset tmargin 5\nset key below horizontal maxcols 3 font ',9'\n");
  paired_axes(g, d);
  fprintf(g, "plot '%s' using 1:2:3 with linespoints lc variable notitle", dat);
  for (int b = 0; keyed && b < d->nbrains; b++) {
    fprintf(g, ", NaN with linespoints lt %d title ", b + 1);
    mbsr__gp_str(g, d->brains[b]);
  }
  if (maxnb >= 3) fprintf(g, ", '%s' using 1:2 with linespoints lw 3 lc rgb '#000000' pt 5 ps 1 dt 2 title 'mean'", mean);
  fprintf(g, "\n");
  if (fclose(g)) return mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return mbsr__run_gnuplot(gp, out_png);
}

/* ---------------------------------------------------------------- improvement vs samples (Figure 4B style) */
/* Line l's points are drawn a little apart along x (a factor 1 + 0.04 (l - (nl - 1) / 2)), so lines and
 * bars at the same sample count do not hide each other. */
static double improve_x(const fig_improve_data *d, const fig_improve_point *p) { return p->x * (1.0 + 0.04 * (p->line - 0.5 * (d->nl - 1))); }

static int improve_data(const fig_improve_data *d, const char *dat, const char *pts, int *any_ci, int *any_paper) {
  FILE *f = fopen(dat, "w"), *q = fopen(pts, "w");
  int rc = f && q ? 0 : mbsr_error(MBSR_EIO, "%s: cannot write", f ? pts : dat);
  for (int l = 0; l < d->nl && !rc; l++) {
    /* one block per line (gnuplot index l): x mean lo hi paper_mean paper_sd; the brains' values */
    for (int i = 0; i < d->np; i++) {
      const fig_improve_point *p = &d->p[i];
      if (p->line != l) continue;
      double x = improve_x(d, p);
      fprintf(f, "%.9g %.9g %.9g %.9g %.9g %.9g %.9g\n", x, p->mean, p->lo, p->hi, p->x, p->paper_mean, p->paper_sd);
      *any_ci |= isfinite(p->lo) && isfinite(p->hi), *any_paper |= isfinite(p->paper_mean);
      for (int k = 0; k < p->n; k++) fprintf(q, "%.9g %.9g\n", x * 1.012, p->v[k]); /* beside the mean's bar */
    }
    fprintf(f, "\n\n"), fprintf(q, "\n\n");
  }
  if (f && fclose(f) && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", dat);
  if (q && fclose(q) && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", pts);
  return rc;
}

static void improve_xtics(FILE *g, const fig_improve_data *d) {
  double lo = INFINITY, hi = 0;
  fprintf(g, "set logscale x\nset xtics (");
  for (int i = 0, k = 0; i < d->np; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++) seen |= d->p[j].x == d->p[i].x;
    if (seen) continue;
    fprintf(g, "%s\"%g\" %g", k++ ? ", " : "", d->p[i].x, d->p[i].x);
    lo = d->p[i].x < lo ? d->p[i].x : lo, hi = d->p[i].x > hi ? d->p[i].x : hi;
  }
  fprintf(g, ")\nset xrange [%g:%g]\n", lo / 1.5, hi * 1.5);
}

int mbsr__fig_improvement(const fig_improve_data *d, const char *out_png) {
  char dat[4200], pts[4200], gp[4200];
  int any_ci = 0, any_paper = 0;
  int rc = d->nl < 1 || d->np < 1 ? mbsr_error(MBSR_EINVAL, "%s: nothing to plot", out_png) : 0;
  if (!rc) rc = mbsr__fig_src_path(out_png, ".dat", dat, sizeof dat);
  if (!rc) rc = mbsr__fig_src_path(out_png, ".brains.dat", pts, sizeof pts);
  if (!rc) rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (!rc) rc = improve_data(d, dat, pts, &any_ci, &any_paper);
  if (rc) return rc;
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  mbsr__fig_terminal(g, 760, 520);
  gp_colours(g);
  fprintf(g, "set title ");
  mbsr__gp_str(g, d->title);
  fprintf(g, "\nset xlabel 'number of training samples (patches)'\nset ylabel 'RMSE improvement over cubic (%%)'\n"
             "set grid ytics\nset key outside right top vertical font ',9'\nset xzeroaxis lt -1 lw 1\n");
  improve_xtics(g, d);
  fprintf(g, "plot 0 with lines lc rgb '#555555' dt 2 notitle");
  for (int l = 0; l < d->nl; l++) {
    fprintf(g, ", '%s' index %d using 1:2 with points lt %d pt 6 ps 0.7 notitle", pts, l, l + 1);
    if (any_paper) fprintf(g, ", '%s' index %d using 5:6:7 with yerrorlines lt %d dt 2 pt 4 ps 1 lw 1 notitle", dat, l, l + 1);
    if (any_ci) fprintf(g, ", '%s' index %d using 1:2:3:4 with yerrorbars lt %d pt 5 ps 1 lw 1.5 notitle", dat, l, l + 1);
    fprintf(g, ", '%s' index %d using 1:2 with linespoints lt %d lw 2 pt 5 ps 1 title ", dat, l, l + 1);
    mbsr__gp_str(g, d->label[l]);
  }
  /* key entries of the marks (the pseudo-file '+' gives a data plot with no point) */
  fprintf(g, ", '+' using (NaN):(NaN) with points lc rgb '#555555' pt 6 ps 0.7 title 'each brain'");
  if (any_ci) fprintf(g, ", '+' using (NaN):(NaN):(NaN):(NaN) with yerrorbars lc rgb '#555555' pt 5 title 'mean, 95 %% CI (t)'");
  else fprintf(g, ", '+' using (NaN):(NaN) with points lc rgb '#555555' pt 5 title 'mean (< 3 brains: no CI)'");
  if (any_paper) fprintf(g, ", '+' using (NaN):(NaN):(NaN) with yerrorlines lc rgb '#555555' dt 2 pt 4 title 'paper (Table 1), mean ± sd'");
  fprintf(g, "\n");
  if (fclose(g)) return mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return mbsr__run_gnuplot(gp, out_png);
}

/* ---------------------------------------------------------------- montage (Figure 3 style) */
/* Rows of the montage: the images, then the absolute errors against the reference (last column). */
enum { ROW_AXIAL, ROW_CORONAL, ROW_ZOOM, ROW_ERR_AXIAL, ROW_ERR_CORONAL, NROWS };
/* Row labels name the array planes (the anatomical names depend on the file's orientation). */
static const char *const ROW_NAME[NROWS] = {"i-j plane, k = %lld", "i-k plane, j = %lld", "zoom (red box)", "|error|, k = %lld",
                                            "|error|, j = %lld"};

/* The image of `row` (w x h, x fastest) of v, or of |v - ref| for an error row. Axial: (i, j) at
 * k = kz; coronal: (i, k) at j = jy; zoom: the window (zx, zy, zw, zh) of the axial slice. */
typedef struct {
  int64_t nx, ny, nz, kz, jy, zw, zh, zx, zy;
  double lb, rb, pw, head, band[NROWS], img[NROWS], cw, ch;
} montage_layout;

static float montage_value(const montage_layout *L, const mbsr_volume *v, const mbsr_volume *ref, int row, int64_t x, int64_t y) {
  int plane = row == ROW_ERR_AXIAL ? ROW_AXIAL : row == ROW_ERR_CORONAL ? ROW_CORONAL : row;
  int64_t i = plane == ROW_ZOOM ? L->zx + x : x, j = plane == ROW_CORONAL ? L->jy : plane == ROW_ZOOM ? L->zy + y : y;
  int64_t k = plane == ROW_CORONAL ? y : L->kz, o = i + v->nx * (j + v->ny * k);
  return ref ? fabsf(v->data[o] - ref->data[o]) : v->data[o];
}

static void montage_wh(const montage_layout *L, int row, int64_t *w, int64_t *h) {
  *w = row == ROW_ZOOM ? L->zw : L->nx;
  *h = row == ROW_ZOOM ? L->zh : row == ROW_CORONAL || row == ROW_ERR_CORONAL ? L->nz : L->ny;
}

static int write_panel_bin(const char *path, const montage_layout *L, const mbsr_volume *v, const mbsr_volume *ref, int row) {
  FILE *f = fopen(path, "wb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", path);
  int64_t w, h;
  montage_wh(L, row, &w, &h);
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      float val = montage_value(L, v, ref, row, x, y);
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

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The error maps' display maximum: the 99th percentile of |cubic - HR| over the shown slices. */
static double montage_err_max(const montage_layout *L, const mbsr_volume *cub, const mbsr_volume *hr) {
  int64_t n = L->nx * (L->ny + L->nz), k = 0;
  float *e = malloc(sizeof(float) * (size_t)n);
  if (!e) return 0.1;
  for (int row = ROW_ERR_AXIAL; row <= ROW_ERR_CORONAL; row++) {
    int64_t w, h;
    montage_wh(L, row, &w, &h);
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) e[k++] = montage_value(L, cub, hr, row, x, y);
  }
  qsort(e, (size_t)k, sizeof *e, cmp_float);
  double m = k ? e[(int64_t)(0.99 * (double)(k - 1))] : 0;
  free(e);
  return m > 0 ? m : 1e-6;
}

/* zoom box: the window of the reference's axial slice with the most gradient energy (the finest detail) */
static void montage_zoom(const mbsr_volume *hr, montage_layout *L) {
  const int64_t nx = L->nx, ny = L->ny;
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
}

/* Panels placed by hand: a left band for the row labels, a right band for the two colour bars,
 * every row as tall as its images' aspect needs plus a band for the panel titles above it. */
static void montage_plan(const mbsr_volume *hr, int ncol, montage_layout *L) {
  L->nx = hr->nx, L->ny = hr->ny, L->nz = hr->nz;
  L->kz = L->nz / 2 + L->nz / 10, L->jy = L->ny / 2;
  montage_zoom(hr, L);
  L->pw = 200.0, L->lb = 30.0, L->rb = 96.0, L->head = 30.0;
  for (int r = 0; r < NROWS; r++) {
    int64_t w, h;
    montage_wh(L, r, &w, &h);
    L->img[r] = L->pw * (double)h / (double)w;
    L->band[r] = r == ROW_AXIAL || r == ROW_ERR_AXIAL ? 22.0 : 6.0;
  }
  L->cw = L->lb + L->pw * ncol + L->rb, L->ch = L->head + 6.0;
  for (int r = 0; r < NROWS; r++) L->ch += L->img[r] + L->band[r];
}

/* A scale bar (white, bottom right) of a round length near a quarter of the panel's width. */
static void montage_scalebar(FILE *g, int64_t w, double vox_mm) {
  double want = 0.25 * (double)w * vox_mm, p10 = pow(10.0, floor(log10(want))), len = p10;
  if (!(want > 0) || !isfinite(want)) return;
  if (want >= 5 * p10) len = 5 * p10;
  else if (want >= 2 * p10) len = 2 * p10;
  /* centred far enough from the right edge for its label ("0.2 mm" is about a fifth of a panel) */
  double lv = len / vox_mm, xc = fmin(0.80 * (double)w, 0.94 * (double)w - 0.5 * lv), x0 = xc - 0.5 * lv, x1 = xc + 0.5 * lv;
  double y = 0.06 * (double)w;
  /* white on a black outline and a black text box: readable on any image */
  fprintf(g, "set arrow 1 from %g,%g to %g,%g nohead front lw 7 lc rgb 'black'\n", x0, y, x1, y);
  fprintf(g, "set arrow 2 from %g,%g to %g,%g nohead front lw 3 lc rgb 'white'\n", x0, y, x1, y);
  fprintf(g, "set style textbox opaque fc rgb 'black' noborder margins 1,1\n");
  fprintf(g, "set label 1 \"%g mm\" at %g,%g center front boxed tc rgb 'white' font ',8' offset 0,0.9\n", len, 0.5 * (x0 + x1), y);
}

/* The headers: the figure title, the column titles, the row labels (rotated, in the left band). */
static void montage_headers(FILE *g, const montage_layout *L, const fig_montage_data *d, const double *ytop) {
  fprintf(g, "set label 101 ");
  mbsr__gp_str(g, d->title);
  fprintf(g, " at screen 0.5, screen %.5f center font ',11'\n", (L->ch - 14.0) / L->ch);
  for (int c = 0; c < d->ncol; c++) {
    fprintf(g, "set label %d ", 110 + c);
    mbsr__gp_str(g, d->titles[c]);
    fprintf(g, " at screen %.5f, screen %.5f center\n", (L->lb + (c + 0.5) * L->pw) / L->cw, (ytop[ROW_AXIAL] + L->img[0] + 10.0) / L->ch);
    if (c == 0 || c == d->ncol - 1) continue;
    char t[160];
    snprintf(t, sizeof t, "|%s − HR|", d->titles[c]);
    fprintf(g, "set label %d ", 130 + c);
    mbsr__gp_str(g, t);
    fprintf(g, " at screen %.5f, screen %.5f center\n", (L->lb + (c + 0.5) * L->pw) / L->cw,
            (ytop[ROW_ERR_AXIAL] + L->img[ROW_ERR_AXIAL] + 10.0) / L->ch);
  }
  for (int r = 0; r < NROWS; r++) {
    char t[96];
    snprintf(t, sizeof t, ROW_NAME[r], (long long)(r == ROW_CORONAL || r == ROW_ERR_CORONAL ? L->jy : L->kz));
    fprintf(g, "set label %d ", 150 + r);
    mbsr__gp_str(g, t);
    fprintf(g, " at screen %.5f, screen %.5f center rotate by 90 font ',10'\n", 0.5 * L->lb / L->cw, (ytop[r] + 0.5 * L->img[r]) / L->ch);
  }
}

/* A colour bar in the right band from row r0's top to row r1's bottom (drawn with the next plot). */
static void montage_colorbox(FILE *g, const montage_layout *L, const double *ytop, int r0, int r1, const char *label) {
  double y0 = ytop[r1], y1 = ytop[r0] + L->img[r0];
  fprintf(g, "set colorbox user origin screen %.5f, screen %.5f size screen %.5f, screen %.5f\n", (L->cw - L->rb + 10.0) / L->cw,
          y0 / L->ch, 12.0 / L->cw, (y1 - y0) / L->ch);
  fprintf(g, "set cbtics out nomirror font ',8'\nset cblabel ");
  mbsr__gp_str(g, label);
  fprintf(g, " font ',9' offset -0.5,0\n");
}

/* One panel: its image data and its lines of the script. */
static int montage_panel(FILE *g, const montage_layout *L, const fig_montage_data *d, int row, int c, const double *ytop,
                         const char *out_png) {
  char bin[4400], suf[32];
  snprintf(suf, sizeof suf, ".r%dc%d.bin", row, c);
  int rc = mbsr__fig_src_path(out_png, suf, bin, sizeof bin);
  const int err = row >= ROW_ERR_AXIAL;
  if (!rc) rc = write_panel_bin(bin, L, d->cols[c], err ? d->cols[d->ncol - 1] : NULL, row);
  if (rc) return rc;
  int64_t w, h;
  montage_wh(L, row, &w, &h);
  const double x0 = L->lb + c * L->pw, y0 = ytop[row];
  fprintf(g, "set lmargin at screen %.5f\nset rmargin at screen %.5f\nset bmargin at screen %.5f\nset tmargin at screen %.5f\n",
          (x0 + 2) / L->cw, (x0 + L->pw - 2) / L->cw, y0 / L->ch, (y0 + L->img[row]) / L->ch);
  fprintf(g, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\n", w - 0.5, h - 0.5);
  if (row == ROW_AXIAL && c == d->ncol - 1)
    fprintf(g, "set object 1 rectangle from %g,%g to %g,%g front fillstyle empty border rgb 'red' lw 2\n", L->zx - 0.5, L->zy - 0.5,
            L->zx + L->zw - 0.5, L->zy + L->zh - 0.5);
  if (c == 0 && (row == ROW_AXIAL || row == ROW_ZOOM)) montage_scalebar(g, w, d->cols[d->ncol - 1]->vox[0]);
  fprintf(g, "plot '%s' binary array=(%lld,%lld) format='%%float' with image\n", bin, (long long)w, (long long)h);
  fprintf(g, "unset object 1\nunset arrow\nunset label\nunset colorbox\n");
  return 0;
}

int mbsr__fig_montage(const fig_montage_data *d, const char *out_png) {
  const mbsr_volume *hr = d->cols[d->ncol - 1];
  char gp[4200];
  int rc = d->ncol < 3 ? mbsr_error(MBSR_EINVAL, "montage: %d columns (at least LR, one method, HR)", d->ncol) : 0;
  if (!rc) rc = mbsr__fig_src_path(out_png, ".gp", gp, sizeof gp);
  if (rc) return rc;
  FILE *g = fopen(gp, "w");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot write", gp);
  montage_layout L;
  montage_plan(hr, d->ncol, &L);
  double ytop[NROWS], y = L.ch - L.head, emax = montage_err_max(&L, d->cols[1], hr);
  for (int r = 0; r < NROWS; r++) y -= L.band[r] + L.img[r], ytop[r] = y;
  mbsr__fig_terminal(g, (int)L.cw, (int)L.ch);
  fprintf(g, "unset key\nunset xtics\nunset ytics\nunset border\nunset colorbox\nset multiplot\n");
  montage_headers(g, &L, d, ytop);
  for (int row = 0; row < NROWS && !rc; row++)
    for (int c = 0; c < d->ncol && !rc; c++) {
      const int err = row >= ROW_ERR_AXIAL;
      if (err && (c == 0 || c == d->ncol - 1)) continue;
      if (row == ROW_AXIAL && c == 0) fprintf(g, "set palette gray\nset cbrange [%g:%g]\n", d->lo, d->hi);
      if (row == ROW_ERR_AXIAL && c == 1)
        fprintf(g, "set palette defined (0 '#000004', 0.25 '#57106e', 0.5 '#bc3754', 0.75 '#f98e09', 1 '#fcffa4')\nset cbrange [0:%g]\n", emax);
      if (row == ROW_AXIAL && c == d->ncol - 1) montage_colorbox(g, &L, ytop, ROW_AXIAL, ROW_ZOOM, d->cb_label);
      if (row == ROW_ERR_AXIAL && c == d->ncol - 2) montage_colorbox(g, &L, ytop, ROW_ERR_AXIAL, ROW_ERR_CORONAL, "|method − HR|, same scale");
      rc = montage_panel(g, &L, d, row, c, ytop, out_png);
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
  mbsr__fig_terminal(g, 1200, 400);
  fprintf(g, "set multiplot layout 1,%d title "
             "\"Decorrelation analysis, central axial slice%s (gray: high-pass curves, blue: d0, red: kc)\"\n",
          nv, title_suffix);
  for (int m = 0; m < nv; m++) {
    fprintf(g, "set title \"%s: kc = %.3f, resolution = %.0f µm\"\nset xlabel 'normalised frequency'\nset ylabel 'd'\n"
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
  mbsr__fig_terminal(g, 680, 520);
  fprintf(g, "unset key\n"
             "set title \"%s, voxel-wise: R = %.2f in the brain mask (n = %d, shown);\\nR = %.2f over the whole "
             "volume incl. background (n = %d)\"\n"
             "set xlabel '%s'\nset ylabel '%s'\n"
             "set fit quiet\nset fit logfile '/dev/null'\nf(x) = a*x + b\nfit f(x) '%s' via a, b\n"
             "plot '%s' using 1:2 with points pt 7 ps 0.3 lc rgb '#40000080', f(x) lw 2 lc rgb 'red'\n",
          d->title, d->r[0].r, d->r[0].n, d->r[1].r, d->r[1].n, d->xlabel, d->ylabel, dat, dat);
  if (fclose(g)) return mbsr_error(MBSR_EIO, "%s: write failed", gp);
  return mbsr__run_gnuplot(gp, out_png);
}
