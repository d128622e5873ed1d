/* Intensity normalisation to [0,1]: the intensity contract shared by prep (training patches), the
 * sweep's evaluation and `mbsr apply` (see image.h), and percentiles with numpy's default ('linear')
 * definition: sorted values v[0..n-1], position p/100*(n-1), linear interpolation between neighbours.
 * Order statistics come from GSL (gsl_stats_float_select, a quickselect that reorders a copy). */
#include <gsl/gsl_statistics_float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"

/* Percentiles pct[0..np-1] of the selected values into res. pct = 0 and 100 are the exact min and max. */
static int percentiles(const mbsr_volume *v, const mbsr_volume *mask, const double *pct, int np, double *res) {
  const int64_t N = mbsr_volume_nvox(v);
  float *buf = malloc((size_t)(N > 0 ? N : 1) * sizeof(float));
  if (!buf) return mbsr_error(MBSR_ENOMEM, "percentile: out of memory for %lld voxels", (long long)N);
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
    /* select(k) leaves buf[k+1..n) >= buf[k]: the next order statistic is their minimum */
    double lo = gsl_stats_float_select(buf, 1, (size_t)n, (size_t)k), hi = lo;
    if (fr > 0 && k + 1 < n) {
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

int mbsr_norm_fit(const mbsr_volume *v, double plo, double phi, double *lo_out, double *hi_out) {
  if (!(plo >= 0 && phi <= 100 && plo < phi))
    return mbsr_error(MBSR_EINVAL, "normalise: percentiles %g,%g must satisfy 0 <= lo < hi <= 100", plo, phi);
  int rc = mbsr_volume_check_finite(v, "normalise input");
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
  if (!(hi > lo))
    return mbsr_error(MBSR_ERANGE, "normalise: the volume is constant between its %g and %g percentiles (%g)", plo, phi, lo);
  if (lo_out) *lo_out = lo;
  if (hi_out) *hi_out = hi;
  return MBSR_OK;
}

void mbsr_norm_map(const float *x, float *y, int64_t n, double lo, double hi) {
  const double s = 1.0 / (hi - lo);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    double t = ((double)x[i] - lo) * s;
    y[i] = (float)(t < 0 ? 0 : (t > 1 ? 1 : t));
  }
}

int mbsr_normalize(mbsr_volume *v, double plo, double phi, double *lo_out, double *hi_out) {
  double lo, hi;
  int rc = mbsr_norm_fit(v, plo, phi, &lo, &hi);
  if (rc) return rc;
  mbsr_norm_map(v->data, v->data, mbsr_volume_nvox(v), lo, hi);
  if (lo_out) *lo_out = lo;
  if (hi_out) *hi_out = hi;
  return MBSR_OK;
}
