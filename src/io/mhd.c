/* MetaImage reader (.mhd header + .raw / .zraw data, or .mha with ElementDataFile = LOCAL), as
 * ITK / the Allen Institute write it.
 *  - Keys (case-insensitive): NDims (2 or 3), DimSize, ElementType (MET_UCHAR ... MET_DOUBLE,
 *    MET_[U]LONG_LONG), ElementSpacing (else ElementSize, else 1), Offset / Origin / Position,
 *    TransformMatrix / Rotation / Orientation (the direction of image axis a is entries
 *    3a..3a+2, as itk::MetaImageIO reads it), BinaryDataByteOrderMSB / ElementByteOrderMSB,
 *    CompressedData (zlib or gzip stream), HeaderSize (-1 = data at the end of the file),
 *    ElementNumberOfChannels (must be 1: mbsr reads scalar volumes), ElementDataFile (last key:
 *    a file name relative to the header, or LOCAL).
 *  - World space is ITK's LPS: x and y rows of the affine are negated (LPS -> RAS), as for NRRD.
 *  - Units: MetaImage has no unit field. As in nrrd.c, a smallest spacing >= 5 is taken as
 *    micrometres (Allen files: 10, 25, 50, 100 um) and anything smaller as mm.
 *  - Geometry is validated (io_internal.h): a TransformMatrix that is all zero, singular or
 *    not finite, a non-finite Offset, a spacing <= 0: error naming the file (allow_bad_geometry:
 *    substitute and warning). Numeric fields must be numbers (a short or garbled list is an error).
 *  - Sizes are checked before they are multiplied (DimSize, HeaderSize, CompressedDataSize). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io_internal.h"

typedef struct {
  int ndims, nch, msb, compressed, have_dt;
  int64_t dims[3];
  double spacing[3], origin[3], dir[9];
  long long header_size, compressed_size;
  int dt;
  size_t esize;
  char datafile[1024];
} mhd_header;

static int parse_doubles(const char *s, double *v, int n) {
  char *end;
  for (int i = 0; i < n; i++) {
    v[i] = strtod(s, &end);
    if (end == s) return i;
    s = end;
  }
  return n;
}

/* One integer value in [lo, hi] (whole value, surrounding blanks allowed); MBSR_EFORMAT if not (the caller names the key). */
static int parse_ll(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  while (*end == ' ' || *end == '\t') end++;
  if (end == s || *end || errno || x < lo || x > hi) return MBSR_EFORMAT;
  *out = x;
  return 0;
}

static int elem_type(const char *s, int *dt, size_t *es) {
  static const struct { const char *name; int dt; size_t es; } t[] = {
      {"MET_UCHAR", MBSR__DT_UINT8, 1},   {"MET_CHAR", MBSR__DT_INT8, 1},       {"MET_USHORT", MBSR__DT_UINT16, 2},
      {"MET_SHORT", MBSR__DT_INT16, 2},   {"MET_UINT", MBSR__DT_UINT32, 4},     {"MET_INT", MBSR__DT_INT32, 4},
      {"MET_FLOAT", MBSR__DT_FLOAT32, 4}, {"MET_DOUBLE", MBSR__DT_FLOAT64, 8},  {"MET_ULONG_LONG", MBSR__DT_UINT64, 8},
      {"MET_LONG_LONG", MBSR__DT_INT64, 8}};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (!strcasecmp(s, t[i].name)) {
      *dt = t[i].dt;
      *es = t[i].es;
      return 0;
    }
  return MBSR_EUNSUPPORTED;
}

static int is_true(const char *v) { return !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"); }

/* Reads the header; *data_off = byte offset after it (for LOCAL data). */
static int read_header(const char *path, FILE *f, mhd_header *h, long *data_off) {
  memset(h, 0, sizeof *h);
  h->nch = 1;
  h->header_size = 0;
  for (int a = 0; a < 3; a++) {
    h->spacing[a] = 1;
    h->dims[a] = 1;
    h->dir[4 * a] = 1;
  }
  char line[4096];
  int lineno = 0, have_dims = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t l = strlen(line);
    if (l == sizeof line - 1 && line[l - 1] != '\n') return mbsr_error(MBSR_EFORMAT, "%s: header line %d too long", path, lineno);
    while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
    if (l == 0) continue;
    char *eq = strchr(line, '=');
    if (!eq) return mbsr_error(MBSR_EFORMAT, "%s: line %d: expected 'Key = Value'", path, lineno);
    char *k = line, *v = eq + 1;
    char *ke = eq;
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    *ke = 0;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(k, "NDims")) {
      long long nd;
      if (parse_ll(v, 2, 3, &nd))
        return mbsr_error(MBSR_EUNSUPPORTED, "%s: NDims = %.40s (mbsr reads 2-D or 3-D images)", path, v);
      h->ndims = (int)nd;
    } else if (!strcasecmp(k, "DimSize")) {
      double d[3] = {1, 1, 1};
      int n = parse_doubles(v, d, 3);
      for (int a = 0; a < n; a++) { /* bounded before the conversion to int64 and the product */
        if (!(d[a] >= 1) || d[a] != floor(d[a])) return mbsr_error(MBSR_EFORMAT, "%s: bad DimSize '%s'", path, v);
        if (d[a] > (double)MBSR_MAX_VOXELS) return mbsr_error(MBSR_ERANGE, "%s: absurd DimSize '%s'", path, v);
        h->dims[a] = (int64_t)d[a];
      }
      have_dims = n;
    } else if (!strcasecmp(k, "ElementSpacing") || (!strcasecmp(k, "ElementSize") && h->spacing[0] == 1)) {
      int n = parse_doubles(v, h->spacing, 3);
      if (n < (h->ndims ? h->ndims : 1)) return mbsr_error(MBSR_EFORMAT, "%s: bad %s '%s'", path, k, v);
      for (int a = 0; a < n; a++)
        if (!(h->spacing[a] > 0) || !isfinite(h->spacing[a])) return mbsr_error(MBSR_EFORMAT, "%s: bad %s '%s'", path, k, v);
    } else if (!strcasecmp(k, "Offset") || !strcasecmp(k, "Origin") || !strcasecmp(k, "Position")) {
      int nd = h->ndims ? h->ndims : 3;
      if (parse_doubles(v, h->origin, nd) != nd) return mbsr_error(MBSR_EFORMAT, "%s: %s needs %d numbers: '%s'", path, k, nd, v);
    } else if (!strcasecmp(k, "TransformMatrix") || !strcasecmp(k, "Rotation") || !strcasecmp(k, "Orientation")) {
      double m[9];
      int nd = h->ndims ? h->ndims : 3;
      int n = parse_doubles(v, m, nd * nd);
      if (n != nd * nd) return mbsr_error(MBSR_EFORMAT, "%s: %s needs %d numbers: '%s'", path, k, nd * nd, v);
      memset(h->dir, 0, sizeof h->dir);
      for (int a = 0; a < 3; a++) h->dir[4 * a] = 1;
      for (int a = 0; a < nd; a++)
        for (int r = 0; r < nd; r++) h->dir[3 * a + r] = m[nd * a + r];
    } else if (!strcasecmp(k, "ElementType")) {
      if (elem_type(v, &h->dt, &h->esize)) return mbsr_error(MBSR_EUNSUPPORTED, "%s: ElementType %s", path, v);
      h->have_dt = 1;
    } else if (!strcasecmp(k, "ElementNumberOfChannels")) {
      long long c;
      if (parse_ll(v, 1, 1 << 20, &c)) return mbsr_error(MBSR_EFORMAT, "%s: bad ElementNumberOfChannels '%s'", path, v);
      h->nch = (int)c;
    } else if (!strcasecmp(k, "BinaryDataByteOrderMSB") || !strcasecmp(k, "ElementByteOrderMSB")) {
      h->msb = is_true(v);
    } else if (!strcasecmp(k, "CompressedData")) {
      h->compressed = is_true(v);
    } else if (!strcasecmp(k, "CompressedDataSize")) {
      if (parse_ll(v, 0, LLONG_MAX / 2, &h->compressed_size))
        return mbsr_error(MBSR_EFORMAT, "%s: bad CompressedDataSize '%s'", path, v);
    } else if (!strcasecmp(k, "HeaderSize")) {
      if (parse_ll(v, -1, LLONG_MAX / 2, &h->header_size)) return mbsr_error(MBSR_EFORMAT, "%s: bad HeaderSize '%s'", path, v);
    } else if (!strcasecmp(k, "BinaryData")) {
      if (!is_true(v)) return mbsr_error(MBSR_EUNSUPPORTED, "%s: ASCII MetaImage data (BinaryData = False)", path);
    } else if (!strcasecmp(k, "ObjectType")) {
      if (strcasecmp(v, "Image")) return mbsr_error(MBSR_EUNSUPPORTED, "%s: ObjectType %s (expected Image)", path, v);
    } else if (!strcasecmp(k, "ElementDataFile")) {
      snprintf(h->datafile, sizeof h->datafile, "%s", v);
      *data_off = ftell(f);
      break;
    }
    /* other keys (AnatomicalOrientation, CenterOfRotation, ElementMin/Max, ...) carry nothing we use */
  }
  if (!h->ndims) return mbsr_error(MBSR_EFORMAT, "%s: not a MetaImage header (no NDims)", path);
  if (have_dims < h->ndims) return mbsr_error(MBSR_EFORMAT, "%s: DimSize missing or short", path);
  if (!h->have_dt) return mbsr_error(MBSR_EFORMAT, "%s: no ElementType", path);
  if (!h->datafile[0]) return mbsr_error(MBSR_EFORMAT, "%s: no ElementDataFile", path);
  if (h->nch != 1)
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: ElementNumberOfChannels = %d; mbsr reads scalar volumes", path, h->nch);
  if (!strcasecmp(h->datafile, "LIST") || strchr(h->datafile, '%'))
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: ElementDataFile '%s' (file lists and patterns are not supported)", path,
                      h->datafile);
  return 0;
}

static int inflate_all(const char *path, const unsigned char *src, size_t n, unsigned char *dst, size_t want) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK) return mbsr_error(MBSR_EIO, "%s: zlib init failed", path);
  z.next_in = (unsigned char *)src;
  size_t got = 0;
  int zr = Z_OK;
  /* avail_in / avail_out are 32-bit: feed in chunks */
  while (zr == Z_OK) {
    size_t in_left = n - (size_t)((const unsigned char *)z.next_in - src);
    z.avail_in = in_left > (1u << 30) ? (1u << 30) : (unsigned)in_left;
    z.next_out = dst + got;
    size_t out_left = want - got;
    z.avail_out = out_left > (1u << 30) ? (1u << 30) : (unsigned)out_left;
    unsigned before = z.avail_out;
    zr = inflate(&z, Z_NO_FLUSH);
    got += before - z.avail_out;
    if (zr == Z_BUF_ERROR && (z.avail_in == 0 || got == want)) break;
  }
  inflateEnd(&z);
  if ((zr != Z_STREAM_END && zr != Z_OK && zr != Z_BUF_ERROR) || got != want)
    return mbsr_error(MBSR_ETRUNC, "%s: compressed data gives %zu of %zu bytes%s", path, got, want,
                      zr == Z_DATA_ERROR ? " (corrupt stream)" : "");
  return 0;
}

int mbsr_mhd_read(const char *path, mbsr_volume **out) { return mbsr__mhd_read(path, 0, out); }

/* Where the voxel data are: the file itself (LOCAL) or the named data file, opened; the offset of
 * the data and the bytes stored there (compressed or not), checked against the file size. */
typedef struct {
  FILE *df;
  char dpath[4200];
  long long off;
  size_t want, stored; /* bytes of the voxels; bytes stored (compressed: the stream) */
} mhd_data;

static int locate_data(const char *path, FILE *f, const mhd_header *h, long local_off, mhd_data *d) {
  d->df = f;
  const int local = !strcasecmp(h->datafile, "LOCAL");
  if (!local) {
    const char *slash = strrchr(path, '/');
    int rc = h->datafile[0] == '/' ? mbsr_pathf(d->dpath, sizeof d->dpath, "%s", h->datafile)
                                   : mbsr_pathf(d->dpath, sizeof d->dpath, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, h->datafile);
    fclose(f);
    d->df = NULL;
    if (rc) return mbsr_error_prefix(rc, "%s: data file: ", path);
    if (!(d->df = fopen(d->dpath, "rb"))) return mbsr_error(MBSR_EIO, "%s: data file %s: %s", path, d->dpath, strerror(errno));
    local_off = 0;
  } else {
    snprintf(d->dpath, sizeof d->dpath, "%s", path);
  }
  struct stat st;
  if (fstat(fileno(d->df), &st) != 0) return mbsr_error(MBSR_EIO, "%s: data file %s: %s", path, d->dpath, strerror(errno));
  long long fsz = (long long)st.st_size, off = local_off; /* every offset below stays within [0, fsz] (HeaderSize is bounded) */
  if (h->header_size > 0) off = h->header_size > fsz - off ? fsz + 1 : off + h->header_size;
  if (h->header_size == -1) off = fsz - (long long)d->want; /* data at the end (negative: too short, below) */
  if (off < 0 || off > fsz)
    return mbsr_error(MBSR_ETRUNC, "%s: %s has %lld bytes: too short for HeaderSize %lld and %zu data bytes", path,
                      local ? "the file" : d->dpath, fsz, h->header_size, d->want);
  d->off = off;
  d->stored = h->compressed ? (size_t)(fsz - off) : d->want;
  if (h->compressed && h->compressed_size > 0 && h->compressed_size <= fsz - off) d->stored = (size_t)h->compressed_size;
  if (!h->compressed && fsz - off < (long long)d->want)
    return mbsr_error(MBSR_ETRUNC, "%s: %s holds %lld data bytes, DimSize x ElementType needs %zu", path, d->dpath, fsz - off, d->want);
  if (h->compressed && d->stored == 0) return mbsr_error(MBSR_ETRUNC, "%s: %s holds no compressed data", path, d->dpath);
  if (h->compressed && (double)d->want > (double)d->stored * 1032 + 4096) /* deflate's limit, before allocating */
    return mbsr_error(MBSR_ETRUNC, "%s: %zu compressed bytes cannot hold the %zu bytes DimSize x ElementType needs", path, d->stored,
                      d->want);
  return 0;
}

/* The voxel bytes (inflated when compressed; in the file's byte order) into *out (mbsr_alloc'd). */
static int read_data(const char *path, const mhd_header *h, mhd_data *d, unsigned char **out) {
  unsigned char *raw = malloc(h->compressed ? d->stored : 1), *buf = mbsr_alloc(d->want ? d->want : 1);
  int rc = raw && buf ? 0 : mbsr_error(MBSR_ENOMEM, "%s: cannot allocate %zu bytes", path, d->want);
  unsigned char *dst = h->compressed ? raw : buf;
  size_t toread = h->compressed ? d->stored : d->want;
  if (!rc && (fseeko(d->df, d->off, SEEK_SET) != 0 || fread(dst, 1, toread, d->df) != toread))
    rc = mbsr_error(MBSR_ETRUNC, "%s: short read of %s", path, d->dpath);
  if (!rc && h->compressed) rc = inflate_all(d->dpath, raw, d->stored, buf, d->want);
  free(raw);
  if (rc) {
    mbsr_free(buf);
    return rc;
  }
  *out = buf;
  return 0;
}

static void swap_bytes(unsigned char *buf, size_t n, size_t esize) {
  for (size_t i = 0; i < n; i += esize)
    for (size_t a = 0, b = esize - 1; a < b; a++, b--) {
      unsigned char t = buf[i + a];
      buf[i + a] = buf[i + b];
      buf[i + b] = t;
    }
}

/* The affine: A[:,a] = dir_a * spacing_a, origin; units (no units in MetaImage: a smallest spacing
 * >= 5 is micrometres, the Allen convention); LPS -> RAS. */
static void mhd_affine(const mhd_header *h, double A[4][4]) {
  memset(A, 0, sizeof(double) * 16);
  A[3][3] = 1;
  double smin = INFINITY;
  for (int a = 0; a < 3; a++) {
    double sp = a < h->ndims ? h->spacing[a] : 1;
    if (a < h->ndims) smin = fmin(smin, sp);
    for (int r = 0; r < 3; r++) A[r][a] = h->dir[3 * a + r] * sp;
    A[a < 3 ? a : 0][3] = h->origin[a];
  }
  double us = 1;
  if (smin >= 5) {
    us = 1e-3;
    mbsr__note("MetaImage has no units: smallest spacing %g >= 5 taken as micrometres (Allen convention)", smin);
  } else {
    mbsr__note("MetaImage has no units: smallest spacing %g < 5 taken as mm", smin);
  }
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) A[r][c] *= us;
  for (int c = 0; c < 4; c++) A[0][c] = -A[0][c], A[1][c] = -A[1][c];
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) A[r][c] += 0.0; /* no -0 from the negations */
  mbsr__note("MetaImage LPS converted to RAS");
}

int mbsr__mhd_read(const char *path, int allow_bad_geometry, mbsr_volume **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno));
  mhd_header h;
  long local_off = 0;
  int rc = read_header(path, f, &h, &local_off);
  if (rc) {
    fclose(f);
    return rc;
  }
  mhd_data d = {0};
  size_t nvox_sz = 0; /* checked products: DimSize is bounded per axis, not yet as a whole */
  if (mbsr_mul_size(&nvox_sz, 3, (size_t)h.dims[0], (size_t)h.dims[1], (size_t)h.dims[2]) ||
      nvox_sz > (size_t)MBSR_MAX_VOXELS || mbsr_mul_size(&d.want, 2, nvox_sz, h.esize)) {
    fclose(f);
    return mbsr_error(MBSR_ERANGE, "%s: absurd DimSize %lld x %lld x %lld (more than %lld voxels)", path, (long long)h.dims[0],
                      (long long)h.dims[1], (long long)h.dims[2], (long long)MBSR_MAX_VOXELS);
  }
  unsigned char *buf = NULL;
  rc = locate_data(path, f, &h, local_off, &d);
  if (!rc) rc = read_data(path, &h, &d, &buf);
  if (d.df) fclose(d.df);
  if (rc) return rc;
  if (h.esize > 1 && h.msb != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)) swap_bytes(buf, d.want, h.esize);
  double A[4][4];
  mhd_affine(&h, A);
  mbsr_volume *v = NULL;
  rc = mbsr__check_geometry(path, A, "TransformMatrix / ElementSpacing / Offset", allow_bad_geometry);
  if (!rc && !(v = mbsr_volume_new(h.dims[0], h.dims[1], h.dims[2], NULL, (const double(*)[4])A)))
    rc = mbsr_error_prefix(MBSR_ENOMEM, "%s: ", path);
  if (!rc && (rc = mbsr__convert(v->data, buf, (int64_t)nvox_sz, h.dt, 1, 0, &v->src_min, &v->src_max))) mbsr_error_prefix(rc, "%s: ", path);
  mbsr_free(buf);
  if (rc) {
    mbsr_volume_free(v);
    return rc;
  }
  v->src_dtype = h.dt;
  snprintf(v->src_format, sizeof v->src_format, "mhd");
  mbsr_volume_update_vox(v);
  *out = v;
  return 0;
}
