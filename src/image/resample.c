/* Resampling: block-average down-sampling (the paper's LR simulation) and separable up-sampling
 * (Keys cubic convolution as MATLAB imresize, cubic B-spline as scipy.ndimage, linear).
 *
 * Sources of the formulas:
 *  - Keys, "Cubic convolution interpolation for digital image processing", IEEE TASSP 1981, a = -0.5;
 *    MATLAB imresize: u = x/s + 0.5(1 - 1/s) (1-based), weights normalised to sum 1, indices mirrored
 *    with the half-sample rule (aux = [1:n, n:-1:1]).
 *  - Unser, "Splines: a perfect fit for signal and image processing", IEEE SPM 1999: cubic B-spline
 *    prefilter = causal + anti-causal first-order recursions with pole z = sqrt(3) - 2 and gain 6,
 *    whole-sample mirror boundary initialisation (what scipy.ndimage.spline_filter does for the
 *    modes 'mirror' and 'constant').
 *
 * Every up-sampling is three 1-D passes (x, then y, then z). A pass sees the array as
 * (outer, n, inner) with inner fastest; each task gathers `lanes` neighbouring inner lines into a
 * double buffer, prefilters them (B-spline) and applies the per-output-index tap table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"

/* ---------------------------------------------------------------- kernels */

double mbsr_keys_weight(double x) {
  double a = fabs(x);
  if (a <= 1) return (1.5 * a - 2.5) * a * a + 1;
  if (a <= 2) return ((-0.5 * a + 2.5) * a - 4) * a + 2;
  return 0;
}

static double bspline3(double x) {
  double a = fabs(x);
  if (a < 1) return 2.0 / 3.0 - a * a + 0.5 * a * a * a;
  if (a < 2) {
    double t = 2 - a;
    return t * t * t / 6.0;
  }
  return 0;
}

static int64_t border_index(int64_t i, int64_t n, mbsr_border b) {
  if (i >= 0 && i < n) return i;
  if (n == 1) return 0;
  switch (b) {
  case MBSR_BORDER_SYMMETRIC: { /* period 2n: 0..n-1, n-1..0 */
    int64_t p = 2 * n;
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - 1 - i;
  }
  case MBSR_BORDER_MIRROR:
  case MBSR_BORDER_CONSTANT: { /* period 2n-2: 0..n-1, n-2..1 */
    int64_t p = 2 * n - 2;
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
  }
  case MBSR_BORDER_NEAREST:
  default:
    return i < 0 ? 0 : n - 1;
  }
}

/* Tap table of one axis: output o reads in[idx[o*ntaps + t]] with weight w[o*ntaps + t]. */
typedef struct {
  int ntaps;
  int64_t *idx;
  double *w;
} axis_table;

static void table_free(axis_table *t) {
  free(t->idx);
  free(t->w);
  t->idx = NULL;
  t->w = NULL;
}

static int table_build(axis_table *t, int64_t nin, int64_t nout, double scale, double shift, mbsr_interp m,
                       mbsr_border b) {
  t->ntaps = m == MBSR_INTERP_LINEAR ? 2 : 4;
  t->idx = malloc((size_t)nout * t->ntaps * sizeof *t->idx);
  t->w = malloc((size_t)nout * t->ntaps * sizeof *t->w);
  if (!t->idx || !t->w) {
    table_free(t);
    return mbsr_error(MBSR_ENOMEM, "resampling: out of memory for a tap table of %lld entries", (long long)nout);
  }
  for (int64_t o = 0; o < nout; o++) {
    int64_t *ix = t->idx + o * t->ntaps;
    double *w = t->w + o * t->ntaps;
    double x = (double)o * scale + shift;
    if (b == MBSR_BORDER_CONSTANT && (x < 0 || x > (double)(nin - 1))) {
      for (int k = 0; k < t->ntaps; k++) {
        ix[k] = 0;
        w[k] = 0;
      }
      continue;
    }
    if (m == MBSR_INTERP_LINEAR) {
      if (b == MBSR_BORDER_NEAREST) x = x < 0 ? 0 : (x > (double)(nin - 1) ? (double)(nin - 1) : x);
      int64_t i0 = (int64_t)floor(x);
      double fr = x - (double)i0;
      ix[0] = border_index(i0, nin, b);
      ix[1] = border_index(i0 + 1, nin, b);
      w[0] = 1 - fr;
      w[1] = fr;
      continue;
    }
    int64_t i0 = (int64_t)floor(x) - 1;
    double sum = 0;
    for (int k = 0; k < 4; k++) {
      double d = x - (double)(i0 + k);
      w[k] = m == MBSR_INTERP_KEYS ? mbsr_keys_weight(d) : bspline3(d);
      ix[k] = border_index(i0 + k, nin, b);
      sum += w[k];
    }
    if (m == MBSR_INTERP_KEYS && sum != 0)
      for (int k = 0; k < 4; k++) w[k] /= sum; /* imresize normalises (a no-op up to rounding here) */
  }
  return MBSR_OK;
}

/* In-place cubic B-spline prefilter of `lanes` interleaved lines of length n: c[k*lanes + l]. */
#define MAX_LANES 64
static void bspline_prefilter(double *c, int64_t n, int64_t lanes) {
  if (n < 2) return;
  const double z = sqrt(3.0) - 2.0;
  const int64_t N = n * lanes;
  for (int64_t i = 0; i < N; i++) c[i] *= 6.0; /* gain (1-z)(1-1/z) */
  /* causal initialisation, whole-sample mirror: c0 = sum_{k=0}^{2n-3} z^k c[mirror(k)] / (1 - z^(2n-2)) */
  double s[MAX_LANES];
  const double zn1 = pow(z, (double)(n - 1));
  for (int64_t l = 0; l < lanes; l++) s[l] = c[l] + zn1 * c[(n - 1) * lanes + l];
  double zi = z;
  for (int64_t i = 1; i < n - 1 && zi != 0; i++) {
    for (int64_t l = 0; l < lanes; l++) s[l] += zi * (c[i * lanes + l] + zn1 * c[(n - 1 - i) * lanes + l]);
    zi *= z;
    if (fabs(zi) < 1e-300) zi = 0;
  }
  for (int64_t l = 0; l < lanes; l++) c[l] = s[l] / (1 - zn1 * zn1);
  for (int64_t k = 1; k < n; k++) {
    double *ck = c + k * lanes, *cp = ck - lanes;
    for (int64_t l = 0; l < lanes; l++) ck[l] += z * cp[l];
  }
  /* anti-causal initialisation (mirror) and recursion */
  {
    double *cl = c + (n - 1) * lanes, *cp = cl - lanes;
    for (int64_t l = 0; l < lanes; l++) cl[l] = z / (z * z - 1) * (cl[l] + z * cp[l]);
  }
  for (int64_t k = n - 2; k >= 0; k--) {
    double *ck = c + k * lanes, *cn = ck + lanes;
    for (int64_t l = 0; l < lanes; l++) ck[l] = z * (cn[l] - ck[l]);
  }
}

/* One separable pass along the middle axis of (outer, nin, inner) -> (outer, nout, inner). */
static int pass_axis(const float *in, float *out, int64_t outer, int64_t nin, int64_t inner, int64_t nout,
                     const axis_table *t, int prefilter) {
  const int64_t lanes = inner < MAX_LANES ? inner : MAX_LANES;
  const int64_t nblk = (inner + lanes - 1) / lanes;
  const int64_t ntask = outer * nblk;
  const int nt = t->ntaps;
  int failed = 0;
#pragma omp parallel
  {
    double *buf = malloc((size_t)nin * lanes * sizeof(double));
    double *acc = malloc((size_t)lanes * sizeof(double));
    if (!buf || !acc) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 4)
    for (int64_t task = 0; task < ntask; task++) {
      if (!buf || !acc) continue;
      const int64_t ob = task / nblk, l0 = (task % nblk) * lanes;
      const int64_t L = inner - l0 < lanes ? inner - l0 : lanes;
      const float *src = in + ob * nin * inner + l0;
      for (int64_t k = 0; k < nin; k++) {
        const float *sk = src + k * inner;
        double *bk = buf + k * L;
        for (int64_t l = 0; l < L; l++) bk[l] = sk[l];
      }
      if (prefilter) bspline_prefilter(buf, nin, L);
      float *dst = out + ob * nout * inner + l0;
      for (int64_t o = 0; o < nout; o++) {
        const int64_t *ix = t->idx + o * nt;
        const double *w = t->w + o * nt;
        for (int64_t l = 0; l < L; l++) acc[l] = 0;
        for (int k = 0; k < nt; k++) {
          const double wk = w[k];
          if (wk == 0) continue;
          const double *bk = buf + ix[k] * L;
          for (int64_t l = 0; l < L; l++) acc[l] += wk * bk[l];
        }
        float *dk = dst + o * inner;
        for (int64_t l = 0; l < L; l++) dk[l] = (float)acc[l];
      }
    }
    free(buf);
    free(acc);
  }
  if (failed) return mbsr_error(MBSR_ENOMEM, "resampling: out of memory for line buffers");
  return MBSR_OK;
}

int mbsr_resample_raw(const float *in, const int64_t nin[3], float *out, const int64_t nout[3],
                      const double scale[3], const double shift[3], mbsr_interp m, mbsr_border border) {
  if (m != MBSR_INTERP_KEYS && m != MBSR_INTERP_BSPLINE && m != MBSR_INTERP_LINEAR)
    return mbsr_error(MBSR_EINVAL, "resampling: unknown method %d", (int)m);
  for (int a = 0; a < 3; a++) {
    if (nin[a] < 1 || nout[a] < 1 || nin[a] > MBSR_MAX_VOXELS || nout[a] > MBSR_MAX_VOXELS)
      return mbsr_error(MBSR_ERANGE, "resampling: bad dims along axis %d (%lld -> %lld)", a, (long long)nin[a],
                        (long long)nout[a]);
    if (!isfinite(scale[a]) || !isfinite(shift[a]))
      return mbsr_error(MBSR_EINVAL, "resampling: non-finite index map along axis %d", a);
    double x0 = shift[a], x1 = scale[a] * (double)(nout[a] - 1) + shift[a];
    if (fabs(x0) > 1e15 || fabs(x1) > 1e15)
      return mbsr_error(MBSR_ERANGE, "resampling: index map along axis %d reaches %g: grids too far apart", a,
                        fabs(x0) > fabs(x1) ? x0 : x1);
  }
  int64_t v1, v2, v3;
  if (__builtin_mul_overflow(nout[0], nin[1], &v1) || __builtin_mul_overflow(v1, nin[2], &v1) ||
      __builtin_mul_overflow(nout[0], nout[1], &v2) || __builtin_mul_overflow(v2, nin[2], &v2) ||
      __builtin_mul_overflow(nout[0] * nout[1], nout[2], &v3) || v1 > MBSR_MAX_VOXELS || v2 > MBSR_MAX_VOXELS ||
      v3 > MBSR_MAX_VOXELS)
    return mbsr_error(MBSR_ERANGE, "resampling: %lldx%lldx%lld output is too large", (long long)nout[0],
                      (long long)nout[1], (long long)nout[2]);
  axis_table tab[3] = {{0}};
  int rc = MBSR_OK, skip[3];
  for (int a = 0; a < 3 && rc == MBSR_OK; a++) {
    /* an identity axis is copied exactly (every kernel interpolates at integer positions) */
    skip[a] = nin[a] == nout[a] && scale[a] == 1.0 && shift[a] == 0.0;
    if (!skip[a]) rc = table_build(&tab[a], nin[a], nout[a], scale[a], shift[a], m, border);
  }
  float *t1 = NULL, *t2 = NULL;
  if (rc == MBSR_OK) {
    t1 = mbsr_alloc((size_t)nout[0] * nin[1] * nin[2] * sizeof(float));
    t2 = mbsr_alloc((size_t)nout[0] * nout[1] * nin[2] * sizeof(float));
    if (!t1 || !t2) rc = mbsr_error(MBSR_ENOMEM, "resampling: out of memory for intermediate arrays");
  }
  const int pf = m == MBSR_INTERP_BSPLINE;
  if (rc == MBSR_OK) {
    if (skip[0]) memcpy(t1, in, (size_t)nin[0] * nin[1] * nin[2] * sizeof(float));
    else rc = pass_axis(in, t1, nin[1] * nin[2], nin[0], 1, nout[0], &tab[0], pf);
  }
  if (rc == MBSR_OK) {
    if (skip[1]) memcpy(t2, t1, (size_t)nout[0] * nin[1] * nin[2] * sizeof(float));
    else rc = pass_axis(t1, t2, nin[2], nin[1], nout[0], nout[1], &tab[1], pf);
  }
  if (rc == MBSR_OK) {
    if (skip[2]) memcpy(out, t2, (size_t)nout[0] * nout[1] * nin[2] * sizeof(float));
    else rc = pass_axis(t2, out, 1, nin[2], nout[0] * nout[1], nout[2], &tab[2], pf);
  }
  mbsr_free(t1);
  mbsr_free(t2);
  for (int a = 0; a < 3; a++) table_free(&tab[a]);
  return rc;
}

int mbsr_zoom_scipy(const float *in, const int64_t nin[3], float *out, const int64_t nout[3]) {
  double scale[3], shift[3] = {0, 0, 0};
  for (int a = 0; a < 3; a++) /* numpy.divide(nin-1, nout-1), 1 where nout == 1 */
    scale[a] = nout[a] > 1 ? (double)(nin[a] - 1) / (double)(nout[a] - 1) : 1.0;
  /* scipy never skips an axis: an identity axis with these settings is a copy anyway */
  return mbsr_resample_raw(in, nin, out, nout, scale, shift, MBSR_INTERP_BSPLINE, MBSR_BORDER_CONSTANT);
}

int mbsr_imresize_keys(const float *in, const int64_t nin[3], float *out, const int64_t nout[3]) {
  double scale[3], shift[3];
  for (int a = 0; a < 3; a++) {
    double s = (double)nout[a] / (double)nin[a]; /* imresize scale; u = x/s + 0.5(1-1/s), 1-based */
    scale[a] = 1.0 / s;
    shift[a] = 0.5 * (1.0 - 1.0 / s) + 1.0 / s - 1.0; /* 0-based: x_in = (o+1)/s + 0.5(1-1/s) - 1 */
  }
  return mbsr_resample_raw(in, nin, out, nout, scale, shift, MBSR_INTERP_KEYS, MBSR_BORDER_SYMMETRIC);
}

/* ---------------------------------------------------------------- grids */

/* Inverse of an affine (3x3 linear part + translation); returns 0 or MBSR_EINVAL if singular (the caller names the volume). */
static int affine_inverse(const double A[4][4], double R[4][4]) {
  double a = A[0][0], b = A[0][1], c = A[0][2], d = A[1][0], e = A[1][1], f = A[1][2], g = A[2][0], h = A[2][1],
         k = A[2][2];
  double det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g);
  double scale = fabs(a) + fabs(b) + fabs(c) + fabs(d) + fabs(e) + fabs(f) + fabs(g) + fabs(h) + fabs(k);
  if (!(fabs(det) > 1e-12 * scale * scale * scale)) return MBSR_EINVAL;
  double inv[3][3] = {{(e * k - f * h) / det, (c * h - b * k) / det, (b * f - c * e) / det},
                      {(f * g - d * k) / det, (a * k - c * g) / det, (c * d - a * f) / det},
                      {(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det}};
  memset(R, 0, 16 * sizeof(double));
  for (int r = 0; r < 3; r++) {
    for (int s = 0; s < 3; s++) R[r][s] = inv[r][s];
    R[r][3] = -(inv[r][0] * A[0][3] + inv[r][1] * A[1][3] + inv[r][2] * A[2][3]);
  }
  R[3][3] = 1;
  return 0;
}

int mbsr_grid_map(const double in_affine[4][4], const double grid_affine[4][4], double scale[3], double shift[3]) {
  double inv[4][4], M[4][4];
  if (affine_inverse(in_affine, inv))
    return mbsr_error(MBSR_EINVAL, "input grid: singular affine");
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) {
      double s = 0;
      for (int k = 0; k < 4; k++) s += inv[r][k] * grid_affine[k][c];
      M[r][c] = s;
    }
  double dmax = 0;
  for (int a = 0; a < 3; a++) dmax = fmax(dmax, fabs(M[a][a]));
  for (int r = 0; r < 3; r++) {
    if (!(fabs(M[r][r]) > 1e-9 * dmax))
      return mbsr_error(MBSR_EUNSUPPORTED,
                        "the grids are not axis-aligned (index map row %d has no diagonal term: permuted or "
                        "rotated axes); reorient one volume first", r);
    for (int c = 0; c < 3; c++)
      if (r != c && fabs(M[r][c]) > 1e-6 * dmax)
        return mbsr_error(MBSR_EUNSUPPORTED,
                          "the grids are not axis-aligned (index map [%d][%d] = %.3g): only per-axis scale and "
                          "shift are supported; reorient one volume first", r, c, M[r][c]);
    scale[r] = M[r][r];
    shift[r] = M[r][3];
  }
  return MBSR_OK;
}

/* ---------------------------------------------------------------- volumes */

int mbsr_downsample_block(const mbsr_volume *in, const int f[3], mbsr_volume **out) {
  *out = NULL;
  const int64_t n[3] = {in->nx, in->ny, in->nz};
  int64_t m[3];
  for (int a = 0; a < 3; a++) {
    if (f[a] < 1) return mbsr_error(MBSR_EINVAL, "downsample: factor %d along axis %d must be >= 1", f[a], a);
    m[a] = n[a] / f[a]; /* remainder cropped */
    if (m[a] < 1)
      return mbsr_error(MBSR_EINVAL, "downsample: axis %d has %lld voxels, fewer than the factor %d", a,
                        (long long)n[a], f[a]);
  }
  double A[4][4];
  memcpy(A, in->affine, sizeof A);
  for (int r = 0; r < 3; r++) {
    /* origin -> world position of the centre of block 0, index ((f-1)/2, ...) */
    double o = in->affine[r][3];
    for (int c = 0; c < 3; c++) o += in->affine[r][c] * 0.5 * (f[c] - 1);
    A[r][3] = o;
    for (int c = 0; c < 3; c++) A[r][c] = in->affine[r][c] * f[c];
  }
  mbsr_volume *v = mbsr_volume_new(m[0], m[1], m[2], NULL, (const double(*)[4])A);
  if (!v) return mbsr_error_prefix(MBSR_ENOMEM, "downsample: ");
  for (int a = 0; a < 3; a++) v->vox[a] = in->vox[a] * f[a];
  mbsr_volume_keep_space(v, in);
  const double inv = 1.0 / ((double)f[0] * f[1] * f[2]);
  const float *src = in->data;
  float *dst = v->data;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t k = 0; k < m[2]; k++)
    for (int64_t j = 0; j < m[1]; j++)
      for (int64_t i = 0; i < m[0]; i++) {
        double s = 0;
        for (int64_t kk = k * f[2]; kk < (k + 1) * f[2]; kk++)
          for (int64_t jj = j * f[1]; jj < (j + 1) * f[1]; jj++) {
            const float *row = src + n[0] * (jj + n[1] * kk) + i * f[0];
            for (int ii = 0; ii < f[0]; ii++) s += row[ii];
          }
        dst[i + m[0] * (j + m[1] * k)] = (float)(s * inv);
      }
  *out = v;
  return MBSR_OK;
}

int mbsr_interp_parse(const char *name, mbsr_interp *out) {
  if (!strcmp(name, "keys") || !strcmp(name, "cubic")) *out = MBSR_INTERP_KEYS;
  else if (!strcmp(name, "bspline") || !strcmp(name, "spline")) *out = MBSR_INTERP_BSPLINE;
  else if (!strcmp(name, "linear")) *out = MBSR_INTERP_LINEAR;
  else return mbsr_error(MBSR_EINVAL, "unknown interpolation '%s' (keys|cubic|bspline|linear)", name);
  return MBSR_OK;
}

const char *mbsr_interp_name(mbsr_interp m) {
  switch (m) {
  case MBSR_INTERP_KEYS: return "keys";
  case MBSR_INTERP_BSPLINE: return "bspline";
  case MBSR_INTERP_LINEAR: return "linear";
  }
  return "unknown";
}

static mbsr_border method_border(mbsr_interp m) {
  switch (m) {
  case MBSR_INTERP_KEYS: return MBSR_BORDER_SYMMETRIC;  /* imresize */
  case MBSR_INTERP_BSPLINE: return MBSR_BORDER_MIRROR;  /* scipy 'mirror': consistent with the prefilter */
  default: return MBSR_BORDER_NEAREST;                  /* linear: clamped */
  }
}

int mbsr_upsample_like(const mbsr_volume *in, const mbsr_volume *grid, mbsr_interp m, mbsr_volume **out) {
  *out = NULL;
  double scale[3], shift[3];
  int rc = mbsr_grid_map(in->affine, grid->affine, scale, shift);
  if (rc) return mbsr_error_prefix(rc, "upsample: ");
  mbsr_volume *v = mbsr_volume_new(grid->nx, grid->ny, grid->nz, grid->vox, grid->affine);
  if (!v) return mbsr_error_prefix(MBSR_ENOMEM, "upsample: ");
  memcpy(v->vox, grid->vox, sizeof v->vox);
  mbsr_volume_keep_space(v, in); /* in's world space on grid's grid */
  const int64_t nin[3] = {in->nx, in->ny, in->nz}, nout[3] = {grid->nx, grid->ny, grid->nz};
  rc = mbsr_resample_raw(in->data, nin, v->data, nout, scale, shift, m, method_border(m));
  if (rc) {
    mbsr_volume_free(v);
    return mbsr_error_prefix(rc, "upsample: ");
  }
  *out = v;
  return MBSR_OK;
}

int mbsr_upsample_factor(const mbsr_volume *in, const int f[3], mbsr_interp m, mbsr_volume **out) {
  *out = NULL;
  mbsr_volume g;
  memset(&g, 0, sizeof g);
  const int64_t n[3] = {in->nx, in->ny, in->nz};
  int64_t gn[3];
  for (int a = 0; a < 3; a++) {
    if (f[a] < 1) return mbsr_error(MBSR_EINVAL, "upsample: factor %d along axis %d must be >= 1", f[a], a);
    if (__builtin_mul_overflow(n[a], (int64_t)f[a], &gn[a]))
      return mbsr_error(MBSR_ERANGE, "upsample: dims overflow");
  }
  g.nx = gn[0];
  g.ny = gn[1];
  g.nz = gn[2];
  /* the grid that mbsr_downsample_block(., f) maps onto `in`: columns / f, origin moved back by
   * (f-1)/2 fine voxels along each axis */
  g.affine[3][3] = 1;
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++) g.affine[r][c] = in->affine[r][c] / f[c];
    double o = in->affine[r][3];
    for (int c = 0; c < 3; c++) o -= g.affine[r][c] * 0.5 * (f[c] - 1);
    g.affine[r][3] = o;
  }
  for (int a = 0; a < 3; a++) g.vox[a] = in->vox[a] / f[a];
  return mbsr_upsample_like(in, &g, m, out);
}
