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
 * 11 x 5 slices of doubles per thread rather than five whole volumes. Each thread takes one slab of
 * output slices. */
#include <math.h>
#include <omp.h>
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

typedef struct {
  const float *a, *b, *mask;
  int64_t nx, ny, nz, nxi, nyi;
  double g[SSIM_W], C1, C2;
} ssim_job;

/* SSIM sum and count over the output slices kc in [k0, k1) (interior), with this thread's buffers:
 * xf (5 x nxi x ny) and ring (11 x 5 x nxi x nyi). */
static void ssim_slab(const ssim_job *J, int64_t k0, int64_t k1, double *xf, double *ring, double *row,
                      double *sum_out, int64_t *cnt_out) {
  const int64_t nx = J->nx, ny = J->ny, nxi = J->nxi, nyi = J->nyi;
  const int64_t P = nxi * ny, Q = nxi * nyi;
  const double *g = J->g;
  double sum = 0;
  int64_t cnt = 0;
  for (int64_t k = k0 - SSIM_R; k < k1 + SSIM_R; k++) {
    /* 1. slice k along x (interior i), every row j */
    for (int64_t j = 0; j < ny; j++) {
      const float *pa = J->a + nx * (j + ny * k), *pb = J->b + nx * (j + ny * k);
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
        for (int64_t i = 0; i < nxi; i++) o[i] = g[0] * r[i];
        for (int t = 1; t < SSIM_W; t++) {
          const double gt = g[t], *rt = r + t;
          for (int64_t i = 0; i < nxi; i++) o[i] += gt * rt[i];
        }
      }
    }
    /* 2. along y into ring slot k % 11 (interior j) */
    double *slot = ring + (k % SSIM_W) * 5 * Q;
    for (int q = 0; q < 5; q++)
      for (int64_t j = 0; j < nyi; j++) {
        double *o = slot + q * Q + j * nxi;
        for (int64_t i = 0; i < nxi; i++) o[i] = 0;
        for (int t = 0; t < SSIM_W; t++) {
          const double *r = xf + q * P + (j + t) * nxi;
          const double gt = g[t];
          for (int64_t i = 0; i < nxi; i++) o[i] += gt * r[i];
        }
      }
    /* 3. once slices kc-5..kc+5 are in the ring: the SSIM map of slice kc = k-5 */
    const int64_t kc = k - SSIM_R;
    if (kc < k0) continue;
    for (int64_t j = 0; j < nyi; j++) {
      const float *mrow = J->mask ? J->mask + nx * ((j + SSIM_R) + ny * kc) + SSIM_R : NULL;
      for (int q = 0; q < 5; q++) { /* z-filter of row j, vectorised along i */
        double *u = row + q * nx;
        for (int64_t i = 0; i < nxi; i++) u[i] = 0;
        for (int t = 0; t < SSIM_W; t++) {
          const double gt = g[t], *sl = ring + ((kc - SSIM_R + t) % SSIM_W) * 5 * Q + q * Q + j * nxi;
          for (int64_t i = 0; i < nxi; i++) u[i] += gt * sl[i];
        }
      }
      for (int64_t i = 0; i < nxi; i++) {
        if (mrow && !(mrow[i] > 0.5f)) continue;
        double ux = row[i], uy = row[nx + i];
        double vx = row[2 * nx + i] - ux * ux, vy = row[3 * nx + i] - uy * uy, vxy = row[4 * nx + i] - ux * uy;
        double A1 = 2 * ux * uy + J->C1, A2 = 2 * vxy + J->C2, B1 = ux * ux + uy * uy + J->C1, B2 = vx + vy + J->C2;
        sum += (A1 * A2) / (B1 * B2);
        cnt++;
      }
    }
  }
  *sum_out = sum;
  *cnt_out = cnt;
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
  ssim_job J = {.a = a, .b = b, .mask = mask, .nx = nx, .ny = ny, .nz = nz, .nxi = nx - 2 * SSIM_R,
                .nyi = ny - 2 * SSIM_R};
  gauss_taps(J.g);
  J.C1 = (0.01 * data_range) * (0.01 * data_range);
  J.C2 = (0.03 * data_range) * (0.03 * data_range);
  const int64_t P = J.nxi * ny, Q = J.nxi * J.nyi, nzi = nz - 2 * SSIM_R;
  double sum = 0;
  int64_t cnt = 0;
  int failed = 0;
  /* One contiguous slab of output slices per thread, each with its own ring: no barriers inside
   * (robust on a loaded machine); the price is 10 extra xy-filtered slices per slab. */
#pragma omp parallel reduction(+ : sum, cnt)
  {
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    if (nzi < 4 * nt) nt = 1; /* thin volumes: one slab */
    if (id < nt) {
      int64_t k0 = SSIM_R + nzi * id / nt, k1 = SSIM_R + nzi * (id + 1) / nt;
      double *xf = malloc((size_t)5 * P * sizeof(double));
      double *ring = malloc((size_t)SSIM_W * 5 * Q * sizeof(double));
      double *row = malloc((size_t)5 * nx * sizeof(double));
      if (xf && ring && row) {
        double s;
        int64_t c;
        ssim_slab(&J, k0, k1, xf, ring, row, &s, &c);
        sum += s;
        cnt += c;
      } else {
#pragma omp atomic write
        failed = 1;
      }
      free(xf);
      free(ring);
      free(row);
    }
  }
  if (failed) {
    mbsr_error(MBSR_ENOMEM, "SSIM: out of memory (%lldx%lld slices)", (long long)nx, (long long)ny);
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
