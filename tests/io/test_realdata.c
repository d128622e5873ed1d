/* io on the real files of ../shared/data (visible skips when absent): the Allen 100 um template and
 * annotation NRRDs, the permuted ccf200 NIfTI against nibabel, the CIVM uint8 NIfTI, the STPT TIFF
 * stack, and a convert round trip. Also prints the read times (the README quotes them). */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/volume.h"
#include "mbsr_test.h"

#define PY "/usr/bin/python3"
static const char *py(void) { return access(PY, X_OK) == 0 ? PY : "python3"; }

static double time_read(const char *path, const mbsr_read_opts *o, mbsr_volume **v) {
  double t0 = mbsr_now();
  int rc = mbsr_volume_read(path, o, v);
  double ms = (mbsr_now() - t0) * 1e3;
  if (rc) fprintf(stderr, "  %s\n", mbsr_last_error());
  CU_ASSERT_FATAL(rc == 0);
  printf("\n    read %s: %.1f ms", strrchr(path, '/') + 1, ms);
  return ms;
}

static void test_allen_template(void) {
  char p[4096];
  if (!mbsr_test_data("af/allen_ccf_average_template_100um.nrrd", p, sizeof p)) return;
  mbsr_volume *v = NULL;
  time_read(p, NULL, &v);
  MT_ASSERT_INT_EQ(v->nx, 132);
  MT_ASSERT_INT_EQ(v->ny, 80);
  MT_ASSERT_INT_EQ(v->nz, 114);
  for (int a = 0; a < 3; a++) MT_ASSERT_NEAR(v->vox[a], 0.1, 1e-12);
  MT_ASSERT_NEAR(v->src_min, 0, 0);
  MT_ASSERT_NEAR(v->src_max, 516, 0);
  MT_ASSERT_INT_EQ(v->src_dtype, 512);
  /* header: LPS, directions 100 um along +L,+P,+S -> RAS columns (-0.1,0,0) (0,-0.1,0) (0,0,0.1) */
  MT_ASSERT_NEAR(v->affine[0][0], -0.1, 1e-12);
  MT_ASSERT_NEAR(v->affine[1][1], -0.1, 1e-12);
  MT_ASSERT_NEAR(v->affine[2][2], 0.1, 1e-12);
  MT_ASSERT_NEAR(v->affine[0][3], 0, 0);
  mbsr_volume_free(v);
  if (!mbsr_test_data("af/allen_ccf_annotation_100um.nrrd", p, sizeof p)) return;
  time_read(p, NULL, &v);
  MT_ASSERT_INT_EQ(v->src_dtype, 768);
  MT_ASSERT_INT_EQ(v->nx * v->ny * v->nz, 132 * 80 * 114);
  MT_ASSERT_NEAR(v->src_min, 0, 0);
  CU_ASSERT(v->src_max > 1e8); /* CCF ids reach 614454277 */
  CU_ASSERT(strstr(mbsr_volume_read_notes(), "2^24") != NULL);
  mbsr_volume_free(v);
}

static void test_ccf200_vs_nibabel(void) {
  char p[4096], out[4096];
  if (!mbsr_test_data("mri/ccf200_af_template.nii.gz", p, sizeof p)) return;
  mbsr_volume *v = NULL;
  time_read(p, NULL, &v);
  MT_ASSERT_INT_EQ(v->nx, 41);
  MT_ASSERT_INT_EQ(v->ny, 67);
  MT_ASSERT_INT_EQ(v->nz, 58);
  MT_ASSERT_NEAR(v->affine[2][0], 0.2, 1e-6); /* permuted: i -> z */
  MT_ASSERT_NEAR(v->affine[0][2], 0.2, 1e-6); /* k -> x */
  snprintf(out, sizeof out, "%s/ccf200_nib.txt", mbsr_test_tmpdir());
  int st = mbsr_test_sh("%s -c \"import sys\ntry:\n import nibabel as nib, numpy as np\nexcept ImportError:\n sys.exit(77)\n"
                        "im=nib.load(sys.argv[1]); d=im.get_fdata()\n"
                        "np.savetxt(sys.argv[2], np.concatenate([im.affine.ravel(), [d.min(), d.max(), d.sum(), d[20,30,40]]]))\" %s %s",
                        py(), p, out);
  if (st == 77) {
    mbsr_test_skip("nibabel is not importable");
  } else {
    MT_ASSERT_INT_EQ(st, 0);
    FILE *f = fopen(out, "r");
    CU_ASSERT_FATAL(f != NULL);
    double x[20];
    int n = 0;
    while (n < 20 && fscanf(f, "%lf", &x[n]) == 1) n++;
    fclose(f);
    MT_ASSERT_INT_EQ(n, 20);
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 4; c++) MT_ASSERT_NEAR(v->affine[r][c], x[4 * r + c], 1e-6);
    MT_ASSERT_NEAR(v->src_min, x[16], 1e-4);
    MT_ASSERT_NEAR(v->src_max, x[17], 1e-4);
    double s = 0;
    for (int64_t i = 0; i < mbsr_volume_nvox(v); i++) s += v->data[i];
    MT_ASSERT_REL(s, x[18], 1e-6, 1);
    MT_ASSERT_NEAR(v->data[20 + 41 * (30 + 67 * 40)], x[19], 1e-4);
  }
  mbsr_volume_free(v);
  /* the uint8 CIVM file and a mask */
  if (!mbsr_test_data("mri/civm50_dti_qa.nii.gz", p, sizeof p)) return;
  time_read(p, NULL, &v);
  MT_ASSERT_INT_EQ(v->nx, 230);
  MT_ASSERT_INT_EQ(v->ny, 264);
  MT_ASSERT_INT_EQ(v->nz, 160);
  MT_ASSERT_INT_EQ(v->src_dtype, 2);
  MT_ASSERT_NEAR(v->src_max, 242, 0);
  MT_ASSERT_NEAR(v->vox[0], 0.05, 1e-7);
  mbsr_volume_free(v);
}

static void test_stpt_tiff(void) {
  char p[4096];
  if (!mbsr_test_data("af/stpt_individual_brain_tiff", p, sizeof p)) return;
  mbsr_read_opts o = {.tiff_vox = {0.04, 0.04, 0.05}, .tiff_orient = "RIA"};
  mbsr_volume *v = NULL;
  time_read(p, &o, &v);
  MT_ASSERT_INT_EQ(v->nx, 271);
  MT_ASSERT_INT_EQ(v->ny, 193);
  MT_ASSERT_INT_EQ(v->nz, 270);
  MT_ASSERT_NEAR(v->src_min, 0, 0);
  MT_ASSERT_NEAR(v->src_max, 14580, 0);
  MT_ASSERT_INT_EQ(v->src_dtype, 512);
  MT_ASSERT_NEAR(v->affine[0][0], 0.04, 1e-12);  /* columns -> Right */
  MT_ASSERT_NEAR(v->affine[2][1], -0.04, 1e-12); /* rows -> Inferior */
  MT_ASSERT_NEAR(v->affine[1][2], 0.05, 1e-12);  /* slices -> Anterior */
  /* extent about 10.8 x 13.5 x 7.7 mm (L-R, A-P, S-I) */
  MT_ASSERT_NEAR(v->nx * v->vox[0], 10.84, 1e-9);
  MT_ASSERT_NEAR(v->nz * v->vox[2], 13.5, 1e-9);
  /* convert to NIfTI and back: same grid and data */
  char out[4096];
  snprintf(out, sizeof out, "%s/stpt.nii.gz", mbsr_test_tmpdir());
  double t0 = mbsr_now();
  MT_ASSERT_OK(mbsr_volume_write(out, v));
  printf("\n    write stpt.nii.gz: %.1f ms", (mbsr_now() - t0) * 1e3);
  mbsr_volume *r = NULL;
  time_read(out, NULL, &r);
  CU_ASSERT(mbsr_volume_same_grid(v, r, 1e-7));
  CU_ASSERT(memcmp(v->data, r->data, (size_t)mbsr_volume_nvox(v) * 4) == 0);
  mbsr_volume_free(r);
  mbsr_volume_free(v);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"allen_template_nrrd", test_allen_template},
                                         {"ccf200_vs_nibabel", test_ccf200_vs_nibabel},
                                         {"stpt_tiff_stack", test_stpt_tiff},
                                         {NULL, NULL}};
  return mbsr_test_main("io_realdata", cases);
}
