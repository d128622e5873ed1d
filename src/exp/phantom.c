/* The SYNTHETIC phantom cohort: distinct AF-like (auto-fluorescence, STPT) mouse-brain volumes for
 * the offline demo and the tests. Nothing here is real data; every file written says so.
 *
 * Anatomy (reference brain in mm, x = left->right, y = posterior->anterior, z = inferior->superior,
 * origin at the grid centre, field of view 8.5 x 10.0 x 6.5 mm; other fields of view scale it):
 *  brain mask  = cerebrum + olfactory bulbs + cerebellum + brainstem (ellipsoids)
 *  fine        = six cortical laminae (0.1-0.25 mm), cerebellar folia (0.17 mm stripes), a folded
 *                hippocampal band (CA and dentate gyrus, two interlocking C-shapes), striatal
 *                fibre bundles (dots), olfactory glomerular shell, thin ventricles and tracts
 *  coarse      = corpus callosum, thalamus with nuclei (blobs), striatum, brainstem, cerebellar WM
 * White matter is dark in AF (the paper's AF correlates negatively with FA); a few tracts are bright.
 * Per subject: smooth random deformation (sum of sinusoids, ~0.15 mm) and scale (+-4 %), intensity
 * jitter per tissue class, nuclei positions, multiplicative bias field (+-12 % + depth gradient),
 * optical PSF (Gaussian, sigma 0.5 voxel) and Gaussian noise (sigma 2 % of the brain intensity).
 * All randomness is per subject (mbsr_rng) or per voxel (counter-based hash): thread-count
 * independent, so a cohort is bit-identical for a seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/exp.h"

#define FOV_X 8.5
#define FOV_Y 10.0
#define FOV_Z 6.5
#define NWAVE 6
#define NNUC 12

typedef struct {
  double c[3], h[3];
} ellipsoid;

typedef struct {
  double a[3], b[3], r;
  float val;
} tube;

typedef struct {
  double scale[3];
  double wk[NWAVE][3], wphi[NWAVE], wamp[NWAVE][3];
  double bk[3][3], bphi[3], bamp[3], bgrad;
  double jit[24];          /* intensity jitter per tissue class */
  double nuc_c[NNUC][3], nuc_r[NNUC];
  float nuc_v[NNUC];
  double fol_phase, hip_shift;
  uint64_t noise_seed;
  double noise_sigma;
  double fov_scale[3];     /* world mm -> reference mm */
} subj;

void mbsr_phantom_opts_default(mbsr_phantom_opts *o) {
  o->n = 12;
  o->seed = 1;
  o->vox_mm = 0.05;
  o->dims[0] = o->dims[1] = o->dims[2] = 0;
}

/* tissue classes (index into jit[]) and their reference intensities (AF-like, Allen 0..516) */
enum { T_BG, T_CER, T_L1, T_L23, T_L4, T_L5, T_L6, T_WM, T_HIP, T_CA, T_DG, T_VENT, T_STR, T_PENCIL,
       T_THAL, T_OB, T_OBG, T_CBMOL, T_CBGRAN, T_CBWM, T_BS, T_TRACT_BRIGHT, T_NCLASS };
static const float base_val[T_NCLASS] = {12, 260, 215, 335, 390, 300, 265, 140, 285, 430, 465, 55, 305, 185,
                                         325, 350, 445, 255, 405, 150, 240, 455};

static const ellipsoid E_CEREBRUM = {{0, 0.6, 0.4}, {3.6, 3.4, 2.4}};
static const ellipsoid E_OB[2] = {{{-0.8, 4.15, 0.0}, {0.72, 0.95, 0.85}}, {{0.8, 4.15, 0.0}, {0.72, 0.95, 0.85}}};
static const ellipsoid E_CEREBELLUM = {{0, -3.3, 0.2}, {2.6, 1.3, 1.7}};
static const ellipsoid E_BRAINSTEM = {{0, -1.7, -1.5}, {1.3, 2.7, 1.0}};
static const ellipsoid E_STR[2] = {{{-1.7, 1.2, -0.1}, {1.0, 1.3, 1.0}}, {{1.7, 1.2, -0.1}, {1.0, 1.3, 1.0}}};
static const ellipsoid E_THAL[2] = {{{-0.9, -0.6, 0.0}, {1.0, 1.1, 0.8}}, {{0.9, -0.6, 0.0}, {1.0, 1.1, 0.8}}};
static const ellipsoid E_LV[2] = {{{-0.95, 0.7, 0.7}, {0.12, 1.2, 0.7}}, {{0.95, 0.7, 0.7}, {0.12, 1.2, 0.7}}};
static const ellipsoid E_3V = {{0, -0.6, -0.2}, {0.06, 0.8, 0.9}};

static const tube TUBES[] = {
    /* anterior commissure (dark) */
    {{-1.6, 1.0, -0.8}, {0.0, 0.9, -0.6}, 0.12, T_WM},
    {{0.0, 0.9, -0.6}, {1.6, 1.0, -0.8}, 0.12, T_WM},
    /* internal capsules (dark) */
    {{-1.2, 0.8, 0.3}, {-1.6, -1.2, -1.0}, 0.15, T_WM},
    {{1.2, 0.8, 0.3}, {1.6, -1.2, -1.0}, 0.15, T_WM},
    /* optic tracts (dark) */
    {{-1.0, 1.0, -1.6}, {-2.2, -1.0, -0.6}, 0.10, T_WM},
    {{1.0, 1.0, -1.6}, {2.2, -1.0, -0.6}, 0.10, T_WM},
    /* cerebral peduncles in the brainstem (dark) */
    {{-0.8, -0.5, -1.2}, {-0.5, -2.8, -1.8}, 0.18, T_WM},
    {{0.8, -0.5, -1.2}, {0.5, -2.8, -1.8}, 0.18, T_WM},
    /* mammillothalamic-like thin bright tracts */
    {{-0.4, -0.2, 0.5}, {-0.3, -0.8, -1.0}, 0.08, T_TRACT_BRIGHT},
    {{0.4, -0.2, 0.5}, {0.3, -0.8, -1.0}, 0.08, T_TRACT_BRIGHT},
    /* fornix-like bright arch */
    {{-0.3, 0.4, 0.9}, {0.3, 0.4, 0.9}, 0.07, T_TRACT_BRIGHT},
};
#define NTUBE ((int)(sizeof TUBES / sizeof *TUBES))

static inline double ell_rho2(const ellipsoid *e, const double q[3]) {
  double a = (q[0] - e->c[0]) / e->h[0], b = (q[1] - e->c[1]) / e->h[1], c = (q[2] - e->c[2]) / e->h[2];
  return a * a + b * b + c * c;
}

static inline double seg_dist2(const double a[3], const double b[3], const double q[3]) {
  double ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, aq[3] = {q[0] - a[0], q[1] - a[1], q[2] - a[2]};
  double L = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
  double t = L > 0 ? (aq[0] * ab[0] + aq[1] * ab[1] + aq[2] * ab[2]) / L : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double d0 = aq[0] - t * ab[0], d1 = aq[1] - t * ab[1], d2 = aq[2] - t * ab[2];
  return d0 * d0 + d1 * d1 + d2 * d2;
}

static inline uint64_t hash3(uint64_t seed, int64_t a, int64_t b, int64_t c) {
  return mbsr_seed_mix(mbsr_seed_mix(mbsr_seed_mix(seed, (uint64_t)a), (uint64_t)b), (uint64_t)c);
}
static inline double u01(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

/* The tissue value at reference position q (already warped); *inside = brain mask. */
static float tissue(const subj *s, const double q[3], int *inside) {
  double rc = ell_rho2(&E_CEREBRUM, q), rcb = ell_rho2(&E_CEREBELLUM, q), rbs = ell_rho2(&E_BRAINSTEM, q);
  double rob0 = ell_rho2(&E_OB[0], q), rob1 = ell_rho2(&E_OB[1], q);
  *inside = rc < 1 || rcb < 1 || rbs < 1 || rob0 < 1 || rob1 < 1;
  if (!*inside) return (float)(base_val[T_BG] * s->jit[T_BG]);
#define V(cls) ((float)(base_val[cls] * s->jit[cls]))
  int cls = T_CER;
  float val;
  const double ax = fabs(q[0]);
  if (rob0 < 1 || rob1 < 1) { /* olfactory bulbs: glomerular shell */
    double r = sqrt(rob0 < 1 ? rob0 : rob1);
    return r > 0.82 && r < 0.93 ? V(T_OBG) : r > 0.4 && r < 0.5 ? V(T_WM) : V(T_OB);
  }
  if (rcb < 1 && !(rc < 1 && q[1] > E_CEREBELLUM.c[1] + 0.9)) { /* cerebellum: folia around a WM core */
    double d[3] = {q[0] - 0, q[1] - (-3.0), q[2] - (-0.2)};
    double r = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    double th = atan2(d[2], d[1]);
    if (r < 0.55 + 0.15 * sin(5 * th)) return V(T_CBWM);
    double st = sin(2 * M_PI * r / 0.34 + 1.3 * sin(4 * th + s->fol_phase) + 0.6 * sin(3 * q[0]));
    return st > 0 ? V(T_CBGRAN) : V(T_CBMOL);
  }
  if (rc >= 1) { /* brainstem only */
    val = V(T_BS);
    for (int t = 6; t < 8; t++)
      if (seg_dist2(TUBES[t].a, TUBES[t].b, q) < TUBES[t].r * TUBES[t].r) val = V(T_WM);
    return val;
  }
  double rho = sqrt(rc);
  double dq[3] = {q[0] - E_CEREBRUM.c[0], q[1] - E_CEREBRUM.c[1], q[2] - E_CEREBRUM.c[2]};
  double R = sqrt(dq[0] * dq[0] + dq[1] * dq[1] + dq[2] * dq[2]);
  double depth = rho > 1e-9 ? (1 - rho) * R / rho : 10; /* mm below the surface along the ray */
  /* cerebrum: dorsal midline fissure through the cortex */
  if (ax < 0.05 && q[2] > 0.5 && depth < 1.0) return V(T_BG) * 2.5f;
  int dorsal = q[2] > E_CEREBRUM.c[2] - 1.1 - 0.2 * ax;
  if (dorsal && depth < 1.0) { /* six laminae */
    cls = depth < 0.1 ? T_L1 : depth < 0.35 ? T_L23 : depth < 0.5 ? T_L4 : depth < 0.75 ? T_L5 : T_L6;
    return V(cls);
  }
  if (dorsal && depth < 1.16 && ax < 3.2) return V(T_WM); /* corpus callosum / external capsule */
  val = V(T_CER);
  /* hippocampal formation: two interlocking C-shaped bands in planes of constant x */
  if (ax > 0.5 && ax < 2.9 && q[1] < 0.2 && q[1] > -2.6) {
    double cy = -1.2 + 0.3 * (ax - 1.6) * (ax - 1.6) + s->hip_shift, cz = 0.75 - 0.25 * ax;
    double dy = q[1] - cy, dz = q[2] - cz;
    double r = sqrt(dy * dy + dz * dz), th = atan2(dz, dy);
    if (r < 0.78) {
      val = V(T_HIP);
      double rca = 0.56 + 0.06 * sin(3 * th), rdg = 0.30 + 0.04 * cos(2 * th);
      if (fabs(r - rca) < 0.065 && th > -0.55 * M_PI) val = V(T_CA);
      if (fabs(r - rdg) < 0.05 && (th < 0.2 * M_PI || th > 0.85 * M_PI)) val = V(T_DG);
      if (r > 0.72) val = V(T_WM); /* alveus / fimbria */
      return val;
    }
  }
  for (int h = 0; h < 2; h++) {
    if (ell_rho2(&E_STR[h], q) < 1) { /* striatum with fibre bundles on a jittered lattice */
      const double sp = 0.35;
      int64_t ci[3];
      double loc[3];
      for (int a = 0; a < 3; a++) {
        ci[a] = (int64_t)floor(q[a] / sp);
        loc[a] = q[a] - ci[a] * sp;
      }
      uint64_t hh = hash3(0x5717ull, ci[0], ci[1], ci[2]);
      double cc[3] = {0.1 + 0.15 * u01(hh), 0.1 + 0.15 * u01(mbsr_seed_mix(hh, 1)), 0.1 + 0.15 * u01(mbsr_seed_mix(hh, 2))};
      double d2 = (loc[0] - cc[0]) * (loc[0] - cc[0]) + (loc[1] - cc[1]) * (loc[1] - cc[1]) + (loc[2] - cc[2]) * (loc[2] - cc[2]);
      val = d2 < 0.07 * 0.07 ? V(T_PENCIL) : V(T_STR);
    }
    if (ell_rho2(&E_THAL[h], q) < 1) {
      val = V(T_THAL);
      for (int k = 0; k < NNUC; k++) {
        double dx = q[0] - s->nuc_c[k][0], dy = q[1] - s->nuc_c[k][1], dz = q[2] - s->nuc_c[k][2];
        if (dx * dx + dy * dy + dz * dz < s->nuc_r[k] * s->nuc_r[k]) val = s->nuc_v[k];
      }
    }
    if (ell_rho2(&E_LV[h], q) < 1) return V(T_VENT);
  }
  if (ell_rho2(&E_3V, q) < 1) return V(T_VENT);
  for (int t = 0; t < NTUBE; t++)
    if (seg_dist2(TUBES[t].a, TUBES[t].b, q) < TUBES[t].r * TUBES[t].r) val = V((int)TUBES[t].val);
  return val;
#undef V
}

static void subj_init(subj *s, const mbsr_phantom_opts *o, int index, const int dims[3]) {
  mbsr_rng *r = mbsr_rng_new(mbsr_seed_mix(o->seed, (uint64_t)index + 1000));
  const double fov_ref[3] = {FOV_X, FOV_Y, FOV_Z};
  for (int a = 0; a < 3; a++) {
    s->scale[a] = 1 + mbsr_rng_normal(r, 0.04);
    s->fov_scale[a] = fov_ref[a] / (dims[a] * o->vox_mm);
  }
  for (int w = 0; w < NWAVE; w++) {
    double lam = 3.0 + 5.0 * mbsr_rng_uniform(r); /* wavelength, mm */
    double dir[3] = {mbsr_rng_normal(r, 1), mbsr_rng_normal(r, 1), mbsr_rng_normal(r, 1)};
    double nn = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]) + 1e-12;
    for (int a = 0; a < 3; a++) {
      s->wk[w][a] = 2 * M_PI / lam * dir[a] / nn;
      s->wamp[w][a] = mbsr_rng_normal(r, 0.09);
    }
    s->wphi[w] = 2 * M_PI * mbsr_rng_uniform(r);
  }
  for (int b = 0; b < 3; b++) {
    for (int a = 0; a < 3; a++) s->bk[b][a] = mbsr_rng_normal(r, 0.35);
    s->bphi[b] = 2 * M_PI * mbsr_rng_uniform(r);
    s->bamp[b] = mbsr_rng_normal(r, 0.06);
  }
  s->bgrad = 0.03 + 0.02 * mbsr_rng_uniform(r);
  for (int c = 0; c < 24; c++) s->jit[c] = 1 + mbsr_rng_normal(r, 0.04);
  for (int k = 0; k < NNUC; k++) {
    const ellipsoid *e = &E_THAL[k % 2];
    for (int a = 0; a < 3; a++) s->nuc_c[k][a] = e->c[a] + (mbsr_rng_uniform(r) - 0.5) * 1.2 * e->h[a];
    s->nuc_r[k] = 0.15 + 0.25 * mbsr_rng_uniform(r);
    s->nuc_v[k] = (float)(230 + 230 * mbsr_rng_uniform(r));
  }
  s->fol_phase = 2 * M_PI * mbsr_rng_uniform(r);
  s->hip_shift = mbsr_rng_normal(r, 0.08);
  s->noise_seed = mbsr_seed_mix(o->seed, (uint64_t)index + 5000);
  s->noise_sigma = 0.02 * 300;
  mbsr_rng_free(r);
}

static void blur_axis(float *v, const int64_t n[3], int axis, const float *k, int rad) {
  int64_t stride = axis == 0 ? 1 : axis == 1 ? n[0] : n[0] * n[1];
  int64_t len = n[axis], lines = n[0] * n[1] * n[2] / len;
#pragma omp parallel for schedule(static)
  for (int64_t l = 0; l < lines; l++) {
    int64_t base;
    if (axis == 0) base = l * n[0];
    else if (axis == 1) base = (l / n[0]) * n[0] * n[1] + l % n[0];
    else base = l;
    float buf[4096];
    int64_t L = len < 4096 ? len : 4096;
    for (int64_t i = 0; i < L; i++) buf[i] = v[base + i * stride];
    for (int64_t i = 0; i < L; i++) {
      double acc = 0;
      for (int t = -rad; t <= rad; t++) {
        int64_t j = i + t;
        j = j < 0 ? -j - 1 : j >= L ? 2 * L - j - 1 : j; /* mirror */
        acc += k[t + rad] * buf[j];
      }
      v[base + i * stride] = (float)acc;
    }
  }
}

int mbsr_phantom_subject(const mbsr_phantom_opts *o, int index, mbsr_volume **img_out, mbsr_volume **mask_out) {
  *img_out = NULL;
  if (mask_out) *mask_out = NULL;
  if (!(o->vox_mm > 0.001 && o->vox_mm < 10)) return mbsr_error(MBSR_EINVAL, "phantom: voxel size %g mm out of range", o->vox_mm);
  int dims[3];
  const double fov[3] = {FOV_X, FOV_Y, FOV_Z};
  for (int a = 0; a < 3; a++) {
    dims[a] = o->dims[a] > 0 ? o->dims[a] : (int)lround(fov[a] / o->vox_mm);
    if (dims[a] < 8 || dims[a] > 4096) return mbsr_error(MBSR_EINVAL, "phantom: grid size %d out of range 8..4096", dims[a]);
  }
  subj s;
  subj_init(&s, o, index, dims);
  double vox[3] = {o->vox_mm, o->vox_mm, o->vox_mm}, aff[4][4] = {{0}};
  for (int a = 0; a < 3; a++) {
    aff[a][a] = o->vox_mm;
    aff[a][3] = -0.5 * (dims[a] - 1) * o->vox_mm;
  }
  aff[3][3] = 1;
  mbsr_volume *img = mbsr_volume_new(dims[0], dims[1], dims[2], vox, aff);
  mbsr_volume *mask = mbsr_volume_new(dims[0], dims[1], dims[2], vox, aff);
  if (!img || !mask) {
    mbsr_volume_free(img);
    mbsr_volume_free(mask);
    return mbsr_error(MBSR_ENOMEM, "phantom: cannot allocate %dx%dx%d", dims[0], dims[1], dims[2]);
  }
  const int64_t nx = dims[0], ny = dims[1], nz = dims[2];
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++) {
        double p[3] = {aff[0][3] + i * o->vox_mm, aff[1][3] + j * o->vox_mm, aff[2][3] + k * o->vox_mm};
        double q[3];
        for (int a = 0; a < 3; a++) q[a] = p[a] * s.fov_scale[a] / s.scale[a];
        double pr[3] = {q[0], q[1], q[2]};
        for (int w = 0; w < NWAVE; w++) {
          double ph = s.wk[w][0] * pr[0] + s.wk[w][1] * pr[1] + s.wk[w][2] * pr[2] + s.wphi[w];
          double sn = sin(ph);
          for (int a = 0; a < 3; a++) q[a] += s.wamp[w][a] * sn;
        }
        int inside;
        float t = tissue(&s, q, &inside);
        double bias = 1 - s.bgrad * pr[2];
        for (int b = 0; b < 3; b++) bias += s.bamp[b] * sin(s.bk[b][0] * pr[0] + s.bk[b][1] * pr[1] + s.bk[b][2] * pr[2] + s.bphi[b]);
        int64_t idx = i + nx * (j + ny * k);
        img->data[idx] = (float)(t * bias);
        mask->data[idx] = inside ? 1.0f : 0.0f;
      }
  /* optical PSF: separable Gaussian, sigma 0.5 voxel */
  float kern[5];
  double ks = 0;
  for (int t = -2; t <= 2; t++) ks += (kern[t + 2] = (float)exp(-0.5 * t * t / 0.25));
  for (int t = 0; t < 5; t++) kern[t] = (float)(kern[t] / ks);
  int64_t n3[3] = {nx, ny, nz};
  for (int a = 0; a < 3; a++) blur_axis(img->data, n3, a, kern, 2);
  /* noise: counter-based Gaussian (Box-Muller on two hashed uniforms), clipped at 0 */
  const int64_t nv = nx * ny * nz;
#pragma omp parallel for schedule(static)
  for (int64_t v = 0; v < nv; v++) {
    uint64_t h = mbsr_seed_mix(s.noise_seed, (uint64_t)v);
    double u1 = (double)((h >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = u01(mbsr_seed_mix(h, 7));
    double g = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    float x = img->data[v] + (float)(s.noise_sigma * g);
    img->data[v] = x < 0 ? 0 : x;
  }
  img->src_min = 0;
  *img_out = img;
  if (mask_out) *mask_out = mask;
  else mbsr_volume_free(mask);
  return MBSR_OK;
}

int mbsr_exp_write_nifti_desc(const char *path, const mbsr_volume *v, const char *descrip) {
  mbsr_volume d = *v; /* a shallow copy (v's voxels and header metadata) with its own descrip */
  snprintf(d.meta.descrip, sizeof d.meta.descrip, "%.79s", descrip ? descrip : "");
  return mbsr_volume_write(path, &d);
}

int mbsr_phantom_cohort(const mbsr_phantom_opts *o, const char *dir) {
  int rc = mbsr_mkdir_p(dir);
  if (rc) return rc;
  if (o->n < 1 || o->n > 999) return mbsr_error(MBSR_EINVAL, "phantom: --n %d out of range 1..999", o->n);
  int um = (int)lround(o->vox_mm * 1000);
  double t0 = mbsr_now();
  for (int s = 0; s < o->n; s++) {
    double t1 = mbsr_now();
    mbsr_volume *img, *mask;
    rc = mbsr_phantom_subject(o, s, &img, &mask);
    if (rc) return rc;
    char p1[2048], p2[2048], desc[80];
    snprintf(p1, sizeof p1, "%s/phantom-%02d_af%dum.nii.gz", dir, s, um);
    snprintf(p2, sizeof p2, "%s/phantom-%02d_mask%dum.nii.gz", dir, s, um);
    snprintf(desc, sizeof desc, "SYNTHETIC mbsr phantom %02d seed %llu (not real data)", s, (unsigned long long)o->seed);
    rc = mbsr_exp_write_nifti_desc(p1, img, desc);
    if (!rc) {
      snprintf(desc, sizeof desc, "SYNTHETIC mbsr phantom %02d brain mask", s);
      rc = mbsr_exp_write_nifti_desc(p2, mask, desc);
    }
    mbsr_info("phantom: %d/%d %s (%lldx%lldx%lld, %.3g mm) %.1f s", s + 1, o->n, p1, (long long)img->nx,
              (long long)img->ny, (long long)img->nz, o->vox_mm, mbsr_now() - t1);
    mbsr_volume_free(img);
    mbsr_volume_free(mask);
    if (rc) return rc;
  }
  char rp[2048], tmp[2200];
  snprintf(rp, sizeof rp, "%s/SYNTHETIC-COHORT.txt", dir);
  if ((rc = mbsr_tmp_path(rp, tmp, sizeof tmp))) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", rp);
  fprintf(f,
          "SYNTHETIC DATA - NOT REAL MOUSE BRAINS.\n"
          "Generated by: mbsr phantom --n %d --seed %llu --vox %g%s\n"
          "mbsr %s. %d AF-like (auto-fluorescence) phantom volumes: ellipsoid brain (cerebrum,\n"
          "olfactory bulbs, cerebellum, brainstem), cortical laminae, cerebellar folia, a folded\n"
          "hippocampal band, tracts, nuclei, ventricles; per-subject deformation, bias field, noise.\n"
          "Files: phantom-XX_af%dum.nii.gz (image), phantom-XX_mask%dum.nii.gz (brain mask).\n",
          o->n, (unsigned long long)o->seed, o->vox_mm, o->dims[0] ? " --dims (custom)" : "", MBSR_VERSION, o->n, um, um);
  fclose(f);
  if ((rc = mbsr_commit_file(tmp, rp))) return rc;
  mbsr_info("phantom: %d SYNTHETIC subjects in %s (%.1f s)", o->n, dir, mbsr_now() - t0);
  return MBSR_OK;
}
