/* io: the NIfTI conventions (tests/fixtures/gen_nifti_meta.py writes the fixtures with nibabel):
 *  - the header metadata (sform/qform codes, descrip, intent, units, scl_slope) read into v->meta and
 *    written back; micrometre files written in micrometres; codes 0/0 written as 1/1;
 *    mbsr_volume_keep_space keeps the codes and drops descrip/intent;
 *  - 4-D files: refused without a choice (one line naming the file and the count), volume N read
 *    when asked (values compared), every volume by mbsr_volume_read_series and written back as 4-D. */
#include <string.h>
#include <unistd.h>

#include "mbsr/volume.h"
#include "mbsr_test.h"

#define PY "/usr/bin/python3"

static const char *fx(const char *name) {
  static char buf[8][4096];
  static int k;
  char rel[512];
  snprintf(rel, sizeof rel, "io/%s", name);
  return mbsr_test_fixture(rel, buf[k++ % 8], sizeof buf[0]);
}

static const char *tmp(const char *name) {
  static char buf[8][4096];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, sizeof buf[0], "%s/%s", mbsr_test_tmpdir(), name);
  return b;
}

/* value of the fixtures at (i,j,k) of volume t */
static float fval(int64_t i, int64_t j, int64_t k, int t) { return (float)(i + 10 * j + 100 * k + 100 * t); }

static int values_are(const mbsr_volume *v, int t) {
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++)
        if (v->data[i + v->nx * (j + v->ny * k)] != fval(i, j, k, t)) return 0;
  return 1;
}

static void check_mni_meta(const mbsr_volume *v) {
  MT_ASSERT_INT_EQ(v->meta.sform_code, 4);
  MT_ASSERT_INT_EQ(v->meta.qform_code, 5);
  CU_ASSERT_STRING_EQUAL(v->meta.descrip, "mbsr fixture: template space");
  MT_ASSERT_INT_EQ(v->meta.intent_code, 1001);
  CU_ASSERT_STRING_EQUAL(v->meta.intent_name, "T2w");
  MT_ASSERT_NEAR(v->meta.intent_p[0], 1.5, 0);
  MT_ASSERT_NEAR(v->meta.intent_p[2], 3.5, 0);
  MT_ASSERT_INT_EQ(v->meta.xyz_units, 2);  /* mm */
  MT_ASSERT_INT_EQ(v->meta.time_units, 16); /* ms */
}

static void test_meta_roundtrip(void) {
  mbsr_volume *v = NULL, *r = NULL;
  MT_ASSERT_OK(mbsr_volume_read(fx("meta_mni.nii.gz"), NULL, &v));
  check_mni_meta(v);
  MT_ASSERT_INT_EQ(v->meta.nvol, 1);
  CU_ASSERT(values_are(v, 0));
  MT_ASSERT_OK(mbsr_volume_write(tmp("mni_rt.nii.gz"), v));
  MT_ASSERT_OK(mbsr_volume_read(tmp("mni_rt.nii.gz"), NULL, &r));
  check_mni_meta(r);
  CU_ASSERT(mbsr_volume_same_grid(v, r, 1e-6));
  mbsr_volume_free(r);
  /* clone and new_like keep the metadata (same grid); keep_space keeps only the world space */
  mbsr_volume *c = mbsr_volume_clone(v), *n = mbsr_volume_new(3, 3, 3, NULL, NULL);
  CU_ASSERT_FATAL(c && n);
  check_mni_meta(c);
  MT_ASSERT_INT_EQ(n->meta.sform_code, 1);
  CU_ASSERT_STRING_EQUAL(n->meta.descrip, "");
  mbsr_volume_keep_space(n, v);
  MT_ASSERT_INT_EQ(n->meta.sform_code, 4);
  MT_ASSERT_INT_EQ(n->meta.qform_code, 5);
  MT_ASSERT_INT_EQ(n->meta.intent_code, 0);
  CU_ASSERT_STRING_EQUAL(n->meta.descrip, "");
  MT_ASSERT_OK(mbsr_volume_write(tmp("kept.nii"), n));
  MT_ASSERT_OK(mbsr_volume_read(tmp("kept.nii"), NULL, &r));
  MT_ASSERT_INT_EQ(r->meta.sform_code, 4);
  CU_ASSERT(strncmp(r->meta.descrip, "mbsr ", 5) == 0); /* mbsr's own */
  mbsr_volume_free(r);
  /* no codes at all: mbsr's affine is written as a scanner one (1/1) */
  n->meta.sform_code = n->meta.qform_code = 0;
  MT_ASSERT_OK(mbsr_volume_write(tmp("nocode.nii"), n));
  MT_ASSERT_OK(mbsr_volume_read(tmp("nocode.nii"), NULL, &r));
  MT_ASSERT_INT_EQ(r->meta.sform_code, 1);
  MT_ASSERT_INT_EQ(r->meta.qform_code, 1);
  mbsr_volume_free(r);
  CU_ASSERT_STRING_EQUAL(mbsr_xform_name(4), "mni");
  CU_ASSERT_STRING_EQUAL(mbsr_xform_name(5), "template");
  CU_ASSERT_STRING_EQUAL(mbsr_xform_name(9), "invalid");
  mbsr_volume_free(c);
  mbsr_volume_free(n);
  mbsr_volume_free(v);
}

/* A micrometre file: read in mm, written back in micrometres with the same affine. */
static void test_micron_units(void) {
  mbsr_volume *v = NULL, *r = NULL;
  MT_ASSERT_OK(mbsr_volume_read(fx("meta_um.nii.gz"), NULL, &v));
  MT_ASSERT_NEAR(v->vox[0], 0.2, 1e-6);
  MT_ASSERT_INT_EQ(v->meta.xyz_units, 3);
  MT_ASSERT_INT_EQ(v->meta.sform_code, 2);
  MT_ASSERT_OK(mbsr_volume_write(tmp("um_rt.nii"), v));
  MT_ASSERT_OK(mbsr_volume_read(tmp("um_rt.nii"), NULL, &r));
  MT_ASSERT_INT_EQ(r->meta.xyz_units, 3);
  CU_ASSERT(mbsr_volume_same_grid(v, r, 1e-6));
  mbsr_volume_free(r);
  mbsr_volume_free(v);
  if (access(PY, X_OK) != 0) {
    mbsr_test_skip("no " PY);
    return;
  }
  int st = mbsr_test_sh("%s -c \"import sys\ntry:\n import nibabel as nib, numpy as np\nexcept ImportError:\n sys.exit(77)\n"
                        "a=nib.load(sys.argv[1]); b=nib.load(sys.argv[2])\n"
                        "assert b.header.get_xyzt_units()[0]=='micron'\n"
                        "assert np.allclose(a.affine, b.affine, atol=1e-3), (a.affine, b.affine)\" '%s' '%s'",
                        PY, fx("meta_um.nii.gz"), tmp("um_rt.nii"));
  if (st == 77) mbsr_test_skip("nibabel is not importable");
  else MT_ASSERT_INT_EQ(st, 0);
}

static void test_4d_choice(void) {
  mbsr_volume *v = NULL;
  const char *p = fx("meta_4d.nii.gz");
  MT_ASSERT_INT_EQ(mbsr_volume_read(p, NULL, &v), MBSR_EINVAL);
  CU_ASSERT(v == NULL);
  CU_ASSERT(strstr(mbsr_last_error(), p) != NULL && strstr(mbsr_last_error(), "3 volumes") != NULL);
  CU_ASSERT(strchr(mbsr_last_error(), '\n') == NULL);
  for (int t = 0; t < 3; t++) {
    MT_ASSERT_OK(mbsr_volume_read(p, &(mbsr_read_opts){.volume_given = 1, .volume = t}, &v));
    CU_ASSERT(values_are(v, t));
    MT_ASSERT_INT_EQ(v->meta.vol_index, t);
    MT_ASSERT_INT_EQ(v->meta.nvol, 3);
    MT_ASSERT_INT_EQ(v->meta.sform_code, 4);
    mbsr_volume_free(v);
  }
  MT_ASSERT_INT_EQ(mbsr_volume_read(p, &(mbsr_read_opts){.volume_given = 1, .volume = 3}, &v), MBSR_ERANGE);
  CU_ASSERT(strstr(mbsr_last_error(), "holds 3") != NULL);
  /* a 3-D file and the other formats hold volume 0 only */
  MT_ASSERT_OK(mbsr_volume_read(fx("meta_mni.nii.gz"), &(mbsr_read_opts){.volume_given = 1}, &v));
  mbsr_volume_free(v);
  MT_ASSERT_INT_EQ(mbsr_volume_read(fx("meta_mni.nii.gz"), &(mbsr_read_opts){.volume_given = 1, .volume = 1}, &v), MBSR_ERANGE);
  MT_ASSERT_INT_EQ(mbsr_volume_read(fx("raw_le_i16.nrrd"), &(mbsr_read_opts){.volume_given = 1, .volume = 1}, &v), MBSR_ERANGE);
  CU_ASSERT(v == NULL);
}

static void test_4d_series(void) {
  mbsr_volume **s = NULL, **r = NULL;
  int64_t n = 0, m = 0;
  MT_ASSERT_OK(mbsr_volume_read_series(fx("meta_4d.nii.gz"), NULL, &s, &n));
  MT_ASSERT_INT_EQ(n, 3);
  for (int t = 0; t < n; t++) CU_ASSERT(values_are(s[t], t));
  MT_ASSERT_NEAR(s[0]->meta.tr, 2.5, 1e-6);
  MT_ASSERT_OK(mbsr_volume_write_series(tmp("4d_rt.nii.gz"), s, n));
  MT_ASSERT_OK(mbsr_volume_read_series(tmp("4d_rt.nii.gz"), NULL, &r, &m));
  MT_ASSERT_INT_EQ(m, 3);
  for (int t = 0; t < m; t++) CU_ASSERT(values_are(r[t], t));
  MT_ASSERT_NEAR(r[0]->meta.tr, 2.5, 1e-6);
  MT_ASSERT_INT_EQ(r[0]->meta.sform_code, 4);
  CU_ASSERT_STRING_EQUAL(r[0]->meta.descrip, "4-D fixture");
  mbsr_volume_series_free(r, m);
  /* volumes on different grids are refused */
  s[1]->affine[0][3] += 1;
  MT_ASSERT_INT_EQ(mbsr_volume_write_series(tmp("4d_bad.nii.gz"), s, n), MBSR_EMISMATCH);
  CU_ASSERT(!mbsr_file_exists(tmp("4d_bad.nii.gz")));
  mbsr_volume_series_free(s, n);
  /* a 3-D file or another format: one volume */
  MT_ASSERT_OK(mbsr_volume_read_series(fx("raw_le_i16.nrrd"), NULL, &s, &n));
  MT_ASSERT_INT_EQ(n, 1);
  mbsr_volume_series_free(s, n);
}

int main(void) {
  static const mbsr_test_case tc[] = {{"meta_roundtrip", test_meta_roundtrip},
                                      {"micron_units", test_micron_units},
                                      {"4d_choice", test_4d_choice},
                                      {"4d_series", test_4d_series},
                                      {NULL, NULL}};
  return mbsr_test_main("nifti_meta", tc);
}
