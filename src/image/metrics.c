/* Image-quality metrics: RMSE, PSNR and 3-D SSIM.
 *
 * RMSE = sqrt(mean((a-b)^2)), PSNR = 20 log10(L) - 10 log10(MSE), over the evaluated voxels.
 * SSIM: Wang et al. 2004 with the scikit-image 0.19 settings
 *   structural_similarity(a, b, data_range=L, gaussian_weights=True, sigma=1.5,
 *                         use_sample_covariance=False)
 * i.e. a separable Gaussian window (sigma 1.5, truncate 3.5 -> radius 5, 11 taps, weights normalised
 * to sum 1, as scipy.ndimage.gaussian_filter), population (co)variances, C1 = (0.01 L)^2,
 * C2 = (0.03 L)^2, and the mean of the SSIM map over the interior cropped by 5 voxels on every side.
 * Inside that interior the 11-tap windows never cross the array border, so scikit-image's 'reflect'
 * padding cannot influence the result and none is needed here.
 * With a mask, the mean runs over the voxels that are both inside the cropped interior and inside the
 * mask (mask > 0.5); the local statistics still use every voxel under the window.
 *
 * The filtering streams along z: each z-slice is filtered along x and y once into a ring of 11
 * slices, and the SSIM of the middle slice is computed from the ring, so the memory is
 * 11 x 5 slices of doubles rather than five whole volumes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"

#define SSIM_R 5
#define SSIM_W (2 * SSIM_R + 1)

static void gauss_taps(double g[SSIM_W]) {
  /* scipy.ndimage._gaussian_kernel1d(sigma=1.5, order=0, radius=int(3.5*1.5+0.5)=5) */
  const double sigma = 1.5;
  double s = 0;
  for (int t = 0; t < SSIM_W; t++) {
    double x = t - SSIM_R;
    g[t] = exp(-0.5 / (sigma * sigma) * x * x);
    s += g[t];
  }
  for (int t = 0; t < SSIM_W; t++) g[t] /= s;
}

double mbsr_ssim3d(const float *a, const float *b, int64_t nx, int64_t ny, int64_t nz, double data_range,
                   const float *mask) {
  if (nx < SSIM_W || ny < SSIM_W || nz < SSIM_W) {
    mbsr_error(MBSR_EINVAL, "SSIM: volume %lldx%lldx%lld is smaller than the 11-voxel window along some axis",
               (long long)nx, (long long)ny, (long long)nz);
    return NAN;
  }
  if (!(data_range > 0) || !isfinite(data_range)) {
    mbsr_error(MBSR_EINVAL, "SSIM: data range %g must be positive", data_range);
    return NAN;
  }
  double g[SSIM_W];
  gauss_taps(g);
  const double C1 = (0.01 * data_range) * (0.01 * data_range), C2 = (0.03 * data_range) * (0.03 * data_range);
  const int64_t nxi = nx - 2 * SSIM_R, nyi = ny - 2 * SSIM_R;
  const int64_t P = nxi * ny;   /* x-filtered slice: interior i, all j */
  const int64_t Q = nxi * nyi;  /* xy-filtered slice: interior i and j */
  double *xf = malloc((size_t)5 * P * sizeof(double));
  double *ring = malloc((size_t)SSIM_W * 5 * Q * sizeof(double));
  if (!xf || !ring) {
    free(xf);
    free(ring);
    mbsr_error(MBSR_ENOMEM, "SSIM: out of memory (%lldx%lld slices)", (long long)nx, (long long)ny);
    return NAN;
  }
  double sum = 0;
  int64_t cnt = 0;
  int failed = 0;
#pragma omp parallel
  {
    double *row = malloc((size_t)5 * nx * sizeof(double));
    if (!row) {
#pragma omp atomic write
      failed = 1;
    }
    for (int64_t k = 0; k < nz; k++) {
      /* 1. filter slice k along x (interior i only), all rows j */
#pragma omp for schedule(static)
      for (int64_t j = 0; j < ny; j++) {
        if (!row) continue;
        const float *pa = a + nx * (j + ny * k), *pb = b + nx * (j + ny * k);
        double *ra = row, *rb = row + nx, *raa = row + 2 * nx, *rbb = row + 3 * nx, *rab = row + 4 * nx;
        for (int64_t i = 0; i < nx; i++) {
          double x = pa[i], y = pb[i];
          ra[i] = x;
          rb[i] = y;
          raa[i] = x * x;
          rbb[i] = y * y;
          rab[i] = x * y;
        }
        for (int q = 0; q < 5; q++) {
          const double *r = row + q * nx;
          double *o = xf + q * P + j * nxi;
          for (int64_t i = 0; i < nxi; i++) {
            double s = 0;
            for (int t = 0; t < SSIM_W; t++) s += g[t] * r[i + t];
            o[i] = s;
          }
        }
      }
      /* 2. filter along y into ring slot k % 11 (interior j) */
      double *slot = ring + (k % SSIM_W) * 5 * Q;
#pragma omp for schedule(static)
      for (int64_t j = 0; j < nyi; j++) {
        for (int q = 0; q < 5; q++) {
          double *o = slot + q * Q + j * nxi;
          for (int64_t i = 0; i < nxi; i++) o[i] = 0;
          for (int t = 0; t < SSIM_W; t++) {
            const double *r = xf + q * P + (j + t) * nxi;
            const double gt = g[t];
            for (int64_t i = 0; i < nxi; i++) o[i] += gt * r[i];
          }
        }
      }
      /* 3. when slices kc-5..kc+5 are in the ring, the SSIM map of slice kc = k-5 */
      if (k < 2 * SSIM_R) continue;
      const int64_t kc = k - SSIM_R;
#pragma omp for schedule(static) reduction(+ : sum, cnt)
      for (int64_t j = 0; j < nyi; j++) {
        const float *mrow = mask ? mask + nx * ((j + SSIM_R) + ny * kc) + SSIM_R : NULL;
        for (int64_t i = 0; i < nxi; i++) {
          if (mrow && !(mrow[i] > 0.5f)) continue;
          double u[5] = {0, 0, 0, 0, 0};
          for (int t = 0; t < SSIM_W; t++) {
            const double *s = ring + ((kc - SSIM_R + t) % SSIM_W) * 5 * Q + j * nxi + i;
            for (int q = 0; q < 5; q++) u[q] += g[t] * s[q * Q];
          }
          double ux = u[0], uy = u[1];
          double vx = u[2] - ux * ux, vy = u[3] - uy * uy, vxy = u[4] - ux * uy;
          double A1 = 2 * ux * uy + C1, A2 = 2 * vxy + C2, B1 = ux * ux + uy * uy + C1, B2 = vx + vy + C2;
          sum += (A1 * A2) / (B1 * B2);
          cnt++;
        }
      }
    }
    free(row);
  }
  free(xf);
  free(ring);
  if (failed) {
    mbsr_error(MBSR_ENOMEM, "SSIM: out of memory for row buffers");
    return NAN;
  }
  if (cnt == 0) {
    mbsr_error(MBSR_EINVAL, "SSIM: no mask voxel inside the interior (5 voxels from every border)");
    return NAN;
  }
  return sum / (double)cnt;
}

int mbsr_metrics_compute(const mbsr_volume *test, const mbsr_volume *ref, const mbsr_volume *mask,
                         double data_range, mbsr_metrics *out) {
  memset(out, 0, sizeof *out);
  int rc = mbsr_volume_check_same_grid(test, "test", ref, "reference");
  if (rc) return rc;
  if (mask && (rc = mbsr_volume_check_same_grid(mask, "mask", ref, "reference"))) return rc;
  if ((rc = mbsr_volume_check_finite(test, "test"))) return rc;
  if ((rc = mbsr_volume_check_finite(ref, "reference"))) return rc;
  if (data_range <= 0) {
    float mn, mx;
    mbsr_volume_minmax(ref, &mn, &mx);
    data_range = (double)mx - (double)mn;
    if (!(data_range > 0))
      return mbsr_error(MBSR_EINVAL, "reference is constant (%g): give a data range", (double)mn);
  }
  const int64_t n = mbsr_volume_nvox(ref);
  const float *a = test->data, *b = ref->data, *m = mask ? mask->data : NULL;
  double se = 0;
  int64_t cnt = 0;
#pragma omp parallel for reduction(+ : se, cnt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    if (m && !(m[i] > 0.5f)) continue;
    double d = (double)a[i] - (double)b[i];
    se += d * d;
    cnt++;
  }
  if (cnt == 0) return mbsr_error(MBSR_EINVAL, "mask is empty (no voxel > 0.5)");
  out->n = cnt;
  out->data_range = data_range;
  out->mse = se / (double)cnt;
  out->rmse = sqrt(out->mse);
  out->psnr = out->mse > 0 ? 20 * log10(data_range) - 10 * log10(out->mse) : INFINITY;
  out->ssim = mbsr_ssim3d(a, b, ref->nx, ref->ny, ref->nz, data_range, m);
  if (isnan(out->ssim)) {
    mbsr_warn("SSIM not computed: %s", mbsr_last_error());
    mbsr_error_clear();
  }
  return MBSR_OK;
}
