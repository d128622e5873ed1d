/* Brain masks: threshold (Otsu by default, as skimage.filters.threshold_otsu with 256 bins), the
 * largest 6-connected foreground component, and hole filling (background voxels that are not
 * 6-connected to the array border become brain: ventricles and dark nuclei inside the brain).
 * Or a mask from a label volume (label != 0). Masks are 1/0 floats on the input's grid. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"

/* skimage 0.19 threshold_otsu(image, nbins=256): histogram over [min, max], the bin centre that
 * maximises the between-class variance. */
double mbsr_otsu_threshold(const mbsr_volume *v) {
  enum { NB = 256 };
  float mn, mx;
  mbsr_volume_minmax(v, &mn, &mx);
  if (!(mx > mn)) return mn;
  double hist[NB] = {0}, centre[NB];
  const double w = ((double)mx - mn) / NB;
  const int64_t n = mbsr_volume_nvox(v);
  for (int64_t i = 0; i < n; i++) {
    int b = (int)(((double)v->data[i] - mn) / w);
    b = b < 0 ? 0 : (b >= NB ? NB - 1 : b);
    hist[b] += 1;
  }
  for (int b = 0; b < NB; b++) centre[b] = mn + w * (b + 0.5);
  double w1[NB], w2[NB], m1[NB], m2[NB], s = 0, sm = 0;
  for (int b = 0; b < NB; b++) {
    s += hist[b];
    sm += hist[b] * centre[b];
    w1[b] = s;
    m1[b] = s > 0 ? sm / s : 0;
  }
  s = sm = 0;
  for (int b = NB - 1; b >= 0; b--) {
    s += hist[b];
    sm += hist[b] * centre[b];
    w2[b] = s;
    m2[b] = s > 0 ? sm / s : 0;
  }
  int best = 0;
  double bv = -1;
  for (int b = 0; b < NB - 1; b++) {
    double d = m1[b] - m2[b + 1], var = w1[b] * w2[b + 1] * d * d;
    if (var > bv) {
      bv = var;
      best = b;
    }
  }
  return centre[best];
}

/* Flood from the voxels already in q[0..qn) over voxels whose state == from, setting them to `to`
 * (seeds must already carry `to`); returns the number of voxels reached (seeds included). */
static int64_t flood(uint8_t *st, int64_t *q, int64_t qn, int64_t nx, int64_t ny, int64_t nz, uint8_t from, uint8_t to) {
  int64_t head = 0, tail = qn;
  const int64_t sxy = nx * ny;
  while (head < tail) {
    int64_t p = q[head++];
    int64_t i = p % nx, j = (p / nx) % ny, k = p / sxy;
    int64_t nb[6];
    int c = 0;
    if (i > 0) nb[c++] = p - 1;
    if (i < nx - 1) nb[c++] = p + 1;
    if (j > 0) nb[c++] = p - nx;
    if (j < ny - 1) nb[c++] = p + nx;
    if (k > 0) nb[c++] = p - sxy;
    if (k < nz - 1) nb[c++] = p + sxy;
    for (int t = 0; t < c; t++)
      if (st[nb[t]] == from) {
        st[nb[t]] = to;
        q[tail++] = nb[t];
      }
  }
  return tail;
}

int mbsr_mask_threshold(const mbsr_volume *v, double thr, mbsr_volume **mask) {
  *mask = NULL;
  int rc = mbsr_volume_check_finite(v, "mask input");
  if (rc) return rc;
  if (thr < 0) thr = mbsr_otsu_threshold(v);
  const int64_t n = mbsr_volume_nvox(v), nx = v->nx, ny = v->ny, nz = v->nz;
  uint8_t *st = malloc((size_t)n);
  int64_t *q = malloc((size_t)n * sizeof(int64_t));
  if (!st || !q) {
    free(st);
    free(q);
    return mbsr_error(MBSR_ENOMEM, "mask: out of memory");
  }
  /* states: 0 background, 1 foreground, 2 foreground seen, 3 largest component, 4 outside */
  for (int64_t i = 0; i < n; i++) st[i] = v->data[i] > thr;
  int64_t best = -1, best_n = 0;
  for (int64_t p = 0; p < n; p++) {
    if (st[p] != 1) continue;
    st[p] = 2;
    q[0] = p;
    int64_t c = flood(st, q, 1, nx, ny, nz, 1, 2);
    if (c > best_n) {
      best_n = c;
      best = p;
    }
  }
  if (best < 0) {
    free(st);
    free(q);
    return mbsr_error(MBSR_EINVAL, "mask: no voxel above the threshold %g", thr);
  }
  st[best] = 3;
  q[0] = best;
  flood(st, q, 1, nx, ny, nz, 2, 3);
  for (int64_t p = 0; p < n; p++)
    if (st[p] != 3) st[p] = 0;
  /* background reachable from the border -> 4; the rest (3 and enclosed 0) is brain */
  int64_t qn = 0;
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++) {
        if (!(i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1)) {
          i = nx - 2; /* jump to the last column of an interior row */
          continue;
        }
        int64_t p = i + nx * (j + ny * k);
        if (st[p] == 0) {
          st[p] = 4;
          q[qn++] = p;
        }
      }
  flood(st, q, qn, nx, ny, nz, 0, 4);
  mbsr_volume *m = mbsr_volume_new_like(v);
  if (!m) {
    free(st);
    free(q);
    return mbsr_error_prefix(MBSR_ENOMEM, "mask: ");
  }
  for (int64_t p = 0; p < n; p++) m->data[p] = st[p] != 4;
  free(st);
  free(q);
  *mask = m;
  return MBSR_OK;
}

int mbsr_mask_from_labels(const mbsr_volume *labels, mbsr_volume **mask) {
  *mask = NULL;
  mbsr_volume *m = mbsr_volume_new_like(labels);
  if (!m) return mbsr_error_prefix(MBSR_ENOMEM, "mask: ");
  const int64_t n = mbsr_volume_nvox(labels);
  int64_t cnt = 0;
  for (int64_t p = 0; p < n; p++) {
    float x = labels->data[p];
    m->data[p] = (x != 0 && !isnan(x));
    cnt += m->data[p] != 0;
  }
  if (cnt == 0) {
    mbsr_volume_free(m);
    return mbsr_error(MBSR_EINVAL, "mask: the label volume has no non-zero label");
  }
  *mask = m;
  return MBSR_OK;
}
