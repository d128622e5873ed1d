/* Pieces of a volume: its longest axis and crops along an axis (the halves of one brain, the slabs
 * of an MRI test volume). */
#include <string.h>

#include "exp_internal.h"

int mbsr__longest_axis(const mbsr_volume *v) {
  int64_t n[3] = {v->nx, v->ny, v->nz};
  return n[1] > n[0] ? (n[2] > n[1] ? 2 : 1) : (n[2] > n[0] ? 2 : 0);
}

int64_t mbsr__dimof(const mbsr_volume *v, int a) { return a == 0 ? v->nx : a == 1 ? v->ny : v->nz; }

mbsr_volume *mbsr__crop_axis(const mbsr_volume *v, int a, int64_t lo, int64_t hi) {
  int64_t n[3] = {v->nx, v->ny, v->nz};
  n[a] = hi - lo;
  double aff[4][4];
  memcpy(aff, v->affine, sizeof aff);
  for (int r = 0; r < 3; r++) aff[r][3] += v->affine[r][a] * (double)lo;
  mbsr_volume *o = mbsr_volume_new(n[0], n[1], n[2], v->vox, (const double(*)[4])aff);
  if (!o) return NULL;
  mbsr_volume_keep_space(o, v); /* a part of v: the same world space */
  for (int64_t k = 0; k < n[2]; k++)
    for (int64_t j = 0; j < n[1]; j++)
      for (int64_t i = 0; i < n[0]; i++) {
        int64_t s[3] = {i, j, k};
        s[a] += lo;
        o->data[i + n[0] * (j + n[1] * k)] = v->data[s[0] + v->nx * (s[1] + v->ny * s[2])];
      }
  return o;
}
