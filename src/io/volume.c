/* The in-memory volume type (float32 voxels, 64-bit dims, voxel-to-world affine in mm, RAS+),
 * its helpers, and the reader dispatch by file name. Formats live in nifti.c, nrrd.c, tiff.c
 * (and mhd.c). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io_internal.h"


/* ---- read notes: what a reader interpreted (units rule, 4-D, scaling), for `mbsr info` ---- */
static _Thread_local char g_notes[1024];

void mbsr__notes_clear(void) { g_notes[0] = 0; }

void mbsr__note(const char *fmt, ...) {
  size_t len = strlen(g_notes);
  if (len + 3 >= sizeof g_notes) return;
  if (len) {
    memcpy(g_notes + len, "; ", 3);
    len += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_notes + len, sizeof g_notes - len, fmt, ap);
  va_end(ap);
}

const char *mbsr_volume_read_notes(void) { return g_notes; }

/* ---- type helpers ---- */
static void diag_affine(double A[4][4], const double vox[3]) {
  memset(A, 0, 16 * sizeof(double));
  for (int a = 0; a < 3; a++) A[a][a] = vox[a];
  A[3][3] = 1;
}

mbsr_volume *mbsr_volume_new(int64_t nx, int64_t ny, int64_t nz, const double vox[3], const double affine[4][4]) {
  if (nx < 1 || ny < 1 || nz < 1) {
    mbsr_error(MBSR_ERANGE, "volume dims %lldx%lldx%lld: every dimension must be >= 1", (long long)nx,
               (long long)ny, (long long)nz);
    return NULL;
  }
  int64_t n;
  if (__builtin_mul_overflow(nx, ny, &n) || __builtin_mul_overflow(n, nz, &n) || n > MBSR_MAX_VOXELS) {
    mbsr_error(MBSR_ERANGE, "volume dims %lldx%lldx%lld: too many voxels (limit %lld)", (long long)nx,
               (long long)ny, (long long)nz, (long long)MBSR_MAX_VOXELS);
    return NULL;
  }
  mbsr_volume *v = calloc(1, sizeof *v);
  if (!v) {
    mbsr_error(MBSR_ENOMEM, "out of memory");
    return NULL;
  }
  v->data = mbsr_alloc((size_t)n * sizeof(float));
  if (!v->data) {
    free(v);
    mbsr_error(MBSR_ENOMEM, "volume %lldx%lldx%lld: cannot allocate %.1f MiB", (long long)nx, (long long)ny,
               (long long)nz, (double)n * 4 / 1048576.0);
    return NULL;
  }
  v->nx = nx;
  v->ny = ny;
  v->nz = nz;
  static const double one[3] = {1, 1, 1};
  if (!vox) vox = one;
  if (affine) {
    memcpy(v->affine, affine, sizeof v->affine);
    mbsr_volume_update_vox(v);
  } else {
    diag_affine(v->affine, vox);
    memcpy(v->vox, vox, sizeof v->vox);
  }
  v->src_dtype = 16;
  snprintf(v->src_format, sizeof v->src_format, "mbsr");
  v->meta.sform_code = v->meta.qform_code = 1; /* NIFTI_XFORM_SCANNER_ANAT */
  v->meta.xyz_units = 2;                       /* NIFTI_UNITS_MM */
  v->meta.time_units = 8;                      /* NIFTI_UNITS_SEC */
  v->meta.scl_slope = 1;
  v->meta.nvol = 1;
  return v;
}

mbsr_volume *mbsr_volume_new_like(const mbsr_volume *ref) {
  mbsr_volume *v = mbsr_volume_new(ref->nx, ref->ny, ref->nz, ref->vox, ref->affine);
  if (v) {
    memcpy(v->vox, ref->vox, sizeof v->vox);
    v->meta = ref->meta;
  }
  return v;
}

void mbsr_volume_keep_space(mbsr_volume *dst, const mbsr_volume *src) {
  const mbsr_volume_meta *s = &src->meta;
  mbsr_volume_meta *d = &dst->meta;
  d->sform_code = s->sform_code;
  d->qform_code = s->qform_code;
  d->xyz_units = s->xyz_units;
  d->time_units = s->time_units;
  d->intent_code = 0;
  memset(d->intent_p, 0, sizeof d->intent_p);
  d->intent_name[0] = d->descrip[0] = 0;
}

const char *mbsr_xform_name(int code) {
  static const char *names[] = {"unknown", "scanner", "aligned", "talairach", "mni", "template"};
  return code >= 0 && code <= 5 ? names[code] : "invalid";
}

mbsr_volume *mbsr_volume_clone(const mbsr_volume *src) {
  mbsr_volume *v = mbsr_volume_new_like(src);
  if (!v) return NULL;
  memcpy(v->data, src->data, (size_t)mbsr_volume_nvox(src) * sizeof(float));
  v->src_dtype = src->src_dtype;
  memcpy(v->src_format, src->src_format, sizeof v->src_format);
  v->src_min = src->src_min;
  v->src_max = src->src_max;
  return v;
}

void mbsr_volume_free(mbsr_volume *v) {
  if (!v) return;
  mbsr_free(v->data);
  free(v);
}

void mbsr_volume_update_vox(mbsr_volume *v) {
  for (int a = 0; a < 3; a++)
    v->vox[a] = sqrt(v->affine[0][a] * v->affine[0][a] + v->affine[1][a] * v->affine[1][a] +
                     v->affine[2][a] * v->affine[2][a]);
}

int mbsr_volume_same_grid(const mbsr_volume *a, const mbsr_volume *b, double tol) {
  if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz) return 0;
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++)
      if (!(fabs(a->affine[r][c] - b->affine[r][c]) <= tol)) return 0;
  return 1;
}

int mbsr_volume_check_same_grid(const mbsr_volume *a, const char *name_a, const mbsr_volume *b, const char *name_b) {
  if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz)
    return mbsr_error(MBSR_EMISMATCH, "%s (%lldx%lldx%lld) and %s (%lldx%lldx%lld): different dimensions", name_a,
                      (long long)a->nx, (long long)a->ny, (long long)a->nz, name_b, (long long)b->nx,
                      (long long)b->ny, (long long)b->nz);
  /* tolerance: 1e-3 of the smallest voxel size (float32 affines in NIfTI-1 headers) */
  double vmin = fmin(fmin(a->vox[0], a->vox[1]), a->vox[2]);
  double tol = 1e-3 * (vmin > 0 ? vmin : 1);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!(fabs(a->affine[r][c] - b->affine[r][c]) <= tol))
        return mbsr_error(MBSR_EMISMATCH, "%s and %s: different grids (affine[%d][%d] %.6g vs %.6g)", name_a, name_b,
                          r, c, a->affine[r][c], b->affine[r][c]);
  return MBSR_OK;
}

int mbsr_volume_check_finite(const mbsr_volume *v, const char *name) {
  int64_t n = mbsr_volume_nvox(v), bad = -1;
  const float *d = v->data;
  /* fast pass without branches; locate only when something is found */
  int any = 0;
#pragma omp parallel for reduction(| : any) schedule(static) if (n > (1 << 22))
  for (int64_t i = 0; i < n; i++) any |= !isfinite(d[i]);
  if (!any) return MBSR_OK;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(d[i])) {
      bad = i;
      break;
    }
  int64_t i = bad % v->nx, j = (bad / v->nx) % v->ny, k = bad / (v->nx * v->ny);
  return mbsr_error(MBSR_ENONFINITE, "%s: %s value at voxel (%lld,%lld,%lld)", name ? name : "volume",
                    isnan(d[bad]) ? "NaN" : "Inf", (long long)i, (long long)j, (long long)k);
}

void mbsr_volume_minmax(const mbsr_volume *v, float *mn, float *mx) {
  int64_t n = mbsr_volume_nvox(v);
  float lo = INFINITY, hi = -INFINITY;
  const float *d = v->data;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) schedule(static) if (n > (1 << 22))
  for (int64_t i = 0; i < n; i++) {
    float x = d[i];
    lo = x < lo ? x : lo; /* NaN never wins */
    hi = x > hi ? x : hi;
  }
  if (mn) *mn = lo;
  if (mx) *mx = hi;
}

/* ---- geometry validation (see io_internal.h) ---- */
static double col_len(const double A[4][4], int a) {
  double m = fmax(fabs(A[0][a]), fmax(fabs(A[1][a]), fabs(A[2][a])));
  if (!(m > 0) || !isfinite(m)) return m; /* 0, NaN or Inf */
  double x = A[0][a] / m, y = A[1][a] / m, z = A[2][a] / m;
  return m * sqrt(x * x + y * y + z * z);
}

const char *mbsr__affine_problem(const double A[4][4], char *buf, size_t n) {
  static const char *axis[3] = {"i (columns)", "j (rows)", "k (slices)"};
  buf[0] = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!isfinite(A[r][c]) || fabs(A[r][c]) > MBSR__GEOM_MAX) {
        double x = isnan(A[r][c]) ? NAN : A[r][c]; /* "nan", not "-nan" after an LPS flip */
        if (c == 3) snprintf(buf, n, "the origin (row %d) is %g", r, x);
        else snprintf(buf, n, "affine[%d][%d] is %g", r, c, x);
        return buf;
      }
  double u[3][3];
  for (int a = 0; a < 3; a++) {
    double len = col_len(A, a);
    if (!(len >= MBSR__VOX_MIN)) {
      snprintf(buf, n, "the voxel size along %s is %g mm", axis[a], len);
      return buf;
    }
    for (int r = 0; r < 3; r++) u[r][a] = A[r][a] / len;
  }
  double det = u[0][0] * (u[1][1] * u[2][2] - u[1][2] * u[2][1]) - u[0][1] * (u[1][0] * u[2][2] - u[1][2] * u[2][0]) +
               u[0][2] * (u[1][0] * u[2][1] - u[1][1] * u[2][0]);
  if (!(fabs(det) >= 1e-6)) snprintf(buf, n, "singular: the voxel axes are (nearly) coplanar (det of unit axes %.3g)", det);
  return buf;
}

int mbsr__check_geometry(const char *path, double A[4][4], const char *source, int allow) {
  char why[256];
  if (!mbsr__affine_problem((const double(*)[4])A, why, sizeof why)[0]) return MBSR_OK;
  if (!allow)
    return mbsr_error(MBSR_EFORMAT, "%s: bad geometry in %s: %s (fix the header; `mbsr convert --allow-bad-geometry` "
                                    "writes a copy with a substitute)",
                      path, source, why);
  double B[4][4];
  memset(B, 0, sizeof B);
  B[3][3] = 1;
  for (int a = 0; a < 3; a++) {
    double len = col_len(A, a);
    B[a][a] = len >= MBSR__VOX_MIN && len <= MBSR__GEOM_MAX ? len : 1.0;
  }
  for (int r = 0; r < 3; r++) B[r][3] = isfinite(A[r][3]) && fabs(A[r][3]) <= MBSR__GEOM_MAX ? A[r][3] : 0.0;
  memcpy(A, B, sizeof B);
  mbsr_warn("%s: bad geometry in %s: %s; read with the substitute diag(%g, %g, %g) mm, origin (%g, %g, %g) "
            "(--allow-bad-geometry)",
            path, source, why, B[0][0], B[1][1], B[2][2], B[0][3], B[1][3], B[2][3]);
  mbsr__note("bad geometry in %s (%s) replaced by diag(%g, %g, %g) mm", source, why, B[0][0], B[1][1], B[2][2]);
  return MBSR_OK;
}

/* ---- dispatch ---- */
static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcasecmp(s + a - b, suf) == 0;
}

static int read_dispatch(const char *path, const mbsr_read_opts *opts, mbsr_volume **out);

int mbsr_volume_read(const char *path, const mbsr_read_opts *opts, mbsr_volume **out) {
  int rc = read_dispatch(path, opts, out);
  if (rc == 0 && opts && opts->volume_given && opts->volume != (*out)->meta.vol_index) { /* a one-volume format */
    rc = mbsr_error(MBSR_ERANGE, "%s: volume %lld asked for, but the file holds one volume (0)", path, (long long)opts->volume);
    mbsr_volume_free(*out);
    *out = NULL;
  }
  if (rc == 0) {
    const mbsr_volume *v = *out;
    int integer = v->src_dtype != MBSR__DT_FLOAT32 && v->src_dtype != MBSR__DT_FLOAT64;
    if (integer && (v->src_max > 16777216.0 || v->src_min < -16777216.0))
      mbsr__note("integer values beyond 2^24 are rounded to float32 (large label ids may merge)");
  }
  return rc;
}

int mbsr_volume_read_series(const char *path, const mbsr_read_opts *opts, mbsr_volume ***vols, int64_t *n) {
  *vols = NULL;
  *n = 0;
  if (path && (ends_with(path, ".nii") || ends_with(path, ".nii.gz"))) {
    mbsr__notes_clear();
    return mbsr__nifti_read_series(path, opts, vols, n);
  }
  mbsr_read_opts o;
  memset(&o, 0, sizeof o);
  if (opts) o = *opts;
  o.volume_given = 0;
  mbsr_volume **a = malloc(sizeof *a);
  if (!a) return mbsr_error(MBSR_ENOMEM, "out of memory");
  int rc = mbsr_volume_read(path, &o, &a[0]);
  if (rc) {
    free(a);
    return rc;
  }
  *vols = a;
  *n = 1;
  return MBSR_OK;
}

void mbsr_volume_series_free(mbsr_volume **vols, int64_t n) {
  if (!vols) return;
  for (int64_t t = 0; t < n; t++) mbsr_volume_free(vols[t]);
  free(vols);
}

static int read_dispatch(const char *path, const mbsr_read_opts *opts, mbsr_volume **out) {
  *out = NULL;
  mbsr__notes_clear();
  if (!path || !path[0]) return mbsr_error(MBSR_EINVAL, "empty input path");
  if (mbsr_is_dir(path) || ends_with(path, ".tif") || ends_with(path, ".tiff")) return mbsr_tiff_read(path, opts, out);
  int allow = opts && opts->allow_bad_geometry;
  if (ends_with(path, ".nrrd") || ends_with(path, ".nhdr")) return mbsr__nrrd_read(path, allow, out);
  if (ends_with(path, ".mhd") || ends_with(path, ".mha")) return mbsr__mhd_read(path, allow, out); /* src/io/mhd.c */
  if (ends_with(path, ".nii") || ends_with(path, ".nii.gz")) return mbsr__nifti_read(path, opts, out);
  if (!mbsr_file_exists(path)) return mbsr_error(MBSR_EIO, "%s: no such file or directory", path);
  return mbsr_error(MBSR_EUNSUPPORTED,
                    "%s: unknown volume format (expected .nii, .nii.gz, .nrrd, .nhdr, .mhd/.mha, .tif/.tiff or a directory "
                    "of TIFF slices)",
                    path);
}
