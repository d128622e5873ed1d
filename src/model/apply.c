/* Whole-volume inference (paper section 2.3.6): up-sample the low-resolution volume onto the
 * target grid (Keys cubic by default, as the paper up-samples before the network), normalise to
 * [0,1] by min/max (the paper's), run the generator over overlapping patches and blend them with
 * a separable window, undo the normalisation.
 *
 * Patch axes: the model's (D,H,W) patch is (k,j,i) of the volume (i fastest), so a patch is a
 * contiguous sub-block in the same memory order as the volume.
 *
 * Blending window, per axis, for a patch of P voxels whose neighbours overlap it by K voxels:
 * 0 over the outermost M voxels, where the network's zero padding changes its output
 * (M = the receptive radius, one voxel per conv layer, capped at K/3), a raised cosine (Hann
 * ramp) over the next K - M voxels, 1 in the centre; a face on the volume border is not
 * tapered. When the receptive radius fits in M, the blended result equals one whole-volume pass
 * up to float rounding; otherwise (the paper's 22-conv ResNet on 21^3 patches) it hides the
 * seams by weighting each voxel towards the patch where it lies deepest. The weights are normalised by their sum at every voxel;
 * because the window is separable and the patch starts form a grid, that sum is the product of
 * three 1-D sums, so no third volume is needed. Memory: the two volumes plus one patch batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/model.h"
#include "model_internal.h"

void mbsr_apply_opts_default(mbsr_apply_opts *o) {
  o->patch = 21;
  o->overlap = -1; /* patch / 3 */
  o->batch = 8;
  o->interp = MBSR_INTERP_KEYS;
  o->progress = 1;
  o->norm_plo = 0.0;
  o->norm_phi = 100.0;
}

/* Starts of the patches along an axis of n voxels: stride P - K, the last one flush with the end. */
static int axis_starts(int64_t n, int P, int K, int64_t *starts) {
  if (n <= P) {
    starts[0] = 0;
    return 1;
  }
  int cnt = 0;
  int64_t stride = P - K;
  for (int64_t s = 0; s + P < n; s += stride) starts[cnt++] = s;
  starts[cnt++] = n - P;
  return cnt;
}

static double ramp(int t, int K, int M) {
  if (t < M) return 0.0;
  if (t >= K) return 1.0;
  return 0.5 - 0.5 * cos(M_PI * ((double)(t - M) + 0.5) / (double)(K - M));
}

/* Window of the patch starting at s (of P voxels) along an axis of n voxels. */
static void axis_window(int64_t s, int P, int K, int M, int64_t n, float *w) {
  for (int t = 0; t < P; t++) {
    double v = 1.0;
    if (s > 0) v *= ramp(t, K, M);
    if (s + P < n) v *= ramp(P - 1 - t, K, M);
    w[t] = (float)(v > 1e-6 ? v : 1e-6);
  }
}

static int64_t clampi(int64_t x, int64_t n) { return x < 0 ? 0 : (x >= n ? n - 1 : x); }

/* vol is normalised in place and consumed. */
static int apply_owned(mbsr_model *m, mbsr_volume *vol, const mbsr_apply_opts *o, mbsr_volume **out) {
  *out = NULL;
  const int pd = m->d, ph = m->h, pw = m->w; /* patch (D,H,W) = volume (k,j,i) */
  const int64_t nx = vol->nx, ny = vol->ny, nz = vol->nz;
  int batch = o->batch > 0 ? o->batch : m->max_batch;
  if (batch > m->max_batch) batch = m->max_batch;
  int pmin = pd < ph ? (pd < pw ? pd : pw) : (ph < pw ? ph : pw);
  int K = o->overlap >= 0 ? o->overlap : pmin / 3;
  if (K >= pmin)
    return mbsr_error(MBSR_EINVAL, "apply: overlap %d must be smaller than the patch (%dx%dx%d)", K, pd, ph, pw);
  /* zero margin: the receptive radius (one voxel per 3x3x3 conv), at most K/3 */
  int M = m->gen.nconv < K / 3 ? m->gen.nconv : K / 3;
  int rc = mbsr_volume_check_finite(vol, "apply input");
  if (rc) return rc;
  /* normalise to [0,1]: min/max (a constant volume maps to 0), or percentiles with clipping */
  const int64_t nvox = mbsr_volume_nvox(vol);
  double lo, hi;
  if ((o->norm_plo <= 0.0 && o->norm_phi >= 100.0) || !(o->norm_phi > o->norm_plo)) { /* min/max (also for unset 0,0) */
    float mn, mx;
    mbsr_volume_minmax(vol, &mn, &mx);
    lo = mn;
    hi = mx > mn ? mx : mn + 1.0;
    const double sc = 1.0 / (hi - lo);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nvox; i++) vol->data[i] = (float)(((double)vol->data[i] - lo) * sc);
  } else if ((rc = mbsr_normalize(vol, o->norm_plo, o->norm_phi, &lo, &hi))) {
    return mbsr_error_prefix(rc, "apply: ");
  }

  int64_t *sx = malloc(sizeof(int64_t) * (size_t)(nx + 2)), *sy = malloc(sizeof(int64_t) * (size_t)(ny + 2)),
          *sz = malloc(sizeof(int64_t) * (size_t)(nz + 2));
  float *wx = malloc(sizeof(float) * (size_t)nx), *wy = malloc(sizeof(float) * (size_t)ny),
        *wz = malloc(sizeof(float) * (size_t)nz);
  size_t pv = (size_t)pd * ph * pw;
  float *inb = mbsr_alloc(sizeof(float) * pv * (size_t)batch), *outb = mbsr_alloc(sizeof(float) * pv * (size_t)batch);
  float *win = malloc(sizeof(float) * (size_t)(pd + ph + pw));
  int64_t(*pos)[3] = malloc(sizeof *pos * (size_t)batch);
  mbsr_volume *res = mbsr_volume_new_like(vol);
  if (!sx || !sy || !sz || !wx || !wy || !wz || !inb || !outb || !win || !pos || !res) {
    rc = mbsr_error(MBSR_ENOMEM, "apply: out of memory");
    goto done;
  }
  int cx = axis_starts(nx, pw, K, sx), cy = axis_starts(ny, ph, K, sy), cz = axis_starts(nz, pd, K, sz);
  /* 1-D weight sums */
  float *wa[3] = {wx, wy, wz};
  const int64_t na[3] = {nx, ny, nz};
  const int Pa[3] = {pw, ph, pd}, ca[3] = {cx, cy, cz};
  int64_t *sa[3] = {sx, sy, sz};
  for (int a = 0; a < 3; a++) {
    memset(wa[a], 0, sizeof(float) * (size_t)na[a]);
    for (int k = 0; k < ca[a]; k++) {
      axis_window(sa[a][k], Pa[a], K, M, na[a], win);
      for (int t = 0; t < Pa[a] && sa[a][k] + t < na[a]; t++) wa[a][sa[a][k] + t] += win[t];
    }
  }
  const int64_t total = (int64_t)cx * cy * cz;
  mbsr_progress prog;
  mbsr_progress_init(&prog, "apply", total);
  prog.min_interval = 2.0;
  float *wd = win, *wh = win + pd, *ww = win + pd + ph;
  int64_t done_n = 0;
  for (int64_t p0 = 0; p0 < total; p0 += batch) {
    int nb = (int)(total - p0 < batch ? total - p0 : batch);
    for (int b = 0; b < nb; b++) {
      int64_t id = p0 + b;
      int64_t ix = id % cx, iy = (id / cx) % cy, iz = id / ((int64_t)cx * cy);
      pos[b][0] = sx[ix];
      pos[b][1] = sy[iy];
      pos[b][2] = sz[iz];
      float *dst = inb + (size_t)b * pv;
      /* gather (replicating the border where the volume is smaller than the patch) */
#pragma omp parallel for schedule(static)
      for (int k = 0; k < pd; k++)
        for (int j = 0; j < ph; j++) {
          int64_t gk = clampi(pos[b][2] + k, nz), gj = clampi(pos[b][1] + j, ny);
          const float *srow = vol->data + (size_t)nx * (size_t)(gj + ny * gk);
          float *drow = dst + ((size_t)k * ph + j) * pw;
          for (int i = 0; i < pw; i++) drow[i] = srow[clampi(pos[b][0] + i, nx)];
        }
    }
    rc = mbsr_model_forward(m, inb, nb, outb);
    if (rc) goto done;
    for (int b = 0; b < nb; b++) {
      axis_window(pos[b][2], pd, K, M, nz, wd);
      axis_window(pos[b][1], ph, K, M, ny, wh);
      axis_window(pos[b][0], pw, K, M, nx, ww);
      const float *src = outb + (size_t)b * pv;
      int kmax = (int)(nz - pos[b][2] < pd ? nz - pos[b][2] : pd), jmax = (int)(ny - pos[b][1] < ph ? ny - pos[b][1] : ph),
          imax = (int)(nx - pos[b][0] < pw ? nx - pos[b][0] : pw);
#pragma omp parallel for schedule(static)
      for (int k = 0; k < kmax; k++)
        for (int j = 0; j < jmax; j++) {
          float wkj = wd[k] * wh[j];
          float *drow = res->data + (size_t)nx * (size_t)(pos[b][1] + j + ny * (pos[b][2] + k)) + pos[b][0];
          const float *srow = src + ((size_t)k * ph + j) * pw;
          for (int i = 0; i < imax; i++) drow[i] += wkj * ww[i] * srow[i];
        }
    }
    done_n += nb;
    if (o->progress) {
      char extra[64];
      snprintf(extra, sizeof extra, "(%dx%dx%d patches of %dx%dx%d)", cx, cy, cz, pw, ph, pd);
      mbsr_progress_update(&prog, done_n, "patches", extra);
    }
  }
  /* normalise by the summed weights, undo the intensity normalisation */
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++) {
      float *row = res->data + (size_t)nx * (size_t)(j + ny * k);
      double wkj = (double)wz[k] * wy[j];
      for (int64_t i = 0; i < nx; i++) row[i] = (float)((double)row[i] / (wkj * wx[i]) * (hi - lo) + lo);
    }
  if (!mbsr_all_finite(res->data, (size_t)nvox)) {
    rc = mbsr_error(MBSR_ENONFINITE, "apply: the network produced NaN/Inf (corrupt checkpoint?)");
    goto done;
  }
  *out = res;
  res = NULL;
done:
  free(sx);
  free(sy);
  free(sz);
  free(wx);
  free(wy);
  free(wz);
  free(win);
  free(pos);
  mbsr_free(inb);
  mbsr_free(outb);
  mbsr_volume_free(res);
  return rc;
}

int mbsr_apply_upsampled(mbsr_model *m, const mbsr_volume *up, const mbsr_apply_opts *o, mbsr_volume **out) {
  *out = NULL;
  int rc = mbsr_volume_check_finite(up, "apply input");
  if (rc) return rc;
  mbsr_volume *v = mbsr_volume_clone(up);
  if (!v) return mbsr_error(MBSR_ENOMEM, "apply: out of memory");
  rc = apply_owned(m, v, o, out);
  mbsr_volume_free(v);
  return rc;
}

int mbsr_apply(mbsr_model *m, const mbsr_volume *lr, const mbsr_volume *grid, const mbsr_apply_opts *o,
               mbsr_volume **out) {
  *out = NULL;
  int rc = mbsr_volume_check_finite(lr, "apply input");
  if (rc) return rc;
  mbsr_volume *up = NULL;
  if ((rc = mbsr_upsample_like(lr, grid, o->interp, &up))) return rc;
  rc = apply_owned(m, up, o, out);
  mbsr_volume_free(up);
  return rc;
}

int mbsr_apply_factor(mbsr_model *m, const mbsr_volume *lr, const int f[3], const mbsr_apply_opts *o,
                      mbsr_volume **out) {
  *out = NULL;
  int rc = mbsr_volume_check_finite(lr, "apply input");
  if (rc) return rc;
  mbsr_volume *up = NULL;
  if ((rc = mbsr_upsample_factor(lr, f, o->interp, &up))) return rc;
  rc = apply_owned(m, up, o, out);
  mbsr_volume_free(up);
  return rc;
}
