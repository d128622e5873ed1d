/* Calibration of a voxel-wise uncertainty (issue 13): does a predicted standard deviation (e.g. the
 * flips x models ensemble of mbsr_apply_ensemble) track the actual error |test - ref|?
 * Two summaries over the mask voxels: Pearson's r of sd with the error, and the mean error by sd decile
 * (voxels ordered by sd, ties by voxel index, split by rank into ten groups of floor-boundaries). The
 * numpy reference: tests/fixtures/gen_calib.py. */
#include <math.h>
#include <stdlib.h>

#include "mbsr/image.h"

typedef struct {
  float sd;
  double err;
  int64_t q;
} calib_voxel;

static int by_sd_then_index(const void *pa, const void *pb) {
  const calib_voxel *a = pa, *b = pb;
  if (a->sd != b->sd) return a->sd < b->sd ? -1 : 1;
  return (a->q > b->q) - (a->q < b->q);
}

/* Pearson r of sd and err over v[0..n) (two passes, double); NaN when either is constant. */
static double pearson(const calib_voxel *v, int64_t n) {
  double ms = 0, me = 0, sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < n; i++) ms += v[i].sd, me += v[i].err;
  ms /= (double)n;
  me /= (double)n;
  for (int64_t i = 0; i < n; i++) {
    const double x = v[i].sd - ms, y = v[i].err - me;
    sxy += x * y, sxx += x * x, syy += y * y;
  }
  return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

int mbsr_sd_calibrate(const mbsr_volume *test, const mbsr_volume *ref, const mbsr_volume *sd, const mbsr_volume *mask,
                      mbsr_sd_calibration *out) {
  if (!mbsr_volume_same_grid(test, ref, 1e-4) || !mbsr_volume_same_grid(sd, ref, 1e-4) ||
      (mask && !mbsr_volume_same_grid(mask, ref, 1e-4)))
    return mbsr_error(MBSR_EMISMATCH, "sd calibration: test, ref, sd (and mask) must share one grid");
  const int64_t nv = mbsr_volume_nvox(ref);
  int64_t n = 0;
  for (int64_t q = 0; q < nv; q++) n += !mask || mask->data[q] > 0.5f;
  if (n < MBSR_SD_BINS) return mbsr_error(MBSR_EINVAL, "sd calibration: %lld voxels, fewer than %d", (long long)n, MBSR_SD_BINS);
  calib_voxel *v = malloc(sizeof *v * (size_t)n);
  if (!v) return mbsr_error(MBSR_ENOMEM, "sd calibration: out of memory for %lld voxels", (long long)n);
  int64_t k = 0;
  for (int64_t q = 0; q < nv; q++)
    if (!mask || mask->data[q] > 0.5f) {
      if (!isfinite(sd->data[q]) || sd->data[q] < 0) {
        free(v);
        return mbsr_error(MBSR_ENONFINITE, "sd calibration: sd voxel %lld is %g (want a finite sd >= 0)", (long long)q,
                          (double)sd->data[q]);
      }
      v[k++] = (calib_voxel){sd->data[q], fabs((double)test->data[q] - (double)ref->data[q]), q};
    }
  out->n = n;
  out->corr = pearson(v, n);
  qsort(v, (size_t)n, sizeof *v, by_sd_then_index);
  for (int b = 0; b < MBSR_SD_BINS; b++) {
    const int64_t lo = b * n / MBSR_SD_BINS, hi = (b + 1) * n / MBSR_SD_BINS;
    double ss = 0, se = 0;
    for (int64_t i = lo; i < hi; i++) ss += v[i].sd, se += v[i].err;
    out->count[b] = hi - lo;
    out->sd_lo[b] = v[lo].sd;
    out->sd_hi[b] = v[hi - 1].sd;
    out->sd_mean[b] = ss / (double)(hi - lo);
    out->err_mean[b] = se / (double)(hi - lo);
  }
  free(v);
  return MBSR_OK;
}
