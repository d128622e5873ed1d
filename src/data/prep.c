/* `mbsr prep`: volumes -> LR/HR patch pairs in ONE parallel HDF5 file.
 *
 * Ranks take contiguous blocks of subjects (subject index = position in the name-sorted input
 * list), so rank r's patches of every (pair, split) precede rank r+1's and the file offset of a
 * rank is an MPI_Exscan of the local counts: patch order is defined by subject, not by rank, and
 * every random choice is seeded from (seed, subject name, pair), so the file content is the same
 * for any number of ranks. Pattern after SWIFT's parallel_io.c: sizes gathered, the file and all
 * datasets created once (collectively, MPI-IO driver), collective writes in which a rank with
 * nothing to write joins with H5Sselect_none; status agreed before every collective.
 *
 * Per subject: read (NIfTI / NRRD / TIFF stack) -> area-weighted resampling onto the isotropic
 * base grid (intensities as acquired) -> block-average to every resolution the pairs need -> per
 * pair: Keys-upsample the LR volume onto its HR grid = the network input; the intensity contract
 * (image.h): lo, hi = the norm percentiles of that input (default 0.1, 99.9), input AND target (HR)
 * mapped by clip((x - lo) / (hi - lo), 0, 1) -- exactly what `mbsr apply` computes from a user's LR
 * volume -> brain mask of the HR volume (Otsu by default, on the HR volume normalised by its own
 * percentiles) -> patches at seeded random brain centres (rejection sampling, with replacement).
 * A subject that fails is recorded (name, rank, message) and skipped. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mbsr/data.h"
#include "mbsr/image.h"
#include "prep_internal.h"

static const char *const split_names[MBSR_SPLITS] = {"train", "val", "test"};

void mbsr_prep_config_default(mbsr_prep_config *c) {
  memset(c, 0, sizeof *c);
  c->patch = 21;
  c->patches_per_volume = 200;
  c->split[0] = 80, c->split[1] = 10, c->split[2] = 10;
  c->seed = 1;
  c->read_opts.tiff_vox[0] = 0.04, c->read_opts.tiff_vox[1] = 0.04, c->read_opts.tiff_vox[2] = 0.05;
  snprintf(c->read_opts.tiff_orient, sizeof c->read_opts.tiff_orient, "RIA");
  c->norm_plo = 0.1, c->norm_phi = 99.9;
  c->mask_thr = -1;
  c->chunk_patches = 4;
  c->progress = 1;
  c->slice_axis = -1;
}

static int parse_um_list(const char *s, int *v, int max, int *n) {
  *n = 0;
  while (*s) {
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || x < 1 || x > 100000 || *n >= max) return mbsr_error(MBSR_EINVAL, "bad resolution list '%s'", s);
    v[(*n)++] = (int)x;
    if (*end == 0) break;
    if (*end != ',') return mbsr_error(MBSR_EINVAL, "bad resolution list '%s'", s);
    s = end + 1;
  }
  return *n ? MBSR_OK : mbsr_error(MBSR_EINVAL, "empty resolution list");
}

int mbsr_prep_parse_res(mbsr_prep_config *c, const char *spec) {
  char *end;
  long base = strtol(spec, &end, 10);
  if (end == spec || *end != ':' || base < 1) return mbsr_error(MBSR_EINVAL, "--res '%s': expected BASE:R1,R2,... (um)", spec);
  int lv[MBSR_MAX_PAIRS], n;
  if (parse_um_list(end + 1, lv, MBSR_MAX_PAIRS - 1, &n)) return mbsr_error_prefix(MBSR_EINVAL, "--res: ");
  c->base_um = (int)base;
  c->npairs = 0;
  int prev = (int)base;
  for (int i = 0; i < n; i++) {
    if (lv[i] <= prev) return mbsr_error(MBSR_EINVAL, "--res '%s': resolutions must increase (coarser) from the base", spec);
    c->pairs[c->npairs++] = mbsr_res_pair_iso(lv[i], prev);
    prev = lv[i];
  }
  return MBSR_OK;
}

int mbsr_prep_parse_pairs(mbsr_prep_config *c, const char *spec) {
  c->npairs = 0;
  const char *s = spec;
  while (*s) {
    const char *comma = strchr(s, ',');
    const size_t len = comma ? (size_t)(comma - s) : strlen(s);
    char one[64];
    if (len >= sizeof one || c->npairs >= MBSR_MAX_PAIRS)
      return mbsr_error(MBSR_EINVAL, "--pairs '%s': expected LR-HR[,LR-HR...] in um (at most %d pairs)", spec, MBSR_MAX_PAIRS);
    memcpy(one, s, len);
    one[len] = 0;
    if (mbsr_res_pair_parse(one, &c->pairs[c->npairs])) return mbsr_error_prefix(MBSR_EINVAL, "--pairs '%s': ", spec);
    c->npairs++;
    if (!comma) break;
    s = comma + 1;
  }
  return c->npairs ? MBSR_OK : mbsr_error(MBSR_EINVAL, "--pairs: empty");
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

/* ---- the split rule (documented in docs/readme/70-distributed.md) ----
 * Subjects (name-sorted) are shuffled with the seed; the first n_test are test, the next n_val
 * validation, the rest training. n_test = K (test_subjects) or round(S * test%), n_val =
 * round(S * val%); a share asked for (> 0%) gets at least one subject while training keeps one
 * (validation served first); training always keeps at least one. */
static void assign_split(const mbsr_prep_config *c, int S, int *split, int counts[3], char *rule, size_t rn) {
  int *order = malloc((size_t)S * sizeof *order);
  for (int i = 0; i < S; i++) order[i] = i;
  mbsr_rng *r = mbsr_rng_new(mbsr_seed_mix(c->seed, 0x53504c4954ULL /* "SPLIT" */));
  for (int i = S - 1; i > 0; i--) {
    int j = (int)mbsr_rng_uint(r, (uint64_t)i + 1);
    int t = order[i];
    order[i] = order[j], order[j] = t;
  }
  mbsr_rng_free(r);
  int n_test = c->test_subjects > 0 ? c->test_subjects : (int)lround(S * c->split[2] / 100.0);
  int n_val = (int)lround(S * c->split[1] / 100.0);
  if (n_test > S - 1) n_test = S - 1;
  if (n_val > S - 1 - n_test) n_val = S - 1 - n_test;
  if (n_val < 0) n_val = 0;
  if (c->split[1] > 0 && n_val == 0 && S - n_test >= 2) n_val = 1;
  if ((c->split[2] > 0 || c->test_subjects > 0) && n_test == 0 && S - n_val >= 2) n_test = 1;
  for (int i = 0; i < S; i++) split[order[i]] = i < n_test ? 2 : i < n_test + n_val ? 1 : 0;
  counts[0] = S - n_test - n_val, counts[1] = n_val, counts[2] = n_test;
  snprintf(rule, rn,
           "subjects sorted by name, shuffled with seed %llu (mt19937 seeded with seed_mix(seed, SPLIT)); first %d test, "
           "next %d val, remaining %d train (split %d,%d,%d%s)",
           (unsigned long long)c->seed, n_test, n_val, counts[0], c->split[0], c->split[1], c->split[2],
           c->test_subjects > 0 ? ", test_subjects" : "");
  free(order);
}

/* ---- per-subject processing ---- */
typedef struct {
  float *in, *tgt;  /* n * p^3 */
  int32_t *ctr;     /* n * 3 */
  int64_t n;
  double cubic_sum; /* sum over patches of voxel-mean squared error of input vs target */
  double lo, hi;    /* the subject's intensity contract for this pair */
} patchbuf;

/* A resolution of the subject: um[3] per axis, made with profile prof (boxcar when um is the base).
 * Boxcar: the base block-averaged by um / base_um (for a pair's LR the same numbers as its HR level
 * block-averaged by lr / hr, a block average of block averages, and the bits of older mbsr). Another
 * profile degrades the pair's HR level by lr / hr (from_um = that HR), so that axes where LR and HR
 * voxels agree stay exactly the HR's: only the coarser axes carry the slice profile. */
typedef struct {
  int um[3];
  mbsr_profile prof;
  int from_um; /* the HR level a non-boxcar level was degraded from; 0 for boxcar */
  mbsr_volume *v, *mask;
} level;

static void levels_free(level *L, int n) {
  for (int i = 0; i < n; i++) mbsr_volume_free(L[i].v), mbsr_volume_free(L[i].mask);
}

/* Brain mask of a level: threshold (Otsu when < 0) on the level normalised by its own percentiles. */
static int level_mask(const mbsr_prep_config *c, const mbsr_volume *v, mbsr_volume **mask) {
  mbsr_volume *t = mbsr_volume_clone(v);
  if (!t) return mbsr_error(MBSR_ENOMEM, "brain mask: out of memory");
  int rc = mbsr_normalize(t, c->norm_plo, c->norm_phi, NULL, NULL);
  if (!rc) rc = mbsr_mask_threshold(t, c->mask_thr, mask);
  mbsr_volume_free(t);
  return rc;
}

/* Warn when min/max normalisation would squeeze the tissue into a sliver of [0,1]. */
static void warn_saturated(const mbsr_prep_config *c, const mbsr_volume *v, const char *path) {
  float mn, mx;
  mbsr_volume_minmax(v, &mn, &mx);
  double p = mbsr_percentile(v, NULL, 99.9);
  if (!(mx > mn) || !isfinite(p)) return;
  double frac = (p - mn) / ((double)mx - mn);
  if (frac < 0.1)
    mbsr_warn("prep: %s looks saturated: its 99.9th percentile (%g) is %.3f of its range (max %g)%s", path, p, frac, (double)mx,
              c->norm_phi >= 100 ? "; min/max normalisation (norm percentiles 0,100) squeezes the tissue into that fraction of [0,1]: "
                                   "the default 0.1,99.9 does not"
                                 : "");
}

const char *mbsr_eval_level_name(const int um[3], mbsr_profile p, char *buf, size_t n) {
  if (um[0] == um[1] && um[1] == um[2]) snprintf(buf, n, "%dum%s", um[0], p == MBSR_PROFILE_BOXCAR ? "" : "_");
  else snprintf(buf, n, "%dx%dx%dum%s", um[0], um[1], um[2], p == MBSR_PROFILE_BOXCAR ? "" : "_");
  if (p != MBSR_PROFILE_BOXCAR) snprintf(buf + strlen(buf), n - strlen(buf), "%s", mbsr_profile_name(p));
  return buf;
}

/* The level um[3] with profile prof: from the base (src_um = base_um, boxcar) or, for another profile, from
 * the HR level src (src_um its voxel). */
static int get_level(level *L, int *nl, const mbsr_volume *src, int src_um, const int um[3], mbsr_profile prof, const char *name,
                     mbsr_volume **out) {
  int f[3], same = 1;
  char tag[64];
  for (int a = 0; a < 3; a++) {
    if (um[a] % src_um) return mbsr_error(MBSR_EINVAL, "%d um is not an integer multiple of %d um", um[a], src_um);
    f[a] = um[a] / src_um;
    same &= f[a] == 1;
  }
  if (same && prof != MBSR_PROFILE_BOXCAR) return *out = (mbsr_volume *)src, MBSR_OK; /* the HR level itself */
  const int from = prof == MBSR_PROFILE_BOXCAR ? 0 : src_um;
  for (int i = 0; i < *nl; i++)
    if (!memcmp(L[i].um, um, sizeof L[i].um) && L[i].prof == prof && L[i].from_um == from) return *out = L[i].v, MBSR_OK;
  mbsr_volume *v = NULL;
  int rc = same ? ((v = mbsr_volume_clone(src)) ? 0 : mbsr_error(MBSR_ENOMEM, "%s: out of memory", name))
                : mbsr_downsample(src, f, prof, &v);
  if (rc) return mbsr_error_prefix(rc, "%s: degrading to %s: ", name, mbsr_eval_level_name(um, prof, tag, sizeof tag));
  L[*nl] = (level){{um[0], um[1], um[2]}, prof, from, v, NULL};
  (*nl)++;
  *out = v;
  return MBSR_OK;
}

typedef struct {
  int fatal; /* 1: an output could not be written (the run fails), 0: the input failed (recorded) */
} subj_status;

/* The brain mask of level hr (made once per level). */
static int hr_mask(const mbsr_prep_config *c, level *L, int nl, const mbsr_volume *hr, const char *path, mbsr_volume **mask) {
  for (int i = 0; i < nl; i++)
    if (L[i].v == hr) {
      int rc;
      if (!L[i].mask && (rc = level_mask(c, hr, &L[i].mask))) return mbsr_error_prefix(rc, "%s: brain mask at %d um: ", path, L[i].um[0]);
      *mask = L[i].mask;
    }
  return 0;
}

/* Room for n patches of c->patch^3 in b (cubic_sum zeroed). */
static int patchbuf_alloc(const mbsr_prep_config *c, const char *path, int64_t n, patchbuf *b, subj_status *st) {
  const int64_t p3 = (int64_t)c->patch * c->patch * c->patch;
  b->n = n;
  b->in = mbsr_alloc((size_t)(b->n * p3) * sizeof(float));
  b->tgt = mbsr_alloc((size_t)(b->n * p3) * sizeof(float));
  b->ctr = mbsr_alloc((size_t)(b->n * 3) * sizeof(int32_t));
  b->cubic_sum = 0;
  if (!b->in || !b->tgt || !b->ctr) {
    st->fatal = 1;
    return mbsr_error(MBSR_ENOMEM, "%s: out of memory for %lld patches", path, (long long)b->n);
  }
  return 0;
}

/* Patches k0 .. k0+cnt-1 of b at seeded random brain centres (rejection sampling, with replacement)
 * from the network input `up` and the target `hn` (both on the contract scale); `stream` > 0 gives
 * another seeded sequence for the same subject and pair (the self-supervised second axis). */
static int sample_patches(const mbsr_prep_config *c, int q, const char *path, const char *name, const mbsr_volume *up,
                          const mbsr_volume *hn, const mbsr_volume *mask, patchbuf *b, int64_t k0, int64_t cnt, uint64_t stream) {
  const int p = c->patch, h = p / 2;
  const int64_t p3 = (int64_t)p * p * p, n[3] = {hn->nx, hn->ny, hn->nz};
  if (n[0] < p || n[1] < p || n[2] < p)
    return mbsr_error(MBSR_EINVAL, "%s: %lldx%lldx%lld voxels at %d um, smaller than a %d^3 patch", path, (long long)n[0],
                      (long long)n[1], (long long)n[2], c->pairs[q].hr_um, p);
  /* Seed from (seed, subject name, pair): independent of rank, rank count and pair order. */
  const mbsr_res_pair *pr = &c->pairs[q];
  char pn[MBSR_PAIR_NAME_MAX];
  /* (isotropic and self-supervised pairs: the key of the scalar pair of older mbsr, the same patches) */
  const uint64_t key = mbsr_res_pair_isotropic(pr) || c->self_supervised
                           ? (uint64_t)mbsr_res_pair_lr_max(pr) * 1000003ULL + (uint64_t)pr->hr_um
                           : fnv1a(mbsr_res_pair_name(pr, pn, sizeof pn));
  uint64_t s = mbsr_seed_mix(mbsr_seed_mix(c->seed, fnv1a(name)), key);
  if (stream) s = mbsr_seed_mix(s, stream);
  mbsr_rng *r = mbsr_rng_new(s);
  const int64_t max_tries = 100000 + 1000 * cnt;
  int64_t tries = 0;
  for (int64_t k = k0; k < k0 + cnt; k++) {
    int64_t x0, y0, z0;
    for (;;) {
      x0 = (int64_t)mbsr_rng_uint(r, (uint64_t)(n[0] - p + 1));
      y0 = (int64_t)mbsr_rng_uint(r, (uint64_t)(n[1] - p + 1));
      z0 = (int64_t)mbsr_rng_uint(r, (uint64_t)(n[2] - p + 1));
      if (mask->data[(x0 + h) + n[0] * ((y0 + h) + n[1] * (z0 + h))] > 0.5f) break;
      if (++tries > max_tries) {
        mbsr_rng_free(r);
        return mbsr_error(MBSR_EINVAL, "%s: brain mask at %d um too small to place %d^3 patches", path, c->pairs[q].hr_um, p);
      }
    }
    b->ctr[3 * k] = (int32_t)(x0 + h), b->ctr[3 * k + 1] = (int32_t)(y0 + h), b->ctr[3 * k + 2] = (int32_t)(z0 + h);
    float *pi = b->in + k * p3, *pt = b->tgt + k * p3;
    double se = 0;
    for (int zz = 0; zz < p; zz++)
      for (int yy = 0; yy < p; yy++) {
        int64_t o = x0 + n[0] * ((y0 + yy) + n[1] * (z0 + zz));
        memcpy(pi + p * (yy + p * zz), up->data + o, (size_t)p * sizeof(float));
        memcpy(pt + p * (yy + p * zz), hn->data + o, (size_t)p * sizeof(float));
      }
    for (int64_t v = 0; v < p3; v++) {
      double d = (double)pi[v] - (double)pt[v];
      se += d * d;
    }
    b->cubic_sum += se / (double)p3;
  }
  mbsr_rng_free(r);
  return 0;
}

/* Pair q of one subject: the network input (Keys upsampling of LR onto HR), the intensity contract
 * (lo, hi of that input; the same map for input and target), the patches. */
static int subject_pair(const mbsr_prep_config *c, int q, int base_um, const mbsr_volume *base, level *L, int *nl, const char *path,
                        const char *name, patchbuf *b, subj_status *st) {
  mbsr_volume *hr, *lr, *up = NULL, *mask = NULL, *hn = NULL;
  const mbsr_res_pair *pr = &c->pairs[q];
  const int hu[3] = {pr->hr_um, pr->hr_um, pr->hr_um};
  char pn[MBSR_PAIR_NAME_MAX];
  mbsr_res_pair_name(pr, pn, sizeof pn);
  int rc = get_level(L, nl, base, base_um, hu, MBSR_PROFILE_BOXCAR, path, &hr);
  if (!rc && c->profile == MBSR_PROFILE_BOXCAR) rc = get_level(L, nl, base, base_um, pr->lr_um, c->profile, path, &lr);
  else if (!rc) rc = get_level(L, nl, hr, pr->hr_um, pr->lr_um, c->profile, path, &lr);
  if (!rc) rc = hr_mask(c, L, *nl, hr, path, &mask);
  if (rc) return rc;
  if ((rc = mbsr_upsample_like(lr, hr, MBSR_INTERP_KEYS, &up))) return mbsr_error_prefix(rc, "%s: pair %s: Keys upsampling: ", path, pn);
  double lo, hi;
  if ((rc = mbsr_norm_fit(up, c->norm_plo, c->norm_phi, &lo, &hi))) rc = mbsr_error_prefix(rc, "%s: pair %s input: ", path, pn);
  else if (!(hn = mbsr_volume_clone(hr))) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  if (!rc) {
    mbsr_norm_map(up->data, up->data, mbsr_volume_nvox(up), lo, hi);
    mbsr_norm_map(hn->data, hn->data, mbsr_volume_nvox(hn), lo, hi);
    b->lo = lo, b->hi = hi;
    rc = patchbuf_alloc(c, path, c->patches_per_volume, b, st);
    if (!rc) rc = sample_patches(c, q, path, name, up, hn, mask, b, 0, b->n, 0);
  }
  mbsr_volume_free(up), mbsr_volume_free(hn);
  return rc;
}

/* Test subjects (every subject with eval_all): the volumes of every level used, in the input's
 * intensity units (+ HR masks), for evaluation through the same path a user runs. */
static int write_eval_volumes(const mbsr_prep_config *c, const char *name, const level *L, int nl) {
  char fn[4096];
  int rc = mbsr_mkdir_p(c->eval_dir);
  for (int i = 0; i < nl && !rc; i++) {
    char tag[64];
    mbsr_eval_level_name(L[i].um, L[i].prof, tag, sizeof tag);
    rc = mbsr_pathf(fn, sizeof fn, "%s/%s_%s.nii.gz", c->eval_dir, name, tag);
    if (!rc) rc = mbsr_volume_write(fn, L[i].v);
    if (!rc && L[i].mask) rc = mbsr_pathf(fn, sizeof fn, "%s/%s_%s_mask.nii.gz", c->eval_dir, name, tag);
    if (!rc && L[i].mask) rc = mbsr_volume_write(fn, L[i].mask);
  }
  return rc;
}

/* The self-supervised geometry every input must share (the first input's). */
typedef struct {
  int axis, factor;
  double vox[3];
} ss_geom;

/* One in-plane orientation o (0: the first in-plane axis degraded, 1: the second) of a self-supervised
 * subject: input and target on the contract scale (lo, hi: of orientation 0's input), mask, patches. */
static int selfsup_orientation(const mbsr_prep_config *c, const ss_geom *g, const mbsr_volume *raw, int o, const char *path,
                               const char *name, patchbuf *b) {
  const int lo_axis = g->axis == 0 ? 1 : 0, deg = o == 0 ? lo_axis : 3 - g->axis - lo_axis;
  mbsr_volume *in = NULL, *tg = NULL, *mask = NULL;
  int rc = mbsr_selfsup_pair(raw, g->axis, deg, c->profile, &in, &tg);
  if (!rc && o == 0 && (rc = mbsr_norm_fit(in, c->norm_plo, c->norm_phi, &b->lo, &b->hi))) mbsr_error_prefix(rc, "input: ");
  if (!rc) rc = level_mask(c, tg, &mask);
  if (!rc) {
    mbsr_norm_map(in->data, in->data, mbsr_volume_nvox(in), b->lo, b->hi);
    mbsr_norm_map(tg->data, tg->data, mbsr_volume_nvox(tg), b->lo, b->hi);
    const int64_t n0 = (b->n + 1) / 2;
    rc = sample_patches(c, 0, path, name, in, tg, mask, b, o ? n0 : 0, o ? b->n - n0 : n0, (uint64_t)o);
  }
  mbsr_volume_free(in), mbsr_volume_free(tg), mbsr_volume_free(mask);
  return rc ? mbsr_error_prefix(rc, "%s: ", path) : 0;
}

/* A self-supervised subject (c->self_supervised): its own voxel size checked against g, half of its
 * patches with each in-plane axis degraded to the slice thickness (mbsr_selfsup_pair). */
static int selfsup_subject(const mbsr_prep_config *c, const ss_geom *g, const char *path, const char *name, patchbuf *b,
                           subj_status *st) {
  mbsr_volume *raw = NULL;
  int rc = mbsr_volume_read(path, &c->read_opts, &raw);
  if (!rc) rc = mbsr_volume_check_finite(raw, path);
  for (int a = 0; a < 3 && !rc; a++)
    if (fabs(raw->vox[a] - g->vox[a]) > 0.01 * g->vox[a])
      rc = mbsr_error(MBSR_EMISMATCH, "%s: voxel %g x %g x %g mm, but the self-supervised pair is %g x %g x %g mm (the first input's)", path,
                      raw->vox[0], raw->vox[1], raw->vox[2], g->vox[0], g->vox[1], g->vox[2]);
  if (!rc) rc = patchbuf_alloc(c, path, c->patches_per_volume, b, st);
  for (int o = 0; o < 2 && !rc; o++) rc = selfsup_orientation(c, g, raw, o, path, name, b);
  mbsr_volume_free(raw);
  if (rc) {
    mbsr_free(b->in), mbsr_free(b->tgt), mbsr_free(b->ctr);
    memset(b, 0, sizeof *b);
  }
  return rc;
}

static int process_subject(const mbsr_prep_config *c, int base_um, const char *path, const char *name, int split,
                           patchbuf *pb, subj_status *st) {
  st->fatal = 0;
  mbsr_volume *raw = NULL, *base = NULL;
  level L[2 * MBSR_MAX_PAIRS + 1];
  int nl = 0, rc = mbsr_volume_read(path, &c->read_opts, &raw);
  if (!rc) rc = mbsr_volume_check_finite(raw, path);
  if (!rc) rc = mbsr__prep_to_base(raw, base_um / 1000.0, path, &base);
  mbsr_volume_free(raw);
  if (!rc) warn_saturated(c, base, path);
  for (int q = 0; q < c->npairs && !rc; q++) rc = subject_pair(c, q, base_um, base, L, &nl, path, name, &pb[q], st);
  if (!rc && (split == 2 || c->eval_all) && c->eval_dir && (rc = write_eval_volumes(c, name, L, nl))) st->fatal = 1;
  if (rc)
    for (int q = 0; q < c->npairs; q++) {
      mbsr_free(pb[q].in), mbsr_free(pb[q].tgt), mbsr_free(pb[q].ctr);
      memset(&pb[q], 0, sizeof pb[q]);
    }
  levels_free(L, nl);
  mbsr_volume_free(base);
  return rc;
}

/* ---- parallel HDF5 output: one mechanism for collective failure ----
 * Every collective write is followed by an agreement on its outcome (mbsr_mpi_agree), and so is
 * every group of metadata operations, so that all ranks know of a failure on any rank before the
 * next collective call and leave the same way: every handle closed, the file flushed or, after a
 * failure, truncated (HDF5 1.10 cannot close a file whose final writes fail: the ID would stay and
 * HDF5's shutdown in MPI_Finalize crash on it; truncating the abandoned temporary frees the space
 * its closing metadata writes need), closed collectively, and the temporary removed by rank 0.
 * MBSR_FAULT_WRITE=h5:N[@RANK] (core.h) fails the N-th collective write or flush on a rank.
 *
 * Integrity: no HDF5 filter (Fletcher32) here. Parallel HDF5 1.10 allocates and writes filtered
 * chunks inside H5Dcreate and H5Dwrite with collectives of its own; a write failing on one rank
 * there leaves the ranks in different internal collectives (a hang no agreement of ours can reach:
 * seen on a full tmpfs). Instead every patch row carries a CRC-32 (dataset "crc32", computed here,
 * verified by the batch reader on every patch it returns), the small datasets a "crc32" attribute,
 * and the 1.8+ object format checksums the object headers (attributes). */

/* Why a write to `file` failed, for the message: errno when it plausibly explains it (MPI-IO
 * does not always leave it set), else a full filesystem under the file, else "". */
static const char *write_failure_text(int e, const char *file) {
  if (e == ENOSPC || e == EDQUOT || e == EFBIG || e == EIO || e == EROFS) return strerror(e);
  char dir[4096];
  const char *sl = strrchr(file, '/');
  snprintf(dir, sizeof dir, "%.*s", sl ? (int)(sl - file) + 1 : 1, sl ? file : ".");
  struct statvfs v;
  if (statvfs(dir, &v) == 0 && v.f_bavail == 0) return "the filesystem is full";
  return "";
}

/* A collective H5Dwrite and the agreement on its outcome (what: "/pairs/200-100/train/input rows ..."). */
static int coll_write(hid_t ds, hid_t mtype, hid_t ms, hid_t fs, hid_t dxpl, const void *buf, MPI_Comm comm, const char *file,
                      const char *what) {
  errno = 0;
  const herr_t w = H5Dwrite(ds, mtype, ms, fs, dxpl, buf);
  const int e = errno;
  int rc = MBSR_OK;
  if (mbsr_fault_write("h5", file)) rc = mbsr_error(MBSR_EIO, "%s: %s: write failed: %s", file, what, strerror(errno));
  else if (w < 0) {
    const char *et = write_failure_text(e, file);
    rc = mbsr_error(MBSR_EHDF5, "%s: %s: collective write failed%s%s", file, what, et[0] ? ": " : "", et);
  }
  return mbsr_mpi_agree(comm, rc);
}

/* Collective write of rows [off, off+n) of a dataset whose rows have row_elems elements, in
 * rounds of at most ~256 MB per rank (MPI-IO counts are ints); every rank makes the same number
 * of H5Dwrite calls, a rank with nothing (left) to write joins with H5Sselect_none; each round's
 * outcome is agreed before the next. */
static int write_rows(hid_t ds, const char *dname, hid_t mtype, size_t esize, int rank_dims, hsize_t row_elems, hsize_t off,
                      hsize_t n, const void *buf, hid_t dxpl, MPI_Comm comm, const char *file) {
  const hsize_t max_rows = (hsize_t)((256u << 20) / (row_elems * esize)) + 1;
  long long my_rounds = (long long)((n + max_rows - 1) / max_rows), rounds = 0;
  if (MPI_Allreduce(&my_rounds, &rounds, 1, MPI_LONG_LONG, MPI_MAX, comm) != MPI_SUCCESS)
    return mbsr_error(MBSR_EMPI, "MPI_Allreduce failed");
  hid_t fs = H5Dget_space(ds);
  int rc = mbsr_mpi_agree(comm, fs < 0 ? mbsr_error(MBSR_EHDF5, "%s: %s: H5Dget_space failed", file, dname) : 0);
  for (long long r = 0; r < rounds && !rc; r++) {
    hsize_t r0 = (hsize_t)r * max_rows, rn = r0 < n ? (n - r0 < max_rows ? n - r0 : max_rows) : 0;
    hsize_t start[4] = {off + r0, 0, 0, 0}, count[4] = {rn, 0, 0, 0}, dims[4];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int a = 1; a < rank_dims; a++) count[a] = dims[a];
    hsize_t m = rn ? rn * row_elems : 1;
    hid_t ms = H5Screate_simple(1, &m, NULL);
    int sel = ms < 0;
    if (rn) sel |= H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0;
    else sel |= H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0;
    /* a selection that failed on one rank: agreed before anybody enters the collective write */
    rc = mbsr_mpi_agree(comm, sel ? mbsr_error(MBSR_EHDF5, "%s: %s: selecting rows failed", file, dname) : 0);
    if (!rc) {
      char what[256];
      if (rn)
        snprintf(what, sizeof what, "%s rows %llu..%llu", dname, (unsigned long long)(off + r0), (unsigned long long)(off + r0 + rn - 1));
      else
        snprintf(what, sizeof what, "%s", dname);
      const char *p = (const char *)buf + (size_t)(r0 * row_elems) * esize;
      rc = coll_write(ds, mtype, ms, fs, dxpl, rn ? (const void *)p : buf, comm, file, what);
    }
    if (ms >= 0) H5Sclose(ms);
  }
  if (fs >= 0) H5Sclose(fs);
  return rc;
}

/* Chunked dataset, allocated when created (parallel HDF5: no data written then), never filled. */
static hid_t create_dset(hid_t loc, const char *name, hid_t type, int nd, const hsize_t *dims, const hsize_t *chunk, int extensible) {
  hsize_t maxd[4] = {extensible ? H5S_UNLIMITED : dims[0], dims[1], dims[2], dims[3]};
  hid_t sp = H5Screate_simple(nd, dims, maxd);
  hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t d = -1;
  if (sp >= 0 && pl >= 0 && H5Pset_chunk(pl, nd, chunk) >= 0 && H5Pset_fill_time(pl, H5D_FILL_TIME_NEVER) >= 0)
    d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
  if (pl >= 0) H5Pclose(pl);
  if (sp >= 0) H5Sclose(sp);
  return d;
}

/* A small dataset written by rank 0 (the others select none), collectively, with the CRC-32 of its
 * n * cols values (memory type mtype, the same bytes as stored) as attribute "crc32". buf holds the
 * same values on every rank (attributes are written collectively with equal values). */
static int write_small(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hsize_t n, hsize_t cols, const void *buf, int rank,
                       hid_t dxpl, MPI_Comm comm, const char *file, const char *path) {
  hsize_t dims[4] = {n, cols, 0, 0}, ch[4] = {n > 0 ? n : 1, cols, 0, 0};
  const int nd = cols > 1 ? 2 : 1;
  hid_t ds = create_dset(loc, name, ftype, nd, dims, ch, n == 0);
  int rc = ds < 0 ? mbsr_error(MBSR_EHDF5, "%s: creating %s failed", file, path) : 0;
  if (!rc) rc = mbsr__h5_attr_int(ds, "crc32", mbsr__crc32(buf, (size_t)(n * cols) * H5Tget_size(mtype)));
  rc = mbsr_mpi_agree(comm, rc);
  if (!rc && n > 0) {
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(nd, dims, NULL);
    int sel = fs < 0 || ms < 0 || (rank != 0 && (H5Sselect_none(ms) < 0 || H5Sselect_none(fs) < 0));
    rc = mbsr_mpi_agree(comm, sel ? mbsr_error(MBSR_EHDF5, "%s: %s: selection failed", file, path) : 0);
    if (!rc) rc = coll_write(ds, mtype, ms, fs, dxpl, buf, comm, file, path);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
  }
  if (ds >= 0) H5Dclose(ds);
  return rc;
}

/* Fixed-length string list dataset (rank 0's data). */
static int write_strings(hid_t loc, const char *name, char **s, int n, int rank, hid_t dxpl, MPI_Comm comm, const char *file) {
  size_t len = 1;
  for (int i = 0; i < n; i++)
    if (strlen(s[i]) + 1 > len) len = strlen(s[i]) + 1;
  hid_t t = H5Tcopy(H5T_C_S1);
  char *buf = calloc((size_t)(n > 0 ? n : 1), len);
  int bad = t < 0 || H5Tset_size(t, len) < 0 || !buf;
  int rc = mbsr_mpi_agree(comm, bad ? mbsr_error(MBSR_ENOMEM, "%s: /%s: out of memory", file, name) : 0);
  if (!rc) {
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * len, s[i], strlen(s[i]));
    char path[128];
    snprintf(path, sizeof path, "/%s", name);
    rc = write_small(loc, name, t, t, (hsize_t)n, 1, buf, rank, dxpl, comm, file, path);
  }
  free(buf);
  if (t >= 0) H5Tclose(t);
  return rc;
}

/* The end of the file, on every rank (collective): flush (its outcome agreed), truncate the
 * temporary when anything failed (rank 0), close, agree. *file is -1 afterwards. */
static int finish_file(hid_t *file, const char *tmp, int rc, int rank, MPI_Comm comm, const char *out) {
  if (!rc) {
    errno = 0;
    int bad = H5Fflush(*file, H5F_SCOPE_GLOBAL) < 0; /* collective: every rank calls it, the fault hook after */
    if (mbsr_fault_write("h5", out)) bad = 1;
    const char *et = bad ? write_failure_text(errno, out) : "";
    rc = mbsr_mpi_agree(comm, bad ? mbsr_error(MBSR_EIO, "%s: flushing the file failed%s%s", out, et[0] ? ": " : "", et) : 0);
  }
  /* Handles still open on the file would make H5Fclose fail (MPI-IO files close "semi"): none may be. */
  ssize_t nopen = H5Fget_obj_count(*file, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
  if (nopen != 0 && !rc) rc = mbsr_error(MBSR_EHDF5, "%s: %zd HDF5 objects still open before closing the file", out, nopen);
  if (rc && rank == 0 && tmp[0] && truncate(tmp, 0) != 0) { /* best effort: the close below may still fail */
  }
  MPI_Barrier(comm); /* the truncation precedes every rank's closing writes */
  int cl = H5Fclose(*file) < 0;
  *file = -1;
  if (cl && !rc) rc = mbsr_error(MBSR_EHDF5, "%s: closing the file failed", out);
  return mbsr_mpi_agree(comm, rc);
}

typedef struct {
  int subj, rc, fatal, npairs_ok;
  double secs;
  char msg[480];
} round_report;

/* ---- the run: a prep state and its verbs ---- */
typedef struct {
  const mbsr_prep_config *c;
  MPI_Comm comm;
  int rank, P;
  mbsr_prep_summary *sum;
  double t0;
  int Q, S, s0, nloc, base_um, p;
  hsize_t p3;
  mbsr_input_list in;
  int *split;             /* [S] 0 train, 1 val, 2 test */
  char rule[512];         /* the split rule, as recorded in the file */
  patchbuf *pb;           /* [local subject][pair] */
  int64_t *cnt;           /* [S][Q] patches per subject and pair (global after the reduction) */
  double *cub;            /* [S][Q] cubic MSE sums */
  double *nlh;            /* [S][Q][2] the contract's lo, hi */
  char (*lmsg)[480];      /* failure message of each local subject */
  char **failed, *fail_all;
  int nfailed;
  int64_t loc[MBSR_MAX_PAIRS * MBSR_SPLITS], off[MBSR_MAX_PAIRS * MBSR_SPLITS], tot[MBSR_MAX_PAIRS * MBSR_SPLITS];
  hid_t fapl, file, dxpl, gp;
  char tmp[4096];
  mbsr_prep_config cc;    /* the caller's configuration (c points here); self-supervised: its one pair filled in */
  ss_geom ss;             /* self-supervised: the first input's geometry */
} prep_job;

/* The configuration (identical on all ranks); messages name the parameters. The base grid: base_um,
 * or the finest HR of the pairs. */
static int prep_check(prep_job *job) {
  const mbsr_prep_config *c = job->c;
  if (!c->out || !c->inputs) return mbsr_error(MBSR_EINVAL, "prep: out and inputs are required");
  if (job->Q < 1) return mbsr_error(MBSR_EINVAL, "prep: no resolution pairs (res or pairs)");
  if (job->p < 3 || job->p > 255) return mbsr_error(MBSR_EINVAL, "prep: patch edge %d out of range 3..255", job->p);
  if (c->patches_per_volume < 1) return mbsr_error(MBSR_EINVAL, "prep: patches_per_volume must be >= 1");
  if (c->split[0] + c->split[1] + c->split[2] != 100 || c->split[0] <= 0 || c->split[1] < 0 || c->split[2] < 0)
    return mbsr_error(MBSR_EINVAL, "prep: split %d,%d,%d must be three shares >= 0 adding up to 100 (train > 0)", c->split[0],
                      c->split[1], c->split[2]);
  if (c->self_supervised) {
    if (c->eval_dir) return mbsr_error(MBSR_EINVAL, "prep: eval_dir is not written with self_supervised (evaluate on the inputs themselves)");
    if (c->slice_axis < -1 || c->slice_axis > 2) return mbsr_error(MBSR_EINVAL, "prep: slice_axis %d not in -1..2", c->slice_axis);
    return 0;
  }
  job->base_um = c->base_um;
  if (job->base_um <= 0) {
    job->base_um = c->pairs[0].hr_um;
    for (int q = 1; q < job->Q; q++)
      if (c->pairs[q].hr_um < job->base_um) job->base_um = c->pairs[q].hr_um;
  }
  for (int q = 0; q < job->Q; q++) {
    char pn[MBSR_PAIR_NAME_MAX];
    mbsr_res_pair_name(&c->pairs[q], pn, sizeof pn);
    int rc = mbsr_res_pair_check(&c->pairs[q]);
    if (rc) return rc;
    if (c->pairs[q].hr_um % job->base_um) return mbsr_error(MBSR_EINVAL, "pair %s: HR must be a multiple of the base (%d um)", pn, job->base_um);
    for (int r = 0; r < q; r++) {
      if (mbsr_res_pair_equal(&c->pairs[q], &c->pairs[r])) return mbsr_error(MBSR_EINVAL, "pair %s given twice", pn);
      if (c->profile != MBSR_PROFILE_BOXCAR && !memcmp(c->pairs[q].lr_um, c->pairs[r].lr_um, sizeof c->pairs[q].lr_um))
        return mbsr_error(MBSR_EINVAL, "pair %s: its LR voxel is another pair's, degraded with the %s profile from another HR grid "
                                       "(their eval volumes would share a name): one prep per pair",
                          pn, mbsr_profile_name(c->profile));
    }
  }
  return 0;
}

/* Self-supervised: the slice axis, factor and voxel of the first input (every rank reads it), and the
 * one pair: lr = the slice thickness, hr = the in-plane voxel (um). */
static int selfsup_geometry(prep_job *job) {
  mbsr_prep_config *c = &job->cc;
  if (job->S < 1) return mbsr_error(MBSR_EINVAL, "prep: no inputs in %s", c->inputs);
  mbsr_volume *v = NULL;
  int rc = mbsr_volume_read(job->in.paths[0], &c->read_opts, &v);
  if (rc) return rc;
  int ax = c->slice_axis;
  if (ax < 0) ax = v->vox[0] > v->vox[1] ? (v->vox[0] > v->vox[2] ? 0 : 2) : (v->vox[1] > v->vox[2] ? 1 : 2);
  job->ss.axis = ax, job->ss.factor = 0;
  memcpy(job->ss.vox, v->vox, sizeof job->ss.vox);
  rc = mbsr_selfsup_factor(v, ax, &job->ss.factor);
  mbsr_volume_free(v);
  if (rc) return mbsr_error_prefix(rc, "%s: ", job->in.paths[0]);
  c->npairs = 1;
  for (int a = 0; a < 3; a++) c->pairs[0].lr_um[a] = (int)lround(job->ss.vox[a] * 1000);
  c->pairs[0].hr_um = (int)lround(job->ss.vox[(ax + 1) % 3] * 1000);
  return 0;
}

/* The input list (every rank reads it; they must agree), the split, the per-subject tables. */
static int prep_plan(prep_job *job) {
  const mbsr_prep_config *c = job->c;
  int rc = prep_check(job);
  if (!rc) rc = mbsr_input_list_load(c->inputs, &job->in);
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  const int S = job->S = job->in.n, Q = job->Q;
  int mm[2] = {-S, S};
  MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_INT, MPI_MAX, job->comm);
  if (-mm[0] != mm[1])
    return mbsr_error(MBSR_EMISMATCH, "the ranks see different numbers of inputs in %s (%d..%d): is it on a shared filesystem?",
                      c->inputs, -mm[0], mm[1]);
  job->split = calloc((size_t)S + 1, sizeof *job->split);
  job->cnt = calloc((size_t)S * Q + 1, sizeof *job->cnt);
  job->cub = calloc((size_t)S * Q + 1, sizeof *job->cub);
  job->nlh = calloc((size_t)S * Q * 2 + 1, sizeof *job->nlh);
  job->failed = calloc((size_t)S + 1, sizeof *job->failed);
  job->s0 = (int)((int64_t)S * job->rank / job->P);
  job->nloc = (int)((int64_t)S * (job->rank + 1) / job->P) - job->s0;
  job->pb = calloc((size_t)(job->nloc > 0 ? job->nloc : 1) * Q, sizeof *job->pb);
  job->lmsg = calloc((size_t)(job->nloc > 0 ? job->nloc : 1), sizeof *job->lmsg);
  if (!job->split || !job->cnt || !job->cub || !job->nlh || !job->failed || !job->pb || !job->lmsg)
    rc = mbsr_error(MBSR_ENOMEM, "prep: out of memory for %d subjects", S);
  if (!rc) assign_split(c, S, job->split, job->sum->n_split, job->rule, sizeof job->rule);
  if (!rc && c->self_supervised) rc = selfsup_geometry(job);
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  job->sum->n_subjects = S;
  mbsr_info("prep: %d subjects (%d train, %d val, %d test) on %d rank%s, %d pair%s, %d patches of %d^3 per subject and pair, base %d um",
            S, job->sum->n_split[0], job->sum->n_split[1], job->sum->n_split[2], job->P, job->P > 1 ? "s" : "", Q, Q > 1 ? "s" : "",
            c->patches_per_volume, job->p, job->base_um);
  return 0;
}

/* Local subject li (round r): processed, its counts recorded, its report filled. */
static void prep_one(prep_job *job, int li, round_report *me) {
  const int s = job->s0 + li, Q = job->Q;
  double ts = mbsr_now();
  subj_status st;
  mbsr_error_clear();
  me->subj = s;
  me->rc = job->c->self_supervised
               ? selfsup_subject(job->c, &job->ss, job->in.paths[s], job->in.names[s], &job->pb[(size_t)li * Q], &st)
               : process_subject(job->c, job->base_um, job->in.paths[s], job->in.names[s], job->split[s], &job->pb[(size_t)li * Q], &st);
  me->fatal = me->rc ? st.fatal : 0;
  me->secs = mbsr_now() - ts;
  if (me->rc) {
    snprintf(me->msg, sizeof me->msg, "%s", mbsr_last_error());
    snprintf(job->lmsg[li], sizeof job->lmsg[li], "%s", me->msg);
    if (!me->fatal) mbsr_errmsg("prep: input %s failed (recorded, continuing): %s", job->in.paths[s], me->msg);
  }
  for (int q = 0; q < Q; q++) {
    const patchbuf *b = &job->pb[(size_t)li * Q + q];
    job->cnt[(size_t)s * Q + q] = b->n, job->cub[(size_t)s * Q + q] = b->cubic_sum;
    job->nlh[((size_t)s * Q + q) * 2] = b->lo, job->nlh[((size_t)s * Q + q) * 2 + 1] = b->hi;
  }
}

/* Every subject, in lockstep rounds, so that rank 0 can print one line per volume. */
static int prep_process(prep_job *job) {
  const int P = job->P, rounds = (job->S + P - 1) / P;
  round_report *reps = job->rank == 0 ? calloc((size_t)P, sizeof *reps) : NULL;
  int rc = mbsr_mpi_agree(job->comm, job->rank == 0 && !reps ? mbsr_error(MBSR_ENOMEM, "prep: out of memory") : 0);
  mbsr_progress prog;
  mbsr_progress_init(&prog, "prep", job->S);
  int done_subj = 0;
  for (int r = 0; r < rounds && !rc; r++) {
    round_report me;
    memset(&me, 0, sizeof me);
    me.subj = -1;
    if (r < job->nloc) prep_one(job, r, &me);
    if (MPI_Gather(&me, (int)sizeof me, MPI_BYTE, reps, (int)sizeof me, MPI_BYTE, 0, job->comm) != MPI_SUCCESS) {
      rc = mbsr_error(MBSR_EMPI, "MPI_Gather of progress failed");
      break;
    }
    for (int k = 0; job->rank == 0 && job->c->progress && k < P; k++) {
      if (reps[k].subj < 0) continue;
      char extra[768];
      done_subj++;
      snprintf(extra, sizeof extra, "[rank %d] %s %s (%.1f s)%s%s", k, job->in.names[reps[k].subj], reps[k].rc ? "FAILED" : "ok",
               reps[k].secs, reps[k].rc ? ": " : "", reps[k].rc ? reps[k].msg : "");
      mbsr_progress_update(&prog, done_subj, "subjects", extra);
    }
    rc = mbsr_mpi_agree(job->comm, me.fatal ? me.rc : 0);
  }
  free(reps);
  return rc;
}

/* Failure messages: each rank's "<subject>\t<rank>\t<message>\n" lines, concatenated in rank order
 * (= subject order) on every rank. */
static int gather_failures(prep_job *job) {
  const int Q = job->Q, P = job->P;
  char *mine = NULL;
  size_t ml = 0;
  FILE *mf = open_memstream(&mine, &ml);
  if (!mf) return mbsr_error(MBSR_ENOMEM, "prep: out of memory");
  for (int li = 0; li < job->nloc; li++) {
    int s = job->s0 + li, bad = 0;
    for (int q = 0; q < Q; q++) bad |= job->cnt[(size_t)s * Q + q] == 0;
    if (!bad) continue;
    for (char *x = job->lmsg[li]; *x; x++)
      if (*x == '\n') *x = ' ';
    fprintf(mf, "%s\t%d\t%s\n", job->in.names[s], job->rank, job->lmsg[li][0] ? job->lmsg[li] : "no patches");
  }
  int rc = fclose(mf) ? mbsr_error(MBSR_ENOMEM, "prep: out of memory") : 0;
  int len = rc ? 0 : (int)ml, *lens = malloc((size_t)P * sizeof *lens), *displ = malloc((size_t)P * sizeof *displ);
  if ((rc = mbsr_mpi_agree(job->comm, rc || !lens || !displ ? (rc ? rc : mbsr_error(MBSR_ENOMEM, "prep: out of memory")) : 0))) {
    free(mine), free(lens), free(displ);
    return rc;
  }
  MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, job->comm);
  int tot = 0;
  for (int k = 0; k < P; k++) displ[k] = tot, tot += lens[k];
  job->fail_all = calloc((size_t)tot + 1, 1);
  rc = mbsr_mpi_agree(job->comm, job->fail_all ? 0 : mbsr_error(MBSR_ENOMEM, "prep: out of memory"));
  if (!rc) MPI_Allgatherv(mine, len, MPI_CHAR, job->fail_all, lens, displ, MPI_CHAR, job->comm);
  free(mine), free(lens), free(displ);
  return rc;
}

/* The failure lines -> the summary ("<subject> (rank r): <message>"; ...) and the file's /failed
 * entries "<subject>: <message>" (its content must not depend on the rank count), rebuilt in place. */
static void parse_failures(prep_job *job) {
  size_t fl = 0;
  mbsr_prep_summary *sum = job->sum;
  for (char *tok = job->fail_all, *nl; tok && *tok; tok = nl ? nl + 1 : NULL) {
    nl = strchr(tok, '\n');
    if (nl) *nl = 0;
    char *t1 = strchr(tok, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t1 || !t2) continue;
    *t1 = 0, *t2 = 0;
    int fr = atoi(t1 + 1);
    int w = snprintf(sum->failures + fl, sizeof sum->failures - fl, "%s%s (rank %d): %s", fl ? "; " : "", tok, fr, t2 + 1);
    if (w > 0 && fl + (size_t)w < sizeof sum->failures) fl += (size_t)w;
    size_t ln = strlen(tok);
    tok[ln] = ':', tok[ln + 1] = ' ';
    memmove(tok + ln + 2, t2 + 1, strlen(t2 + 1) + 1);
    job->failed[job->nfailed++] = tok;
  }
  sum->n_failed = job->nfailed;
}

/* Sizes, cubic sums and contracts reduced over ranks; the failures; per (pair, split) offsets (an
 * Exscan of the local counts) and totals. */
static int prep_gather(prep_job *job) {
  const int S = job->S, Q = job->Q;
  if (MPI_Allreduce(MPI_IN_PLACE, job->cnt, S * Q, MPI_INT64_T, MPI_SUM, job->comm) != MPI_SUCCESS ||
      MPI_Allreduce(MPI_IN_PLACE, job->cub, S * Q, MPI_DOUBLE, MPI_SUM, job->comm) != MPI_SUCCESS ||
      MPI_Allreduce(MPI_IN_PLACE, job->nlh, 2 * S * Q, MPI_DOUBLE, MPI_SUM, job->comm) != MPI_SUCCESS)
    return mbsr_error(MBSR_EMPI, "MPI_Allreduce of patch counts failed");
  int rc = gather_failures(job);
  if (rc) return rc;
  parse_failures(job);
  for (size_t i = 0; i < (size_t)S * Q; i++)
    if (job->cnt[i] == 0) job->nlh[2 * i] = job->nlh[2 * i + 1] = NAN;
  if (job->nfailed == S) return mbsr_error(MBSR_EINVAL, "all %d inputs failed (%s); nothing written", S, job->sum->failures);
  for (int li = 0; li < job->nloc; li++)
    for (int q = 0; q < Q; q++) job->loc[q * MBSR_SPLITS + job->split[job->s0 + li]] += job->pb[(size_t)li * Q + q].n;
  MPI_Exscan(job->loc, job->off, Q * MBSR_SPLITS, MPI_INT64_T, MPI_SUM, job->comm);
  if (job->rank == 0) memset(job->off, 0, sizeof job->off); /* MPI_Exscan leaves rank 0's buffer undefined */
  MPI_Allreduce(job->loc, job->tot, Q * MBSR_SPLITS, MPI_INT64_T, MPI_SUM, job->comm);
  for (int q = 0; q < Q; q++)
    for (int sp = 0; sp < MBSR_SPLITS; sp++) {
      double acc = 0; /* in subject order on every rank: identical for any rank count */
      for (int s = 0; s < S; s++)
        if (job->split[s] == sp && job->cnt[(size_t)s * Q + q] > 0) acc += job->cub[(size_t)s * Q + q];
      const int64_t t = job->tot[q * MBSR_SPLITS + sp];
      job->sum->n_patches[q][sp] = t;
      job->sum->cubic_mse[q][sp] = t ? acc / (double)t : NAN;
    }
  return 0;
}

/* Root attributes: everything needed to reproduce the file (no rank count, no time). */
static int write_root_attrs(prep_job *job) {
  const mbsr_prep_config *c = job->c;
  const hid_t file = job->file;
  char txt[1024];
  double nr[2] = {c->norm_plo, c->norm_phi};
  snprintf(txt, sizeof txt,
           "read -> area-weighted resampling to %d um -> block average -> Keys (a=-0.5) upsampling of LR onto HR = input -> "
           "lo, hi = the %g and %g percentiles of the input; input and target (HR) mapped by clip((x-lo)/(hi-lo),0,1) -> mask "
           "(threshold %g, <0 = Otsu) -> patches at seeded random brain centres",
           job->base_um, c->norm_plo, c->norm_phi, c->mask_thr);
  if (c->self_supervised)
    snprintf(txt, sizeof txt,
             "self-supervised through-plane (slice axis %d, factor %d, profile %s): read -> target = Keys (a=-0.5) upsampling of the "
             "slice axis to the in-plane spacing -> input = the target with one in-plane axis degraded by the factor (slice profile) "
             "and Keys-upsampled back (half the patches each in-plane axis), that axis moved to array axis 0 -> lo, hi = the %g and "
             "%g percentiles of the first orientation's input; input and target mapped by clip((x-lo)/(hi-lo),0,1) -> mask "
             "(threshold %g, <0 = Otsu) of the target -> patches at seeded random brain centres",
             job->ss.axis, job->ss.factor, mbsr_profile_name(c->profile), c->norm_plo, c->norm_phi, c->mask_thr);
  int rc = mbsr__h5_attr_str(file, "mbsr_version", MBSR_VERSION);
  if (!rc) rc = mbsr__h5_attr_int(file, "seed", (int64_t)c->seed);
  if (!rc) rc = mbsr__h5_attr_int(file, "patch", job->p);
  if (!rc) rc = mbsr__h5_attr_int(file, "patches_per_volume", c->patches_per_volume);
  if (!rc) rc = mbsr__h5_attr_int(file, "base_um", job->base_um);
  if (!rc) rc = mbsr__h5_attr_int(file, "n_subjects", job->S);
  if (!rc) rc = mbsr__h5_attr_int(file, "n_failed", job->nfailed);
  if (!rc) rc = mbsr__h5_attr_str(file, "split", job->rule);
  if (!rc) rc = mbsr__h5_attr_str(file, "norm", "percentile");
  if (!rc) rc = mbsr__h5_attr_double(file, "norm_percentiles", nr, 2);
  if (!rc) rc = mbsr__h5_attr_double(file, "mask_threshold", &c->mask_thr, 1);
  if (!rc) rc = mbsr__h5_attr_double(file, "tiff_vox_mm", c->read_opts.tiff_vox, 3);
  if (!rc) rc = mbsr__h5_attr_str(file, "tiff_orient", c->read_opts.tiff_orient);
  if (!rc) rc = mbsr__h5_attr_str(file, "pipeline", txt);
  if (!rc)
    rc = mbsr__h5_attr_str(file, "checksums", "crc32 of every patch row (input, target, subject, center) in <split>/crc32; crc32 attribute of the other datasets; "
                                              "checksummed object headers");
  return rc ? mbsr_error_prefix(rc, "%s: ", c->out) : 0;
}

/* The file: a temporary name from rank 0 (stale temporaries of killed runs removed), created
 * collectively; the root attributes and the per-subject datasets. */
static int prep_create(prep_job *job) {
  const mbsr_prep_config *c = job->c;
  int rc = 0;
  if (job->rank == 0) {
    char odir[4096];
    const char *sl = strrchr(c->out, '/');
    rc = mbsr_pathf(odir, sizeof odir, "%.*s", sl ? (int)(sl - c->out) : 1, sl ? c->out : ".");
    int nst = rc ? 0 : mbsr_clean_stale_tmp(odir, sl ? sl + 1 : c->out);
    if (nst) mbsr_info("prep: removed %d temporary file%s of killed runs", nst, nst > 1 ? "s" : "");
    if (!rc) rc = mbsr_tmp_path(c->out, job->tmp, sizeof job->tmp);
  }
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  MPI_Bcast(job->tmp, sizeof job->tmp, MPI_CHAR, 0, job->comm);
  job->fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* the 1.8+ object format: checksummed object headers (the attributes), readable by HDF5 >= 1.8 */
  if (job->fapl < 0 || H5Pset_fapl_mpio(job->fapl, job->comm, MPI_INFO_NULL) < 0 ||
      H5Pset_libver_bounds(job->fapl, H5F_LIBVER_V18, H5F_LIBVER_V110) < 0)
    rc = mbsr_error(MBSR_EHDF5, "%s: setting up the MPI-IO file access failed", c->out);
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  errno = 0;
  job->file = H5Fcreate(job->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, job->fapl);
  if (job->file < 0)
    rc = mbsr_error(MBSR_EHDF5, "%s: cannot create (temporary %s)%s%s", c->out, job->tmp, errno ? ": " : "", errno ? strerror(errno) : "");
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  job->dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (job->dxpl < 0 || H5Pset_dxpl_mpio(job->dxpl, H5FD_MPIO_COLLECTIVE) < 0) rc = mbsr_error(MBSR_EHDF5, "%s: H5Pset_dxpl_mpio failed", c->out);
  if (!rc) rc = write_root_attrs(job);
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  int32_t *sp32 = malloc((size_t)(job->S > 0 ? job->S : 1) * sizeof *sp32);
  rc = mbsr_mpi_agree(job->comm, sp32 ? 0 : mbsr_error(MBSR_ENOMEM, "prep: out of memory"));
  if (!rc) {
    for (int s = 0; s < job->S; s++) sp32[s] = job->split[s];
    rc = write_small(job->file, "subject_split", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)job->S, 1, sp32, job->rank, job->dxpl, job->comm,
                     c->out, "/subject_split");
  }
  free(sp32);
  if (!rc) rc = write_strings(job->file, "subjects", job->in.names, job->S, job->rank, job->dxpl, job->comm, c->out);
  if (!rc) rc = write_strings(job->file, "sources", job->in.paths, job->S, job->rank, job->dxpl, job->comm, c->out);
  if (!rc) rc = write_strings(job->file, "failed", job->failed, job->nfailed, job->rank, job->dxpl, job->comm, c->out);
  return rc;
}

/* This rank's rows of (pair q, split sp), in subject order, packed into one buffer per dataset. */
typedef struct {
  float *in, *tgt;
  int32_t *sub, *ctr;
  uint32_t *crc;
} packed_rows;

static void packed_free(packed_rows *r) {
  mbsr_free(r->in), mbsr_free(r->tgt), mbsr_free(r->sub), mbsr_free(r->ctr), mbsr_free(r->crc);
  memset(r, 0, sizeof *r);
}

static int pack_rows(prep_job *job, int q, int sp, hsize_t nl, packed_rows *r) {
  const hsize_t p3 = job->p3, n = nl ? nl : 1;
  r->in = mbsr_alloc((size_t)n * p3 * sizeof(float));
  r->tgt = mbsr_alloc((size_t)n * p3 * sizeof(float));
  r->sub = mbsr_alloc((size_t)n * sizeof(int32_t));
  r->ctr = mbsr_alloc((size_t)n * 3 * sizeof(int32_t));
  r->crc = mbsr_alloc((size_t)n * sizeof(uint32_t));
  if (!r->in || !r->tgt || !r->sub || !r->ctr || !r->crc) return mbsr_error(MBSR_ENOMEM, "prep: out of memory packing patches");
  size_t k = 0;
  for (int li = 0; li < job->nloc; li++) {
    if (job->split[job->s0 + li] != sp) continue;
    patchbuf *b = &job->pb[(size_t)li * job->Q + q];
    if (b->n == 0) continue;
    memcpy(r->in + k * p3, b->in, (size_t)b->n * p3 * sizeof(float));
    memcpy(r->tgt + k * p3, b->tgt, (size_t)b->n * p3 * sizeof(float));
    memcpy(r->ctr + 3 * k, b->ctr, (size_t)b->n * 3 * sizeof(int32_t));
    for (int64_t j = 0; j < b->n; j++) {
      r->sub[k + j] = job->s0 + li;
      r->crc[k + j] = mbsr__patch_crc(r->in + (k + j) * p3, r->tgt + (k + j) * p3, p3, r->sub[k + j], r->ctr + 3 * (k + j));
    }
    k += (size_t)b->n;
    /* release the per-subject copy as soon as it is packed */
    mbsr_free(b->in), mbsr_free(b->tgt), mbsr_free(b->ctr);
    b->in = b->tgt = NULL, b->ctr = NULL;
  }
  return 0;
}

/* The datasets of (pair q, split sp) under group g, created collectively and written row-wise. */
static int write_split(prep_job *job, hid_t g, const char *nm, int q, int sp) {
  const mbsr_prep_config *c = job->c;
  const int p = job->p, S = job->S, Q = job->Q;
  const hsize_t N = (hsize_t)job->tot[q * MBSR_SPLITS + sp], o = (hsize_t)job->off[q * MBSR_SPLITS + sp];
  const hsize_t nl = (hsize_t)job->loc[q * MBSR_SPLITS + sp];
  int nsub = 0, rc = 0;
  for (int s = 0; s < S; s++) nsub += job->split[s] == sp && job->cnt[(size_t)s * Q + q] > 0;
  hid_t gs = H5Gcreate2(g, split_names[sp], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (gs < 0) rc = mbsr_error(MBSR_EHDF5, "%s: creating /pairs/%s/%s failed", c->out, nm, split_names[sp]);
  if (!rc) rc = mbsr__h5_attr_double(gs, "cubic_mse", &job->sum->cubic_mse[q][sp], 1);
  if (!rc) rc = mbsr__h5_attr_int(gs, "n_patches", (int64_t)N);
  if (!rc) rc = mbsr__h5_attr_int(gs, "n_subjects", nsub);
  hsize_t dims[4] = {N, (hsize_t)p, (hsize_t)p, (hsize_t)p};
  hsize_t ch[4] = {(hsize_t)(c->chunk_patches > 0 ? c->chunk_patches : 4), (hsize_t)p, (hsize_t)p, (hsize_t)p};
  hsize_t d1[4] = {N, 0, 0, 0}, c1[4] = {1024, 0, 0, 0}, d3[4] = {N, 3, 0, 0}, c3[4] = {1024, 3, 0, 0};
  static const char *const dn[5] = {"input", "target", "subject", "center", "crc32"};
  hid_t ds[5] = {-1, -1, -1, -1, -1};
  if (!rc) {
    ds[0] = create_dset(gs, dn[0], H5T_IEEE_F32LE, 4, dims, ch, 1);
    ds[1] = create_dset(gs, dn[1], H5T_IEEE_F32LE, 4, dims, ch, 1);
    ds[2] = create_dset(gs, dn[2], H5T_STD_I32LE, 1, d1, c1, 1);
    ds[3] = create_dset(gs, dn[3], H5T_STD_I32LE, 2, d3, c3, 1);
    ds[4] = create_dset(gs, dn[4], H5T_STD_U32LE, 1, d1, c1, 1);
    if (ds[0] < 0 || ds[1] < 0 || ds[2] < 0 || ds[3] < 0 || ds[4] < 0)
      rc = mbsr_error(MBSR_EHDF5, "%s: creating datasets in /pairs/%s/%s failed", c->out, nm, split_names[sp]);
  }
  rc = mbsr_mpi_agree(job->comm, rc);
  packed_rows r = {0};
  if (!rc && N > 0) {
    char d[5][200];
    for (int k5 = 0; k5 < 5; k5++) snprintf(d[k5], sizeof d[k5], "/pairs/%s/%s/%s", nm, split_names[sp], dn[k5]);
    if ((rc = mbsr_mpi_agree(job->comm, pack_rows(job, q, sp, nl, &r))) == 0)
      rc = write_rows(ds[0], d[0], H5T_NATIVE_FLOAT, sizeof(float), 4, job->p3, o, nl, r.in, job->dxpl, job->comm, c->out);
    if (!rc) rc = write_rows(ds[1], d[1], H5T_NATIVE_FLOAT, sizeof(float), 4, job->p3, o, nl, r.tgt, job->dxpl, job->comm, c->out);
    if (!rc) rc = write_rows(ds[2], d[2], H5T_NATIVE_INT32, sizeof(int32_t), 1, 1, o, nl, r.sub, job->dxpl, job->comm, c->out);
    if (!rc) rc = write_rows(ds[3], d[3], H5T_NATIVE_INT32, sizeof(int32_t), 2, 3, o, nl, r.ctr, job->dxpl, job->comm, c->out);
    if (!rc) rc = write_rows(ds[4], d[4], H5T_NATIVE_UINT32, sizeof(uint32_t), 1, 1, o, nl, r.crc, job->dxpl, job->comm, c->out);
  }
  packed_free(&r);
  for (int k = 0; k < 5; k++)
    if (ds[k] >= 0) H5Dclose(ds[k]);
  if (gs >= 0) H5Gclose(gs);
  return rc;
}

/* /pairs/<lr>-<hr>: its attributes, the subjects' contracts, its splits. Every rc is agreed before
 * it is acted on: all ranks take the same branches. */
/* A self-supervised pair: "<i>x<j>x<k>-<in-plane>" in um of the acquired voxel, and the grids the
 * contract records (model.h): lr = the acquired voxel, hr = the slice axis at the in-plane spacing. */
static void selfsup_pair_name(const ss_geom *g, char *nm, size_t n, double lv[3], double hv[3]) {
  const double s = g->vox[g->axis == 0 ? 1 : 0];
  for (int a = 0; a < 3; a++) lv[a] = g->vox[a], hv[a] = a == g->axis ? s : g->vox[a];
  snprintf(nm, n, "%.0fx%.0fx%.0f-%.0f", lv[0] * 1000, lv[1] * 1000, lv[2] * 1000, s * 1000);
}

/* The group name and the grids of pair q (the self-supervised one: selfsup_pair_name). */
static void pair_geometry(const prep_job *job, int q, char *nm, size_t n, double lv[3], double hv[3]) {
  const mbsr_res_pair *pr = &job->c->pairs[q];
  if (job->c->self_supervised) return selfsup_pair_name(&job->ss, nm, n, lv, hv);
  mbsr_res_pair_name(pr, nm, n);
  for (int a = 0; a < 3; a++) lv[a] = pr->lr_um[a] / 1000.0, hv[a] = pr->hr_um / 1000.0;
}

static int write_pair(prep_job *job, int q) {
  const mbsr_prep_config *c = job->c;
  const int S = job->S, Q = job->Q;
  char nm[64], path[160];
  const mbsr_res_pair *pr = &c->pairs[q];
  double lv[3], hv[3];
  pair_geometry(job, q, nm, sizeof nm, lv, hv);
  const int lmax = mbsr_res_pair_lr_max(pr);
  /* lr_um3 and profile only where they say something: files of isotropic boxcar pairs stay as they were */
  const int extra = !c->self_supervised && (!mbsr_res_pair_isotropic(pr) || c->profile != MBSR_PROFILE_BOXCAR);
  hid_t g = H5Gcreate2(job->gp, nm, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = g < 0 ? mbsr_error(MBSR_EHDF5, "%s: creating /pairs/%s failed", c->out, nm) : 0;
  if (!rc) rc = mbsr__h5_attr_int(g, "lr_um", c->self_supervised ? pr->lr_um[job->ss.axis] : lmax);
  if (!rc) rc = mbsr__h5_attr_int(g, "hr_um", pr->hr_um);
  if (!rc) rc = mbsr__h5_attr_double(g, "lr_vox_mm", lv, 3);
  if (!rc) rc = mbsr__h5_attr_double(g, "hr_vox_mm", hv, 3);
  if (!rc) rc = mbsr__h5_attr_int(g, "factor", c->self_supervised ? job->ss.factor : lmax / pr->hr_um);
  if (!rc && extra) rc = mbsr__h5_attr_ints(g, "lr_um3", pr->lr_um, 3);
  if (!rc) rc = mbsr__h5_attr_str(g, "interp", "keys");
  if (!rc && c->self_supervised) rc = mbsr__h5_attr_int(g, "through_plane", 1);
  if (!rc && c->self_supervised) rc = mbsr__h5_attr_int(g, "slice_axis", job->ss.axis);
  if (!rc && (c->self_supervised || extra)) rc = mbsr__h5_attr_str(g, "profile", mbsr_profile_name(c->profile));
  double *lh = rc ? NULL : malloc(sizeof(double) * 2 * (size_t)(S > 0 ? S : 1));
  if (!rc && !lh) rc = mbsr_error(MBSR_ENOMEM, "prep: out of memory");
  rc = mbsr_mpi_agree(job->comm, rc);
  if (!rc) {
    for (int s = 0; s < S; s++) lh[2 * s] = job->nlh[((size_t)s * Q + q) * 2], lh[2 * s + 1] = job->nlh[((size_t)s * Q + q) * 2 + 1];
    snprintf(path, sizeof path, "/pairs/%s/norm_lo_hi", nm);
    rc = write_small(g, "norm_lo_hi", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)S, 2, lh, job->rank, job->dxpl, job->comm, c->out, path);
  }
  free(lh);
  for (int sp = 0; sp < MBSR_SPLITS && !rc; sp++) rc = write_split(job, g, nm, q, sp);
  if (g >= 0) H5Gclose(g);
  return rc;
}

/* /pairs, then the file flushed, closed collectively and renamed by rank 0. */
static int prep_write(prep_job *job) {
  const mbsr_prep_config *c = job->c;
  job->gp = H5Gcreate2(job->file, "pairs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = mbsr_mpi_agree(job->comm, job->gp < 0 ? mbsr_error(MBSR_EHDF5, "%s: creating /pairs failed", c->out) : 0);
  for (int q = 0; q < job->Q && !rc; q++) rc = write_pair(job, q);
  if (job->gp >= 0) H5Gclose(job->gp);
  job->gp = -1;
  if (rc) return rc;
  rc = finish_file(&job->file, job->tmp, rc, job->rank, job->comm, c->out);
  if (!rc && job->rank == 0) rc = mbsr_commit_file(job->tmp, c->out);
  if ((rc = mbsr_mpi_agree(job->comm, rc))) return rc;
  job->tmp[0] = 0;
  job->sum->seconds = mbsr_now() - job->t0;
  const mbsr_prep_summary *sum = job->sum;
  for (int q = 0; q < job->Q; q++) {
    char nm[64];
    double lv[3], hv[3];
    pair_geometry(job, q, nm, sizeof nm, lv, hv);
    mbsr_info("prep: pair %s: %lld train / %lld val / %lld test patches; cubic-baseline MSE train %.6g val %.6g test %.6g",
              nm, (long long)sum->n_patches[q][0], (long long)sum->n_patches[q][1],
              (long long)sum->n_patches[q][2], sum->cubic_mse[q][0], sum->cubic_mse[q][1], sum->cubic_mse[q][2]);
  }
  mbsr_info("prep: wrote %s in %.1f s; %d of %d inputs failed%s", c->out, sum->seconds, job->nfailed, job->S,
            job->nfailed ? " (listed in /failed)" : "");
  if (job->nfailed) mbsr_info("prep: failed inputs: %s", sum->failures);
  return 0;
}

/* rc is the same on every rank here (agreed), so are the collective closes. */
static int prep_close(prep_job *job, int rc) {
  if (job->gp >= 0) H5Gclose(job->gp);
  if (job->file >= 0) finish_file(&job->file, job->tmp, rc ? rc : MBSR_EHDF5, job->rank, job->comm, job->c->out);
  if (job->fapl >= 0) H5Pclose(job->fapl);
  if (job->dxpl >= 0) H5Pclose(job->dxpl);
  if (rc && job->tmp[0]) {
    if (job->rank == 0) mbsr_abandon_file(job->tmp);
    char msg[1200];
    snprintf(msg, sizeof msg, "%s", mbsr_last_error());
    mbsr_error(rc, "%s; nothing written, temporary removed", msg);
  }
  if (job->pb)
    for (int i = 0; i < job->nloc * job->Q; i++) mbsr_free(job->pb[i].in), mbsr_free(job->pb[i].tgt), mbsr_free(job->pb[i].ctr);
  free(job->pb), free(job->lmsg), free(job->split), free(job->cnt), free(job->cub), free(job->nlh), free(job->failed), free(job->fail_all);
  mbsr_input_list_free(&job->in);
  return rc;
}

int mbsr_prep_run(const mbsr_prep_config *c, MPI_Comm comm, mbsr_prep_summary *sum) {
  mbsr__h5_quiet();
  mbsr_prep_summary S0;
  if (!sum) sum = &S0;
  memset(sum, 0, sizeof *sum);
  prep_job *job = calloc(1, sizeof *job);
  if (!job) return mbsr_mpi_agree(comm, mbsr_error(MBSR_ENOMEM, "prep: out of memory"));
  job->cc = *c;
  job->c = &job->cc, job->comm = comm, job->sum = sum, job->t0 = mbsr_now();
  job->Q = c->self_supervised ? 1 : c->npairs, job->p = c->patch, job->p3 = (hsize_t)c->patch * c->patch * c->patch;
  job->fapl = job->file = job->dxpl = job->gp = -1;
  MPI_Comm_rank(comm, &job->rank);
  MPI_Comm_size(comm, &job->P);
  int rc = prep_plan(job);
  if (!rc) rc = prep_process(job);
  if (!rc) rc = prep_gather(job);
  if (!rc) rc = prep_create(job);
  if (!rc) rc = prep_write(job);
  rc = prep_close(job, rc);
  free(job);
  return rc;
}
