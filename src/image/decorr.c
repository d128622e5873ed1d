/* Effective resolution by decorrelation analysis: an independent C implementation of the steps
 * in ../shared/docs/decorrelation.md (what ImDecorr v1.1.8's MATLAB getDcorr computes; GPL code
 * not copied). Numbered comments refer to the steps of that document.
 *
 * Implementation notes
 *  - Spectra are single precision (FFTW3f); sums are accumulated in double and the correlation is
 *    then rounded through single precision exactly where the MATLAB code divides and truncates
 *    (mbsr_decorr_trunc3), so values sit on the same 0.001 grid.
 *  - Every correlation is a sum over the disc R^2 < r^2. The pixels inside the unit disc are sorted
 *    once per image shape by R^2, so each disc is a prefix of that order and one curve costs one
 *    pass of prefix sums plus a binary search per radius, instead of Nr full-image sums.
 *  - One FFTW plan per image shape (planner calls under a mutex: the planner is not thread-safe);
 *    threads execute it on their own buffers with fftwf_execute_dft (new-array execution). */
#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/decorr.h"
#include "mbsr/image.h"

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

void mbsr_decorr_opts_default(mbsr_decorr_opts *o) {
  memset(o, 0, sizeof *o);
  o->nr = 50;
  o->ng = 10;
  o->rmin = 0;
  o->rmax = 1;
  o->px = 0; /* 2-D: 1 (pixels); volume: from the voxel size */
  o->apod_px = 20;
  o->apod = MBSR_DECORR_APOD_MATLAB;
  o->axis = 2;
  o->step = 1;
  o->fg_rel = 0.1;
  o->min_fg = 0.25;
}

static int eff_nr(const mbsr_decorr_opts *o) { return o->nr < 30 ? 30 : o->nr; }
static int eff_ng(const mbsr_decorr_opts *o) { return o->ng < 5 ? 5 : o->ng; }

/* ---------------------------------------------------------------- pieces */

void mbsr_decorr_linspace(double a, double b, int n, double *y) {
  if (n < 1) return;
  if (n == 1) {
    y[0] = b;
    return;
  }
  int n1 = n - 1;
  for (int k = 0; k < n; k++) y[k] = a + (k * (b - a)) / n1;
  y[0] = a;
  y[n1] = b;
}

int mbsr_decorr_local_max(const double *d, int n) {
  if (n < 2) return 0;
  int len = n, ind = 0;
  for (int k = 1; k < len; k++)
    if (d[k] > d[ind]) ind = k; /* first index of the maximum */
  while (len > 1) {
    if (ind == len - 1) {
      len--;
    } else if (ind == 0) {
      break;
    } else {
      double mn = d[ind];
      for (int k = ind; k < len; k++)
        if (d[k] < mn) mn = d[k];
      if (d[ind] - mn >= 0.0005) break;
      len--;
    }
    ind = 0;
    for (int k = 1; k < len; k++)
      if (d[k] > d[ind]) ind = k;
  }
  return ind;
}

double mbsr_decorr_trunc3(double num, double c1, double c2) {
  /* cc = sum(real(A.*conj(B))) ./ (c1*c2); cc = floor(1000*cc)/1000; all in single precision */
  volatile float prod = (float)c1 * (float)c2;
  volatile float cc = (float)num / prod;
  volatile float t = 1000.0f * cc;
  float r = floorf(t) / 1000.0f;
  if (isnan(r)) return 0.0;
  return (double)r;
}

/* Step 1: the 1-D taper of length n over `px` border pixels (the 1-D part of apodImRect):
 * x = |linspace(-n/2, n/2, n)|, border = x > n/2 - px; d = (-x - mean(-x over border)) on the border,
 * 0 inside; d mapped linearly from [min d, max d] onto [-pi/2, pi/2]; inside set to pi/2;
 * taper = (sin(d) + 1) / 2. */
static void taper_1d(int64_t n, int px, double *t) {
  double *x = malloc(sizeof(double) * (size_t)n);
  mbsr_decorr_linspace(-n / 2.0, n / 2.0, (int)n, x);
  double sum = 0;
  int64_t cnt = 0;
  for (int64_t k = 0; k < n; k++) {
    x[k] = fabs(x[k]);
    if (x[k] > n / 2.0 - px) sum += -x[k], cnt++;
  }
  if (cnt == 0 || n < 2) {
    for (int64_t k = 0; k < n; k++) t[k] = 1;
    free(x);
    return;
  }
  double mean = sum / cnt, dmin = INFINITY, dmax = -INFINITY;
  for (int64_t k = 0; k < n; k++) {
    double d = (x[k] > n / 2.0 - px) ? (-x[k] - mean) : 0.0;
    t[k] = d;
    if (d < dmin) dmin = d;
    if (d > dmax) dmax = d;
  }
  for (int64_t k = 0; k < n; k++) {
    double d;
    if (x[k] > n / 2.0 - px) {
      double tv = (dmax > dmin) ? (t[k] - dmin) / (dmax - dmin) : 1.0;
      if (tv < 0) tv = 0;
      if (tv > 1) tv = 1;
      d = tv * (M_PI / 2 - (-M_PI / 2)) + (-M_PI / 2);
    } else {
      d = M_PI / 2;
    }
    t[k] = (sin(d) + 1) / 2;
  }
  free(x);
}

/* MATLAB imresize(v, [L 1], 'bilinear') of a vector of length n to L >= 1 (pixel-centre mapping,
 * triangle kernel, 4 taps, normalised weights, mirrored indices). */
static void resize_bilinear(const double *v, int64_t n, int64_t L, double *out) {
  double scale = (double)L / (double)n;
  double kw = 2.0;
  if (scale < 1) kw = kw / scale; /* antialiasing when shrinking (not used here: L >= n) */
  for (int64_t x = 1; x <= L; x++) {
    double u = x / scale + 0.5 * (1 - 1 / scale);
    int64_t left = (int64_t)floor(u - kw / 2);
    int P = (int)ceil(kw) + 2;
    double wsum = 0, acc = 0;
    for (int p = 0; p < P; p++) {
      int64_t idx = left + p;
      double dx = u - idx;
      if (scale < 1) dx *= scale;
      double w = (dx >= -1 && dx < 0) ? 1 + dx : (dx >= 0 && dx <= 1) ? 1 - dx : 0;
      if (scale < 1) w *= scale;
      int64_t m = (idx - 1) % (2 * n);
      if (m < 0) m += 2 * n;
      int64_t src = m < n ? m : 2 * n - 1 - m; /* aux = [1:n, n:-1:1] */
      wsum += w;
      acc += w * v[src];
    }
    out[x - 1] = acc / wsum;
  }
}

/* The two tapers (ti along i = MATLAB rows, tj along j = columns); the mask is their outer product. */
static void apod_tapers(int64_t nx, int64_t ny, int px, mbsr_decorr_apod mode, double *ti, double *tj) {
  if (mode == MBSR_DECORR_APOD_NONE || px <= 0) {
    for (int64_t k = 0; k < nx; k++) ti[k] = 1;
    for (int64_t k = 0; k < ny; k++) tj[k] = 1;
    return;
  }
  if (mode == MBSR_DECORR_APOD_AXIS || nx == ny) {
    taper_1d(nx, px, ti);
    taper_1d(ny, px, tj);
    return;
  }
  int64_t ns = nx < ny ? nx : ny;
  double *t = malloc(sizeof(double) * (size_t)ns);
  taper_1d(ns, px, t);
  if (nx < ny) {
    memcpy(ti, t, sizeof(double) * (size_t)nx);
    resize_bilinear(t, ns, ny, tj);
  } else {
    memcpy(tj, t, sizeof(double) * (size_t)ny);
    resize_bilinear(t, ns, nx, ti);
  }
  free(t);
}

int mbsr_decorr_apod_mask(int64_t nx, int64_t ny, int px, mbsr_decorr_apod mode, double *mask) {
  if (nx < 1 || ny < 1 || !mask) return mbsr_error(MBSR_EINVAL, "decorr: bad mask size %lldx%lld", (long long)nx, (long long)ny);
  double *ti = malloc(sizeof(double) * (size_t)(nx + ny));
  if (!ti) return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  apod_tapers(nx, ny, px, mode, ti, ti + nx);
  for (int64_t j = 0; j < ny; j++)
    for (int64_t i = 0; i < nx; i++) mask[i + nx * j] = ti[i] * ti[nx + j];
  free(ti);
  return MBSR_OK;
}

/* ---------------------------------------------------------------- workspaces */

typedef struct {
  int64_t nx, ny;   /* full image */
  int nxo, nyo;     /* odd analysed size */
  int64_t m;        /* pixels with R^2 < 1 */
  int32_t *src;     /* [m] index into the (unshifted) FFT output of the k-th pixel in R^2 order */
  double *r2;       /* [m] sorted R^2 */
  double *ti, *tj;  /* apodization tapers (full size) */
  int apod;         /* apply the apodization */
  fftwf_plan plan;
  fftwf_complex *pin, *pout; /* plan buffers */
} shape_ws;

typedef struct {
  fftwf_complex *cin, *cout;
  float *ikr, *iki, *inr, *ini;
  double *pnum, *pden;
  double *dwork;    /* nr */
} thread_ws;

typedef struct {
  double r2;
  int32_t pix;
} r2pix;

static int cmp_r2pix(const void *a, const void *b) {
  const r2pix *x = a, *y = b;
  if (x->r2 < y->r2) return -1;
  if (x->r2 > y->r2) return 1;
  return x->pix < y->pix ? -1 : x->pix > y->pix;
}

static void shape_free(shape_ws *shape) {
  if (!shape) return;
  if (shape->plan) {
    pthread_mutex_lock(&planner_lock);
    fftwf_destroy_plan(shape->plan);
    pthread_mutex_unlock(&planner_lock);
  }
  fftwf_free(shape->pin);
  fftwf_free(shape->pout);
  free(shape->src);
  free(shape->r2);
  free(shape->ti);
  free(shape->tj);
  free(shape);
}

static int shape_new(int64_t nx, int64_t ny, const mbsr_decorr_opts *o, shape_ws **out) {
  *out = NULL;
  if (nx < 3 || ny < 3)
    return mbsr_error(MBSR_EINVAL, "decorr: image %lldx%lld is too small (each side needs >= 3 pixels)", (long long)nx,
                      (long long)ny);
  if (nx > (1 << 15) || ny > (1 << 15) || nx * ny > ((int64_t)1 << 30))
    return mbsr_error(MBSR_ERANGE, "decorr: image %lldx%lld is too large for a 2-D analysis", (long long)nx, (long long)ny);
  shape_ws *shape = calloc(1, sizeof *shape);
  if (!shape) return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  shape->nx = nx;
  shape->ny = ny;
  /* step 2: odd sides (drop the last row / column of an even side) */
  shape->nxo = (int)(nx % 2 ? nx : nx - 1);
  shape->nyo = (int)(ny % 2 ? ny : ny - 1);
  int nxo = shape->nxo, nyo = shape->nyo;
  size_t np = (size_t)nxo * nyo;
  shape->ti = malloc(sizeof(double) * (size_t)nx);
  shape->tj = malloc(sizeof(double) * (size_t)ny);
  shape->pin = fftwf_malloc(sizeof(fftwf_complex) * np);
  shape->pout = fftwf_malloc(sizeof(fftwf_complex) * np);
  r2pix *tmp = malloc(sizeof(r2pix) * np);
  double *X = malloc(sizeof(double) * (size_t)(nxo + nyo));
  if (!shape->ti || !shape->tj || !shape->pin || !shape->pout || !tmp || !X) {
    free(tmp);
    free(X);
    shape_free(shape);
    return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  }
  shape->apod = o->apod != MBSR_DECORR_APOD_NONE && o->apod_px > 0;
  apod_tapers(nx, ny, o->apod_px, o->apod, shape->ti, shape->tj);
  /* step 3: [X,Y] = meshgrid(linspace(-1,1,cols), linspace(-1,1,rows)); R = sqrt(X.^2+Y.^2); keep R.^2 < 1.
   * Rows are i (nxo), columns j (nyo). */
  double *Y = X, *Xc = X + nxo;
  mbsr_decorr_linspace(-1, 1, nxo, Y);
  mbsr_decorr_linspace(-1, 1, nyo, Xc);
  int sx = nxo / 2, sy = nyo / 2; /* fftshift = circshift by floor(n/2) */
  int64_t m = 0;
  for (int j = 0; j < nyo; j++)
    for (int i = 0; i < nxo; i++) {
      double R = sqrt(Xc[j] * Xc[j] + Y[i] * Y[i]);
      double R2 = R * R;
      if (!(R2 < 1)) continue;
      /* pixel (i,j) of fftshift(F) is F at ((i - sx) mod nxo, (j - sy) mod nyo) */
      int fi = (i - sx + nxo) % nxo, fj = (j - sy + nyo) % nyo;
      tmp[m].r2 = R2;
      tmp[m].pix = fi + nxo * fj;
      m++;
    }
  qsort(tmp, (size_t)m, sizeof *tmp, cmp_r2pix);
  shape->m = m;
  shape->src = malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
  shape->r2 = malloc(sizeof(double) * (size_t)(m ? m : 1));
  if (!shape->src || !shape->r2) {
    free(tmp);
    free(X);
    shape_free(shape);
    return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  }
  for (int64_t k = 0; k < m; k++) {
    shape->src[k] = tmp[k].pix;
    shape->r2[k] = tmp[k].r2;
  }
  free(tmp);
  free(X);
  pthread_mutex_lock(&planner_lock);
  /* FFTW is row-major: the slow dimension (j, nyo) first */
  shape->plan = fftwf_plan_dft_2d(nyo, nxo, shape->pin, shape->pout, FFTW_FORWARD, FFTW_ESTIMATE);
  pthread_mutex_unlock(&planner_lock);
  if (!shape->plan) {
    shape_free(shape);
    return mbsr_error(MBSR_EUNSUPPORTED, "decorr: FFTW could not plan a %dx%d transform", nxo, nyo);
  }
  *out = shape;
  return MBSR_OK;
}

static void thread_free(thread_ws *ws) {
  if (!ws) return;
  fftwf_free(ws->cin);
  fftwf_free(ws->cout);
  free(ws->ikr);
  free(ws->pnum);
  free(ws->dwork);
  free(ws);
}

static thread_ws *thread_new(const shape_ws *shape, int nr) {
  thread_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return NULL;
  size_t np = (size_t)shape->nxo * shape->nyo, m = (size_t)shape->m + 1;
  ws->cin = fftwf_malloc(sizeof(fftwf_complex) * np);
  ws->cout = fftwf_malloc(sizeof(fftwf_complex) * np);
  ws->ikr = malloc(sizeof(float) * 4 * m);
  ws->pnum = malloc(sizeof(double) * 2 * m);
  ws->dwork = malloc(sizeof(double) * (size_t)nr);
  if (!ws->cin || !ws->cout || !ws->ikr || !ws->pnum || !ws->dwork) {
    thread_free(ws);
    return NULL;
  }
  ws->iki = ws->ikr + m;
  ws->inr = ws->iki + m;
  ws->ini = ws->inr + m;
  ws->pden = ws->pnum + m;
  return ws;
}

/* number of sorted R^2 values < r*r (the disc R.^2 < r^2 is that prefix) */
static int64_t disc_count(const shape_ws *shape, double r) {
  double t = r * r;
  int64_t lo = 0, hi = shape->m;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (shape->r2[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Steps 6/8: one decorrelation curve from the prefix sums pnum (numerator) and pden (|In|^2). */
static void curve(const shape_ws *shape, const thread_ws *ws, double c1, const double *r, int nr, double *d) {
  for (int k = 0; k < nr; k++) {
    int64_t n = disc_count(shape, r[k]);
    float c2 = sqrtf((float)ws->pden[n]);
    d[k] = mbsr_decorr_trunc3(ws->pnum[n], c1, c2);
  }
}

/* |a + ib| in single precision, as glibc's hypotf computes it for finite values (sqrt in double,
 * rounded once), inlined: it was 40% of the run time as a library call. */
static inline float abs_f(float a, float b) { return (float)sqrt((double)a * a + (double)b * b); }

/* Step 8 for one filter width g: Ir = Ik .* (1 - exp(-2 g^2 R^2)), prefix sums of Re(Ir .* conj(In)),
 * c1 = norm(Ir) over the whole (masked) spectrum. */
static double highpass_prefix(const shape_ws *shape, thread_ws *ws, double g) {
  double csum = 0, acc = 0;
  ws->pnum[0] = 0;
  double a = (-2.0 * g) * g, last_r2 = -1;
  float f = 0;
  for (int64_t p = 0; p < shape->m; p++) {
    if (shape->r2[p] != last_r2) { /* pixels come sorted by R^2 and symmetric ones share it */
      last_r2 = shape->r2[p];
      double x = a * last_r2; /* below -40, exp(x) < 5e-18 and (float)(1 - exp(x)) is exactly 1 */
      f = x < -40 ? 1.0f : (float)(1.0 - exp(x));
    }
    float irr = ws->ikr[p] * f, iri = ws->iki[p] * f;
    float ab = abs_f(irr, iri);
    csum += (double)(ab * ab);
    acc += (double)(irr * ws->inr[p] + iri * ws->ini[p]);
    ws->pnum[p + 1] = acc;
  }
  return (double)sqrtf((float)csum);
}

/* Steps 1-4: apodization (on the full image, as apodImRect runs before getDcorr), the single, odd
 * crop, Ik = fftshift(fft2(fftshift(im))) on R^2 < 1, In = Ik ./ |Ik| (non-finite -> 0), and the
 * prefix sums of the curves; returns c0 = ||Ik||. */
static double spectrum(const shape_ws *shape, thread_ws *ws, const float *im) {
  const int64_t nx = shape->nx, ny = shape->ny;
  const int nxo = shape->nxo, nyo = shape->nyo, sx = nxo / 2, sy = nyo / 2;
  double val = 0;
  if (shape->apod) {
    double acc = 0;
    for (int64_t k = 0; k < nx * ny; k++) acc += im[k];
    val = acc / (double)(nx * ny);
  }
  for (int j = 0; j < nyo; j++) {
    int dj = (j + sy) % nyo;
    for (int i = 0; i < nxo; i++) {
      float v = im[i + nx * j];
      if (shape->apod) v = (float)((v - val) * (shape->ti[i] * shape->tj[j]) + val);
      int di = (i + sx) % nxo; /* inner fftshift */
      ws->cin[di + (int64_t)nxo * dj][0] = v;
      ws->cin[di + (int64_t)nxo * dj][1] = 0;
    }
  }
  fftwf_execute_dft(shape->plan, ws->cin, ws->cout);
  double csum = 0, an = 0, ad = 0;
  ws->pnum[0] = ws->pden[0] = 0;
  for (int64_t p = 0; p < shape->m; p++) {
    float re = ws->cout[shape->src[p]][0], imv = ws->cout[shape->src[p]][1];
    float ab = abs_f(re, imv);
    float nre = re / ab, nim = imv / ab;
    if (!isfinite(nre) || !isfinite(nim)) nre = nim = 0;
    ws->ikr[p] = re;
    ws->iki[p] = imv;
    ws->inr[p] = nre;
    ws->ini[p] = nim;
    csum += (double)(re * re + imv * imv);
    an += (double)(re * nre + imv * nim);
    float nb = abs_f(nre, nim);
    ad += (double)(nb * nb);
    ws->pnum[p + 1] = an;
    ws->pden[p + 1] = ad;
  }
  return (double)sqrtf((float)csum);
}

/* The work arrays of one analysis (one allocation). */
typedef struct {
  int nr, ng;
  double *r1, *r2, *d0;   /* [nr] the radii of pass 1 and 2; the unfiltered curve */
  double *kcl, *snr;      /* [2 ng + 2] as the MATLAB code indexes them: k0, pass 1 (ng + 1), pass 2 (ng), k0 */
  double *g, *gr;         /* [ng + 1] pass-1 and [ng] pass-2 high-pass widths */
  double A0, k0;
} analysis;

static int analysis_new(analysis *an, int nr, int ng) {
  an->nr = nr, an->ng = ng;
  double *w = malloc(sizeof(double) * ((size_t)3 * nr + (size_t)2 * (2 * ng + 2) + (size_t)(2 * ng + 1)));
  if (!w) return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  an->r1 = w, an->r2 = w + nr, an->d0 = w + 2 * nr;
  an->kcl = w + 3 * nr, an->snr = an->kcl + (2 * ng + 2);
  an->g = an->snr + (2 * ng + 2), an->gr = an->g + ng + 1;
  return 0;
}

/* One high-pass curve (width g over radii r): its peak into slot ks of kcl/snr, the curve into
 * slot k of cv. */
static void highpass_peak(const shape_ws *shape, thread_ws *ws, analysis *an, double g, const double *r, int ks, int k,
                          mbsr_decorr_curves *cv) {
  const int nr = an->nr;
  double *d = ws->dwork;
  curve(shape, ws, highpass_prefix(shape, ws, g), r, nr, d);
  int ind = mbsr_decorr_local_max(d, nr);
  an->kcl[ks] = r[ind];
  an->snr[ks] = d[ind];
  if (cv) {
    memcpy(cv->d + (size_t)k * nr, d, sizeof(double) * nr);
    cv->g[k] = g;
    cv->kc[k] = r[ind];
    cv->amp[k] = d[ind];
  }
}

/* Steps 8-9: pass 1 over g = [rows/4, exp(linspace(log(gMax), log(0.15), Ng))], then pass 2
 * refined around the last maximum of kc (pass 2 starts at the last pass-1 slot, which it overwrites). */
static void highpass_passes(const shape_ws *shape, thread_ws *ws, analysis *an, int ind0, mbsr_decorr_curves *cv) {
  const int nr = an->nr, ng = an->ng, nxo = shape->nxo, nyo = shape->nyo;
  double gMax = 2.0 / an->r1[ind0];
  if (isinf(gMax)) gMax = (nxo > nyo ? nxo : nyo) / 2.0;
  double *g = an->g, *gr = an->gr, *kcl = an->kcl;
  g[0] = nxo / 4.0;
  mbsr_decorr_linspace(log(gMax), log(0.15), ng, g + 1);
  for (int h = 1; h <= ng; h++) g[h] = exp(g[h]);
  for (int h = 0; h <= ng; h++) highpass_peak(shape, ws, an, g[h], an->r1, h + 1, h, cv);
  int j = 0;
  for (int k = 1; k <= ng + 1; k++)
    if (kcl[k] >= kcl[j]) j = k;
  double g1, g2;
  if (j == 0) {
    g1 = nxo;
    g2 = g[0];
  } else if (j >= ng) { /* MATLAB: ind1 >= numel(g) with ind1 = j + 1 */
    g1 = g[j - 2];
    g2 = g[j - 1];
  } else {
    g1 = g[j - 1];
    g2 = g[j];
  }
  mbsr_decorr_linspace(log(g1), log(g2), ng, gr);
  for (int h = 0; h < ng; h++) gr[h] = exp(gr[h]);
  double ra = kcl[j] - (an->r1[1] - an->r1[0]), rb = kcl[j] + 0.4;
  if (ra < 0) ra = 0;
  if (rb > 1) rb = 1;
  mbsr_decorr_linspace(ra, fmin(rb, an->r1[nr - 1]), nr, an->r2);
  for (int h = 0; h < ng; h++) highpass_peak(shape, ws, an, gr[h], an->r2, ng + 1 + h, ng + 1 + h, cv);
  if (cv) memcpy(cv->r2, an->r2, sizeof(double) * nr);
}

static int analyse(const shape_ws *shape, thread_ws *ws, const float *im, const mbsr_decorr_opts *o, mbsr_decorr_result *res,
                   mbsr_decorr_curves *cv) {
  const int nr = eff_nr(o), ng = eff_ng(o);
  memset(res, 0, sizeof *res);
  res->nx = shape->nxo;
  res->ny = shape->nyo;
  analysis an = {0};
  int rc = analysis_new(&an, nr, ng);
  if (rc) return rc;
  const double c0 = spectrum(shape, ws, im);
  /* step 6: d0 over r = linspace(rmin, rmax, Nr); step 7: its peak */
  mbsr_decorr_linspace(o->rmin, o->rmax, nr, an.r1);
  curve(shape, ws, c0, an.r1, nr, an.d0);
  int ind0 = mbsr_decorr_local_max(an.d0, nr);
  an.A0 = an.d0[ind0], an.k0 = an.r1[ind0];
  if (cv) {
    memcpy(cv->r1, an.r1, sizeof(double) * nr);
    memcpy(cv->d0, an.d0, sizeof(double) * nr);
  }
  an.kcl[0] = an.k0;
  an.snr[0] = an.A0;
  highpass_passes(shape, ws, &an, ind0, cv);
  /* step 10: add k0; drop peaks with amplitude < 0.05; kcMax = max */
  int nk = 2 * ng + 2, best = 0;
  an.kcl[nk - 1] = an.k0;
  an.snr[nk - 1] = an.A0;
  for (int k = 0; k < nk; k++) {
    if (an.snr[k] < 0.05) an.kcl[k] = 0, an.snr[k] = 0;
    if (an.kcl[k] > an.kcl[best]) best = k;
  }
  res->kc_max = an.kcl[best];
  res->a_max = an.snr[best];
  res->A0 = an.A0;
  res->k0 = an.k0;
  double px = o->px > 0 ? o->px : 1.0;
  res->resolution = res->kc_max > 0 ? 2 * px / res->kc_max : INFINITY;
  free(an.r1);
  return MBSR_OK;
}

static int check_opts(const mbsr_decorr_opts *o) {
  if (!(o->rmin >= 0 && o->rmax <= 1 && o->rmin < o->rmax))
    return mbsr_error(MBSR_EINVAL, "decorr: radius range [%g, %g] must satisfy 0 <= rmin < rmax <= 1", o->rmin, o->rmax);
  if (o->nr > 100000 || o->ng > 1000) return mbsr_error(MBSR_EINVAL, "decorr: Nr %d or Ng %d too large", o->nr, o->ng);
  if (o->apod_px < 0) return mbsr_error(MBSR_EINVAL, "decorr: negative apodization width %d", o->apod_px);
  if (o->apod != MBSR_DECORR_APOD_MATLAB && o->apod != MBSR_DECORR_APOD_AXIS && o->apod != MBSR_DECORR_APOD_NONE)
    return mbsr_error(MBSR_EINVAL, "decorr: unknown apodization mode %d", (int)o->apod);
  return MBSR_OK;
}

mbsr_decorr_curves *mbsr_decorr_curves_new(int nr, int ng) {
  if (nr < 30) nr = 30;
  if (ng < 5) ng = 5;
  mbsr_decorr_curves *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->nr = nr;
  c->ng = ng;
  size_t nc = (size_t)(2 * ng + 1);
  c->r1 = calloc((size_t)nr * (3 + nc) + 3 * nc, sizeof(double));
  if (!c->r1) {
    free(c);
    return NULL;
  }
  c->d0 = c->r1 + nr;
  c->r2 = c->d0 + nr;
  c->d = c->r2 + nr;
  c->g = c->d + nc * nr;
  c->kc = c->g + nc;
  c->amp = c->kc + nc;
  return c;
}

void mbsr_decorr_curves_free(mbsr_decorr_curves *c) {
  if (!c) return;
  free(c->r1);
  free(c);
}

int mbsr_decorr_2d(const float *im, int64_t nx, int64_t ny, const mbsr_decorr_opts *o, mbsr_decorr_result *res,
                   mbsr_decorr_curves *curves) {
  mbsr_decorr_opts def;
  if (!o) {
    mbsr_decorr_opts_default(&def);
    o = &def;
  }
  if (!im || !res) return mbsr_error(MBSR_EINVAL, "decorr: NULL image or result");
  int rc = check_opts(o);
  if (rc) return rc;
  if (curves && (curves->nr != eff_nr(o) || curves->ng != eff_ng(o)))
    return mbsr_error(MBSR_EINVAL, "decorr: curves made for Nr=%d Ng=%d, options say Nr=%d Ng=%d", curves->nr,
                      curves->ng, eff_nr(o), eff_ng(o));
  for (int64_t k = 0; k < nx * ny; k++)
    if (!isfinite(im[k]))
      return mbsr_error(MBSR_ENONFINITE, "decorr: pixel (%lld, %lld) is %g", (long long)(k % nx), (long long)(k / nx),
                        im[k]);
  shape_ws *shape;
  if ((rc = shape_new(nx, ny, o, &shape))) return rc;
  thread_ws *ws = thread_new(shape, eff_nr(o));
  if (!ws) {
    shape_free(shape);
    return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  }
  rc = analyse(shape, ws, im, o, res, curves);
  thread_free(ws);
  shape_free(shape);
  return rc;
}

/* ---------------------------------------------------------------- volumes */

void mbsr_decorr_summary_free(mbsr_decorr_summary *s) {
  if (!s) return;
  if (s->curves)
    for (int64_t k = 0; k < s->nslices; k++) mbsr_decorr_curves_free(s->curves[k]);
  free(s->curves);
  free(s->used);
  free(s->fg_frac);
  free(s->slice);
  free(s);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* R's quantile type 7 of sorted x[0..n-1] (+inf allowed at the top). */
static double quantile7(const double *x, int64_t n, double p) {
  if (n <= 0) return NAN;
  double h = (n - 1) * p;
  int64_t lo = (int64_t)floor(h);
  double f = h - lo;
  if (lo >= n - 1 || f == 0) return x[lo < n ? lo : n - 1];
  if (isinf(x[lo + 1])) return INFINITY;
  return x[lo] + f * (x[lo + 1] - x[lo]);
}

/* Copy slice s along `axis` into buf (rows = the lower remaining array axis). */
static void get_slice(const mbsr_volume *v, int axis, int64_t s, float *buf) {
  int64_t nx = v->nx, ny = v->ny, nz = v->nz;
  if (axis == 2) {
    memcpy(buf, v->data + nx * ny * s, sizeof(float) * (size_t)(nx * ny));
  } else if (axis == 1) {
    for (int64_t k = 0; k < nz; k++) memcpy(buf + nx * k, v->data + nx * (s + ny * k), sizeof(float) * (size_t)nx);
  } else {
    for (int64_t k = 0; k < nz; k++)
      for (int64_t j = 0; j < ny; j++) buf[j + ny * k] = v->data[s + nx * (j + ny * k)];
  }
}

/* The slices to analyse (every step-th with enough foreground): their indices into todo; the
 * foreground fraction of every slice into S. */
static int select_slices(const mbsr_volume *v, const mbsr_decorr_opts *o, int64_t rows, int64_t cols, mbsr_decorr_summary *sum,
                         int64_t **todo, int64_t *ntodo) {
  const int64_t ns = sum->nslices;
  *todo = malloc(sizeof(int64_t) * (size_t)(ns ? ns : 1));
  *ntodo = 0;
  float *probe = malloc(sizeof(float) * (size_t)(rows * cols));
  if (!*todo || !probe) {
    free(*todo), free(probe);
    *todo = NULL;
    return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  }
  for (int64_t s = 0; s < ns; s++) {
    get_slice(v, o->axis, s, probe);
    int64_t fg = 0;
    for (int64_t k = 0; k < rows * cols; k++) fg += probe[k] > sum->threshold;
    sum->fg_frac[s] = (double)fg / (double)(rows * cols);
    if (s % o->step == 0 && sum->fg_frac[s] >= o->min_fg) (*todo)[(*ntodo)++] = s;
  }
  free(probe);
  return 0;
}

/* The listed slices, one per OpenMP task (each thread its own workspace). */
static int analyse_slices(const mbsr_volume *v, const mbsr_decorr_opts *o, const shape_ws *shape, int64_t rows, int64_t cols,
                          const int64_t *todo, int64_t ntodo, mbsr_decorr_summary *sum) {
  int failed = 0;
#pragma omp parallel
  {
    thread_ws *ws = thread_new(shape, eff_nr(o));
    float *buf = malloc(sizeof(float) * (size_t)(rows * cols));
    int ok = ws && buf;
    if (!ok) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntodo; t++) {
      if (!ok) continue;
      int64_t s = todo[t];
      mbsr_decorr_curves *cv = NULL;
      if (o->keep_curves) {
        cv = sum->curves[s] = mbsr_decorr_curves_new(o->nr, o->ng);
        if (!cv) {
#pragma omp atomic write
          failed = 1;
          continue;
        }
      }
      get_slice(v, o->axis, s, buf);
      if (analyse(shape, ws, buf, o, &sum->slice[s], cv) == MBSR_OK) sum->used[s] = 1;
      else {
#pragma omp atomic write
        failed = 1;
      }
    }
    thread_free(ws);
    free(buf);
  }
  return failed ? mbsr_error(MBSR_ENOMEM, "decorr: out of memory in the slice workers") : 0;
}

/* Medians and quartiles over the analysed slices. */
static int summarise_slices(mbsr_decorr_summary *sum) {
  const int64_t ns = sum->nslices;
  double *kc = malloc(sizeof(double) * (size_t)(ns ? ns : 1) * 3), *res = kc + ns, *amp = res + ns;
  if (!kc) return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  int64_t n = 0;
  for (int64_t s = 0; s < ns; s++) {
    if (!sum->used[s]) continue;
    kc[n] = sum->slice[s].kc_max;
    res[n] = sum->slice[s].resolution;
    amp[n] = sum->slice[s].A0;
    sum->n_no_peak += sum->slice[s].kc_max <= 0;
    n++;
  }
  sum->nused = n;
  qsort(kc, (size_t)n, sizeof(double), cmp_double);
  qsort(res, (size_t)n, sizeof(double), cmp_double);
  qsort(amp, (size_t)n, sizeof(double), cmp_double);
  sum->kc_median = quantile7(kc, n, 0.5);
  sum->kc_q1 = quantile7(kc, n, 0.25);
  sum->kc_q3 = quantile7(kc, n, 0.75);
  sum->kc_min = n ? kc[0] : NAN;
  sum->kc_max = n ? kc[n - 1] : NAN;
  sum->res_median = quantile7(res, n, 0.5);
  sum->res_q1 = quantile7(res, n, 0.25);
  sum->res_q3 = quantile7(res, n, 0.75);
  sum->A0_median = quantile7(amp, n, 0.5);
  free(kc);
  return 0;
}

/* A summary for ns slices (arrays allocated). */
static int summary_new(const mbsr_decorr_opts *o, int64_t ns, mbsr_decorr_summary **out) {
  mbsr_decorr_summary *sum = calloc(1, sizeof *sum);
  if (!sum) return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  sum->axis = o->axis;
  sum->nslices = ns;
  sum->used = calloc((size_t)ns, sizeof(int));
  sum->fg_frac = calloc((size_t)ns, sizeof(double));
  sum->slice = calloc((size_t)ns, sizeof(mbsr_decorr_result));
  if (o->keep_curves) sum->curves = calloc((size_t)ns, sizeof(mbsr_decorr_curves *));
  if (!sum->used || !sum->fg_frac || !sum->slice || (o->keep_curves && !sum->curves)) {
    mbsr_decorr_summary_free(sum);
    return mbsr_error(MBSR_ENOMEM, "decorr: out of memory");
  }
  *out = sum;
  return 0;
}

int mbsr_decorr_volume(const mbsr_volume *v, const mbsr_decorr_opts *oin, mbsr_decorr_summary **out) {
  *out = NULL;
  mbsr_decorr_opts o;
  if (oin) o = *oin;
  else mbsr_decorr_opts_default(&o);
  if (!v || !v->data) return mbsr_error(MBSR_EINVAL, "decorr: NULL volume");
  int rc = check_opts(&o);
  if (rc) return rc;
  if (o.axis < 0 || o.axis > 2) return mbsr_error(MBSR_EINVAL, "decorr: axis %d (use 0, 1 or 2)", o.axis);
  if (o.step < 1) o.step = 1;
  double t0 = mbsr_now();
  int64_t dims[3] = {v->nx, v->ny, v->nz};
  int a = o.axis == 0 ? 1 : 0, b = o.axis == 2 ? 1 : 2; /* in-plane axes: rows a, columns b */
  int64_t rows = dims[a], cols = dims[b], ns = dims[o.axis];
  int64_t nvox = mbsr_volume_nvox(v);
  for (int64_t k = 0; k < nvox; k++)
    if (!isfinite(v->data[k])) return mbsr_error(MBSR_ENONFINITE, "decorr: voxel %lld of the volume is %g", (long long)k, v->data[k]);
  mbsr_decorr_summary *sum = NULL;
  if ((rc = summary_new(&o, ns, &sum))) return rc;
  double va = v->vox[a], vb = v->vox[b];
  sum->px_anisotropic = fabs(va - vb) > 1e-3 * fmax(va, vb);
  sum->px = o.px > 0 ? o.px : 0.5 * (va + vb);
  o.px = sum->px;
  sum->threshold = o.fg_rel * mbsr_percentile(v, NULL, 99.0); /* numpy-style 99th percentile */
  shape_ws *shape = NULL;
  int64_t *todo = NULL, ntodo = 0;
  if ((rc = shape_new(rows, cols, &o, &shape))) mbsr_error_prefix(rc, "slices along axis %d: ", o.axis);
  if (!rc) rc = select_slices(v, &o, rows, cols, sum, &todo, &ntodo);
  if (!rc) rc = analyse_slices(v, &o, shape, rows, cols, todo, ntodo, sum);
  free(todo);
  shape_free(shape);
  if (!rc) rc = summarise_slices(sum);
  if (rc) {
    mbsr_decorr_summary_free(sum);
    return rc;
  }
  sum->seconds = mbsr_now() - t0;
  *out = sum;
  return MBSR_OK;
}
