/* TIFF stacks through libtiff: a directory of single-page slices (natural name order, so
 * img_2 < img_10, which is plain order for zero-padded names) or one multi-page file.
 * Grey samples only: 8/16/32/64-bit unsigned/signed integers and 32/64-bit floats, stripped or
 * tiled. Array axes: i = column (fastest), j = row, k = slice.
 *
 * TIFF carries no geometry: mbsr_read_opts gives the voxel size (mm) along columns, rows, slices
 * and a 3-letter code naming the direction in which each index INCREASES ("RIA": columns go
 * Right, rows go Inferior, slices go Anterior). Column a of the affine is vox[a] times the RAS
 * unit vector of letter a; the origin is 0. No code = "RAS" (identity), no size = 1 mm.
 * A size that is given must be finite and > 0 (else MBSR_EINVAL naming the input; with
 * allow_bad_geometry: 1 mm and a warning). A directory stack holds single-page files: a
 * multi-page member is refused (read that file on its own). Every page is checked (size, type,
 * enough strip data for its samples) before the volume is allocated, then read. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <tiffio.h>

#include "io_internal.h"

static _Thread_local char g_tiff_msg[512];

static void tiff_handler(const char *module, const char *fmt, va_list ap) {
  (void)module;
  vsnprintf(g_tiff_msg, sizeof g_tiff_msg, fmt, ap);
}
static void tiff_quiet_warning(const char *module, const char *fmt, va_list ap) {
  (void)module;
  (void)fmt;
  (void)ap;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcasecmp(s + a - b, suf) == 0;
}

/* Orientation code -> direction matrix D (columns = RAS unit vectors of array axes). */
int mbsr_orient_matrix(const char *code, double D[3][3]) {
  memset(D, 0, 9 * sizeof(double));
  if (!code || !code[0]) code = "RAS";
  if (strlen(code) != 3) return mbsr_error(MBSR_EINVAL, "orientation '%s': give 3 letters from R/L A/P S/I", code);
  int used[3] = {0, 0, 0};
  for (int a = 0; a < 3; a++) {
    int row, sign;
    switch (code[a]) {
      case 'R': case 'r': row = 0; sign = 1; break;
      case 'L': case 'l': row = 0; sign = -1; break;
      case 'A': case 'a': row = 1; sign = 1; break;
      case 'P': case 'p': row = 1; sign = -1; break;
      case 'S': case 's': row = 2; sign = 1; break;
      case 'I': case 'i': row = 2; sign = -1; break;
      default: return mbsr_error(MBSR_EINVAL, "orientation '%s': letter '%c' is not one of R L A P S I", code, code[a]);
    }
    if (used[row]++) return mbsr_error(MBSR_EINVAL, "orientation '%s': two letters on the same axis", code);
    D[row][a] = sign;
  }
  return MBSR_OK;
}

static int cmp_names(const void *a, const void *b) { return strverscmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
  uint32_t w, h;
  int dt;
} slice_info;

static int slice_info_get(TIFF *t, const char *name, slice_info *si) {
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bps = 1, fmt = SAMPLEFORMAT_UINT;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
  if (w == 0 || h == 0) return mbsr_error(MBSR_EFORMAT, "%s: TIFF without image size", name);
  if (spp != 1) return mbsr_error(MBSR_EUNSUPPORTED, "%s: %u samples per pixel (colour); mbsr reads grey TIFFs", name, spp);
  int dt = 0;
  if (fmt == SAMPLEFORMAT_UINT || fmt == SAMPLEFORMAT_VOID) {
    dt = bps == 8 ? MBSR__DT_UINT8 : bps == 16 ? MBSR__DT_UINT16 : bps == 32 ? MBSR__DT_UINT32 : bps == 64 ? MBSR__DT_UINT64 : 0;
  } else if (fmt == SAMPLEFORMAT_INT) {
    dt = bps == 8 ? MBSR__DT_INT8 : bps == 16 ? MBSR__DT_INT16 : bps == 32 ? MBSR__DT_INT32 : bps == 64 ? MBSR__DT_INT64 : 0;
  } else if (fmt == SAMPLEFORMAT_IEEEFP) {
    dt = bps == 32 ? MBSR__DT_FLOAT32 : bps == 64 ? MBSR__DT_FLOAT64 : 0;
  }
  if (!dt) return mbsr_error(MBSR_EUNSUPPORTED, "%s: unsupported TIFF samples (%u bits, format %u)", name, bps, fmt);
  si->w = w;
  si->h = h;
  si->dt = dt;
  return MBSR_OK;
}

/* Read the current directory of t (w x h samples of type dt) into dst (floats, row-major). */
static int slice_read(TIFF *t, const char *name, const slice_info *si, float *dst) {
  int bps = si->dt == MBSR__DT_UINT8 || si->dt == MBSR__DT_INT8 ? 1
            : si->dt == MBSR__DT_UINT16 || si->dt == MBSR__DT_INT16 ? 2
            : si->dt == MBSR__DT_FLOAT64 || si->dt == MBSR__DT_INT64 || si->dt == MBSR__DT_UINT64 ? 8 : 4;
  if (TIFFIsTiled(t)) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    tmsize_t ts = TIFFTileSize(t);
    if (tw == 0 || th == 0 || ts < (tmsize_t)tw * th * bps) return mbsr_error(MBSR_EFORMAT, "%s: bad TIFF tiles", name);
    unsigned char *tile = malloc((size_t)ts);
    float *row = malloc(sizeof(float) * tw);
    if (!tile || !row) {
      free(tile);
      free(row);
      return mbsr_error(MBSR_ENOMEM, "%s: out of memory", name);
    }
    for (uint32_t y0 = 0; y0 < si->h; y0 += th)
      for (uint32_t x0 = 0; x0 < si->w; x0 += tw) {
        if (TIFFReadTile(t, tile, x0, y0, 0, 0) < 0) {
          free(tile);
          free(row);
          return mbsr_error(MBSR_EFORMAT, "%s: cannot read tile (%u,%u): %s", name, x0, y0, g_tiff_msg);
        }
        for (uint32_t y = 0; y < th && y0 + y < si->h; y++) {
          uint32_t nx = si->w - x0 < tw ? si->w - x0 : tw;
          mbsr__convert(row, tile + (size_t)y * tw * bps, nx, si->dt, 1, 0, NULL, NULL);
          memcpy(dst + (size_t)(y0 + y) * si->w + x0, row, nx * sizeof(float));
        }
      }
    free(tile);
    free(row);
    return MBSR_OK;
  }
  tmsize_t ls = TIFFScanlineSize(t);
  if (ls < (tmsize_t)si->w * bps) return mbsr_error(MBSR_EFORMAT, "%s: bad TIFF scanline size", name);
  unsigned char *line = malloc((size_t)ls);
  if (!line) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", name);
  for (uint32_t y = 0; y < si->h; y++) {
    if (TIFFReadScanline(t, line, y, 0) < 0) {
      free(line);
      return mbsr_error(MBSR_ETRUNC, "%s: cannot read row %u: %s", name, y, g_tiff_msg[0] ? g_tiff_msg : "read error");
    }
    mbsr__convert(dst + (size_t)y * si->w, line, si->w, si->dt, 1, 0, NULL, NULL);
  }
  free(line);
  return MBSR_OK;
}

/* Voxel size from opts: all zero = not given (1 mm); otherwise each must be in the usable range. */
static int tiff_voxel_size(const char *path, const mbsr_read_opts *opts, double vox[3], int *given) {
  static const char *axis[3] = {"columns", "rows", "slices"};
  vox[0] = vox[1] = vox[2] = 1;
  *given = opts && (opts->tiff_vox[0] != 0 || opts->tiff_vox[1] != 0 || opts->tiff_vox[2] != 0);
  if (!*given) return MBSR_OK;
  for (int a = 0; a < 3; a++) {
    double x = opts->tiff_vox[a];
    if (isfinite(x) && x >= MBSR__VOX_MIN && x <= MBSR__GEOM_MAX) {
      vox[a] = x;
      continue;
    }
    if (!opts->allow_bad_geometry)
      return mbsr_error(MBSR_EINVAL, "%s: bad TIFF voxel size (--tiff-vox) along %s: %g mm (give a finite size > 0)",
                        path, axis[a], x);
    mbsr_warn("%s: bad TIFF voxel size (--tiff-vox) along %s: %g mm; 1 mm used (--allow-bad-geometry)", path, axis[a], x);
    mbsr__note("bad geometry: TIFF voxel size %g along %s replaced by 1 mm", x, axis[a]);
  }
  return MBSR_OK;
}

static void set_geometry(mbsr_volume *v, const mbsr_read_opts *opts, const double D[3][3], const double vox[3],
                         int given) {
  memset(v->affine, 0, sizeof v->affine);
  for (int r = 0; r < 3; r++)
    for (int a = 0; a < 3; a++) v->affine[r][a] = D[r][a] * vox[a];
  v->affine[3][3] = 1;
  mbsr_volume_update_vox(v);
  mbsr__note("TIFF geometry from options: voxel %g x %g x %g mm (columns, rows, slices)%s, orientation %s", vox[0],
             vox[1], vox[2], given ? "" : " [no size given: 1 mm]",
             opts && opts->tiff_orient[0] ? opts->tiff_orient : "RAS [default]");
}

/* The page's strips/tiles (as many bytes as they say, at most the file's size) must be able to hold
 * its samples (uncompressed: byte for byte; compressed: at most 4096:1, above deflate's 1032 and
 * LZW's ~3640): a header claiming more is refused before the volume is allocated. */
static int page_data_ok(TIFF *t, const char *name, const slice_info *si, long long file_size) {
  uint16_t comp = COMPRESSION_NONE;
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &comp);
  int tiled = TIFFIsTiled(t);
  uint32_t nst = tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
  uint64_t *bc = NULL;
  if (!TIFFGetField(t, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &bc) || !bc || nst == 0)
    return mbsr_error(MBSR_EFORMAT, "%s: TIFF without strip or tile byte counts", name);
  unsigned long long total = 0;
  for (uint32_t k = 0; k < nst && total < (unsigned long long)file_size; k++) total += bc[k];
  if (total > (unsigned long long)file_size) total = (unsigned long long)file_size;
  int bps = si->dt == MBSR__DT_UINT8 || si->dt == MBSR__DT_INT8 ? 1
            : si->dt == MBSR__DT_UINT16 || si->dt == MBSR__DT_INT16 ? 2
            : si->dt == MBSR__DT_FLOAT64 || si->dt == MBSR__DT_INT64 || si->dt == MBSR__DT_UINT64 ? 8 : 4;
  double need = (double)si->w * si->h * bps, cap = (double)total * (comp == COMPRESSION_NONE ? 1 : 4096);
  if (need > cap)
    return mbsr_error(MBSR_ETRUNC, "%s: truncated: %llu bytes of %s data cannot hold %ux%u samples of %d bytes", name,
                      total, comp == COMPRESSION_NONE ? "uncompressed" : "compressed", si->w, si->h, bps);
  return MBSR_OK;
}

static long long file_size_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* A directory of single-page slices: pass 1 checks every file (one page, size, type, data size),
 * then the volume is allocated, pass 2 reads. */
static int read_dir(const char *path, mbsr_volume **out, slice_info *first) {
  DIR *d = opendir(path);
  if (!d) return mbsr_error(MBSR_EIO, "%s: cannot open directory", path);
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int rc = MBSR_OK;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !(ends_with(e->d_name, ".tif") || ends_with(e->d_name, ".tiff"))) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 256;
      char **nn = realloc(names, cap * sizeof *names);
      if (!nn) {
        rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
        break;
      }
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) {
      rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
      break;
    }
    n++;
  }
  closedir(d);
  if (!rc && n == 0) rc = mbsr_error(MBSR_EFORMAT, "%s: no .tif/.tiff files in the directory", path);
  if (!rc) qsort(names, n, sizeof *names, cmp_names);
  char file[4200];
  slice_info si;
  mbsr_volume *v = NULL;
  for (int pass = 0; pass < 2 && !rc; pass++) {
    for (size_t k = 0; k < n && !rc; k++) {
      snprintf(file, sizeof file, "%s/%s", path, names[k]);
      TIFF *t = TIFFOpen(file, "r");
      if (!t) {
        rc = mbsr_error(MBSR_EFORMAT, "%s: not a readable TIFF: %s", file, g_tiff_msg);
        break;
      }
      tdir_t pages = TIFFNumberOfDirectories(t);
      if (pages != 1)
        rc = mbsr_error(MBSR_EUNSUPPORTED,
                        "%s: %u pages in a member of a slice directory (one page per file; read a multi-page TIFF "
                        "on its own)",
                        file, (unsigned)pages);
      if (!rc) rc = slice_info_get(t, file, &si);
      if (!rc && k == 0) *first = si;
      if (!rc && (si.w != first->w || si.h != first->h))
        rc = mbsr_error(MBSR_EMISMATCH, "%s: slice is %ux%u (columns x rows), the first slice %s is %ux%u", file, si.w,
                        si.h, names[0], first->w, first->h);
      else if (!rc && si.dt != first->dt)
        rc = mbsr_error(MBSR_EMISMATCH, "%s: sample type %s differs from the first slice's %s", file,
                        mbsr_dtype_name(si.dt), mbsr_dtype_name(first->dt));
      if (!rc && pass == 0) rc = page_data_ok(t, file, &si, file_size_of(file));
      if (!rc && pass == 1) rc = slice_read(t, file, &si, v->data + (size_t)k * si.w * si.h);
      TIFFClose(t);
    }
    if (!rc && pass == 0) {
      v = mbsr_volume_new(first->w, first->h, (int64_t)n, NULL, NULL);
      if (!v) rc = mbsr_error_prefix(MBSR_ENOMEM, "%s: ", path);
    }
  }
  if (!rc) mbsr__note("%zu slices from %s .. %s", n, names[0], names[n - 1]);
  for (size_t k = 0; k < n; k++) free(names[k]);
  free(names);
  if (rc) mbsr_volume_free(v);
  else *out = v;
  return rc;
}

/* One (multi-page) file: pass 1 checks every page, then the volume is allocated, pass 2 reads. */
static int read_file(const char *path, mbsr_volume **out, slice_info *first) {
  if (!mbsr_file_exists(path)) return mbsr_error(MBSR_EIO, "%s: no such file", path);
  TIFF *t = TIFFOpen(path, "r");
  if (!t) return mbsr_error(MBSR_EFORMAT, "%s: not a readable TIFF: %s", path, g_tiff_msg);
  tdir_t np = TIFFNumberOfDirectories(t);
  if (np < 1) {
    TIFFClose(t);
    return mbsr_error(MBSR_EFORMAT, "%s: TIFF without pages", path);
  }
  long long fsize = file_size_of(path);
  char name[4200];
  slice_info si;
  mbsr_volume *v = NULL;
  int rc = MBSR_OK;
  for (int pass = 0; pass < 2 && !rc; pass++) {
    for (tdir_t k = 0; k < np && !rc; k++) {
      snprintf(name, sizeof name, "%s (page %u)", path, (unsigned)k);
      if (!TIFFSetDirectory(t, k)) {
        rc = mbsr_error(MBSR_EFORMAT, "%s: cannot read the page: %s", name, g_tiff_msg);
        break;
      }
      rc = slice_info_get(t, name, &si);
      if (!rc && k == 0) *first = si;
      if (!rc && (si.w != first->w || si.h != first->h))
        rc = mbsr_error(MBSR_EMISMATCH, "%s: page is %ux%u (columns x rows), page 0 is %ux%u", name, si.w, si.h, first->w,
                        first->h);
      else if (!rc && si.dt != first->dt)
        rc = mbsr_error(MBSR_EMISMATCH, "%s: sample type %s differs from page 0's %s", name, mbsr_dtype_name(si.dt),
                        mbsr_dtype_name(first->dt));
      if (!rc && pass == 0) rc = page_data_ok(t, name, &si, fsize);
      if (!rc && pass == 1) rc = slice_read(t, name, &si, v->data + (size_t)k * si.w * si.h);
    }
    if (!rc && pass == 0) {
      v = mbsr_volume_new(first->w, first->h, np, NULL, NULL);
      if (!v) rc = mbsr_error_prefix(MBSR_ENOMEM, "%s: ", path);
    }
  }
  TIFFClose(t);
  if (rc) mbsr_volume_free(v);
  else *out = v;
  return rc;
}

int mbsr_tiff_read(const char *path, const mbsr_read_opts *opts, mbsr_volume **out) {
  *out = NULL;
  double D[3][3];
  int rc = mbsr_orient_matrix(opts ? opts->tiff_orient : NULL, D);
  if (rc) return mbsr_error_prefix(rc, "%s: ", path);
  double vox[3];
  int vox_given;
  rc = tiff_voxel_size(path, opts, vox, &vox_given);
  if (rc) return rc;
  TIFFSetErrorHandler(tiff_handler);
  TIFFSetWarningHandler(tiff_quiet_warning);
  g_tiff_msg[0] = 0;
  mbsr_volume *v = NULL;
  slice_info first = {0, 0, 0};
  rc = mbsr_is_dir(path) ? read_dir(path, &v, &first) : read_file(path, &v, &first);
  if (rc) return rc;
  set_geometry(v, opts, D, vox, vox_given);
  float mn, mx;
  mbsr_volume_minmax(v, &mn, &mx);
  v->src_min = mn;
  v->src_max = mx;
  v->src_dtype = first.dt;
  snprintf(v->src_format, sizeof v->src_format, "tiff");
  *out = v;
  return MBSR_OK;
}
