/* NRRD (.nrrd, detached .nhdr + data) through teem's libnrrd (Debian libteem-dev): raw, gzip,
 * bzip2, ascii and hex encodings, every scalar type, either endianness, are teem's work. Here:
 * geometry and units.
 *
 *  - Affine columns: `space directions` of the domain axes (else `spacings`, else 1), origin
 *    `space origin` (else 0). `space` LPS / scanner-xyz: x and y rows negated (LPS -> RAS);
 *    LAS: x negated; RAS / 3D-right-handed / no space: taken as is.
 *  - Units: `space units` honoured (mm, um/micron, m, cm). Without `space units`, a grid whose
 *    smallest spacing is >= 5 is taken to be in micrometres (the Allen Institute writes its CCF
 *    files in um without saying so: 10, 25, 50, 100); below 5 the numbers are taken as mm.
 *  - Non-domain axes (vector, RGB, list ...) are accepted only with size 1.
 * The header is read first without the data (nrrdIoStateSkipData) so absurd sizes are refused
 * before anything is allocated. teem's biff messages become one line naming the file. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <teem/nrrd.h>

#include "io_internal.h"

#if defined(__SANITIZE_ADDRESS__)
/* teem 1.12 does not close its gzip stream when a gzip payload ends early (_nrrdGzOpen state,
 * ~56 KB per failed read). That is teem's leak, on an error path; keep LeakSanitizer quiet about
 * it (weak, so that a program may define its own suppressions). */
__attribute__((weak)) const char *__lsan_default_suppressions(void) { return "leak:_nrrdGzOpen\nleak:libteem.so\n"; }
#endif

/* teem's biff error stacks are global state: one teem call at a time. */
static pthread_mutex_t g_teem_lock = PTHREAD_MUTEX_INITIALIZER;

/* The most specific line of teem's error stack (the last non-empty one), without "[nrrd] fn: ". */
static int teem_error(int code, const char *path, const char *context) {
  char *e = biffGetDone(NRRD);
  char line[512] = "unreadable NRRD";
  if (e) {
    char *save = NULL;
    for (char *tok = strtok_r(e, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
      char *p = tok;
      if (!strncmp(p, "[nrrd] ", 7)) p += 7;
      char *colon = strstr(p, ": ");
      if (colon && colon - p < 40 && !memchr(p, ' ', (size_t)(colon - p))) p = colon + 2;
      while (*p == ' ') p++;
      if (*p) snprintf(line, sizeof line, "%s", p);
    }
    free(e);
  }
  return mbsr_error(code, "%s: %s%s", path, context, line);
}

static int nrrd_to_dt(int t) {
  switch (t) {
    case nrrdTypeChar: return MBSR__DT_INT8;
    case nrrdTypeUChar: return MBSR__DT_UINT8;
    case nrrdTypeShort: return MBSR__DT_INT16;
    case nrrdTypeUShort: return MBSR__DT_UINT16;
    case nrrdTypeInt: return MBSR__DT_INT32;
    case nrrdTypeUInt: return MBSR__DT_UINT32;
    case nrrdTypeLLong: return MBSR__DT_INT64;
    case nrrdTypeULLong: return MBSR__DT_UINT64;
    case nrrdTypeFloat: return MBSR__DT_FLOAT32;
    case nrrdTypeDouble: return MBSR__DT_FLOAT64;
  }
  return 0;
}

static int is_domain_kind(int k) {
  return k == nrrdKindUnknown || k == nrrdKindDomain || k == nrrdKindSpace || k == nrrdKindTime;
}

/* mm per unit, or 0 if not recognised */
static double unit_scale(const char *u) {
  if (!u || !u[0]) return 0;
  if (!strcasecmp(u, "mm") || !strncasecmp(u, "millimet", 8)) return 1;
  if (!strcasecmp(u, "um") || !strcasecmp(u, "\xc2\xb5m") || !strncasecmp(u, "micron", 6) || !strncasecmp(u, "micromet", 8))
    return 1e-3;
  if (!strcasecmp(u, "cm") || !strncasecmp(u, "centimet", 8)) return 10;
  if (!strcasecmp(u, "m") || !strncasecmp(u, "meter", 5) || !strncasecmp(u, "metre", 5)) return 1e3;
  if (!strcasecmp(u, "nm") || !strncasecmp(u, "nanomet", 7)) return 1e-6;
  return 0;
}

/* Geometry from a header-only Nrrd: dims, affine (mm RAS), element count check. */
static int nrrd_geometry(const char *path, const Nrrd *n, int64_t dims[3], int axes[3], double A[4][4]) {
  if (n->dim < 1 || n->dim > 16) return mbsr_error(MBSR_EFORMAT, "%s: bad dimension %u", path, n->dim);
  int nd = 0;
  int64_t total = 1;
  for (unsigned a = 0; a < n->dim; a++) {
    size_t sz = n->axis[a].size;
    if (sz < 1) return mbsr_error(MBSR_EFORMAT, "%s: axis %u has size 0", path, a);
    if (__builtin_mul_overflow(total, (int64_t)sz, &total) || total > MBSR_MAX_VOXELS)
      return mbsr_error(MBSR_ERANGE, "%s: absurd sizes (more than %lld samples)", path, (long long)MBSR_MAX_VOXELS);
    if (is_domain_kind(n->axis[a].kind)) {
      if (nd == 3) {
        if (sz == 1) continue;
        return mbsr_error(MBSR_EUNSUPPORTED, "%s: more than 3 domain axes (axis %u has size %zu)", path, a, sz);
      }
      axes[nd++] = (int)a;
    } else if (sz != 1) {
      return mbsr_error(MBSR_EUNSUPPORTED, "%s: axis %u is of kind '%s' with %zu samples; mbsr reads scalar volumes",
                        path, a, airEnumStr(nrrdKind, n->axis[a].kind), sz);
    }
  }
  if (nd == 0) return mbsr_error(MBSR_EFORMAT, "%s: no domain axis", path);
  memset(A, 0, 16 * sizeof(double));
  A[3][3] = 1;
  unsigned sdim = n->spaceDim;
  if (sdim > 3) sdim = 3;
  for (int d = 0; d < 3; d++) {
    if (d >= nd) {
      dims[d] = 1;
      axes[d] = -1;
      A[d][d] = 1;
      continue;
    }
    const NrrdAxisInfo *ax = &n->axis[axes[d]];
    dims[d] = (int64_t)ax->size;
    int have = 0;
    if (n->spaceDim > 0) {
      have = 1;
      for (unsigned r = 0; r < sdim; r++) have &= isfinite(ax->spaceDirection[r]);
      if (have)
        for (unsigned r = 0; r < sdim; r++) A[r][d] = ax->spaceDirection[r];
    }
    if (!have) A[d][d] = isfinite(ax->spacing) && ax->spacing != 0 ? ax->spacing : 1.0;
  }
  /* padding columns (fewer than 3 domain axes): unit length orthogonal to the others */
  if (nd < 3) {
    for (int d = nd; d < 3; d++) {
      for (int r = 0; r < 3; r++) A[r][d] = 0;
      A[d][d] = 1;
    }
  }
  if (n->spaceDim > 0)
    for (unsigned r = 0; r < sdim; r++) A[r][3] = isfinite(n->spaceOrigin[r]) ? n->spaceOrigin[r] : 0;

  /* units */
  double us = 0;
  const char *uname = NULL;
  if (n->spaceDim > 0 && n->spaceUnits[0] && n->spaceUnits[0][0]) {
    uname = n->spaceUnits[0];
    us = unit_scale(uname);
    if (us == 0) return mbsr_error(MBSR_EUNSUPPORTED, "%s: unknown space units \"%s\"", path, uname);
    mbsr__note("space units \"%s\" honoured", uname);
  } else {
    double smin = INFINITY;
    for (int d = 0; d < nd; d++) {
      double len = sqrt(A[0][d] * A[0][d] + A[1][d] * A[1][d] + A[2][d] * A[2][d]);
      smin = fmin(smin, len);
    }
    if (smin >= 5) {
      us = 1e-3;
      mbsr__note("no 'space units': smallest spacing %g >= 5 taken as micrometres (Allen convention)", smin);
    } else {
      us = 1;
      mbsr__note("no 'space units': smallest spacing %g < 5 taken as mm", smin);
    }
  }
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) A[r][c] *= us;

  /* space -> RAS */
  int sp = n->space;
  if (sp == nrrdSpaceLeftPosteriorSuperior || sp == nrrdSpaceLeftPosteriorSuperiorTime || sp == nrrdSpaceScannerXYZ ||
      sp == nrrdSpaceScannerXYZTime) {
    for (int c = 0; c < 4; c++) A[0][c] = -A[0][c], A[1][c] = -A[1][c];
    mbsr__note("space %s converted to RAS", airEnumStr(nrrdSpace, sp));
  } else if (sp == nrrdSpaceLeftAnteriorSuperior || sp == nrrdSpaceLeftAnteriorSuperiorTime) {
    for (int c = 0; c < 4; c++) A[0][c] = -A[0][c];
    mbsr__note("space %s converted to RAS", airEnumStr(nrrdSpace, sp));
  } else if (sp == nrrdSpaceRightAnteriorSuperior || sp == nrrdSpaceRightAnteriorSuperiorTime ||
             sp == nrrdSpace3DRightHanded) {
    /* already RAS */
  } else if (n->spaceDim > 0) {
    mbsr__note("space '%s' taken as RAS", sp ? airEnumStr(nrrdSpace, sp) : "(unnamed)");
  } else {
    mbsr__note("no 'space': affine from spacings, taken as RAS");
  }
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) A[r][c] += 0.0; /* no -0 from the negations */
  return MBSR_OK;
}

int mbsr_nrrd_read(const char *path, mbsr_volume **out) {
  *out = NULL;
  if (!mbsr_file_exists(path)) return mbsr_error(MBSR_EIO, "%s: no such file", path);
  int64_t dims[3];
  int axes[3];
  double A[4][4];
  int rc;
  pthread_mutex_lock(&g_teem_lock);
  nrrdStateVerboseIO = 0;
  Nrrd *n = nrrdNew();
  NrrdIoState *nio = nrrdIoStateNew();
  if (!n || !nio) {
    pthread_mutex_unlock(&g_teem_lock);
    nrrdNuke(n);
    nrrdIoStateNix(nio);
    return mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  }
  /* 1: header only */
  nrrdIoStateSet(nio, nrrdIoStateSkipData, AIR_TRUE);
  if (nrrdLoad(n, path, nio)) {
    rc = teem_error(MBSR_EFORMAT, path, "bad NRRD header: ");
    goto done;
  }
  rc = nrrd_geometry(path, n, dims, axes, A);
  if (rc) goto done;
  int dt = nrrd_to_dt(n->type);
  if (!dt) {
    rc = mbsr_error(MBSR_EUNSUPPORTED, "%s: unsupported NRRD type '%s'", path, airEnumStr(nrrdType, n->type));
    goto done;
  }
  /* 2: the data */
  nrrdIoStateNix(nio);
  nio = NULL;
  nrrdNuke(n);
  n = nrrdNew();
  if (!n) {
    rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  if (nrrdLoad(n, path, NULL)) {
    rc = teem_error(MBSR_ETRUNC, path, "truncated or corrupt data: ");
    goto done;
  }
  if (nrrd_to_dt(n->type) != dt || !n->data) {
    rc = mbsr_error(MBSR_EFORMAT, "%s: header changed between reads", path);
    goto done;
  }
  mbsr_volume *v = mbsr_volume_new(dims[0], dims[1], dims[2], NULL, A);
  if (!v) {
    rc = mbsr_error_prefix(MBSR_ENOMEM, "%s: ", path);
    goto done;
  }
  rc = mbsr__convert(v->data, n->data, mbsr_volume_nvox(v), dt, 1, 0, &v->src_min, &v->src_max);
  if (rc) {
    mbsr_volume_free(v);
    rc = mbsr_error_prefix(rc, "%s: ", path);
    goto done;
  }
  v->src_dtype = dt;
  snprintf(v->src_format, sizeof v->src_format, "nrrd");
  *out = v;
done:
  nrrdNuke(n);
  if (nio) nrrdIoStateNix(nio);
  pthread_mutex_unlock(&g_teem_lock);
  return rc;
}
