/* NIfTI-1 / NIfTI-2 (.nii, .nii.gz) reading through nifti_clib, and NIfTI-1 float32 writing.
 *
 * Reading: the header is first checked here (size field, magic, dims, datatype, and for raw
 * files the file length) so that nifti_clib is only handed files it can read; its own stderr
 * chatter is silenced (debug level 0) and every failure becomes one mbsr_error line naming the
 * file. Affine: sform if sform_code > 0, else qform if qform_code > 0, else diag(|pixdim|);
 * spatial units micron/metre are converted to mm (unknown units are taken as mm). The chosen
 * transform must be usable (finite, non-zero voxel sizes, non-singular; the qform also needs
 * finite pixdim[1..3] > 0, which nifti_clib would silently replace by 1): otherwise the read
 * fails naming the file and the transform, unless allow_bad_geometry, which takes the next usable
 * transform (sform -> qform -> pixdim) or a substitute, with a warning.
 * The data start at vox_offset as the header says (at least 352 for NIfTI-1, 544 for NIfTI-2),
 * the same for .nii and .nii.gz; a vox_offset past the end of the (decompressed) data is an error.
 * scl_slope == 0 (or non-finite) means no scaling. 4-D (or higher) files hold dim[4]*...*dim[7]
 * 3-D volumes: one is read when the caller names it (mbsr_read_opts.volume), all of them by
 * mbsr_volume_read_series; a file with several and no choice is refused. The header fields that
 * travel to written files (codes, units, descrip, intent, slope, TR) go to v->meta.
 *
 * Writing: nifti_clib builds the header (qform from the affine by nifti_dmat44_to_quatern,
 * sform = the affine, the codes, units, descrip and intent of v->meta); the bytes are written with
 * zlib/stdio here so that every write and the final close are checked (nifti_image_write reports
 * no status), to a temporary name that keeps the suffix, then renamed. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <nifti2_io.h>

#include "io_internal.h"

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcasecmp(s + a - b, suf) == 0;
}

/* ---- header pre-validation ---- */
static void swapn(void *p, int n) {
  unsigned char *c = p;
  for (int i = 0; i < n / 2; i++) {
    unsigned char t = c[i];
    c[i] = c[n - 1 - i];
    c[n - 1 - i] = t;
  }
}
static int64_t get_i(const unsigned char *h, int off, int size, int swap) {
  unsigned char b[8];
  memcpy(b, h + off, size);
  if (swap) swapn(b, size);
  if (size == 2) {
    int16_t x;
    memcpy(&x, b, 2);
    return x;
  }
  if (size == 4) {
    int32_t x;
    memcpy(&x, b, 4);
    return x;
  }
  int64_t x;
  memcpy(&x, b, 8);
  return x;
}
/* A float (size 4) or double (size 8) header field. */
static double get_real(const unsigned char *h, int off, int size, int swap) {
  unsigned char b[8];
  memcpy(b, h + off, size);
  if (swap) swapn(b, size);
  float f;
  double d;
  if (size == 4) return memcpy(&f, b, 4), f;
  return memcpy(&d, b, 8), d;
}
static double get_f32(const unsigned char *h, int off, int swap) { return get_real(h, off, 4, swap); }
static double get_f64(const unsigned char *h, int off, int swap) { return get_real(h, off, 8, swap); }

static int dtype_bytes(int dt) {
  switch (dt) {
    case MBSR__DT_UINT8: case MBSR__DT_INT8: return 1;
    case MBSR__DT_INT16: case MBSR__DT_UINT16: return 2;
    case MBSR__DT_INT32: case MBSR__DT_UINT32: case MBSR__DT_FLOAT32: return 4;
    case MBSR__DT_INT64: case MBSR__DT_UINT64: case MBSR__DT_FLOAT64: return 8;
  }
  return 0;
}

typedef struct {
  int version;      /* 1 or 2 */
  int64_t dim[8];
  int datatype;
  int64_t data_off; /* where the voxels start in the (uncompressed) file */
  int64_t nvox3;    /* nx*ny*nz */
  int64_t nbytes;   /* bytes of the whole data block (all volumes) */
  double vox_offset; /* as written in the header */
  double pixdim[4];  /* raw pixdim[0..3] (nifti_clib replaces pixdim <= 0 by 1 in the qform) */
  double quatern[6]; /* raw quatern_b,c,d, qoffset_x,y,z (nifti_clib replaces non-finite ones by 0) */
  double srow[12];   /* raw srow_x, srow_y, srow_z */
} hdr_info;

/* Count the bytes of a gzip or plain file by reading it to the end (failure path only). */
static int64_t stream_length(const char *path, int *gz_error) {
  gzFile g = gzopen(path, "rb");
  *gz_error = 0;
  if (!g) return -1;
  enum { BUF = 1 << 16 };
  char *buf = malloc(BUF);
  if (!buf) {
    gzclose(g);
    return -1;
  }
  int64_t total = 0;
  int r;
  while ((r = gzread(g, buf, BUF)) > 0) total += r;
  if (r < 0) *gz_error = 1;
  free(buf);
  gzclose(g);
  return total;
}

/* Read the header (NIfTI-1 or -2, either byte order): its magic, dims, datatype, offsets, geometry. */
static int read_header_fields(const char *path, hdr_info *hi) {
  unsigned char h[540];
  memset(h, 0, sizeof h);
  gzFile g = gzopen(path, "rb");
  if (!g) return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
  int got = gzread(g, h, sizeof h);
  int zerr = 0;
  const char *zmsg = gzerror(g, &zerr);
  char zbuf[128];
  snprintf(zbuf, sizeof zbuf, "%s", zmsg ? zmsg : "");
  gzclose(g);
  if (got < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
    return mbsr_error(MBSR_EFORMAT, "%s: corrupt gzip stream in the header (%s)", path, zbuf);
  if (got < 348) return mbsr_error(MBSR_ETRUNC, "%s: truncated: %d bytes, too short for a NIfTI header", path, got);
  int32_t sz;
  memcpy(&sz, h, 4);
  int swap = 0;
  if (sz != 348 && sz != 540) {
    swapn(&sz, 4);
    swap = 1;
  }
  memset(hi, 0, sizeof *hi);
  if (sz == 348) {
    hi->version = 1;
    if (memcmp(h + 344, "n+1", 4) != 0) {
      if (memcmp(h + 344, "ni1", 4) == 0)
        return mbsr_error(MBSR_EUNSUPPORTED, "%s: a NIfTI-1 .hdr/.img pair header inside a .nii file", path);
      return mbsr_error(MBSR_EFORMAT, "%s: not a NIfTI-1 file (bad magic \"%.4s\")", path, (const char *)(h + 344));
    }
    for (int i = 0; i < 8; i++) hi->dim[i] = get_i(h, 40 + 2 * i, 2, swap);
    hi->datatype = (int)get_i(h, 70, 2, swap);
    double off = get_f32(h, 108, swap);
    if (!isfinite(off) || off < 0 || off > 1e12) return mbsr_error(MBSR_EFORMAT, "%s: bad vox_offset %g", path, off);
    hi->vox_offset = off;
    hi->data_off = off < 352 ? 352 : (int64_t)off; /* the NIfTI-1 minimum for a single file */
    for (int i = 0; i < 4; i++) hi->pixdim[i] = get_f32(h, 76 + 4 * i, swap);
    for (int i = 0; i < 6; i++) hi->quatern[i] = get_f32(h, 256 + 4 * i, swap);
    for (int i = 0; i < 12; i++) hi->srow[i] = get_f32(h, 280 + 4 * i, swap);
  } else if (sz == 540) {
    if (got < 540) return mbsr_error(MBSR_ETRUNC, "%s: truncated: %d bytes, too short for a NIfTI-2 header", path, got);
    hi->version = 2;
    if (memcmp(h + 4, "n+2", 4) != 0)
      return mbsr_error(MBSR_EFORMAT, "%s: not a NIfTI-2 single file (bad magic \"%.4s\")", path, (const char *)(h + 4));
    for (int i = 0; i < 8; i++) hi->dim[i] = get_i(h, 16 + 8 * i, 8, swap);
    hi->datatype = (int)get_i(h, 12, 2, swap);
    int64_t off = get_i(h, 168, 8, swap);
    if (off < 0 || off > (int64_t)1e12) return mbsr_error(MBSR_EFORMAT, "%s: bad vox_offset %lld", path, (long long)off);
    hi->vox_offset = (double)off;
    hi->data_off = off < 544 ? 544 : off;
    for (int i = 0; i < 4; i++) hi->pixdim[i] = get_f64(h, 104 + 8 * i, swap);
    for (int i = 0; i < 6; i++) hi->quatern[i] = get_f64(h, 352 + 8 * i, swap);
    for (int i = 0; i < 12; i++) hi->srow[i] = get_f64(h, 400 + 8 * i, swap);
  } else {
    return mbsr_error(MBSR_EFORMAT, "%s: not a NIfTI file (header size field %d, expected 348 or 540)", path,
                      (int)(swap ? (swapn(&sz, 4), sz) : sz));
  }
  return MBSR_OK;
}

/* The dimensions: 1..7, positive, the voxel count bounded; the datatype one mbsr reads. */
static int check_dims(const char *path, hdr_info *hi) {
  int64_t nd = hi->dim[0];
  if (nd < 1 || nd > 7) return mbsr_error(MBSR_EFORMAT, "%s: bad number of dimensions dim[0] = %lld", path, (long long)nd);
  int64_t total = 1;
  for (int i = 1; i <= nd; i++) {
    if (hi->dim[i] < 1)
      return mbsr_error(MBSR_EFORMAT, "%s: bad dimension dim[%d] = %lld", path, i, (long long)hi->dim[i]);
    if (__builtin_mul_overflow(total, hi->dim[i], &total) || total > ((int64_t)1 << 40))
      return mbsr_error(MBSR_ERANGE, "%s: absurd dimensions (dim[1..%lld] overflow or exceed 2^40 voxels)", path,
                        (long long)nd);
  }
  for (int i = (int)nd + 1; i < 8; i++) hi->dim[i] = 1;
  int64_t n3 = hi->dim[1] * (nd >= 2 ? hi->dim[2] : 1);
  if (nd >= 3) n3 *= hi->dim[3];
  if (n3 > MBSR_MAX_VOXELS)
    return mbsr_error(MBSR_ERANGE, "%s: absurd dimensions %lldx%lldx%lld (more than %lld voxels)", path,
                      (long long)hi->dim[1], (long long)hi->dim[2], (long long)hi->dim[3], (long long)MBSR_MAX_VOXELS);
  hi->nvox3 = n3;
  int b = dtype_bytes(hi->datatype);
  if (!b)
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: unsupported NIfTI datatype %s (code %d); mbsr reads real scalar types",
                      path, mbsr_dtype_name(hi->datatype), hi->datatype);
  hi->nbytes = total * b;
  return MBSR_OK;
}

/* The file can hold what the header asks for (before any buffer is allocated). */
static int check_data_size(const char *path, hdr_info *hi) {
  const int b = dtype_bytes(hi->datatype);
  /* A gzip file holds at most ~1032 bytes per compressed byte (deflate's limit): a header that asks
   * for more is refused before its buffer is allocated (a 1 KB file claiming 16 GB). */
  if (ends_with(path, ".gz")) {
    struct stat st;
    int64_t first = hi->data_off + hi->nvox3 * b;
    int64_t cap = stat(path, &st) == 0 ? (int64_t)st.st_size * 1032 + 4096 : INT64_MAX;
    if (cap <= hi->data_off)
      return mbsr_error(MBSR_ETRUNC, "%s: vox_offset %lld points past the end of the data (%lld gzip bytes hold at most "
                                     "%lld)",
                        path, (long long)hi->data_off, (long long)st.st_size, (long long)cap);
    if (cap < first)
      return mbsr_error(MBSR_ETRUNC, "%s: truncated: %lld gzip bytes cannot hold the %lld bytes the header needs", path,
                        (long long)st.st_size, (long long)first);
  }
  /* a raw (uncompressed) file must hold the whole data block */
  if (!ends_with(path, ".gz")) {
    struct stat st;
    if (stat(path, &st) == 0 && (int64_t)st.st_size <= hi->data_off)
      return mbsr_error(MBSR_ETRUNC, "%s: vox_offset %lld points past the end of the data (%lld bytes in the file)", path,
                        (long long)hi->data_off, (long long)st.st_size);
    if (stat(path, &st) == 0 && (int64_t)st.st_size < hi->data_off + hi->nbytes)
      return mbsr_error(MBSR_ETRUNC, "%s: truncated: %lld bytes, header needs %lld", path, (long long)st.st_size,
                        (long long)(hi->data_off + hi->nbytes));
  }
  return MBSR_OK;
}

static int check_header(const char *path, hdr_info *hi) {
  int rc = read_header_fields(path, hi);
  if (!rc) rc = check_dims(path, hi);
  if (!rc) rc = check_data_size(path, hi);
  return rc;
}

/* Read n bytes at offset off of a plain or gzip file; returns the bytes read, -2 if unopenable. */
static int64_t read_data(const char *path, int64_t off, void *dst, int64_t n) {
  gzFile g = gzopen(path, "rb");
  if (!g) return -2;
  gzbuffer(g, 1 << 18);
  if (gzseek(g, (z_off_t)off, SEEK_SET) != (z_off_t)off) {
    gzclose(g);
    return -1;
  }
  int64_t done = 0;
  while (done < n) {
    unsigned chunk = n - done > (1 << 30) ? (1u << 30) : (unsigned)(n - done);
    int r = gzread(g, (char *)dst + done, chunk);
    if (r <= 0) break;
    done += r;
  }
  gzclose(g);
  return done;
}

/* The voxel-to-world transform by the NIfTI rules (sform if sform_code > 0, else qform if
 * qform_code > 0, else diag(|pixdim|)), validated; see the file comment for allow. */
static int choose_affine(const char *path, const nifti_image *nim, const hdr_info *hi, double uscale, int allow,
                         double A[4][4], const char **xform) {
  typedef struct {
    const char *name;
    double M[4][4];
    char why[256];
  } cand;
  cand c[3];
  int nc = 0;
  char buf[256];
  if (nim->sform_code > 0) {
    cand *x = &c[nc++];
    x->name = "the sform";
    memcpy(x->M, nim->sto_xyz.m, sizeof x->M);
    snprintf(x->why, sizeof x->why, "%s", mbsr__affine_problem((const double(*)[4])x->M, buf, sizeof buf));
    for (int i = 0; i < 12 && !x->why[0]; i++)
      if (!isfinite(hi->srow[i])) snprintf(x->why, sizeof x->why, "srow_%c[%d] is %g", "xyz"[i / 4], i % 4, hi->srow[i]);
  }
  if (nim->qform_code > 0) {
    cand *x = &c[nc++];
    x->name = "the qform";
    memcpy(x->M, nim->qto_xyz.m, sizeof x->M);
    x->why[0] = 0;
    static const char *qname[6] = {"quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z"};
    for (int i = 0; i < 6 && !x->why[0]; i++)
      if (!isfinite(hi->quatern[i])) snprintf(x->why, sizeof x->why, "%s is %g", qname[i], hi->quatern[i]);
    for (int a = 1; a <= 3 && a <= hi->dim[0] && !x->why[0]; a++)
      if (!isfinite(hi->pixdim[a]) || !(hi->pixdim[a] > 0))
        snprintf(x->why, sizeof x->why, "pixdim[%d] is %g (the qform needs voxel sizes > 0)", a, hi->pixdim[a]);
    if (!x->why[0]) snprintf(x->why, sizeof x->why, "%s", mbsr__affine_problem((const double(*)[4])x->M, buf, sizeof buf));
  }
  {
    int only = nc == 0;
    cand *x = &c[nc++];
    x->name = only ? "pixdim (sform_code = qform_code = 0)" : "pixdim";
    memset(x->M, 0, sizeof x->M);
    for (int a = 0; a < 3; a++) /* axes beyond dim[0] hold one voxel: an unset pixdim there means 1 */
      x->M[a][a] = a + 1 > hi->dim[0] && !(fabs(hi->pixdim[a + 1]) >= MBSR__VOX_MIN) ? 1.0 : fabs(hi->pixdim[a + 1]);
    x->M[3][3] = 1;
    snprintf(x->why, sizeof x->why, "%s", mbsr__affine_problem((const double(*)[4])x->M, buf, sizeof buf));
    if (x->why[0]) /* name the header field rather than the matrix */
      for (int a = 1; a <= 3 && a <= hi->dim[0]; a++)
        if (!(fabs(hi->pixdim[a]) >= MBSR__VOX_MIN && fabs(hi->pixdim[a]) <= MBSR__GEOM_MAX)) {
          snprintf(x->why, sizeof x->why, "pixdim[%d] is %g", a, hi->pixdim[a]);
          break;
        }
  }
  int pick = 0;
  if (uscale != 1) /* validate in mm: the units are applied first */
    for (int i = 0; i < nc; i++) {
      for (int r = 0; r < 3; r++)
        for (int k = 0; k < 4; k++) c[i].M[r][k] *= uscale;
      if (!c[i].why[0]) snprintf(c[i].why, sizeof c[i].why, "%s", mbsr__affine_problem((const double(*)[4])c[i].M, buf, sizeof buf));
    }
  if (c[0].why[0]) {
    if (!allow)
      return mbsr_error(MBSR_EFORMAT, "%s: bad geometry in %s: %s (fix the header; `mbsr convert --allow-bad-geometry` "
                                      "writes a copy with a substitute)",
                        path, c[0].name, c[0].why);
    while (pick < nc && c[pick].why[0]) pick++;
    if (pick < nc) {
      mbsr_warn("%s: bad geometry in %s: %s; %s used instead (--allow-bad-geometry)", path, c[0].name, c[0].why,
                c[pick].name);
      mbsr__note("bad geometry in %s (%s): %s used", c[0].name, c[0].why, c[pick].name);
    } else {
      pick = 0;
      if (!mbsr__affine_problem((const double(*)[4])c[0].M, buf, sizeof buf)[0]) { /* the qform, pixdim <= 0 read as 1 */
        mbsr_warn("%s: bad geometry in %s: %s; read with 1 mm for the unusable pixdim (--allow-bad-geometry)", path,
                  c[0].name, c[0].why);
        mbsr__note("bad geometry in %s (%s): 1 mm used for the unusable pixdim", c[0].name, c[0].why);
      }
    }
  }
  memcpy(A, c[pick].M, 16 * sizeof(double));
  A[3][0] = A[3][1] = A[3][2] = 0;
  A[3][3] = 1;
  *xform = pick == nc - 1 ? "pixdim" : nim->sform_code > 0 && pick == 0 ? "sform" : "qform";
  if (pick == nc - 1 && nc == 1) mbsr__note("no sform/qform: affine = diag(pixdim)");
  return mbsr__check_geometry(path, A, c[pick].name, allow); /* substitute when nothing was usable */
}

/* ---- reading ---- */
/* The header metadata that travels to the files written from this one (mbsr_volume_meta). */
static void fill_meta(mbsr_volume_meta *m, const nifti_image *nim, int64_t nvol) {
  m->sform_code = nim->sform_code;
  m->qform_code = nim->qform_code;
  m->xyz_units = nim->xyz_units;
  m->time_units = nim->time_units;
  m->scl_slope = nim->scl_slope;
  m->scl_inter = nim->scl_inter;
  m->intent_code = nim->intent_code;
  m->intent_p[0] = nim->intent_p1;
  m->intent_p[1] = nim->intent_p2;
  m->intent_p[2] = nim->intent_p3;
  snprintf(m->intent_name, sizeof m->intent_name, "%.15s", nim->intent_name);
  snprintf(m->descrip, sizeof m->descrip, "%.79s", nim->descrip);
  m->tr = isfinite(nim->dt) ? nim->dt : 0;
  m->toffset = isfinite(nim->toffset) ? nim->toffset : 0;
  m->nvol = nvol;
}

/* Which volumes to read: all, or the one opts names; a file with several and no choice is refused. */
static int pick_volumes(const char *path, const mbsr_read_opts *opts, int all, int64_t nvol, int ndim, int64_t *first,
                        int64_t *count) {
  *first = 0;
  *count = all ? nvol : 1;
  if (all) return MBSR_OK;
  if (opts && opts->volume_given) {
    if (opts->volume < 0 || opts->volume >= nvol)
      return mbsr_error(MBSR_ERANGE, "%s: volume %lld asked for, but the file holds %lld (0..%lld)", path,
                        (long long)opts->volume, (long long)nvol, (long long)nvol - 1);
    *first = opts->volume;
  } else if (nvol > 1) {
    return mbsr_error(MBSR_EINVAL, "%s: %d-D file with %lld volumes: choose one (volume 0..%lld)", path, ndim,
                      (long long)nvol, (long long)nvol - 1);
  }
  return MBSR_OK;
}

/* A short read of the data: the most useful of the error messages. */
static int short_read_error(const char *path, int64_t got, int64_t off, int64_t need) {
  if (got == -2) return mbsr_error(MBSR_EIO, "%s: cannot open", path);
  int gzerr;
  int64_t len = stream_length(path, &gzerr);
  if (gzerr)
    return mbsr_error(MBSR_ETRUNC, "%s: truncated or corrupt gzip stream (%lld bytes decompressed, %lld needed)", path,
                      (long long)len, (long long)(off + need));
  if (len <= off)
    return mbsr_error(MBSR_ETRUNC, "%s: vox_offset %lld points past the end of the data (%lld bytes decompressed)", path,
                      (long long)off, (long long)len);
  return mbsr_error(MBSR_ETRUNC, "%s: truncated: %lld bytes, header needs %lld", path, (long long)len, (long long)(off + need));
}

/* The raw bytes of `count` volumes from `first` on, native byte order, into *raw (malloc'd). */
static int read_raw(const char *path, const nifti_image *nim, const hdr_info *hi, int64_t first, int64_t count, void **raw) {
  /* The voxels are read here with zlib (plain or gzip alike) rather than by nifti_clib, whose
   * data reader prints to stderr whatever the debug level and silently replaces NaN/Inf floats
   * by 0 (mbsr must see them: mbsr_volume_check_finite). */
  int64_t vbytes = hi->nvox3 * nim->nbyper, need = vbytes * count;
  /* hi->data_off, not nim->iname_offset: nifti_clib casts vox_offset to int (a vox_offset >= 2^31
   * became byte 348) and reads from 348 when vox_offset < 348 */
  int64_t off = hi->data_off + first * vbytes;
  if (hi->vox_offset < (hi->version == 1 ? 352 : 544) && hi->vox_offset != 0)
    mbsr__note("vox_offset %g below the minimum: data read from byte %lld", hi->vox_offset, (long long)hi->data_off);
  void *buf = malloc((size_t)(need > 0 ? need : 1));
  if (!buf) return mbsr_error(MBSR_ENOMEM, "%s: cannot allocate %.1f MiB for the data", path, (double)need / 1048576.0);
  int64_t got = read_data(path, off, buf, need);
  if (got < need) {
    free(buf);
    return short_read_error(path, got, off, need);
  }
  if (nim->byteorder != nifti_short_order() && nim->nbyper > 1) {
    unsigned char *c = buf;
    for (int64_t i = 0; i < hi->nvox3 * count; i++) swapn(c + i * nim->nbyper, nim->nbyper);
  }
  *raw = buf;
  return MBSR_OK;
}

/* scl_slope == 0 (or non-finite) means no scaling. */
static void scaling(const nifti_image *nim, double *slope, double *inter) {
  *slope = nim->scl_slope, *inter = nim->scl_inter;
  if (!(*slope != 0 && isfinite(*slope))) {
    *slope = 1;
    *inter = 0;
  } else {
    if (!isfinite(*inter)) *inter = 0;
    if (*slope != 1 || *inter != 0) mbsr__note("scl_slope %g, scl_inter %g applied", *slope, *inter);
  }
}

/* The volumes of `raw` (count of them, the first being volume `first`) as mbsr volumes. */
static int make_volumes(const char *path, const nifti_image *nim, const hdr_info *hi, const double affine[4][4], const void *raw,
                        int64_t first, int64_t count, int64_t nvol, mbsr_volume **vols) {
  int64_t nx = nim->dim[1], ny = nim->dim[0] >= 2 ? nim->dim[2] : 1, nz = nim->dim[0] >= 3 ? nim->dim[3] : 1;
  double slope, inter;
  scaling(nim, &slope, &inter);
  for (int64_t t = 0; t < count; t++) {
    mbsr_volume *v = t == 0 ? mbsr_volume_new(nx, ny, nz, NULL, affine) : mbsr_volume_new_like(vols[0]);
    if (!v) return mbsr_error_prefix(MBSR_ENOMEM, "%s: ", path);
    vols[t] = v;
    if (t == 0) fill_meta(&v->meta, nim, nvol);
    v->meta.vol_index = first + t;
    const char *src = (const char *)raw + t * hi->nvox3 * nim->nbyper;
    int rc = mbsr__convert(v->data, src, hi->nvox3, nim->datatype, slope, inter, &v->src_min, &v->src_max);
    if (rc) return mbsr_error_prefix(rc, "%s: ", path);
    v->src_dtype = nim->datatype;
    snprintf(v->src_format, sizeof v->src_format, "nifti%d", hi->version);
  }
  return MBSR_OK;
}

/* Read volumes of path: all of them (all), or the one opts picks (*n = 1). */
static int nifti_read(const char *path, const mbsr_read_opts *opts, int all, mbsr_volume ***vols, int64_t *n) {
  *vols = NULL;
  *n = 0;
  if (!mbsr_file_exists(path)) return mbsr_error(MBSR_EIO, "%s: no such file", path);
  hdr_info hi;
  int rc = check_header(path, &hi);
  if (rc) return rc;

  nifti_set_debug_level(0);
  nifti_image *nim = nifti_image_read(path, 0);
  if (!nim) return mbsr_error(MBSR_EFORMAT, "%s: nifti_clib could not parse the header", path);
  int64_t nvol = hi.nvox3 > 0 ? (nim->nvox / hi.nvox3) : 1, first = 0, count = 1;
  if (nvol < 1) nvol = 1;
  rc = pick_volumes(path, opts, all, nvol, (int)nim->dim[0], &first, &count);
  if (!rc && nvol > 1) mbsr__note("%lld volumes in the file, %s read", (long long)nvol, all ? "all" : "one");
  if (!rc && nvol > 1 && !all) mbsr__note("volume %lld", (long long)first);

  double affine[4][4];
  const char *xform = "pixdim";
  double uscale = 1;
  if (nim->xyz_units == NIFTI_UNITS_MICRON) uscale = 1e-3;
  else if (nim->xyz_units == NIFTI_UNITS_METER) uscale = 1e3;
  if (!rc && uscale != 1) mbsr__note("spatial units %s converted to mm", uscale < 1 ? "micron" : "metre");
  void *raw = NULL;
  if (!rc) rc = read_raw(path, nim, &hi, first, count, &raw);
  if (!rc) rc = choose_affine(path, nim, &hi, uscale, opts && opts->allow_bad_geometry, affine, &xform);
  mbsr_volume **v = rc ? NULL : calloc((size_t)count, sizeof *v);
  if (!rc && !v) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  if (!rc) rc = make_volumes(path, nim, &hi, (const double(*)[4])affine, raw, first, count, nvol, v);
  free(raw);
  nifti_image_free(nim);
  if (rc) {
    mbsr_volume_series_free(v, count);
    return rc;
  }
  mbsr__note("affine from %s", xform);
  *vols = v;
  *n = count;
  return MBSR_OK;
}

int mbsr_nifti_read(const char *path, mbsr_volume **out) { return mbsr__nifti_read(path, NULL, out); }

int mbsr__nifti_read(const char *path, const mbsr_read_opts *opts, mbsr_volume **out) {
  *out = NULL;
  mbsr_volume **v = NULL;
  int64_t n = 0;
  int rc = nifti_read(path, opts, 0, &v, &n);
  if (rc) return rc;
  *out = v[0];
  free(v);
  return MBSR_OK;
}

int mbsr__nifti_read_series(const char *path, const mbsr_read_opts *opts, mbsr_volume ***vols, int64_t *n) {
  return nifti_read(path, opts, 1, vols, n);
}

/* ---- writing ---- */
int mbsr_volume_output_path(const char *path, char *buf, size_t n) {
  static const char *other[] = {".nrrd", ".nhdr", ".tif", ".tiff", ".mhd", ".mha", ".hdr", ".img", ".h5", ".gz"};
  int w;
  if (ends_with(path, ".nii") || ends_with(path, ".nii.gz")) {
    w = snprintf(buf, n, "%s", path);
  } else {
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
      if (ends_with(path, other[i]))
        return mbsr_error(MBSR_EUNSUPPORTED, "%s: mbsr writes NIfTI only (.nii or .nii.gz)", path);
    w = snprintf(buf, n, "%s.nii.gz", path);
  }
  if (w < 0 || (size_t)w >= n) return mbsr_error(MBSR_ERANGE, "%s: path too long", path);
  return MBSR_OK;
}

/* Write n bytes; on failure returns the errno of the failing call (EIO if it set none). */
static int write_bytes(void *fh, int gz, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    errno = 0;
    if (gz) {
      int w = gzwrite((gzFile)fh, c, chunk);
      if (w <= 0) {
        int zerr = Z_OK;
        gzerror((gzFile)fh, &zerr);
        return zerr == Z_ERRNO && errno ? errno : zerr == Z_MEM_ERROR ? ENOMEM : errno ? errno : EIO;
      }
      chunk = (unsigned)w;
    } else if (fwrite(c, 1, chunk, (FILE *)fh) != chunk) {
      return errno ? errno : EIO;
    }
    c += chunk;
    n -= chunk;
  }
  return 0;
}

/* The spatial unit the header is written in: the file's own (micron, metre) or mm; *scale
 * converts mbsr's mm into it. */
static int out_units(int xyz_units, double *scale) {
  *scale = xyz_units == NIFTI_UNITS_MICRON ? 1e3 : xyz_units == NIFTI_UNITS_METER ? 1e-3 : 1;
  return *scale != 1 ? xyz_units : NIFTI_UNITS_MM;
}

/* v->meta into the header: codes (both 0: mbsr's affine is a scanner one), descrip, intent, time. */
static void put_meta(nifti_image *nim, const mbsr_volume_meta *m, int64_t n) {
  int none = m->sform_code <= 0 && m->qform_code <= 0;
  nim->sform_code = none ? NIFTI_XFORM_SCANNER_ANAT : m->sform_code;
  nim->qform_code = none ? NIFTI_XFORM_SCANNER_ANAT : m->qform_code;
  nim->time_units = m->time_units;
  if (n > 1) {
    nim->dt = nim->pixdim[4] = m->tr;
    nim->toffset = m->toffset;
  }
  nim->intent_code = m->intent_code;
  nim->intent_p1 = m->intent_p[0];
  nim->intent_p2 = m->intent_p[1];
  nim->intent_p3 = m->intent_p[2];
  snprintf(nim->intent_name, sizeof nim->intent_name, "%.15s", m->intent_name);
  if (m->descrip[0]) snprintf(nim->descrip, sizeof nim->descrip, "%.79s", m->descrip);
  else snprintf(nim->descrip, sizeof nim->descrip, "mbsr %s", MBSR_VERSION);
}

/* The NIfTI-1 (NIfTI-2 for a side above 32767) header of n volumes like v, float32, into hdr (hsize bytes). */
static int build_header(const mbsr_volume *v, int64_t n, const char *final, unsigned char hdr[544], size_t *hsize) {
  int nifti2 = v->nx > 32767 || v->ny > 32767 || v->nz > 32767 || n > 32767, bad = 0;
  int64_t dims[8] = {n > 1 ? 4 : 3, v->nx, v->ny, v->nz, n, 1, 1, 1};
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_make_new_nim(dims, NIFTI_TYPE_FLOAT32, 0);
  if (!nim) return mbsr_error(MBSR_ENOMEM, "%s: cannot build a NIfTI header", final);
  double us;
  nim->xyz_units = out_units(v->meta.xyz_units, &us);
  nifti_dmat44 A;
  memcpy(A.m, v->affine, sizeof A.m);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) A.m[r][c] *= us;
  A.m[3][0] = A.m[3][1] = A.m[3][2] = 0;
  A.m[3][3] = 1;
  nim->sto_xyz = A;
  double dx, dy, dz, qfac;
  nifti_dmat44_to_quatern(A, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x, &nim->qoffset_y,
                          &nim->qoffset_z, &dx, &dy, &dz, &qfac);
  nim->qfac = qfac;
  nim->qto_xyz = nifti_quatern_to_dmat44(nim->quatern_b, nim->quatern_c, nim->quatern_d, nim->qoffset_x,
                                         nim->qoffset_y, nim->qoffset_z, dx, dy, dz, qfac);
  /* pixdim = the column lengths of the affine (= dx,dy,dz of the quaternion decomposition) */
  nim->dx = nim->pixdim[1] = v->vox[0] > 0 ? v->vox[0] * us : dx;
  nim->dy = nim->pixdim[2] = v->vox[1] > 0 ? v->vox[1] * us : dy;
  nim->dz = nim->pixdim[3] = v->vox[2] > 0 ? v->vox[2] * us : dz;
  nim->scl_slope = 1;
  nim->scl_inter = 0;
  put_meta(nim, &v->meta, n);
  nim->nifti_type = nifti2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
  memset(hdr, 0, 544);
  if (nifti2) {
    nifti_2_header h2;
    nim->iname_offset = 544;
    bad = nifti_convert_nim2n2hdr(nim, &h2) != 0;
    h2.vox_offset = 544;
    memcpy(h2.magic, "n+2\0\r\n\032\n", 8);
    memcpy(hdr, &h2, sizeof h2);
    *hsize = 544;
  } else {
    nifti_1_header h1;
    nim->iname_offset = 352;
    bad = nifti_convert_nim2n1hdr(nim, &h1) != 0;
    h1.vox_offset = 352;
    memcpy(h1.magic, "n+1", 4);
    memcpy(hdr, &h1, sizeof h1);
    *hsize = 352;
  }
  nifti_image_free(nim);
  return bad ? mbsr_error(MBSR_EFORMAT, "%s: nifti_clib could not build the header", final) : 0;
}

/* The header and the voxels into tmp (gzip for .gz), closed and synced. Every step's errno is
 * taken right after that step (a later call would clobber it: a full disk used to be reported as
 * "No such file or directory"). The buffered tail is written at close, and some file systems
 * report ENOSPC only at fsync: both are checked. */
static int write_nifti_file(const char *final, const char *tmp, const unsigned char *hdr, size_t hsize, mbsr_volume *const *vols,
                            int64_t n) {
  int gz = ends_with(final, ".gz");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return mbsr_error(MBSR_EIO, "%s: cannot create temporary %s: %s", final, tmp, strerror(errno));
  int fd2 = dup(fd); /* the stream owns fd2; fd stays ours for fsync */
  void *fh = fd2 < 0 ? NULL : gz ? (void *)gzdopen(fd2, "wb1") : (void *)fdopen(fd2, "wb");
  if (!fh) {
    int e = errno ? errno : ENOMEM;
    if (fd2 >= 0) close(fd2);
    close(fd);
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: cannot create temporary %s: %s", final, tmp, strerror(e));
  }
  int e = write_bytes(fh, gz, hdr, hsize);
  for (int64_t t = 0; t < n && !e; t++) e = write_bytes(fh, gz, vols[t]->data, (size_t)mbsr_volume_nvox(vols[t]) * sizeof(float));
  errno = 0;
  if (gz) {
    int zr = gzclose((gzFile)fh);
    if (!e && zr != Z_OK) e = zr == Z_ERRNO && errno ? errno : zr == Z_MEM_ERROR ? ENOMEM : EIO;
  } else if (fclose((FILE *)fh) != 0 && !e) {
    e = errno ? errno : EIO;
  }
  if (!e && fsync(fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP) e = errno;
  if (close(fd) != 0 && !e && errno != EINTR) e = errno;
  if (e) {
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed: %s", final, strerror(e));
  }
  return 0;
}

int mbsr_volume_write(const char *path, const mbsr_volume *v) {
  mbsr_volume *one = (mbsr_volume *)v; /* written, not changed */
  return mbsr_volume_write_series(path, &one, 1);
}

int mbsr_volume_write_series(const char *path, mbsr_volume *const *vols, int64_t n) {
  char final[4096], tmp[4200];
  int rc = mbsr_volume_output_path(path, final, sizeof final);
  if (rc) return rc;
  if (n < 1) return mbsr_error(MBSR_EINVAL, "%s: no volume to write", final);
  const mbsr_volume *v = vols[0];
  for (int64_t t = 1; t < n; t++)
    if (!mbsr_volume_same_grid(v, vols[t], 0))
      return mbsr_error(MBSR_EMISMATCH, "%s: volume %lld is not on the grid of volume 0", final, (long long)t);
  char why[256];
  if (mbsr__affine_problem((const double(*)[4])v->affine, why, sizeof why)[0])
    return mbsr_error(MBSR_EINVAL, "%s: refusing to write a volume with bad geometry: %s", final, why);
  /* the directory must exist: report that plainly rather than as a temporary-file error */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", final);
  char *slash = strrchr(dir, '/');
  if (slash) {
    if (slash == dir) slash[1] = 0;
    else *slash = 0;
    if (!mbsr_is_dir(dir)) return mbsr_error(MBSR_EIO, "%s: output directory %s does not exist", final, dir);
  }
  if ((rc = mbsr_tmp_path(final, tmp, sizeof tmp))) return rc;
  unsigned char hdr[544];
  size_t hsize = 0;
  if ((rc = build_header(v, n, final, hdr, &hsize))) return rc;
  if ((rc = write_nifti_file(final, tmp, hdr, hsize, vols, n))) return rc;
  return mbsr_commit_file(tmp, final);
}
