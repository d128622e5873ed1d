/* Axis permutation (with optional reversal) of a volume, keeping its world space: the array is
 * transposed and the affine's columns follow, so every voxel keeps its world position. Used by the
 * self-supervised through-plane pairs (src/data/selfsup.c) and the through-plane apply
 * (src/model/ensemble.c), where the slice axis takes the place of the axis a network restores. */
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/image.h"

int mbsr_volume_permute(const mbsr_volume *in, const int perm[3], int flips, mbsr_volume **out) {
  *out = NULL;
  int seen = 0;
  for (int d = 0; d < 3; d++)
    if (perm[d] < 0 || perm[d] > 2 || (seen & (1 << perm[d])))
      return mbsr_error(MBSR_EINVAL, "permute: %d,%d,%d is not a permutation of the axes 0,1,2", perm[0], perm[1], perm[2]);
    else seen |= 1 << perm[d];
  const int64_t n[3] = {in->nx, in->ny, in->nz}, m[3] = {n[perm[0]], n[perm[1]], n[perm[2]]};
  const int64_t st[3] = {1, n[0], n[0] * n[1]};
  double vox[3], A[4][4];
  memcpy(A, in->affine, sizeof A);
  for (int d = 0; d < 3; d++) {
    vox[d] = in->vox[perm[d]];
    const int rev = (flips >> d) & 1;
    for (int r = 0; r < 4; r++) A[r][d] = (rev ? -1 : 1) * in->affine[r][perm[d]];
    if (rev) /* index 0 of new axis d is index n-1 of the old axis: the origin moves there */
      for (int r = 0; r < 3; r++) A[r][3] += (double)(m[d] - 1) * in->affine[r][perm[d]];
  }
  mbsr_volume *o = mbsr_volume_new(m[0], m[1], m[2], vox, (const double(*)[4])A);
  if (!o) return mbsr_error_prefix(MBSR_ENOMEM, "permute: ");
  o->meta = in->meta;
  int64_t s[3], b = 0;
  for (int d = 0; d < 3; d++) {
    const int rev = (flips >> d) & 1;
    s[d] = rev ? -st[perm[d]] : st[perm[d]];
    if (rev) b += (m[d] - 1) * st[perm[d]];
  }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t k = 0; k < m[2]; k++)
    for (int64_t j = 0; j < m[1]; j++) {
      const float *src = in->data + b + j * s[1] + k * s[2];
      float *dst = o->data + m[0] * (j + m[1] * k);
      for (int64_t i = 0; i < m[0]; i++) dst[i] = src[i * s[0]];
    }
  *out = o;
  return MBSR_OK;
}

void mbsr_perm_inverse(const int perm[3], int flips, int inv[3], int *inv_flips) {
  *inv_flips = 0;
  for (int d = 0; d < 3; d++) {
    inv[perm[d]] = d;
    if ((flips >> d) & 1) *inv_flips |= 1 << perm[d];
  }
}
