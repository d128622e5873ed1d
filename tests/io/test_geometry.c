/* io: geometry is validated at read time by every reader (issue 9). A header whose voxel-to-world
 * transform is unusable (non-finite, zero voxel size, singular, NaN origin, a bad --tiff-vox) is
 * refused with ONE line naming the input and what is wrong; read_opts.allow_bad_geometry (the
 * CLI's --allow-bad-geometry on info/convert) reads it with a substitute and a warning. Before
 * the fix each case below was read silently (all-zero or Inf affines, 1 mm, origin 0). The bad
 * files are made here by editing the committed fixtures of tests/fixtures/io. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mbsr/volume.h"
#include "io_files.h"
#include "mbsr_test.h"

/* With the override the read succeeds, with a usable affine and a read note saying so. */
static mbsr_volume *expect_substitute(const char *path, const mbsr_read_opts *base) {
  mbsr_read_opts o;
  memset(&o, 0, sizeof o);
  if (base) o = *base;
  o.allow_bad_geometry = 1;
  mbsr_volume *v = NULL;
  int rc = mbsr_volume_read(path, &o, &v);
  if (rc) fprintf(stderr, "  %s\n", mbsr_last_error());
  CU_ASSERT_FATAL(rc == 0 && v != NULL);
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) CU_ASSERT(isfinite(v->affine[r][c]));
  for (int a = 0; a < 3; a++) CU_ASSERT(v->vox[a] > 0 && isfinite(v->vox[a]));
  const char *notes = mbsr_volume_read_notes();
  CU_ASSERT(strstr(notes, "bad geometry") != NULL);
  return v;
}

/* ---- NIfTI-1 (fixture dt_float32.nii.gz: sform_code 2, qform_code 1) ---- */
static unsigned char *nii(size_t *n) {
  unsigned char *b = slurp(fx("dt_float32.nii.gz"), n);
  CU_ASSERT_FATAL(b != NULL && *n >= 352);
  return b;
}
static void put_f32(unsigned char *b, int off, float x) { memcpy(b + off, &x, 4); }
static void put_i16(unsigned char *b, int off, int16_t x) { memcpy(b + off, &x, 2); }

static void test_nifti_sform(void) {
  char p[4096];
  size_t n;
  unsigned char *b = nii(&n);
  /* Inf in the sform: was read (and `info` printed inf); `convert` then blamed the output */
  put_f32(b, 280, INFINITY);
  spit(tmpfile_path("sform_inf.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "sform");
  mbsr_volume *v = expect_substitute(p, NULL); /* the qform of the same file */
  MT_ASSERT_NEAR(v->vox[0], 0.5, 1e-6);
  mbsr_volume_free(v);
  /* an all-zero sform (was: silently ignored) */
  free(b);
  b = nii(&n);
  memset(b + 280, 0, 48);
  put_i16(b, 252, 0); /* no qform: the substitute comes from pixdim */
  spit(tmpfile_path("sform_zero.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "sform");
  v = expect_substitute(p, NULL);
  MT_ASSERT_NEAR(v->affine[0][0], 0.5, 1e-6);
  mbsr_volume_free(v);
  /* parallel columns (singular, non-zero) */
  free(b);
  b = nii(&n);
  float rows[12] = {1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0}; /* columns 0 and 1 both along x */
  memcpy(b + 280, rows, sizeof rows);
  spit(tmpfile_path("sform_parallel.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "coplanar");
  free(b);
}

static void test_nifti_pixdim_qform(void) {
  char p[4096];
  size_t n;
  unsigned char *b = nii(&n);
  /* no sform/qform, pixdim NaN and 0: was 1 mm */
  put_i16(b, 252, 0);
  put_i16(b, 254, 0);
  put_f32(b, 80, NAN);
  spit(tmpfile_path("pixdim_nan.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "pixdim[1]");
  put_f32(b, 80, 0.5f);
  put_f32(b, 88, 0);
  spit(tmpfile_path("pixdim_zero.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "pixdim[3]");
  mbsr_volume *v = expect_substitute(p, NULL);
  MT_ASSERT_NEAR(v->vox[0], 0.5, 1e-6);
  MT_ASSERT_NEAR(v->vox[2], 1, 0);
  mbsr_volume_free(v);
  /* qform chosen (no sform), pixdim[2] = -2: nifti_clib would make it 1 mm */
  put_f32(b, 88, 0.5f);
  put_f32(b, 84, -2);
  put_i16(b, 252, 1);
  spit(tmpfile_path("qform_negpixdim.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "qform");
  /* a NaN quaternion offset */
  put_f32(b, 84, 0.5f);
  put_f32(b, 268, NAN);
  spit(tmpfile_path("qform_nanoffset.nii.gz", p, sizeof p), b, n, 1);
  expect_fail(p, NULL, MBSR_EFORMAT, "qoffset_x");
  /* the valid file still reads, with its qform */
  put_f32(b, 268, 1);
  spit(tmpfile_path("qform_ok.nii.gz", p, sizeof p), b, n, 1);
  v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &v));
  MT_ASSERT_NEAR(v->vox[1], 0.5, 1e-6);
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "qform") != NULL);
  mbsr_volume_free(v);
  free(b);
}

/* ---- NRRD (fixture raw_le_i16.nrrd) ---- */
static void nrrd_edit(const char *name, const char *field, const char *line, char *p, size_t pn) {
  size_t n;
  unsigned char *b = slurp(fx("raw_le_i16.nrrd"), &n);
  CU_ASSERT_FATAL(b != NULL);
  char *s = (char *)b, *at = strstr(s, field);
  CU_ASSERT_FATAL(at != NULL);
  char *eol = strchr(at, '\n');
  FILE *f = fopen(tmpfile_path(name, p, pn), "wb");
  fwrite(b, 1, (size_t)(at - s), f);
  fputs(line, f);
  fwrite(eol, 1, n - (size_t)(eol - s), f);
  fclose(f);
  free(b);
}

static void test_nrrd(void) {
  char p[4096];
  nrrd_edit("dirs_zero.nrrd", "space directions:", "space directions: (0,0,0) (0,0,0) (0,0,0)", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "space directions");
  mbsr_volume *v = expect_substitute(p, NULL);
  MT_ASSERT_NEAR(v->affine[0][0], 1, 0);
  MT_ASSERT_NEAR(v->affine[0][3], -5, 1e-12); /* origin kept (LPS -> RAS; spacings < 5: mm) */
  mbsr_volume_free(v);
  nrrd_edit("dirs_parallel.nrrd", "space directions:", "space directions: (0.1,0,0) (0.1,0,0) (0,0,0.2)", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "coplanar");
  nrrd_edit("dirs_none.nrrd", "space directions:", "space directions: (0.1,0,0) none (0,0,0.2)", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "space directions");
  nrrd_edit("origin_nan.nrrd", "space origin:", "space origin: (nan,nan,nan)", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "origin");
  v = expect_substitute(p, NULL);
  MT_ASSERT_NEAR(v->affine[0][3], 0, 0);
  MT_ASSERT_NEAR(v->vox[2], 0.2, 1e-12);
  mbsr_volume_free(v);
  /* no space: spacings; nan spacings were 1 mm */
  nrrd_edit("spacings_nan.nrrd", "space directions:", "spacings: nan 0.1 0.2", p, sizeof p);
  {
    /* drop the space-related lines the edit left */
    size_t n;
    unsigned char *b = slurp(p, &n);
    char *s = (char *)b;
    FILE *f = fopen(p, "wb");
    for (char *line = s; line < s + n;) {
      char *eol = memchr(line, '\n', (size_t)(s + n - line));
      size_t len = eol ? (size_t)(eol - line) + 1 : (size_t)(s + n - line);
      int header = (size_t)(line - s) < (size_t)(strstr(s, "\n\n") - s);
      if (!header || (strncmp(line, "space:", 6) && strncmp(line, "space origin:", 13))) fwrite(line, 1, len, f);
      line += len;
    }
    fclose(f);
    free(b);
  }
  expect_fail(p, NULL, MBSR_EFORMAT, "spacings");
}

/* ---- MetaImage ---- */
static void write_mhd(const char *name, const char *extra, char *p, size_t pn) {
  char raw[4096];
  tmpfile_path(name, p, pn);
  snprintf(raw, sizeof raw, "%s.raw", p);
  FILE *f = fopen(p, "w");
  fprintf(f, "ObjectType = Image\nNDims = 3\nDimSize = 2 3 4\nElementType = MET_UCHAR\n%s\nElementDataFile = %s\n",
          extra, strrchr(raw, '/') + 1);
  fclose(f);
  unsigned char d[24];
  for (int i = 0; i < 24; i++) d[i] = (unsigned char)i;
  spit(raw, d, sizeof d, 0);
}

static void test_mhd(void) {
  char p[4096];
  write_mhd("ok.mhd", "ElementSpacing = 0.5 0.5 1\nOffset = 1 2 3\nTransformMatrix = 1 0 0 0 1 0 0 0 1", p, sizeof p);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &v));
  MT_ASSERT_NEAR(v->affine[0][0], -0.5, 1e-12);
  MT_ASSERT_NEAR(v->affine[2][3], 3, 1e-12);
  mbsr_volume_free(v);
  write_mhd("tm_zero.mhd", "ElementSpacing = 0.5 0.5 1\nTransformMatrix = 0 0 0 0 0 0 0 0 0", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "TransformMatrix");
  v = expect_substitute(p, NULL);
  MT_ASSERT_NEAR(v->vox[0], 1, 0); /* nothing usable in the columns: 1 mm */
  mbsr_volume_free(v);
  write_mhd("tm_nan.mhd", "TransformMatrix = 1 0 0 0 nan 0 0 0 1", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "TransformMatrix");
  write_mhd("offset_nan.mhd", "Offset = 0 nan 0", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "origin");
  write_mhd("offset_short.mhd", "Offset = 0 zero 0", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "Offset");
  write_mhd("spacing_zero.mhd", "ElementSpacing = 0.5 0 1", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "ElementSpacing");
  write_mhd("spacing_text.mhd", "ElementSpacing = abc", p, sizeof p);
  expect_fail(p, NULL, MBSR_EFORMAT, "ElementSpacing");
}

/* ---- TIFF: the geometry comes from the options ---- */
static void test_tiff_vox(void) {
  const char *dir = fx("tiff_dir");
  mbsr_read_opts o;
  memset(&o, 0, sizeof o);
  o.tiff_vox[0] = o.tiff_vox[1] = o.tiff_vox[2] = INFINITY; /* `--tiff-vox inf`: was 1 mm */
  expect_fail(dir, &o, MBSR_EINVAL, "--tiff-vox");
  o.tiff_vox[0] = o.tiff_vox[1] = 0.04;
  o.tiff_vox[2] = NAN;
  expect_fail(dir, &o, MBSR_EINVAL, "slices");
  o.tiff_vox[2] = 0; /* partly given */
  expect_fail(dir, &o, MBSR_EINVAL, "slices");
  o.tiff_vox[2] = -0.05;
  expect_fail(dir, &o, MBSR_EINVAL, "slices");
  mbsr_volume *v = expect_substitute(dir, &o);
  MT_ASSERT_NEAR(v->vox[0], 0.04, 1e-12);
  MT_ASSERT_NEAR(v->vox[2], 1, 0);
  mbsr_volume_free(v);
  /* nothing given: 1 mm with a note, as before */
  memset(&o, 0, sizeof o);
  MT_ASSERT_OK(mbsr_volume_read(dir, &o, &v));
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "no size given") != NULL);
  mbsr_volume_free(v);
}

/* ---- CLI: info and convert refuse naming the INPUT; --allow-bad-geometry writes a valid file ---- */
static void test_cli(void) {
  const char *tmp = mbsr_test_tmpdir();
  char in[4096], err[4096], out[4096];
  size_t n;
  unsigned char *b = nii(&n);
  put_f32(b, 280, INFINITY);
  spit(tmpfile_path("cli_sform_inf.nii.gz", in, sizeof in), b, n, 1);
  free(b);
  snprintf(err, sizeof err, "%s/geom_err.txt", tmp);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s info %s 2>%s >/dev/null", mbsr_test_bin(), in, err), 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 'cli_sform_inf.nii.gz: bad geometry in the sform' %s",
                                err, err),
                   0);
  snprintf(out, sizeof out, "%s/geom_out.nii.gz", tmp);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s convert %s %s 2>%s >/dev/null", mbsr_test_bin(), in, out, err), 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < %s) -eq 1 && grep -q 'cli_sform_inf.nii.gz: bad geometry' %s && "
                                "! grep -q geom_out %s",
                                err, err, err),
                   0);
  CU_ASSERT(!mbsr_file_exists(out));
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s convert --allow-bad-geometry %s %s 2>%s >/dev/null", mbsr_test_bin(), in, out, err), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'warning: .*cli_sform_inf.nii.gz: bad geometry' %s", err), 0);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(out, NULL, &v)); /* the copy is valid without the override */
  MT_ASSERT_NEAR(v->vox[0], 0.5, 1e-6);
  mbsr_volume_free(v);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s info --allow-bad-geometry --json %s 2>/dev/null | grep -q 'bad geometry'",
                                mbsr_test_bin(), in),
                   0);
  /* --tiff-vox inf through the CLI: refused when the option is parsed (a usage error, exit 2, naming it);
   * the reader's own check (a bad TIFF voxel size) is covered by the tiff_vox case above */
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s info --tiff-vox inf %s 2>%s >/dev/null", mbsr_test_bin(), fx("tiff_dir"), err), 2);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q \"'inf'\" %s", err), 0);
  /* the writer refuses a bad in-memory affine rather than writing it */
  v = mbsr_volume_new(2, 2, 2, NULL, NULL);
  v->affine[1][1] = 0;
  snprintf(out, sizeof out, "%s/geom_zero.nii", tmp);
  CU_ASSERT(mbsr_volume_write(out, v) == MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "bad geometry") != NULL);
  CU_ASSERT(!mbsr_file_exists(out));
  mbsr_volume_free(v);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"nifti_sform", test_nifti_sform},
                                         {"nifti_pixdim_qform", test_nifti_pixdim_qform},
                                         {"nrrd", test_nrrd},
                                         {"mhd", test_mhd},
                                         {"tiff_vox", test_tiff_vox},
                                         {"cli", test_cli},
                                         {NULL, NULL}};
  return mbsr_test_main("io_geometry", cases);
}
