/* Down-sampling with a slice profile (issue 13): the degradation an acquisition with thick slices
 * applies, per array axis with its own integer factor f (1 = untouched).
 *
 *  boxcar    each LR voxel is the mean of its f-voxel block (mbsr_downsample_block: the paper's LR
 *            simulation; a rectangular slice profile of width f).
 *  gaussian  a Gaussian slice profile of FWHM = f HR voxels (sigma = f / (2 sqrt(2 ln 2)) = 0.4247 f),
 *            sampled at the block centres: LR voxel b along an axis is
 *              sum_t w(t) x[c + t],  c = b f + (f - 1)/2 (the block centre, half-integer for even f),
 *            over the HR indices c + t with |t| <= 4 sigma + 0.5, w(t) = exp(-t^2 / (2 sigma^2)) normalised
 *            to sum 1; indices beyond an edge read the half-sample mirror (x[-1] = x[0], scipy.ndimage
 *            mode 'reflect'). For odd f this IS scipy.ndimage.gaussian_filter1d(x, sigma, mode='reflect',
 *            truncate=4) sampled at b f + (f-1)/2. Separable: axis i, then j, then k, in double per pass.
 * Both give the same grid: n_out = floor(n / f) (the remainder cropped), affine columns x f, origin at
 * the centre of block 0 (mbsr_downsample_block), so `upsample --factor F` restores the HR grid. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"

int mbsr_profile_parse(const char *name, mbsr_profile *out) {
  if (!strcmp(name, "boxcar")) *out = MBSR_PROFILE_BOXCAR;
  else if (!strcmp(name, "gaussian")) *out = MBSR_PROFILE_GAUSSIAN;
  else return mbsr_error(MBSR_EINVAL, "unknown slice profile '%s' (boxcar|gaussian)", name);
  return MBSR_OK;
}

const char *mbsr_profile_name(mbsr_profile p) { return p == MBSR_PROFILE_GAUSSIAN ? "gaussian" : "boxcar"; }

/* half-sample mirror, period 2n (scipy 'reflect') */
static int64_t reflect(int64_t i, int64_t n) {
  const int64_t p = 2 * n;
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - 1 - i;
}

/* Taps of the Gaussian profile for factor f: HR offsets off[t] from b f, weights w[t]; returns the count. */
static int gauss_taps(int f, int64_t *off, double *w, int cap) {
  const double sigma = f / (2 * sqrt(2 * log(2.0))), r = 4 * sigma + 0.5, c = 0.5 * (f - 1);
  int nt = 0;
  double sum = 0;
  for (int64_t o = (int64_t)ceil(c - r); o <= (int64_t)floor(c + r) && nt < cap; o++) {
    off[nt] = o;
    w[nt] = exp(-(o - c) * (o - c) / (2 * sigma * sigma));
    sum += w[nt++];
  }
  for (int t = 0; t < nt; t++) w[t] /= sum;
  return nt;
}

/* One pass along the middle axis of (outer, n, inner) -> (outer, m, inner): out[b] = sum w x[b f + off]. */
static void profile_pass(const float *in, float *out, int64_t outer, int64_t n, int64_t inner, int64_t m, int f,
                         const int64_t *off, const double *w, int nt) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t ob = 0; ob < outer; ob++)
    for (int64_t b = 0; b < m; b++) {
      float *dst = out + (ob * m + b) * inner;
      for (int64_t l = 0; l < inner; l++) {
        double s = 0;
        for (int t = 0; t < nt; t++) s += w[t] * in[(ob * n + reflect(b * f + off[t], n)) * inner + l];
        dst[l] = (float)s;
      }
    }
}

/* The Gaussian profile into d (already on the LR grid, dims m), from in. */
static int gaussian_profile(const mbsr_volume *in, const int f[3], mbsr_volume *d) {
  const int64_t n[3] = {in->nx, in->ny, in->nz}, m[3] = {d->nx, d->ny, d->nz};
  enum { CAP = 1024 };
  int64_t off[CAP];
  double w[CAP];
  for (int a = 0; a < 3; a++)
    if (4 * f[a] > CAP) return mbsr_error(MBSR_ERANGE, "downsample: factor %d too large for the Gaussian profile", f[a]);
  /* intermediate grids: (m0,n1,n2), (m0,m1,n2) */
  float *t1 = mbsr_alloc(sizeof(float) * (size_t)(m[0] * n[1] * n[2]));
  float *t2 = mbsr_alloc(sizeof(float) * (size_t)(m[0] * m[1] * n[2]));
  if (!t1 || !t2) {
    mbsr_free(t1);
    mbsr_free(t2);
    return mbsr_error(MBSR_ENOMEM, "downsample: out of memory for the Gaussian profile");
  }
  int nt = gauss_taps(f[0], off, w, CAP);
  if (f[0] > 1) profile_pass(in->data, t1, n[1] * n[2], n[0], 1, m[0], f[0], off, w, nt);
  else memcpy(t1, in->data, sizeof(float) * (size_t)(m[0] * n[1] * n[2]));
  nt = gauss_taps(f[1], off, w, CAP);
  if (f[1] > 1) profile_pass(t1, t2, n[2], n[1], m[0], m[1], f[1], off, w, nt);
  else
    for (int64_t k = 0; k < n[2]; k++) memcpy(t2 + k * m[0] * m[1], t1 + k * m[0] * n[1], sizeof(float) * (size_t)(m[0] * m[1]));
  nt = gauss_taps(f[2], off, w, CAP);
  if (f[2] > 1) profile_pass(t2, d->data, 1, n[2], m[0] * m[1], m[2], f[2], off, w, nt);
  else memcpy(d->data, t2, sizeof(float) * (size_t)(m[0] * m[1] * m[2]));
  mbsr_free(t1);
  mbsr_free(t2);
  return MBSR_OK;
}

int mbsr_downsample(const mbsr_volume *in, const int f[3], mbsr_profile p, mbsr_volume **out) {
  *out = NULL;
  if (p != MBSR_PROFILE_BOXCAR && p != MBSR_PROFILE_GAUSSIAN) return mbsr_error(MBSR_EINVAL, "downsample: unknown profile %d", (int)p);
  mbsr_volume *d = NULL;
  int rc = mbsr_downsample_block(in, f, &d); /* the grid (and the boxcar profile) */
  if (!rc && p == MBSR_PROFILE_GAUSSIAN) rc = gaussian_profile(in, f, d);
  if (rc) {
    mbsr_volume_free(d);
    return rc;
  }
  *out = d;
  return MBSR_OK;
}
