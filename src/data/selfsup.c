/* Self-supervised through-plane training pairs (issue 13, item 2), after SMORE (Zhao et al., "SMORE: a
 * self-supervised anti-aliasing and super-resolution algorithm for MRI using deep learning", IEEE TMI
 * 2021): a thick-slice volume is fine in-plane, so an in-plane axis degraded to the slice thickness with
 * the slice profile and restored by Keys is an input whose target is known. Both are on the grid the
 * network will later see: the acquired volume with its slice axis Keys-upsampled to the in-plane spacing.
 * The degraded axis is moved to array axis 0, so every pair teaches the network to restore axis 0; the
 * through-plane apply (src/model/ensemble.c) moves the slice axis there. */
#include <math.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/data.h"
#include "mbsr/image.h"

/* The leading n[3] voxels of v (v itself when the dims already match); v is consumed. */
static int crop_to(mbsr_volume *v, const int64_t n[3], mbsr_volume **out) {
  if (v->nx == n[0] && v->ny == n[1] && v->nz == n[2]) return *out = v, MBSR_OK;
  mbsr_volume *o = mbsr_volume_new(n[0], n[1], n[2], v->vox, (const double(*)[4])v->affine);
  if (!o) {
    mbsr_volume_free(v);
    return mbsr_error_prefix(MBSR_ENOMEM, "self-supervised pair: ");
  }
  o->meta = v->meta;
  for (int64_t k = 0; k < n[2]; k++)
    for (int64_t j = 0; j < n[1]; j++) memcpy(o->data + n[0] * (j + n[1] * k), v->data + v->nx * (j + v->ny * k), sizeof(float) * (size_t)n[0]);
  mbsr_volume_free(v);
  *out = o;
  return MBSR_OK;
}

int mbsr_selfsup_factor(const mbsr_volume *v, int slice_axis, int *factor) {
  if (slice_axis < 0 || slice_axis > 2) return mbsr_error(MBSR_EINVAL, "self-supervised: slice axis %d not in 0..2", slice_axis);
  const double t = v->vox[slice_axis];
  for (int a = 0; a < 3; a++) {
    if (a == slice_axis) continue;
    const int f = (int)lround(t / v->vox[a]);
    if (f < 2 || fabs(f * v->vox[a] - t) > 0.01 * t)
      return mbsr_error(MBSR_EINVAL, "self-supervised: slice thickness %g mm (axis %d) is not an integer multiple >= 2 of the in-plane voxel %g mm (axis %d)",
                        t, slice_axis, v->vox[a], a);
    if (a != slice_axis && *factor > 0 && f != *factor)
      return mbsr_error(MBSR_EINVAL, "self-supervised: the in-plane voxel sizes %g, %g mm differ (need one factor)", v->vox[(slice_axis + 1) % 3],
                        v->vox[(slice_axis + 2) % 3]);
    *factor = f;
  }
  return MBSR_OK;
}

int mbsr_selfsup_pair(const mbsr_volume *acq, int slice_axis, int degrade_axis, mbsr_profile p, mbsr_volume **input,
                      mbsr_volume **target) {
  *input = *target = NULL;
  int F = 0, rc = mbsr_selfsup_factor(acq, slice_axis, &F);
  if (rc) return rc;
  if (degrade_axis == slice_axis || degrade_axis < 0 || degrade_axis > 2)
    return mbsr_error(MBSR_EINVAL, "self-supervised: the degraded axis %d must be an in-plane axis (slice axis %d)", degrade_axis, slice_axis);
  int fk[3] = {1, 1, 1}, fa[3] = {1, 1, 1};
  fk[slice_axis] = F, fa[degrade_axis] = F;
  mbsr_volume *y = NULL, *d = NULL, *x = NULL, *yc = NULL;
  rc = mbsr_upsample_factor(acq, fk, MBSR_INTERP_KEYS, &y);               /* the target grid: slices at the in-plane spacing */
  if (!rc) rc = mbsr_downsample(y, fa, p, &d);                            /* an in-plane axis at the slice thickness */
  if (!rc) rc = mbsr_upsample_factor(d, fa, MBSR_INTERP_KEYS, &x);        /* ... restored by Keys: the network input */
  mbsr_volume_free(d);
  if (!rc) rc = crop_to(y, (const int64_t[3]){x->nx, x->ny, x->nz}, &yc); /* a remainder of the degraded axis is cropped */
  else mbsr_volume_free(y);
  const int other = 3 - slice_axis - degrade_axis, perm[3] = {degrade_axis, other, slice_axis};
  if (!rc) rc = mbsr_volume_permute(x, perm, 0, input);
  if (!rc) rc = mbsr_volume_permute(yc, perm, 0, target);
  mbsr_volume_free(x);
  mbsr_volume_free(yc);
  if (rc) {
    mbsr_volume_free(*input), mbsr_volume_free(*target);
    *input = *target = NULL;
    return mbsr_error_prefix(rc, "self-supervised pair (slice axis %d, degraded axis %d): ", slice_axis, degrade_axis);
  }
  return MBSR_OK;
}
