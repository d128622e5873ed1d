/* Voxel-wise uncertainty beside an SR volume (issue 13): an ensemble of test-time axis flips x models.
 *
 * Every member runs the ordinary apply path (mbsr_apply_upsampled: the SR contract's normalisation and
 * exact tiling) on a flipped copy of the up-sampled input; its output is flipped back and folded into a
 * running mean and variance (Welford, "Note on a method for calculating corrected sums of squares and
 * products", Technometrics 1962; in double). The flips are exact symmetries of the training
 * augmentation (train --augment: flips x axis permutations), so each member is a plausible prediction
 * of the same volume; where they disagree the network is unsure.
 *
 * Flip f (0..7) is a bit mask over the array axes: bit 0 reverses i, bit 1 j, bit 2 k. The K first masks
 * (identity first) are the members of each model; models are the outer loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/model.h"

/* dst = src with the axes of mask reversed (a flip is its own inverse). */
static void flip_copy(const mbsr_volume *src, float *dst, int mask) {
  const int64_t nx = src->nx, ny = src->ny, nz = src->nz;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++) {
      const int64_t sk = mask & 4 ? nz - 1 - k : k, sj = mask & 2 ? ny - 1 - j : j;
      const float *s = src->data + nx * (sj + ny * sk);
      float *d = dst + nx * (j + ny * k);
      if (mask & 1)
        for (int64_t i = 0; i < nx; i++) d[i] = s[nx - 1 - i];
      else
        memcpy(d, s, sizeof(float) * (size_t)nx);
    }
}

/* Welford update with member number c (1-based): x (flipped by mask) into mean, m2. */
static void welford_add(const mbsr_volume *x, int mask, int c, double *mean, double *m2) {
  const int64_t nx = x->nx, ny = x->ny, nz = x->nz;
  const double inv = 1.0 / c;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++) {
      const int64_t sk = mask & 4 ? nz - 1 - k : k, sj = mask & 2 ? ny - 1 - j : j;
      const float *s = x->data + nx * (sj + ny * sk);
      const int64_t q0 = nx * (j + ny * k);
      for (int64_t i = 0; i < nx; i++) {
        const double v = s[mask & 1 ? nx - 1 - i : i];
        const double d = v - mean[q0 + i];
        mean[q0 + i] += d * inv;
        m2[q0 + i] += d * (v - mean[q0 + i]);
      }
    }
}

/* mean and sd (population: m2 / members) as float volumes on up's grid. */
static int finish(const mbsr_volume *up, const double *mean, const double *m2, int members, mbsr_volume **mo,
                  mbsr_volume **so) {
  mbsr_volume *a = mbsr_volume_new_like(up), *b = mbsr_volume_new_like(up);
  if (!a || !b) {
    mbsr_volume_free(a);
    mbsr_volume_free(b);
    return mbsr_error(MBSR_ENOMEM, "apply ensemble: out of memory");
  }
  const int64_t n = mbsr_volume_nvox(up);
  const double inv = 1.0 / members;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < n; q++) {
    a->data[q] = (float)mean[q];
    b->data[q] = (float)sqrt(m2[q] > 0 ? m2[q] * inv : 0.0);
  }
  *mo = a;
  *so = b;
  return MBSR_OK;
}

/* A member's axis transform: new axis d = old axis perm[d], reversed where bit d of flips is set. */
typedef struct {
  int perm[3], flips;
} xform;

/* The members on the up-sampled input: for each model (outer), the nt transforms of tab. A pure flip
 * runs on a flipped copy (flip_copy) and is folded back by welford_add's mask; a permutation runs on
 * mbsr_volume_permute's copy and is permuted back first. */
static int run_members(mbsr_model *const *models, int nmodels, const mbsr_volume *up, const xform *tab, int nt,
                       const mbsr_apply_opts *o, mbsr_volume **mo, mbsr_volume **so) {
  const int64_t n = mbsr_volume_nvox(up);
  double *mean = calloc((size_t)n, sizeof(double)), *m2 = calloc((size_t)n, sizeof(double));
  mbsr_volume *fx = mbsr_volume_clone(up);
  int rc = MBSR_OK, c = 0;
  if (!mean || !m2 || !fx) rc = mbsr_error(MBSR_ENOMEM, "apply ensemble: out of memory for %lld voxels", (long long)n);
  for (int mi = 0; mi < nmodels && !rc; mi++)
    for (int t = 0; t < nt && !rc; t++) {
      const xform *x = &tab[t];
      const int plain = x->perm[0] == 0 && x->perm[1] == 1 && x->perm[2] == 2;
      mbsr_volume *px = NULL, *y = NULL, *back = NULL;
      int inv[3], ifl;
      if (plain) flip_copy(up, fx->data, x->flips);
      else rc = mbsr_volume_permute(up, x->perm, x->flips, &px);
      if (!rc) rc = mbsr_apply_upsampled(models[mi], plain ? fx : px, o, &y);
      mbsr_perm_inverse(x->perm, x->flips, inv, &ifl);
      if (!rc && !plain) rc = mbsr_volume_permute(y, inv, ifl, &back);
      if (rc) mbsr_error_prefix(rc, "apply ensemble member %d (model %d, axes %d,%d,%d, flip %d): ", c + 1, mi + 1, x->perm[0],
                                x->perm[1], x->perm[2], x->flips);
      else welford_add(plain ? y : back, plain ? x->flips : 0, ++c, mean, m2);
      mbsr_volume_free(px), mbsr_volume_free(y), mbsr_volume_free(back);
    }
  if (!rc) rc = finish(up, mean, m2, c, mo, so);
  free(mean);
  free(m2);
  mbsr_volume_free(fx);
  return rc;
}

/* The models must share the contract's interpolation (one up-sampled input for all). */
static int same_interp(mbsr_model *const *models, int nmodels) {
  const mbsr_interp interp = mbsr_model_get_contract(models[0])->interp;
  for (int i = 1; i < nmodels; i++)
    if (mbsr_model_get_contract(models[i])->interp != interp)
      return mbsr_error(MBSR_EMISMATCH, "apply ensemble: model %d up-samples by %s, model 1 by %s: one input for all needs one "
                        "interpolation", i + 1, mbsr_interp_name(mbsr_model_get_contract(models[i])->interp), mbsr_interp_name(interp));
  return 0;
}

int mbsr_apply_ensemble(mbsr_model *const *models, int nmodels, const mbsr_volume *lr, const mbsr_volume *grid,
                        const int f[3], const mbsr_apply_opts *o, mbsr_volume **mean, mbsr_volume **sd) {
  *mean = NULL;
  *sd = NULL;
  if (nmodels < 1 || !models) return mbsr_error(MBSR_EINVAL, "apply ensemble: no model");
  if (o->flips < 1 || o->flips > 8) return mbsr_error(MBSR_EINVAL, "apply ensemble: flips %d not in 1..8", o->flips);
  if (grid && f) return mbsr_error(MBSR_EINVAL, "apply ensemble: give a target grid or a factor, not both");
  const mbsr_interp interp = mbsr_model_get_contract(models[0])->interp;
  int rc = same_interp(models, nmodels);
  if (!rc) rc = mbsr_volume_check_finite(lr, "apply input");
  if (rc) return rc;
  mbsr_volume *up = NULL;
  if (grid) rc = mbsr_upsample_like(lr, grid, interp, &up);
  else if (f) rc = mbsr_upsample_factor(lr, f, interp, &up);
  if (rc) return rc;
  xform tab[8];
  for (int t = 0; t < o->flips; t++) tab[t] = (xform){{0, 1, 2}, t};
  rc = run_members(models, nmodels, up ? up : lr, tab, o->flips, o, mean, sd);
  mbsr_volume_free(up);
  return rc;
}

/* ---- self-supervised through-plane models (prep self_supervised; contract through_plane) ----
 * The network restores array axis 0 (the in-plane axis it saw degraded to the slice thickness), so each
 * member moves the slice axis there: permutation (slice, a, b) or (slice, b, a) with a < b the in-plane
 * axes (both in-plane orientations were in training), then reversals. */
void mbsr_through_plane_member(int slice_axis, int t, int perm[3], int *flips) {
  const int a = slice_axis == 0 ? 1 : 0, b = 3 - slice_axis - a;
  perm[0] = slice_axis, perm[1] = t & 1 ? b : a, perm[2] = t & 1 ? a : b;
  *flips = (t >> 1) & 7;
}

int mbsr_apply_through_plane(mbsr_model *const *models, int nmodels, const mbsr_volume *lr, const int f[3], const mbsr_apply_opts *o,
                             mbsr_volume **mean, mbsr_volume **sd) {
  *mean = NULL;
  *sd = NULL;
  if (nmodels < 1 || !models) return mbsr_error(MBSR_EINVAL, "apply through-plane: no model");
  if (o->flips < 1 || o->flips > 8) return mbsr_error(MBSR_EINVAL, "apply through-plane: flips %d not in 1..8", o->flips);
  int s = -1;
  for (int a = 0; a < 3; a++)
    if (f[a] > 1) s = s < 0 ? a : 3;
    else if (f[a] < 1) s = 3;
  if (s < 0 || s > 2)
    return mbsr_error(MBSR_EINVAL, "apply through-plane: factor %d,%d,%d must up-sample exactly one axis (the slice axis)", f[0], f[1], f[2]);
  for (int i = 0; i < nmodels; i++)
    if (!mbsr_model_get_contract(models[i])->through_plane)
      return mbsr_error(MBSR_EINVAL, "apply through-plane: model %d is not a through-plane (self-supervised) model", i + 1);
  int rc = same_interp(models, nmodels);
  if (!rc) rc = mbsr_volume_check_finite(lr, "apply input");
  mbsr_volume *up = NULL;
  if (!rc) rc = mbsr_upsample_factor(lr, f, mbsr_model_get_contract(models[0])->interp, &up);
  if (rc) return rc;
  xform tab[16];
  const int nt = 2 * o->flips;
  for (int t = 0; t < nt; t++) mbsr_through_plane_member(s, t, tab[t].perm, &tab[t].flips);
  rc = run_members(models, nmodels, up, tab, nt, o, mean, sd);
  mbsr_volume_free(up);
  return rc;
}
