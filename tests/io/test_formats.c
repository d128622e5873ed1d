/* io: every fixture of tests/fixtures/io/expected.txt (written by tests/fixtures/gen_io.py with
 * nibabel / by hand from the NRRD spec / Pillow) read by mbsr: dims, source type, affine, range,
 * sum, sampled voxels. Plus the volume helpers, and a round trip through mbsr_volume_write that
 * nibabel must load with the intended affine. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/volume.h"
#include "mbsr_test.h"

#define PY "/usr/bin/python3"

static const char *py(void) { return access(PY, X_OK) == 0 ? PY : "python3"; }

static mbsr_read_opts opts_for(const char *name) {
  mbsr_read_opts o;
  memset(&o, 0, sizeof o);
  if (!strcmp(name, "tiff_dir")) {
    o.tiff_vox[0] = o.tiff_vox[1] = 0.04;
    o.tiff_vox[2] = 0.05;
    strcpy(o.tiff_orient, "RIA");
  }
  if (!strcmp(name, "f32_4d.nii.gz")) o.volume_given = 1; /* volume 0 of 2 (a 4-D file needs a choice) */
  return o;
}

static void test_expected_fixtures(void) {
  char path[4096], fpath[4096];
  FILE *f = fopen(mbsr_test_fixture("io/expected.txt", path, sizeof path), "r");
  CU_ASSERT_FATAL(f != NULL);
  char line[4096], name[256] = "";
  mbsr_volume *v = NULL;
  int nfiles = 0, nvox = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    if (sscanf(line, "file %255s", name) == 1) {
      mbsr_volume_free(v);
      v = NULL;
      mbsr_read_opts o = opts_for(name);
      snprintf(fpath, sizeof fpath, "io/%s", name);
      int rc = mbsr_volume_read(mbsr_test_fixture(fpath, path, sizeof path), &o, &v);
      if (rc) fprintf(stderr, "  %s: %s\n", name, mbsr_last_error());
      CU_ASSERT_FATAL(rc == 0);
      nfiles++;
      continue;
    }
    long long nx, ny, nz;
    int dt;
    double a[16], mn, mx, sum, val;
    int i, j, k;
    if (sscanf(line, "dims %lld %lld %lld dtype %d", &nx, &ny, &nz, &dt) == 4) {
      if (v->nx != nx || v->ny != ny || v->nz != nz || v->src_dtype != dt) fprintf(stderr, "  in %s:\n", name);
      MT_ASSERT_INT_EQ(v->nx, nx);
      MT_ASSERT_INT_EQ(v->ny, ny);
      MT_ASSERT_INT_EQ(v->nz, nz);
      MT_ASSERT_INT_EQ(v->src_dtype, dt);
    } else if (sscanf(line, "affine %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", a, a + 1, a + 2,
                      a + 3, a + 4, a + 5, a + 6, a + 7, a + 8, a + 9, a + 10, a + 11, a + 12, a + 13, a + 14,
                      a + 15) == 16) {
      int ok = 1;
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) ok &= fabs(v->affine[r][c] - a[4 * r + c]) <= 1e-5 * fmax(1, fabs(a[4 * r + c]));
      if (!ok) {
        fprintf(stderr, "  %s: affine differs\n", name);
        for (int r = 0; r < 4; r++)
          fprintf(stderr, "    mbsr [%g %g %g %g]  expected [%g %g %g %g]\n", v->affine[r][0], v->affine[r][1],
                  v->affine[r][2], v->affine[r][3], a[4 * r], a[4 * r + 1], a[4 * r + 2], a[4 * r + 3]);
      }
      CU_ASSERT(ok);
      /* vox[] = column lengths */
      for (int c = 0; c < 3; c++)
        MT_ASSERT_NEAR(v->vox[c], sqrt(a[c] * a[c] + a[4 + c] * a[4 + c] + a[8 + c] * a[8 + c]), 1e-6);
    } else if (sscanf(line, "range %lf %lf sum %lf", &mn, &mx, &sum) == 3) {
      MT_ASSERT_REL(v->src_min, mn, 1e-6, 1e-6);
      MT_ASSERT_REL(v->src_max, mx, 1e-6, 1e-6);
      double s = 0, sa = 0;
      for (int64_t q = 0; q < mbsr_volume_nvox(v); q++) s += v->data[q], sa += fabs(v->data[q]);
      MT_ASSERT_NEAR(s, sum, 1e-6 * fmax(1, sa));
    } else if (sscanf(line, "voxel %d %d %d %lf", &i, &j, &k, &val) == 4) {
      float got = v->data[i + v->nx * (j + v->ny * (int64_t)k)];
      if (fabs(got - val) > 1e-6 * fmax(1, fabs(val))) fprintf(stderr, "  %s voxel (%d,%d,%d)\n", name, i, j, k);
      MT_ASSERT_REL(got, val, 1e-6, 1);
      nvox++;
    }
  }
  fclose(f);
  mbsr_volume_free(v);
  CU_ASSERT(nfiles >= 25);
  CU_ASSERT(nvox >= 100);
}

static void test_notes(void) {
  char path[4096];
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(mbsr_test_fixture("io/allen_like_u16.nrrd", path, sizeof path), NULL, &v));
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "micrometres") != NULL);
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "RAS") != NULL);
  CU_ASSERT_STRING_EQUAL(v->src_format, "nrrd");
  mbsr_volume_free(v);
  MT_ASSERT_OK(mbsr_volume_read(mbsr_test_fixture("io/f32_4d.nii.gz", path, sizeof path), &(mbsr_read_opts){.volume_given = 1}, &v));
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "2 volumes in the file, one read; volume 0") != NULL);
  CU_ASSERT_STRING_EQUAL(v->src_format, "nifti1");
  mbsr_volume_free(v);
  MT_ASSERT_OK(mbsr_volume_read(mbsr_test_fixture("io/n2_f32.nii", path, sizeof path), NULL, &v));
  CU_ASSERT_STRING_EQUAL(v->src_format, "nifti2");
  mbsr_volume_free(v);
}

static void test_helpers(void) {
  double vox[3] = {0.1, 0.2, 0.3};
  mbsr_volume *a = mbsr_volume_new(4, 5, 6, vox, NULL);
  CU_ASSERT_FATAL(a != NULL);
  MT_ASSERT_NEAR(a->affine[1][1], 0.2, 0);
  MT_ASSERT_NEAR(a->vox[2], 0.3, 0);
  CU_ASSERT((uintptr_t)a->data % 64 == 0);
  for (int64_t i = 0; i < mbsr_volume_nvox(a); i++) a->data[i] = (float)i - 7;
  float mn, mx;
  mbsr_volume_minmax(a, &mn, &mx);
  MT_ASSERT_NEAR(mn, -7, 0);
  MT_ASSERT_NEAR(mx, 4 * 5 * 6 - 8, 0);
  mbsr_volume *b = mbsr_volume_clone(a);
  CU_ASSERT_FATAL(b != NULL);
  CU_ASSERT(memcmp(a->data, b->data, 120 * sizeof(float)) == 0);
  CU_ASSERT(mbsr_volume_same_grid(a, b, 0));
  MT_ASSERT_INT_EQ(mbsr_volume_check_same_grid(a, "a.nii", b, "b.nii"), 0);
  mbsr_volume *c = mbsr_volume_new_like(a);
  CU_ASSERT(c->data[5] == 0 && mbsr_volume_same_grid(a, c, 0));
  c->affine[0][3] = 0.5;
  CU_ASSERT(!mbsr_volume_same_grid(a, c, 1e-6));
  MT_ASSERT_INT_EQ(mbsr_volume_check_same_grid(a, "a.nii", c, "c.nii"), MBSR_EMISMATCH);
  CU_ASSERT(strstr(mbsr_last_error(), "a.nii") && strstr(mbsr_last_error(), "c.nii"));
  mbsr_volume *d = mbsr_volume_new(4, 5, 7, vox, NULL);
  MT_ASSERT_INT_EQ(mbsr_volume_check_same_grid(a, "a.nii", d, "d.nii"), MBSR_EMISMATCH);
  CU_ASSERT(strstr(mbsr_last_error(), "dimensions") != NULL);
  /* update_vox from an oblique affine */
  double A[4][4] = {{0, 0.3, 0, 1}, {0.4, 0, 0, 2}, {0, 0, -0.5, 3}, {0, 0, 0, 1}};
  mbsr_volume *e = mbsr_volume_new(2, 2, 2, NULL, A);
  MT_ASSERT_NEAR(e->vox[0], 0.4, 1e-12);
  MT_ASSERT_NEAR(e->vox[1], 0.3, 1e-12);
  MT_ASSERT_NEAR(e->vox[2], 0.5, 1e-12);
  mbsr_volume_free(a);
  mbsr_volume_free(b);
  mbsr_volume_free(c);
  mbsr_volume_free(d);
  mbsr_volume_free(e);
}

static void test_orient_matrix(void) {
  double D[3][3];
  MT_ASSERT_OK(mbsr_orient_matrix("LSP", D));
  MT_ASSERT_NEAR(D[0][0], -1, 0); /* columns -> Left = -x */
  MT_ASSERT_NEAR(D[2][1], 1, 0);  /* rows -> Superior = +z */
  MT_ASSERT_NEAR(D[1][2], -1, 0); /* slices -> Posterior = -y */
  MT_ASSERT_INT_EQ(mbsr_orient_matrix("LRS", D), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_orient_matrix("LQS", D), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_orient_matrix("LS", D), MBSR_EINVAL);
}

/* mbsr writes an oblique volume; read back by mbsr and by nibabel with the intended affine. */
static void test_write_roundtrip_nibabel(void) {
  double A[4][4] = {{0.17320508, -0.1, 0.02, -3.5}, {0.1, 0.17320508, 0, 12.25}, {0, 0, 0.3, -7}, {0, 0, 0, 1}};
  mbsr_volume *v = mbsr_volume_new(5, 6, 7, NULL, A);
  CU_ASSERT_FATAL(v != NULL);
  for (int64_t i = 0; i < mbsr_volume_nvox(v); i++) v->data[i] = 0.5f * (float)i - 3;
  char out[4200], out2[4200], base[4096];
  snprintf(out, sizeof out, "%s/rt_oblique.nii.gz", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_volume_write(out, v));
  /* no extension -> .nii.gz appended; raw .nii also works */
  snprintf(base, sizeof base, "%s/rt_noext", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_volume_write(base, v));
  snprintf(out2, sizeof out2, "%s.nii.gz", base);
  CU_ASSERT(mbsr_file_exists(out2));
  snprintf(out2, sizeof out2, "%s/rt_raw.nii", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_volume_write(out2, v));
  for (int pass = 0; pass < 2; pass++) {
    mbsr_volume *r = NULL;
    MT_ASSERT_OK(mbsr_volume_read(pass ? out2 : out, NULL, &r));
    CU_ASSERT(mbsr_volume_same_grid(v, r, 1e-6));
    CU_ASSERT(memcmp(v->data, r->data, (size_t)mbsr_volume_nvox(v) * 4) == 0);
    MT_ASSERT_INT_EQ(r->src_dtype, 16);
    mbsr_volume_free(r);
  }
  /* nibabel: sform == affine, qform ~ affine's rotation part (shear cannot be in a qform) */
  int st = mbsr_test_sh(
      "%s -c \"import sys\ntry:\n import nibabel as nib, numpy as np\nexcept ImportError:\n sys.exit(77)\n"
      "A=np.array([[0.17320508,-0.1,0.02,-3.5],[0.1,0.17320508,0,12.25],[0,0,0.3,-7],[0,0,0,1]])\n"
      "for f in sys.argv[1:]:\n im=nib.load(f); h=im.header\n"
      " assert int(h['sform_code'])==1 and int(h['qform_code'])==1, 'codes'\n"
      " assert np.allclose(im.affine, A, atol=1e-6), im.affine\n"
      " assert np.allclose(h.get_sform(), A, atol=1e-6)\n"
      " d=im.get_fdata(); assert d.shape==(5,6,7) and abs(d[1,0,0]+2.5)<1e-6 and abs(d[4,5,6]-(0.5*209-3))<1e-5, d.shape\n"
      " assert h.get_xyzt_units()[0]=='mm' and h.get_data_dtype()==np.float32\n"
      "print('nibabel agrees')\" %s %s",
      py(), out, out2);
  if (st == 77) mbsr_test_skip("nibabel is not importable");
  else MT_ASSERT_INT_EQ(st, 0);
  /* a rotation without shear: the qform must reproduce the affine too (nifti_dmat44_to_quatern) */
  {
    double c = cos(0.3), s = sin(0.3);
    double R[4][4] = {{0.2 * c, -0.2 * s, 0, 1.25}, {0.2 * s, 0.2 * c, 0, -2}, {0, 0, -0.25, 3}, {0, 0, 0, 1}};
    mbsr_volume *q = mbsr_volume_new(3, 4, 5, NULL, R);
    snprintf(out, sizeof out, "%s/rt_rot.nii.gz", mbsr_test_tmpdir());
    MT_ASSERT_OK(mbsr_volume_write(out, q));
    st = mbsr_test_sh("%s -c \"import sys\ntry:\n import nibabel as nib, numpy as np\nexcept ImportError:\n sys.exit(77)\n"
                      "c,s=np.cos(0.3),np.sin(0.3)\n"
                      "A=np.array([[0.2*c,-0.2*s,0,1.25],[0.2*s,0.2*c,0,-2],[0,0,-0.25,3],[0,0,0,1]])\n"
                      "h=nib.load(sys.argv[1]).header\n"
                      "assert np.allclose(h.get_sform(), A, atol=1e-6), h.get_sform()\n"
                      "assert np.allclose(h.get_qform(), A, atol=1e-5), h.get_qform()\n"
                      "assert np.allclose(h.get_zooms(), (0.2,0.2,0.25), atol=1e-6)\n"
                      "print('nibabel qform agrees')\" %s",
                      py(), out);
    if (st == 77) mbsr_test_skip("nibabel is not importable");
    else MT_ASSERT_INT_EQ(st, 0);
    mbsr_volume_free(q);
  }
  /* writing over a missing directory fails and leaves nothing */
  snprintf(out, sizeof out, "%s/no/such/dir/x.nii.gz", mbsr_test_tmpdir());
  CU_ASSERT(mbsr_volume_write(out, v) != 0);
  CU_ASSERT(strstr(mbsr_last_error(), "x.nii.gz") != NULL);
  /* other formats' extensions are refused, not silently suffixed */
  snprintf(out, sizeof out, "%s/x.nrrd", mbsr_test_tmpdir());
  MT_ASSERT_INT_EQ(mbsr_volume_write(out, v), MBSR_EUNSUPPORTED);
  CU_ASSERT(!mbsr_file_exists(out));
  mbsr_volume_free(v);
  /* no temporary left in the scratch dir */
  MT_ASSERT_INT_EQ(mbsr_test_sh("ls -a %s | grep -q '^\\.tmp-'", mbsr_test_tmpdir()), 1);
}

/* .mhd goes to the MetaImage reader (src/io/mhd.c) through mbsr_volume_read */
static void test_mhd_dispatch(void) {
  char hdr[4096], raw[4096];
  snprintf(hdr, sizeof hdr, "%s/d.mhd", mbsr_test_tmpdir());
  snprintf(raw, sizeof raw, "%s/d.raw", mbsr_test_tmpdir());
  FILE *f = fopen(hdr, "w");
  CU_ASSERT_FATAL(f != NULL);
  fprintf(f, "ObjectType = Image\nNDims = 3\nDimSize = 3 4 5\nElementType = MET_SHORT\n"
             "ElementSpacing = 0.1 0.1 0.2\nElementByteOrderMSB = False\nElementDataFile = d.raw\n");
  fclose(f);
  int16_t d[60];
  for (int i = 0; i < 60; i++) d[i] = (int16_t)(i * 3 - 50);
  f = fopen(raw, "wb");
  fwrite(d, 2, 60, f);
  fclose(f);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(hdr, NULL, &v));
  MT_ASSERT_INT_EQ(v->nx * 100 + v->ny * 10 + v->nz, 345);
  MT_ASSERT_NEAR(v->data[59], 59 * 3 - 50, 0);
  MT_ASSERT_NEAR(v->vox[2], 0.2, 1e-9);
  MT_ASSERT_NEAR(v->affine[0][0], -0.1, 1e-9); /* LPS -> RAS */
  mbsr_volume_free(v);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"expected_fixtures", test_expected_fixtures},
                                         {"read_notes", test_notes},
                                         {"volume_helpers", test_helpers},
                                         {"orient_matrix", test_orient_matrix},
                                         {"write_roundtrip_nibabel", test_write_roundtrip_nibabel},
                                         {"mhd_dispatch", test_mhd_dispatch},
                                         {NULL, NULL}};
  return mbsr_test_main("io_formats", cases);
}
