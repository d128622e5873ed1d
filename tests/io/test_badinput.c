/* io: bad input. Each case must come back as a negative code with ONE line naming the file, never
 * a crash, an exit, or nifti_clib/teem/libtiff noise; the CLI prints that one line and exits
 * non-zero, and a failed write leaves no file behind. Corrupt files are made here from the
 * committed fixtures (tests/fixtures/io) by truncating or editing header bytes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mbsr/volume.h"
#include "io_files.h"
#include "mbsr_test.h"

static void test_truncated_nii_gz(void) {
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("dt_float32.nii.gz"), &n);
  CU_ASSERT_FATAL(b && n == 352 + 60 * 4);
  /* a gzip stream holding only part of the data, and a gzip file cut in the middle */
  spit(tmpfile_path("short_data.nii.gz", p, sizeof p), b, n - 40, 1);
  expect_fail(p, NULL, MBSR_ETRUNC, "truncated");
  size_t zn;
  {
    FILE *g = fopen(fx("dt_float64.nii.gz"), "rb");
    unsigned char zb[8192];
    zn = fread(zb, 1, sizeof zb, g);
    fclose(g);
    spit(tmpfile_path("cut.nii.gz", p, sizeof p), zb, zn / 2, 0);
  }
  expect_fail(p, NULL, MBSR_ETRUNC, "truncated");
  /* cut inside the header */
  spit(tmpfile_path("cut_header.nii.gz", p, sizeof p), b, 200, 1);
  expect_fail(p, NULL, MBSR_ETRUNC, "truncated");
  free(b);
}

static void test_truncated_raw_nii(void) {
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("i16_scaled.nii"), &n);
  CU_ASSERT_FATAL(b != NULL);
  spit(tmpfile_path("short.nii", p, sizeof p), b, n - 7, 0);
  expect_fail(p, NULL, MBSR_ETRUNC, "truncated");
  spit(tmpfile_path("empty.nii", p, sizeof p), b, 0, 0);
  expect_fail(p, NULL, MBSR_ETRUNC, "truncated");
  free(b);
}

static void test_wrong_magic(void) {
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("dt_uint8.nii.gz"), &n);
  CU_ASSERT_FATAL(b != NULL);
  memcpy(b + 344, "xyz", 4);
  spit(tmpfile_path("magic.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "magic");
  /* not a NIfTI at all (a NRRD renamed .nii) */
  free(b);
  b = slurp(fx("raw_le_i16.nrrd"), &n);
  spit(tmpfile_path("nrrd_renamed.nii", p, sizeof p), b, n, 0);
  expect_fail(p, NULL, MBSR_EFORMAT, "not a NIfTI");
  free(b);
  /* NRRD with a wrong magic */
  b = slurp(fx("raw_le_i16.nrrd"), &n);
  memcpy(b, "NRRX", 4);
  spit(tmpfile_path("magic.nrrd", p, sizeof p), b, n, 0);
  expect_fail(p, NULL, MBSR_EFORMAT, NULL);
  free(b);
}

static void test_absurd_dims(void) {
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("dt_uint8.nii.gz"), &n);
  CU_ASSERT_FATAL(b != NULL);
  /* NIfTI-1: dims 32767^3 = 3.5e13 voxels */
  int16_t d[4] = {3, 32767, 32767, 32767};
  memcpy(b + 40, d, sizeof d);
  spit(tmpfile_path("absurd.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_ERANGE, "absurd");
  /* negative / zero dims */
  int16_t z[4] = {3, 3, -4, 5};
  memcpy(b + 40, z, sizeof z);
  spit(tmpfile_path("negdim.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "dim[2]");
  int16_t nd[1] = {9};
  memcpy(b + 40, nd, 2);
  spit(tmpfile_path("ndim9.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "dim[0]");
  free(b);
  /* NIfTI-2: int64 dims whose product overflows */
  b = slurp(fx("n2_f32.nii"), &n);
  CU_ASSERT_FATAL(b != NULL && n >= 540);
  if (!b || n < 540) return;
  int64_t d2[4] = {3, (int64_t)1 << 40, (int64_t)1 << 40, 4};
  memcpy(b + 16, d2, sizeof d2);
  spit(tmpfile_path("overflow_n2.nii", p, sizeof p), b, n, 0);
  expect_fail(p, NULL, MBSR_ERANGE, "absurd");
  free(b);
  /* NRRD: sizes that overflow size_t (teem) and sizes that are merely absurd (mbsr limit) */
  b = slurp(fx("allen_like_u16.nrrd"), &n);
  CU_ASSERT_FATAL(b != NULL);
  char *s = (char *)b;
  char *sz = strstr(s, "sizes: 3 4 5");
  CU_ASSERT_FATAL(sz != NULL);
  size_t pre = (size_t)(sz - s), post = pre + strlen("sizes: 3 4 5");
  char *edited = malloc(n + 100);
  const char *big[2] = {"sizes: 30000000000 40000000000 50000000000", "sizes: 100000 100000 100000"};
  for (int t = 0; t < 2; t++) {
    memcpy(edited, b, pre);
    size_t k = pre + (size_t)sprintf(edited + pre, "%s", big[t]);
    memcpy(edited + k, b + post, n - post);
    spit(tmpfile_path(t ? "absurd.nrrd" : "overflow.nrrd", p, sizeof p), edited, k + n - post, 0);
    expect_fail(p, NULL, t ? MBSR_ERANGE : MBSR_EFORMAT, NULL);
  }
  free(edited);
  free(b);
  /* volume allocation itself refuses absurd and overflowing dims */
  mbsr_error_clear();
  CU_ASSERT(mbsr_volume_new(INT64_MAX / 2, 4, 4, NULL, NULL) == NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "too many voxels") != NULL);
  CU_ASSERT(mbsr_volume_new(1 << 20, 1 << 20, 1 << 20, NULL, NULL) == NULL);
  CU_ASSERT(mbsr_volume_new(0, 4, 4, NULL, NULL) == NULL);
  CU_ASSERT(mbsr_volume_new(4, -1, 4, NULL, NULL) == NULL);
}

static void test_unsupported_datatype(void) {
  expect_fail(fx("bad_complex64.nii.gz"), NULL, MBSR_EUNSUPPORTED, "complex64");
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("dt_uint8.nii.gz"), &n);
  int16_t rgb = 128;
  memcpy(b + 70, &rgb, 2);
  spit(tmpfile_path("rgb.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EUNSUPPORTED, "rgb24");
  free(b);
  expect_fail(fx("nothing.xyz"), NULL, MBSR_EIO, "no such file");
  spit(tmpfile_path("unknown.xyz", p, sizeof p), "abc", 3, 0);
  expect_fail(p, NULL, MBSR_EUNSUPPORTED, "unknown volume format");
}

/* a zero (singular) sform is refused (it used to be ignored silently); with allow_bad_geometry it
 * falls back to diag(pixdim) (qform_code is 0 in this file), with a note */
static void test_singular_sform(void) {
  char p[4096];
  size_t n;
  unsigned char *b = slurp(fx("u16_permuted.nii.gz"), &n);
  CU_ASSERT_FATAL(b != NULL && n >= 352);
  if (!b || n < 352) return;
  memset(b + 280, 0, 48);
  float pd[4] = {1, 0.3f, 0.4f, 0.5f};
  memcpy(b + 76, pd, sizeof pd);
  spit(tmpfile_path("zero_sform.nii.gz", p, sizeof p), b, n, 1);
  free(b);
  expect_fail(p, NULL, MBSR_EFORMAT, "sform");
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(p, &(mbsr_read_opts){.allow_bad_geometry = 1}, &v));
  MT_ASSERT_NEAR(v->affine[0][0], 0.3, 1e-6);
  MT_ASSERT_NEAR(v->affine[1][1], 0.4, 1e-6);
  MT_ASSERT_NEAR(v->affine[2][2], 0.5, 1e-6);
  MT_ASSERT_NEAR(v->affine[0][2], 0, 0);
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "bad geometry in the sform") != NULL);
  mbsr_volume_free(v);
}

/* vox_offset past the end of the data: the .nii.gz used to be read from byte 348 (nifti_clib casts
 * vox_offset to int), every voxel shifted; the raw .nii was refused. Both must be refused naming
 * vox_offset; a vox_offset below 352 is read from 352 (nifti_clib used 348: shifted by 4 bytes). */
static void test_vox_offset(void) {
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("dt_float32.nii.gz"), &n);
  CU_ASSERT_FATAL(b && n == 352 + 60 * 4);
  float off = 3e9f;
  memcpy(b + 108, &off, 4);
  spit(tmpfile_path("voxoff_past.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_ETRUNC, "vox_offset");
  spit(tmpfile_path("voxoff_past.nii", p, sizeof p), b, n, 0);
  expect_fail(p, NULL, MBSR_ETRUNC, "vox_offset");
  off = 600; /* inside the file but data would run past its end */
  memcpy(b + 108, &off, 4);
  spit(tmpfile_path("voxoff_600.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_ETRUNC, "vox_offset");
  /* vox_offset 300 (< 352): the data are at 352 */
  mbsr_volume *ref = NULL, *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(fx("dt_float32.nii.gz"), NULL, &ref));
  off = 300;
  memcpy(b + 108, &off, 4);
  for (int gz = 0; gz < 2; gz++) {
    spit(tmpfile_path(gz ? "voxoff_300.nii.gz" : "voxoff_300.nii", p, sizeof p), b, n, gz);
    MT_ASSERT_OK(mbsr_volume_read(p, NULL, &v));
    CU_ASSERT(memcmp(v->data, ref->data, 60 * sizeof(float)) == 0);
    mbsr_volume_free(v);
  }
  mbsr_volume_free(ref);
  free(b);
}

/* `encoding: gzip` with a raw payload used to be read as raw (teem reads non-gzip bytes
 * "transparently"); attached and detached alike it must be an error naming the file. */
static void test_nrrd_gzip_raw(void) {
  char p[4096], d[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("raw_le_i16.nrrd"), &n);
  CU_ASSERT_FATAL(b != NULL);
  char *s = (char *)b, *enc = strstr(s, "encoding: raw");
  CU_ASSERT_FATAL(enc != NULL);
  size_t pre = (size_t)(enc - s), post = pre + strlen("encoding: raw");
  FILE *f = fopen(tmpfile_path("gzip_but_raw.nrrd", p, sizeof p), "wb");
  fwrite(b, 1, pre, f);
  fputs("encoding: gzip", f);
  fwrite(b + post, 1, n - post, f);
  fclose(f);
  expect_fail(p, NULL, MBSR_EFORMAT, "gzip");
  /* detached: the .nhdr fixture pointing at a raw data file */
  char *hdr = strstr(s, "\n\n");
  CU_ASSERT_FATAL(hdr != NULL);
  spit(tmpfile_path("gzip_but_raw.raw", d, sizeof d), hdr + 2, n - (size_t)(hdr + 2 - s), 0);
  f = fopen(tmpfile_path("gzip_but_raw.nhdr", p, sizeof p), "wb");
  fwrite(b, 1, pre, f);
  fputs("encoding: gzip", f);
  fwrite(b + post, 1, (size_t)(hdr - s) + 1 - post, f);
  fputs("data file: gzip_but_raw.raw\n", f);
  fclose(f);
  expect_fail(p, NULL, MBSR_EFORMAT, "gzip_but_raw.raw");
  /* the genuine gzip fixtures still read */
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(fx("detached.nhdr"), NULL, &v));
  mbsr_volume_free(v);
  free(b);
}

/* MetaImage DimSize: checked before multiplying (was a signed overflow; these dims wrapped to
 * 2^33 voxels and got past the range check) */
static void test_mhd_dims(void) {
  char p[4096];
  const char *dims[] = {"8589934592 2147483649 1", "1e300 1 1", "4294967296 4294967296 4294967296", "100000 100000 100000"};
  for (int i = 0; i < 4; i++) {
    char name[64];
    snprintf(name, sizeof name, "absurd_%d.mhd", i);
    FILE *f = fopen(tmpfile_path(name, p, sizeof p), "w");
    fprintf(f, "NDims = 3\nDimSize = %s\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n", dims[i]);
    fwrite("0123456789", 1, 10, f);
    fclose(f);
    expect_fail(p, NULL, MBSR_ERANGE, "absurd DimSize");
  }
  /* HeaderSize beyond the file, and absurd: an error, not a wrap */
  FILE *f = fopen(tmpfile_path("hsize.mhd", p, sizeof p), "w");
  fprintf(f, "NDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\nHeaderSize = 9223372036854775000\nElementDataFile = LOCAL\n");
  fwrite("01234567", 1, 8, f);
  fclose(f);
  expect_fail(p, NULL, MBSR_EFORMAT, "HeaderSize");
  f = fopen(tmpfile_path("hsize2.mhd", p, sizeof p), "w");
  fprintf(f, "NDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\nHeaderSize = 100\nElementDataFile = LOCAL\n");
  fwrite("01234567", 1, 8, f);
  fclose(f);
  expect_fail(p, NULL, MBSR_ETRUNC, "HeaderSize");
}

/* A directory stack whose member has several pages: it used to read the first page silently. */
static void test_tiff_multipage_member(void) {
  char dir[4096], p[4200];
  snprintf(dir, sizeof dir, "%s/stack_with_multipage", mbsr_test_tmpdir());
  mbsr_mkdir_p(dir);
  size_t n = 0;
  unsigned char *b = slurp(fx("multipage_u8.tif"), &n);
  CU_ASSERT_FATAL(b != NULL);
  snprintf(p, sizeof p, "%s/s0.tif", dir);
  spit(p, b, n, 0);
  snprintf(p, sizeof p, "%s/s1.tif", dir);
  spit(p, b, n, 0);
  free(b);
  expect_fail(dir, NULL, MBSR_EUNSUPPORTED, "s0.tif: 3 pages");
  /* the multi-page file on its own reads every page */
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(fx("multipage_u8.tif"), NULL, &v));
  MT_ASSERT_INT_EQ(v->nz, 3);
  mbsr_volume_free(v);
}

/* convert on a full disk: the temporary output is a symlink to /dev/full (the CLI's first
 * temporary is its sidecar's, ".tmp-<pid>-0-<stem>.json", the volume's is ".tmp-<pid>-1-<name>",
 * and `exec` keeps the shell's pid). The message was
 * "No such file or directory" (errno read after another call clobbered it). */
static void test_convert_full_disk(void) {
  const char *tmp = mbsr_test_tmpdir();
  char err[4096];
  if (!mbsr_file_exists("/dev/full")) {
    mbsr_test_skip("/dev/full is absent");
    return;
  }
  snprintf(err, sizeof err, "%s/full_err.txt", tmp);
  const char *outs[2] = {"full.nii.gz", "full.nii"};
  for (int i = 0; i < 2; i++) {
    int st = mbsr_test_sh("sh -c 'ln -s /dev/full %s/.tmp-$$-1-%s && exec %s convert %s %s/%s' 2>%s >/dev/null", tmp,
                          outs[i], mbsr_test_bin(), fx("dt_float32.nii.gz"), tmp, outs[i], err);
    MT_ASSERT_INT_EQ(st, 1);
    mbsr_test_sh("cat %s", err);
    MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q '%s: write failed: No space left on device' %s", err,
                                  outs[i], err),
                     0);
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", tmp, outs[i]);
    CU_ASSERT(!mbsr_file_exists(p));
  }
  MT_ASSERT_INT_EQ(mbsr_test_sh("ls -a %s | grep -q '^\\.tmp-'", tmp), 1);
}

/* Error messages hold long paths whole (they were cut at ~1 KB) and are never cut inside a
 * UTF-8 sequence when they are longer than the buffer. */
static void test_long_messages(void) {
  char path[4096];
  size_t len = (size_t)snprintf(path, sizeof path, "%s/", mbsr_test_tmpdir());
  while (len + 260 < 3500) { /* 3.5 KB of directories named with 2-byte characters */
    for (int i = 0; i < 100; i++) path[len++] = (char)(i % 2 ? 0xa9 : 0xc3); /* "ééé..." */
    path[len++] = '/';
  }
  memcpy(path + len, "missing.nii.gz", 15);
  mbsr_volume *v = NULL;
  CU_ASSERT(mbsr_volume_read(path, NULL, &v) < 0);
  const char *m = mbsr_last_error();
  CU_ASSERT(strstr(m, path) != NULL);
  printf("\n    message of %zu bytes for a path of %zu", strlen(m), strlen(path));
  /* mbsr_error_prefix keeps all of a long prefix and the old message */
  mbsr_error_prefix(MBSR_EIO, "%s: ", path);
  CU_ASSERT(strncmp(mbsr_last_error(), path, strlen(path)) == 0);
  CU_ASSERT(strstr(mbsr_last_error() + strlen(path), path) != NULL);
  /* longer than the buffer: cut at a character boundary, marked with "..." */
  static char huge[20000];
  for (int off = 0; off < 3; off++) { /* every alignment of the 2-byte characters against the cut */
    memset(huge, 'x', (size_t)off);
    for (size_t i = (size_t)off; i + 2 < sizeof huge; i += 2) huge[i] = (char)0xc3, huge[i + 1] = (char)0xa9;
    huge[sizeof huge - 1] = 0;
    huge[sizeof huge - 2] = 0;
    mbsr_error(MBSR_EIO, "%s", huge);
    m = mbsr_last_error();
    size_t ml = strlen(m);
    CU_ASSERT(ml > 4000 && ml < 8192);
    CU_ASSERT(ml >= 3 && strcmp(m + ml - 3, "...") == 0);
    /* what precedes "..." is whole characters: count the 2-byte pairs */
    size_t body = ml - 3, i = 0;
    while (i < body && m[i] == 'x') i++;
    int ok = 1;
    for (; i < body; i += 2) ok &= (unsigned char)m[i] == 0xc3 && i + 1 < body && (unsigned char)m[i + 1] == 0xa9;
    CU_ASSERT(ok);
  }
}

static void test_nrrd_bad(void) {
  expect_fail(fx("bad_header.nrrd"), NULL, MBSR_EFORMAT, NULL);
  expect_fail(fx("bad_encoding.nrrd"), NULL, MBSR_EFORMAT, "encoding");
  expect_fail(fx("bad_truncated_gzip.nrrd"), NULL, MBSR_ETRUNC, NULL);
  /* raw NRRD cut short */
  char p[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("raw_le_i16.nrrd"), &n);
  spit(tmpfile_path("short_raw.nrrd", p, sizeof p), b, n - 10, 0);
  expect_fail(p, NULL, MBSR_ETRUNC, NULL);
  free(b);
}

static void test_tiff_mismatch(void) {
  expect_fail(fx("tiff_mismatch"), NULL, MBSR_EMISMATCH, "s01.tif");
  char p[4096];
  expect_fail(fx("tiff_dir"), &(mbsr_read_opts){.tiff_vox = {1, 1, 1}, .tiff_orient = "LXS"}, MBSR_EINVAL, NULL);
  /* an empty directory, and a file that is not a TIFF */
  snprintf(p, sizeof p, "%s/empty_dir", mbsr_test_tmpdir());
  mbsr_mkdir_p(p);
  expect_fail(p, NULL, MBSR_EFORMAT, "no .tif");
  spit(tmpfile_path("fake.tif", p, sizeof p), "not a tiff at all", 17, 0);
  expect_fail(p, NULL, MBSR_EFORMAT, "fake.tif");
}

static void test_nonfinite(void) {
  mbsr_volume *v = mbsr_volume_new(4, 4, 4, NULL, NULL);
  MT_ASSERT_INT_EQ(mbsr_volume_check_finite(v, "v.nii"), 0);
  v->data[1 + 4 * (2 + 4 * 3)] = NAN;
  MT_ASSERT_INT_EQ(mbsr_volume_check_finite(v, "v.nii"), MBSR_ENONFINITE);
  CU_ASSERT(strstr(mbsr_last_error(), "v.nii: NaN value at voxel (1,2,3)") != NULL);
  v->data[1 + 4 * (2 + 4 * 3)] = 0;
  v->data[63] = -INFINITY;
  MT_ASSERT_INT_EQ(mbsr_volume_check_finite(v, "v.nii"), MBSR_ENONFINITE);
  CU_ASSERT(strstr(mbsr_last_error(), "Inf value at voxel (3,3,3)") != NULL);
  /* a NIfTI with NaN reads fine (it is a valid file) but fails the check; the CLI convert refuses it */
  char p[4096];
  snprintf(p, sizeof p, "%s/nan.nii.gz", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_volume_write(p, v));
  mbsr_volume *r = NULL;
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &r));
  MT_ASSERT_INT_EQ(mbsr_volume_check_finite(r, p), MBSR_ENONFINITE);
  mbsr_volume_free(r);
  mbsr_volume_free(v);
}

static void test_write_missing_dir(void) {
  mbsr_volume *v = mbsr_volume_new(3, 3, 3, NULL, NULL);
  char p[4096];
  snprintf(p, sizeof p, "%s/missing/out.nii.gz", mbsr_test_tmpdir());
  int rc = mbsr_volume_write(p, v);
  CU_ASSERT(rc < 0);
  CU_ASSERT(strstr(mbsr_last_error(), p) != NULL);
  CU_ASSERT(!mbsr_file_exists(p));
  /* unwritable place (a file used as a directory) */
  snprintf(p, sizeof p, "%s/afile", mbsr_test_tmpdir());
  spit(p, "x", 1, 0);
  snprintf(p, sizeof p, "%s/afile/out.nii", mbsr_test_tmpdir());
  CU_ASSERT(mbsr_volume_write(p, v) < 0);
  mbsr_volume_free(v);
  MT_ASSERT_INT_EQ(mbsr_test_sh("ls -a %s | grep -q '^\\.tmp-'", mbsr_test_tmpdir()), 1);
}

/* End to end: ONE line on stderr naming the file, non-zero exit, nothing left behind. */
static void test_cli_errors(void) {
  const char *tmp = mbsr_test_tmpdir();
  char p[4096], err[4096];
  size_t n = 0;
  unsigned char *b = slurp(fx("dt_float32.nii.gz"), &n);
  spit(tmpfile_path("cli_trunc.nii.gz", p, sizeof p), b, n - 40, 1);
  free(b);
  snprintf(err, sizeof err, "%s/cli_err.txt", tmp);
  int st = mbsr_test_sh("%s info %s 2>%s >/dev/null", mbsr_test_bin(), p, err);
  MT_ASSERT_INT_EQ(st, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 'cli_trunc.nii.gz: truncated' %s", err, err), 0);
  mbsr_test_sh("cat %s", err);
  /* convert from a bad NRRD: one line, no output */
  st = mbsr_test_sh("%s convert %s %s/cli_out.nii.gz 2>%s >/dev/null", mbsr_test_bin(), fx("bad_encoding.nrrd"), tmp, err);
  MT_ASSERT_INT_EQ(st, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 'bad_encoding.nrrd' %s", err, err), 0);
  snprintf(p, sizeof p, "%s/cli_out.nii.gz", tmp);
  CU_ASSERT(!mbsr_file_exists(p));
  /* convert into a missing directory */
  st = mbsr_test_sh("%s convert %s %s/nodir/out.nii.gz 2>%s >/dev/null", mbsr_test_bin(), fx("dt_uint8.nii.gz"), tmp, err);
  MT_ASSERT_INT_EQ(st, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 'nodir/out.nii.gz' %s", err, err), 0);
  /* convert refuses NaN input */
  snprintf(p, sizeof p, "%s/nan_in.nii", tmp);
  mbsr_volume *v = mbsr_volume_new(2, 2, 2, NULL, NULL);
  v->data[3] = NAN;
  MT_ASSERT_OK(mbsr_volume_write(p, v));
  mbsr_volume_free(v);
  st = mbsr_test_sh("%s convert %s %s/nan_out 2>%s >/dev/null", mbsr_test_bin(), p, tmp, err);
  MT_ASSERT_INT_EQ(st, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 'nan_in.nii: NaN' %s", err, err), 0);
  snprintf(p, sizeof p, "%s/nan_out.nii.gz", tmp);
  CU_ASSERT(!mbsr_file_exists(p));
  /* TIFF slice mismatch through the CLI names the slice */
  st = mbsr_test_sh("%s info %s 2>%s >/dev/null", mbsr_test_bin(), fx("tiff_mismatch"), err);
  MT_ASSERT_INT_EQ(st, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 's01.tif' %s", err, err), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("ls -a %s | grep -q '^\\.tmp-'", tmp), 1);
  /* usage errors exit 2, --help exits 0 */
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s info --bogus x 2>/dev/null", mbsr_test_bin()), 2);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s convert --help >/dev/null", mbsr_test_bin()), 0);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"truncated_nii_gz", test_truncated_nii_gz},
                                         {"truncated_raw_nii", test_truncated_raw_nii},
                                         {"wrong_magic", test_wrong_magic},
                                         {"absurd_dims", test_absurd_dims},
                                         {"unsupported_datatype", test_unsupported_datatype},
                                         {"singular_sform", test_singular_sform},
                                         {"vox_offset", test_vox_offset},
                                         {"nrrd_gzip_raw", test_nrrd_gzip_raw},
                                         {"mhd_dims", test_mhd_dims},
                                         {"tiff_multipage_member", test_tiff_multipage_member},
                                         {"convert_full_disk", test_convert_full_disk},
                                         {"long_messages", test_long_messages},
                                         {"nrrd_bad", test_nrrd_bad},
                                         {"tiff_mismatch", test_tiff_mismatch},
                                         {"nonfinite", test_nonfinite},
                                         {"write_missing_dir", test_write_missing_dir},
                                         {"cli_errors", test_cli_errors},
                                         {NULL, NULL}};
  return mbsr_test_main("io_badinput", cases);
}
