/* Bringing an input volume onto the isotropic base grid of `mbsr prep`: separable area-weighted
 * (box) resampling by per-axis factors f >= 1. For integer f this is exactly block averaging
 * (each output voxel = mean of f input voxels); for fractional f (e.g. the AF individual brain's
 * 40 um in-plane voxels to 100 um: f = 2.5) each input voxel contributes in proportion to its
 * overlap with the output voxel. Trailing input that does not fill a whole output voxel is
 * cropped, and the affine follows mbsr_downsample_block's rule (columns scaled by f, origin at
 * the centre of output voxel 0 = input index (f-1)/2). */
#include <math.h>
#include <string.h>

#include "mbsr/data.h"
#include "prep_internal.h"

/* One axis: out (dims with n[axis] replaced by m) from in. */
static void box_axis(const float *in, const int64_t n[3], int axis, double f, int64_t m, float *out) {
  int64_t st[3] = {1, n[0], n[0] * n[1]};
  int64_t mo[3] = {n[0], n[1], n[2]};
  mo[axis] = m;
  int64_t sto[3] = {1, mo[0], mo[0] * mo[1]};
  int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t u = 0; u < n[a2]; u++)
    for (int64_t t = 0; t < n[a1]; t++) {
      const float *src = in + u * st[a2] + t * st[a1];
      float *dst = out + u * sto[a2] + t * sto[a1];
      for (int64_t o = 0; o < m; o++) {
        double lo = (double)o * f, hi = (double)(o + 1) * f, s = 0;
        int64_t i0 = (int64_t)floor(lo), i1 = (int64_t)ceil(hi - 1e-12);
        if (i1 > n[axis]) i1 = n[axis];
        for (int64_t i = i0; i < i1; i++) {
          double w = fmin((double)(i + 1), hi) - fmax((double)i, lo);
          if (w > 0) s += w * (double)src[i * st[axis]];
        }
        dst[o * sto[axis]] = (float)(s / f);
      }
    }
}

int mbsr__prep_to_base(const mbsr_volume *v, double base_mm, const char *name, mbsr_volume **out) {
  *out = NULL;
  double f[3];
  int identity = 1;
  for (int a = 0; a < 3; a++) {
    f[a] = base_mm / v->vox[a];
    if (f[a] < 1 - 1e-3)
      return mbsr_error(MBSR_EINVAL, "%s: voxel size %.4g mm along axis %d is coarser than the base resolution %.4g mm",
                        name, v->vox[a], a, base_mm);
    if (fabs(f[a] - 1) < 1e-3) f[a] = 1;
    else identity = 0;
  }
  if (identity) {
    *out = mbsr_volume_clone(v);
    return *out ? MBSR_OK : mbsr_error(MBSR_ENOMEM, "%s: out of memory", name);
  }
  int64_t n[3] = {v->nx, v->ny, v->nz}, m[3];
  for (int a = 0; a < 3; a++) {
    m[a] = (int64_t)floor((double)n[a] / f[a] + 1e-9);
    if (m[a] < 1) return mbsr_error(MBSR_EINVAL, "%s: too small for the base resolution %.4g mm", name, base_mm);
  }
  double aff[4][4], vox[3];
  memcpy(aff, v->affine, sizeof aff);
  for (int r = 0; r < 3; r++) {
    double o = v->affine[r][3];
    for (int a = 0; a < 3; a++) o += v->affine[r][a] * (f[a] - 1) / 2;
    aff[r][3] = o;
    for (int a = 0; a < 3; a++) aff[r][a] = v->affine[r][a] * f[a];
  }
  for (int a = 0; a < 3; a++) vox[a] = v->vox[a] * f[a];
  /* Three passes through two scratch volumes. */
  const float *src = v->data;
  int64_t cur[3] = {n[0], n[1], n[2]};
  float *bufs[2] = {NULL, NULL};
  int which = 0;
  for (int a = 0; a < 3; a++) {
    if (f[a] == 1) continue;
    int64_t next[3] = {cur[0], cur[1], cur[2]};
    next[a] = m[a];
    float *dst = mbsr_alloc((size_t)(next[0] * next[1] * next[2]) * sizeof(float));
    if (!dst) {
      mbsr_free(bufs[0]), mbsr_free(bufs[1]);
      return mbsr_error(MBSR_ENOMEM, "%s: out of memory resampling to the base grid", name);
    }
    box_axis(src, cur, a, f[a], m[a], dst);
    mbsr_free(bufs[which]);
    bufs[which] = dst;
    src = dst;
    which ^= 1;
    memcpy(cur, next, sizeof cur);
  }
  mbsr_volume *o = mbsr_volume_new(m[0], m[1], m[2], vox, (const double(*)[4])aff);
  if (!o) {
    mbsr_free(bufs[0]), mbsr_free(bufs[1]);
    return mbsr_error(MBSR_ENOMEM, "%s: out of memory", name);
  }
  memcpy(o->data, src, (size_t)(m[0] * m[1] * m[2]) * sizeof(float));
  mbsr_free(bufs[0]), mbsr_free(bufs[1]);
  o->src_dtype = v->src_dtype;
  memcpy(o->src_format, v->src_format, sizeof o->src_format);
  o->src_min = v->src_min, o->src_max = v->src_max;
  *out = o;
  return MBSR_OK;
}
