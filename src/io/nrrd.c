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
 *  - Geometry is validated (io_internal.h): a `space directions` entry that is "none" or not
 *    finite for a domain axis, a `spacings` value that is nan/0/inf, a non-finite `space origin`,
 *    all-zero or parallel directions are errors naming the file (allow_bad_geometry: substitute
 *    and warning). Fields that are absent mean 1 mm spacing / origin 0, with a read note.
 *  - `encoding: gzip` must be followed by a gzip stream: teem (like zlib's gzread) would read
 *    bytes without the gzip magic "transparently" as raw data.
 * The header is read first without the data (nrrdIoStateSkipData) so absurd sizes are refused
 * before anything is allocated. teem's biff messages become one line naming the file. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <teem/nrrd.h>

#include "io_internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang's spelling of gcc's __SANITIZE_ADDRESS__ */
#define MBSR__ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(MBSR__ASAN)
/* teem 1.12 does not close its gzip stream when a gzip payload ends early (_nrrdGzOpen state,
 * ~56 KB per failed read), and leaks header-parsing arrays on some malformed headers. Those are
 * teem's leaks, on error paths; keep LeakSanitizer quiet about them (weak, so that a program may
 * define its own suppressions). The allocations made inside zlib have no frame pointers: the
 * stacks reach libteem only with ASAN_OPTIONS=fast_unwind_on_malloc=0 (tests/fuzz/run.sh). */
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

/* The domain axes of a Nrrd (at most 3; other axes must have one sample) into axes; their count. */
static int domain_axes(const char *path, const Nrrd *n, int axes[3], int *ndomain) {
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
  *ndomain = nd;
  return 0;
}

/* Space units: honoured when given; otherwise a smallest spacing >= 5 is micrometres (Allen). */
static int scale_units(const char *path, const Nrrd *n, int nd, double A[4][4]) {
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
  return 0;
}

/* The Nrrd's space -> RAS. */
static void to_ras(const Nrrd *n, double A[4][4]) {
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
}

/* Geometry from a header-only Nrrd: dims, affine (mm RAS), element count check. */
static int nrrd_geometry(const char *path, const Nrrd *n, const NrrdIoState *nio, int allow, int64_t dims[3],
                         int axes[3], double A[4][4]) {
  int nd = 0, rc = domain_axes(path, n, axes, &nd);
  if (rc) return rc;
  memset(A, 0, 16 * sizeof(double));
  A[3][3] = 1;
  int defaulted = 0, nspacing = 0;
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
    if (!have) {
      if (nio->seen[nrrdField_spacings] || nio->seen[nrrdField_space_directions]) {
        /* given but unusable ("none"/nan direction, nan/inf/0 spacing): left as is, refused below */
        A[d][d] = isfinite(ax->spacing) ? ax->spacing : NAN;
        nspacing++;
      } else {
        A[d][d] = 1.0;
        defaulted = 1;
      }
    }
  }
  if (defaulted) mbsr__note("no 'space directions' or 'spacings': 1 mm voxels");
  /* padding columns (fewer than 3 domain axes): unit length orthogonal to the others */
  if (nd < 3) {
    for (int d = nd; d < 3; d++) {
      for (int r = 0; r < 3; r++) A[r][d] = 0;
      A[d][d] = 1;
    }
  }
  if (n->spaceDim > 0 && nio->seen[nrrdField_space_origin])
    for (unsigned r = 0; r < sdim; r++) A[r][3] = n->spaceOrigin[r]; /* non-finite: refused below */
  else if (n->spaceDim > 0)
    mbsr__note("no 'space origin': origin 0");

  if ((rc = scale_units(path, n, nd, A))) return rc;
  to_ras(n, A);
  const char *source = n->spaceDim == 0 ? "'spacings'"
                       : nspacing       ? "'space directions' / 'spacings' / 'space origin'"
                                        : "'space directions' / 'space origin'";
  return mbsr__check_geometry(path, A, source, allow);
}

/* teem allocates the whole array before it reads the data: a header claiming far more than its
 * data file can hold is refused first (one data file; its stream is at the payload). Bounds: raw
 * = the bytes themselves, hex = 2 characters per byte, ascii = at least 1 character per value,
 * gzip = deflate's ~1032:1; bzip2 has no useful bound. */
static int check_data_size(const char *path, const Nrrd *n, const NrrdIoState *nio) {
  if (!nio->dataFile) return MBSR_OK;
  struct stat st;
  long pos = ftell(nio->dataFile);
  if (fstat(fileno(nio->dataFile), &st) != 0 || pos < 0 || !S_ISREG(st.st_mode)) return MBSR_OK;
  long long have = (long long)st.st_size - pos, nel = (long long)nrrdElementNumber(n);
  long long need = nel * (long long)nrrdElementSize(n), skip = nio->byteSkip > 0 ? nio->byteSkip : 0;
  long long cap;
  const char *what;
  if (nio->encoding == nrrdEncodingRaw) cap = have, need += skip, what = "bytes";
  else if (nio->encoding == nrrdEncodingHex) cap = have / 2, what = "bytes (hex)";
  else if (nio->encoding == nrrdEncodingAscii) cap = have, need = nel, what = "characters for as many values";
  else if (nio->encoding == nrrdEncodingGzip) cap = have * 1032 + 4096, need += skip, what = "bytes after gzip";
  else return MBSR_OK;
  if (need > cap)
    return mbsr_error(MBSR_ETRUNC, "%s: truncated: the data holds %lld bytes, too few for the %lld %s the header needs",
                      path, have, need, what);
  return MBSR_OK;
}

/* 1 if the stream f (positioned at a payload) starts with the gzip magic; the caller reports. */
static int has_gzip_magic(FILE *f) {
  int a = fgetc(f), b = fgetc(f);
  return a == 0x1f && b == 0x8b;
}

/* `encoding: gzip`: every data file's payload (after `line skip`) must be a gzip stream. nio is
 * the state of a header-only load with keepNrrdDataFileOpen (one data file: nio->dataFile is
 * positioned at the payload; several: they are opened here, named as teem names them). */
static int check_gzip_payload(const char *path, NrrdIoState *nio) {
  if (nio->encoding != nrrdEncodingGzip) return MBSR_OK;
  if (nio->dataFile) {
    if (has_gzip_magic(nio->dataFile)) return MBSR_OK;
    if (nio->dataFNArr && nio->dataFNArr->len == 1 && !nio->dataFNFormat)
      return mbsr_error(MBSR_EFORMAT, "%s: 'encoding: gzip' but data file %s is not a gzip stream (no gzip magic)", path,
                        nio->dataFN[0]);
    return mbsr_error(MBSR_EFORMAT, "%s: 'encoding: gzip' but the data is not a gzip stream (no gzip magic)", path);
  }
  unsigned count = 0;
  if (nio->dataFNFormat) { /* a printf format from the file: exactly one %[0-9]*d, nothing else */
    int conv = 0;
    for (const char *c = nio->dataFNFormat; *c; c++) {
      if (*c != '%') continue;
      if (c[1] == '%') { c++; continue; }
      c++;
      while (*c >= '0' && *c <= '9') c++;
      if (*c != 'd' || conv++) return mbsr_error(MBSR_EFORMAT, "%s: bad data file pattern", path);
    }
    if (conv != 1) return mbsr_error(MBSR_EFORMAT, "%s: bad data file pattern", path);
    if (nio->dataFNStep == 0) return mbsr_error(MBSR_EFORMAT, "%s: data file step 0", path);
    long span = ((long)nio->dataFNMax - nio->dataFNMin) / nio->dataFNStep;
    if (span < 0 || span > (1 << 20)) return mbsr_error(MBSR_EFORMAT, "%s: bad data file range", path);
    count = (unsigned)span + 1;
  } else {
    count = nio->dataFNArr ? nio->dataFNArr->len : 0;
  }
  char name[4096], full[8192];
  for (unsigned i = 0; i < count; i++) {
    if (nio->dataFNFormat) snprintf(name, sizeof name, nio->dataFNFormat, nio->dataFNMin + (int)i * nio->dataFNStep);
    else snprintf(name, sizeof name, "%s", nio->dataFN[i]);
    if (name[0] == '/' || !nio->path || !nio->path[0]) snprintf(full, sizeof full, "%s", name);
    else snprintf(full, sizeof full, "%s/%s", nio->path, name);
    FILE *f = fopen(full, "rb");
    if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open data file %s", path, full);
    int ok = nrrdLineSkip(f, nio) == 0 && has_gzip_magic(f);
    fclose(f);
    if (!ok)
      return mbsr_error(MBSR_EFORMAT, "%s: 'encoding: gzip' but data file %s is not a gzip stream (no gzip magic)", path,
                        full);
  }
  return MBSR_OK;
}

int mbsr_nrrd_read(const char *path, mbsr_volume **out) { return mbsr__nrrd_read(path, 0, out); }

int mbsr__nrrd_read(const char *path, int allow_bad_geometry, mbsr_volume **out) {
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
  nrrdIoStateSet(nio, nrrdIoStateKeepNrrdDataFileOpen, AIR_TRUE);
  if (nrrdLoad(n, path, nio)) {
    nio->dataFile = NULL; /* on failure teem has closed it (or never kept it) */
    rc = teem_error(MBSR_EFORMAT, path, "bad NRRD header: ");
    goto done;
  }
  rc = nrrd_geometry(path, n, nio, allow_bad_geometry, dims, axes, A);
  if (!rc) rc = check_data_size(path, n, nio); /* before the magic is read: the stream is at the payload */
  if (!rc) rc = check_gzip_payload(path, nio);
  if (rc) goto done;
  int dt = nrrd_to_dt(n->type);
  if (!dt) {
    rc = mbsr_error(MBSR_EUNSUPPORTED, "%s: unsupported NRRD type '%s'", path, airEnumStr(nrrdType, n->type));
    goto done;
  }
  /* 2: the data */
  if (nio->dataFile) fclose(nio->dataFile);
  nio->dataFile = NULL;
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
  if (nio && nio->dataFile) fclose(nio->dataFile);
  if (nio) nrrdIoStateNix(nio);
  pthread_mutex_unlock(&g_teem_lock);
  return rc;
}
