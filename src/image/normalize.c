/* Intensity normalisation to [0,1] (the paper normalises every volume by its min and max) with a
 * robust percentile option, and percentiles with numpy's default ('linear') definition:
 * sorted values v[0..n-1], position p/100*(n-1), linear interpolation between neighbours. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"

/* k-th smallest of x[0..n-1] (partially reorders x): iterative quickselect, median-of-3 pivot. */
static float select_kth(float *x, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1;
  while (hi > lo) {
    int64_t mid = lo + (hi - lo) / 2;
    float a = x[lo], b = x[mid], c = x[hi];
    float piv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (x[i] < piv) i++;
      while (x[j] > piv) j--;
      if (i <= j) {
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return x[k];
  }
  return x[k];
}

/* Percentiles pct[0..np-1] of the selected values into res (np <= 8). */
static int percentiles(const mbsr_volume *v, const mbsr_volume *mask, const double *pct, int np, double *res) {
  const int64_t N = mbsr_volume_nvox(v);
  float *buf = malloc((size_t)N * sizeof(float));
  if (!buf) return mbsr_error(MBSR_ENOMEM, "percentile: out of memory");
  int64_t n = 0;
  for (int64_t i = 0; i < N; i++)
    if (!mask || mask->data[i] > 0.5f) buf[n++] = v->data[i];
  if (n == 0) {
    free(buf);
    return mbsr_error(MBSR_EINVAL, "percentile: no voxel selected (empty mask)");
  }
  for (int p = 0; p < np; p++) {
    double q = pct[p] < 0 ? 0 : (pct[p] > 100 ? 100 : pct[p]);
    double pos = q / 100.0 * (double)(n - 1);
    int64_t k = (int64_t)floor(pos);
    if (k > n - 1) k = n - 1;
    double fr = pos - (double)k;
    double lo = select_kth(buf, n, k), hi = lo;
    if (fr > 0 && k + 1 < n) { /* the next order statistic: the minimum right of k */
      float m = buf[k + 1];
      for (int64_t i = k + 2; i < n; i++) m = buf[i] < m ? buf[i] : m;
      hi = m;
    }
    res[p] = lo + (hi - lo) * fr;
  }
  free(buf);
  return MBSR_OK;
}

double mbsr_percentile(const mbsr_volume *v, const mbsr_volume *mask, double pct) {
  double r = NAN;
  if (mask && (mask->nx != v->nx || mask->ny != v->ny || mask->nz != v->nz)) {
    mbsr_error(MBSR_EMISMATCH, "percentile: mask and volume have different dims");
    return NAN;
  }
  if (percentiles(v, mask, &pct, 1, &r)) return NAN;
  return r;
}

int mbsr_normalize(mbsr_volume *v, double plo, double phi, double *lo_out, double *hi_out) {
  if (!(plo >= 0 && phi <= 100 && plo < phi))
    return mbsr_error(MBSR_EINVAL, "normalize: percentiles %g,%g must satisfy 0 <= lo < hi <= 100", plo, phi);
  int rc = mbsr_volume_check_finite(v, "normalize input");
  if (rc) return rc;
  double lo, hi;
  if (plo == 0 && phi == 100) {
    float mn, mx;
    mbsr_volume_minmax(v, &mn, &mx);
    lo = mn;
    hi = mx;
  } else {
    double p[2] = {plo, phi}, r[2];
    if ((rc = percentiles(v, NULL, p, 2, r))) return rc;
    lo = r[0];
    hi = r[1];
  }
  if (!(hi > lo)) return mbsr_error(MBSR_ERANGE, "normalize: the volume is constant between the chosen percentiles (%g)", lo);
  const double s = 1.0 / (hi - lo);
  const int64_t n = mbsr_volume_nvox(v);
  float *d = v->data;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    double x = ((double)d[i] - lo) * s;
    d[i] = (float)(x < 0 ? 0 : (x > 1 ? 1 : x));
  }
  if (lo_out) *lo_out = lo;
  if (hi_out) *hi_out = hi;
  return MBSR_OK;
}
