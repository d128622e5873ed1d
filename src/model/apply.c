/* Whole-volume inference (paper section 2.3.6) under the SR contract (model.h, image.h):
 * up-sample the LR volume onto the target grid by the contract's interpolation (Keys), map it to the
 * network's training scale by the contract's percentiles, run the generator in tiles, map back.
 *
 * Exact tiling. A 3x3x3 stride-1 conv with zero padding makes each output voxel depend on a
 * (2r+1)^3 neighbourhood of its input; a chain of convs (the generator's longest path) has receptive
 * radius R = their number. A tile's output therefore equals the whole-volume output at every voxel at
 * least R voxels from each face of the tile that is not a face of the volume (at a volume face the tile
 * and the whole volume see the same zero padding). Tiles overlap by 2R; tile k owns the voxels from
 * its start + R (0 for the first) to the next tile's start + R (the end for the last), which lie in
 * its exact region because the stride is tile - 2R. Each output voxel is copied from exactly one tile:
 * no blending weights, no seams, for any depth (the paper's 22-conv ResNet included).
 * Tiles are made as large as the memory budget allows (an inference-only copy of the network keeps a
 * few activations, not every layer's), so the 2R overlap costs little and small volumes run whole.
 *
 * Tile axes: the model's (D,H,W) is (k,j,i) of the volume (i fastest), so a tile is a contiguous
 * sub-block in the volume's memory order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/model.h"
#include "model_internal.h"

void mbsr_apply_opts_default(mbsr_apply_opts *o) {
  o->patch = 0;
  o->batch = 1;
  o->max_mb = 2048;
  o->progress = 1;
  o->flips = 1;
}

/* ---- the SR contract carried by a model ---- */
void mbsr_sr_contract_default(mbsr_sr_contract *c) {
  memset(c, 0, sizeof *c);
  c->known = 1;
  c->norm_plo = 0.1;
  c->norm_phi = 99.9;
  c->interp = MBSR_INTERP_KEYS;
}

const mbsr_sr_contract *mbsr_model_get_contract(const mbsr_model *m) {
  static const mbsr_sr_contract dflt = {1, 0.1, 99.9, {0, 0, 0}, {0, 0, 0}, 0, MBSR_INTERP_KEYS, "", 0, MBSR_PROFILE_BOXCAR};
  return m->contract_set ? &m->contract : &dflt;
}

void mbsr_model_set_contract(mbsr_model *m, const mbsr_sr_contract *c) {
  m->contract = *c;
  m->contract_set = 1;
}

/* ---- the tiling plan ---- */
static int tile_edge(int T, int64_t n) { return (int64_t)T < n ? T : (int)n; }

/* The smallest tile edge that covers n voxels with c tiles overlapping by 2R: (c-1)(t-2R) + t >= n. */
static int64_t cover_edge(int64_t n, int64_t c, int R) {
  return c <= 1 ? n : (n + 2 * (int64_t)R * (c - 1) + c - 1) / c;
}

static double plan_bytes(const mbsr_model *m, int batch, const int64_t t[3]) {
  size_t b = mbsr__model_inference_bytes(&m->cfg, batch, (int)t[2], (int)t[1], (int)t[0]); /* 0: too large */
  if (!b) mbsr_error_clear();
  return b ? (double)b : INFINITY;
}

/* The tiling that computes the fewest voxels (tiles x tile voxels: the overlap is computed twice) within
 * the budget: per axis a tile count c and the smallest edge that covers the axis with it. For each
 * count pair of axes 0 and 1, the smallest count of axis 2 that fits (memory falls as it grows) is
 * found by bisection. Ties go to fewer tiles. A larger budget never computes more. */
static int search_tiles(const mbsr_model *m, const int64_t n[3], int R, int batch, double budget, int64_t best_t[3],
                        double *best_bytes) {
  const int Tmin = 2 * R + 1;
  int64_t cmax[3];
  for (int a = 0; a < 3; a++) { /* the most tiles an axis can take: edges of at least Tmin, at most 256 tiles */
    cmax[a] = n[a] <= Tmin ? 1 : (n[a] - 2 * R + (Tmin - 2 * R) - 1) / (Tmin - 2 * R);
    if (cmax[a] > 256) cmax[a] = 256;
    while (cmax[a] > 1 && cover_edge(n[a], cmax[a], R) < Tmin) cmax[a]--;
  }
  double best = INFINITY, best_tiles = INFINITY;
  for (int64_t c0 = 1; c0 <= cmax[0]; c0++)
    for (int64_t c1 = 1; c1 <= cmax[1]; c1++) {
      int64_t t[3] = {cover_edge(n[0], c0, R), cover_edge(n[1], c1, R), cover_edge(n[2], cmax[2], R)};
      const double plane = (double)(c0 * t[0]) * (double)(c1 * t[1]);
      if (plane * (double)n[2] > best) continue; /* cannot beat the best: c2 t2 >= n2 */
      double hb = plan_bytes(m, batch, t);     /* bytes of the smallest fitting c2 so far */
      if (hb > budget) continue;               /* not even with the most tiles along axis 2 */
      int64_t lo = 1, hi = cmax[2];            /* the smallest c2 that fits: hi fits */
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        t[2] = cover_edge(n[2], mid, R);
        const double b = plan_bytes(m, batch, t);
        if (b <= budget) hi = mid, hb = b;
        else lo = mid + 1;
      }
      t[2] = cover_edge(n[2], hi, R);
      const double cost = plane * (double)(hi * t[2]), tiles = (double)(c0 * c1 * hi);
      if (cost < best || (cost == best && tiles < best_tiles)) {
        best = cost, best_tiles = tiles, *best_bytes = hb;
        for (int a = 0; a < 3; a++) best_t[a] = t[a];
      }
    }
  return best < INFINITY ? MBSR_OK : MBSR_ENOMEM;
}

int mbsr_apply_plan_for(const mbsr_model *m, const int64_t n[3], const mbsr_apply_opts *o, mbsr_apply_plan *pl) {
  memset(pl, 0, sizeof *pl);
  const int R = mbsr__model_receptive_radius(m);
  const int batch = o->batch > 0 ? o->batch : 1;
  const double budget = (o->max_mb > 0 ? o->max_mb : 2048) * 1048576.0;
  int64_t nmax = n[0] > n[1] ? (n[0] > n[2] ? n[0] : n[2]) : (n[1] > n[2] ? n[1] : n[2]);
  if (n[0] < 1 || n[1] < 1 || n[2] < 1 || nmax > 1 << 20)
    return mbsr_error(MBSR_EINVAL, "apply: volume of %lldx%lldx%lld voxels", (long long)n[0], (long long)n[1], (long long)n[2]);
  const int Tmin = 2 * R + 1; /* a stride of at least one voxel where an axis is cut */
  int64_t tl[3];
  double bytes = 0;
  if (o->patch > 0) { /* the user's cubic tile edge, shrunk while it exceeds the budget */
    int T = o->patch < nmax ? o->patch : (int)nmax;
    for (;;) {
      const int64_t t[3] = {tile_edge(T, n[0]), tile_edge(T, n[1]), tile_edge(T, n[2])};
      bytes = plan_bytes(m, batch, t);
      if (bytes <= budget) break;
      int next = (int)(T * 0.9);
      if (T <= Tmin) break;
      T = next < Tmin || next == T ? Tmin : next;
    }
    for (int a = 0; a < 3; a++) tl[a] = tile_edge(T, n[a]);
    if (bytes > budget) bytes = -1;
  } else if (search_tiles(m, n, R, batch, budget, tl, &bytes)) {
    bytes = -1;
  }
  if (bytes < 0) {
    const int64_t t[3] = {tile_edge(Tmin, n[0]), tile_edge(Tmin, n[1]), tile_edge(Tmin, n[2])};
    return mbsr_error(MBSR_ENOMEM,
                      "apply: the network (receptive radius %d voxels) needs tiles of at least %d^3 voxels, which take "
                      "%.0f MiB at batch %d: more than the memory budget of %.0f MiB (raise --max-mb)",
                      R, Tmin, plan_bytes(m, batch, t) / 1048576.0, batch, budget / 1048576.0);
  }
  for (int a = 0; a < 3; a++) {
    if (tl[a] < n[a] && tl[a] < Tmin)
      return mbsr_error(MBSR_EINVAL, "apply: tiles of %d voxels cannot cut an axis for a network of receptive radius %d (need >= %d)",
                        (int)tl[a], R, Tmin);
    pl->tile[a] = (int)tl[a];
    const int64_t stride = tl[a] - 2 * R;
    pl->count[a] = tl[a] >= n[a] ? 1 : (int)((n[a] - tl[a] + stride - 1) / stride) + 1;
  }
  pl->overlap = 2 * R;
  pl->margin = R;
  pl->bytes = bytes;
  return MBSR_OK;
}

/* Tile starts along an axis (stride tile - 2R, the last flush with the end) and the owned ranges:
 * tile k owns [own[k], own[k+1]). */
static void axis_layout(int64_t n, int tile, int R, int count, int64_t *start, int64_t *own) {
  const int64_t stride = tile - 2 * R;
  for (int k = 0; k < count; k++) start[k] = k == count - 1 ? n - tile : (int64_t)k * stride;
  own[0] = 0;
  for (int k = 1; k < count; k++) own[k] = start[k] + R;
  own[count] = n;
}

/* x (the up-sampled input on the target grid, original units) -> *out, same grid. */
static int apply_tiled(mbsr_model *m, const mbsr_volume *x, const mbsr_apply_opts *o, mbsr_volume **out) {
  *out = NULL;
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  if (!k->known)
    return mbsr_error(MBSR_EUNSUPPORTED, "apply: the model has no intensity contract (a checkpoint written before mbsr "
                                         "recorded one): re-train it with this version");
  int rc = mbsr_volume_check_finite(x, "apply input");
  if (rc) return rc;
  double lo, hi;
  if ((rc = mbsr_norm_fit(x, k->norm_plo, k->norm_phi, &lo, &hi))) return mbsr_error_prefix(rc, "apply: ");
  const int64_t n[3] = {x->nx, x->ny, x->nz};
  mbsr_apply_plan pl;
  if ((rc = mbsr_apply_plan_for(m, n, o, &pl))) return rc;
  const int R = pl.margin, batch = o->batch > 0 ? o->batch : 1;
  const int tw = pl.tile[0], th = pl.tile[1], td = pl.tile[2];
  const size_t tv = (size_t)tw * th * td;
  mbsr_model *net = NULL;
  int64_t *st[3] = {NULL, NULL, NULL}, *ow[3] = {NULL, NULL, NULL};
  float *inb = NULL, *outb = NULL;
  mbsr_volume *res = NULL;
  if ((rc = mbsr__model_create_inference(&m->cfg, batch, td, th, tw, &net))) goto done;
  if ((rc = mbsr__model_copy_params(net, m))) goto done;
  inb = mbsr_alloc(sizeof(float) * tv * (size_t)batch);
  outb = mbsr_alloc(sizeof(float) * tv * (size_t)batch);
  res = mbsr_volume_new_like(x);
  for (int a = 0; a < 3; a++) {
    st[a] = malloc(sizeof(int64_t) * (size_t)pl.count[a]);
    ow[a] = malloc(sizeof(int64_t) * (size_t)(pl.count[a] + 1));
  }
  if (!inb || !outb || !res || !st[0] || !st[1] || !st[2] || !ow[0] || !ow[1] || !ow[2]) {
    rc = mbsr_error(MBSR_ENOMEM, "apply: out of memory");
    goto done;
  }
  for (int a = 0; a < 3; a++) axis_layout(n[a], pl.tile[a], R, pl.count[a], st[a], ow[a]);
  const int64_t total = (int64_t)pl.count[0] * pl.count[1] * pl.count[2];
  mbsr_progress prog;
  mbsr_progress_init(&prog, "apply", total);
  prog.min_interval = 2.0;
  const double scale = hi - lo, inv = 1.0 / scale;
  for (int64_t t0 = 0; t0 < total; t0 += batch) {
    const int nb = (int)(total - t0 < batch ? total - t0 : batch);
    int64_t tix[64][3];
    for (int b = 0; b < nb; b++) {
      int64_t id = t0 + b;
      tix[b][0] = id % pl.count[0], tix[b][1] = (id / pl.count[0]) % pl.count[1], tix[b][2] = id / ((int64_t)pl.count[0] * pl.count[1]);
      const int64_t s0 = st[0][tix[b][0]], s1 = st[1][tix[b][1]], s2 = st[2][tix[b][2]];
      float *dst = inb + (size_t)b * tv;
      /* gather, mapped to the training scale */
#pragma omp parallel for schedule(static) collapse(2)
      for (int kk = 0; kk < td; kk++)
        for (int jj = 0; jj < th; jj++) {
          const float *srow = x->data + (size_t)n[0] * (size_t)(s1 + jj + n[1] * (s2 + kk)) + s0;
          float *drow = dst + ((size_t)kk * th + jj) * tw;
          for (int ii = 0; ii < tw; ii++) {
            double v = ((double)srow[ii] - lo) * inv;
            drow[ii] = (float)(v < 0 ? 0 : (v > 1 ? 1 : v));
          }
        }
    }
    if ((rc = mbsr_model_forward(net, inb, nb, outb))) goto done;
    for (int b = 0; b < nb; b++) {
      const int64_t s[3] = {st[0][tix[b][0]], st[1][tix[b][1]], st[2][tix[b][2]]};
      int64_t a0[3], a1[3];
      for (int a = 0; a < 3; a++) a0[a] = ow[a][tix[b][a]], a1[a] = ow[a][tix[b][a] + 1];
      const float *src = outb + (size_t)b * tv, *nin = inb + (size_t)b * tv;
      /* the owned voxels: sr = x + (hi - lo) * (net - clip(norm(x))) */
#pragma omp parallel for schedule(static) collapse(2)
      for (int64_t kk = a0[2]; kk < a1[2]; kk++)
        for (int64_t jj = a0[1]; jj < a1[1]; jj++) {
          const int64_t vo = n[0] * (jj + n[1] * kk), to = ((kk - s[2]) * th + (jj - s[1])) * tw - s[0];
          for (int64_t ii = a0[0]; ii < a1[0]; ii++)
            res->data[vo + ii] = (float)((double)x->data[vo + ii] + scale * ((double)src[to + ii] - (double)nin[to + ii]));
        }
    }
    if (o->progress) {
      char extra[160];
      snprintf(extra, sizeof extra, "(%dx%dx%d tiles of %dx%dx%d, overlap %d, %.0f MiB)", pl.count[0], pl.count[1], pl.count[2],
               tw, th, td, pl.overlap, pl.bytes / 1048576.0);
      mbsr_progress_update(&prog, t0 + nb, "tiles", extra);
    }
  }
  if (!mbsr_all_finite(res->data, (size_t)mbsr_volume_nvox(res))) {
    rc = mbsr_error(MBSR_ENONFINITE, "apply: the network produced NaN/Inf");
    goto done;
  }
  *out = res;
  res = NULL;
done:
  for (int a = 0; a < 3; a++) free(st[a]), free(ow[a]);
  mbsr_free(inb);
  mbsr_free(outb);
  mbsr_volume_free(res);
  mbsr_model_free(net);
  return rc;
}

int mbsr_apply_upsampled(mbsr_model *m, const mbsr_volume *up, const mbsr_apply_opts *o, mbsr_volume **out) {
  *out = NULL;
  if (o->batch > 64) return mbsr_error(MBSR_EINVAL, "apply: batch %d > 64 tiles", o->batch);
  return apply_tiled(m, up, o, out);
}

int mbsr_apply(mbsr_model *m, const mbsr_volume *lr, const mbsr_volume *grid, const mbsr_apply_opts *o,
               mbsr_volume **out) {
  *out = NULL;
  int rc = mbsr_volume_check_finite(lr, "apply input");
  if (rc) return rc;
  mbsr_volume *up = NULL;
  if ((rc = mbsr_upsample_like(lr, grid, mbsr_model_get_contract(m)->interp, &up))) return rc;
  rc = mbsr_apply_upsampled(m, up, o, out);
  mbsr_volume_free(up);
  return rc;
}

int mbsr_apply_factor(mbsr_model *m, const mbsr_volume *lr, const int f[3], const mbsr_apply_opts *o,
                      mbsr_volume **out) {
  *out = NULL;
  int rc = mbsr_volume_check_finite(lr, "apply input");
  if (rc) return rc;
  mbsr_volume *up = NULL;
  if ((rc = mbsr_upsample_factor(lr, f, mbsr_model_get_contract(m)->interp, &up))) return rc;
  rc = mbsr_apply_upsampled(m, up, o, out);
  mbsr_volume_free(up);
  return rc;
}
