/* image/mask + normalize: Otsu and percentiles against skimage/numpy (tests/fixtures/gen_image.py),
 * largest component and hole filling on a synthetic brain, label masks, and the downsample /
 * upsample / normalize / mask commands end to end (on the Allen template when ../shared is there). */
#include <math.h>
#include <string.h>

#include "image_fixture.h"
#include "mbsr/image.h"
#include "mbsr_test.h"

static const double VOX[3] = {0.1, 0.1, 0.1}, ORG[3] = {0, 0, 0};

static void test_otsu_percentiles(void) {
  mbsr_volume *r = fx_volume("s3_ref.raw", VOX, ORG);
  CU_ASSERT_FATAL(r != NULL);
  MT_ASSERT_NEAR(mbsr_otsu_threshold(r), fx_value("s3_otsu"), 1e-6);
  MT_ASSERT_NEAR(mbsr_percentile(r, NULL, 0.5), fx_value("s3_pct_0.5"), 1e-6);
  MT_ASSERT_NEAR(mbsr_percentile(r, NULL, 2), fx_value("s3_pct_2"), 1e-6);
  MT_ASSERT_NEAR(mbsr_percentile(r, NULL, 50), fx_value("s3_pct_50"), 1e-6);
  MT_ASSERT_NEAR(mbsr_percentile(r, NULL, 99.5), fx_value("s3_pct_99.5"), 1e-6);
  mbsr_volume_free(r);
}

static void test_normalize(void) {
  mbsr_volume *v = mbsr_volume_new(10, 10, 1, NULL, NULL);
  for (int i = 0; i < 100; i++) v->data[i] = (float)((i * 37) % 100); /* a permutation of 0..99 */
  mbsr_volume *w = mbsr_volume_clone(v);
  double lo, hi;
  MT_ASSERT_OK(mbsr_normalize(v, 0, 100, &lo, &hi));
  MT_ASSERT_NEAR(lo, 0, 0);
  MT_ASSERT_NEAR(hi, 99, 0);
  float mn, mx;
  mbsr_volume_minmax(v, &mn, &mx);
  MT_ASSERT_NEAR(mn, 0, 0);
  MT_ASSERT_NEAR(mx, 1, 0);
  MT_ASSERT_NEAR(v->data[1], 37.0 / 99, 1e-7);
  /* percentiles, numpy 'linear': p0.5 of 0..99 = 0.495, p99.5 = 98.505; values outside clipped */
  MT_ASSERT_OK(mbsr_normalize(w, 0.5, 99.5, &lo, &hi));
  MT_ASSERT_NEAR(lo, 0.495, 1e-9);
  MT_ASSERT_NEAR(hi, 98.505, 1e-9);
  MT_ASSERT_NEAR(w->data[0], 0, 0);
  mbsr_volume_minmax(w, &mn, &mx);
  MT_ASSERT_NEAR(mx, 1, 0);
  MT_ASSERT_NEAR(w->data[1], (37 - 0.495) / (98.505 - 0.495), 1e-7);
  /* a constant volume cannot be normalised */
  for (int i = 0; i < 100; i++) w->data[i] = 3;
  MT_ASSERT_INT_EQ(mbsr_normalize(w, 0, 100, NULL, NULL), MBSR_ERANGE);
  mbsr_volume_free(v);
  mbsr_volume_free(w);
}

/* A synthetic "brain": a bright ellipsoid with a dark ventricle inside and a dark cleft open to the
 * outside, a separate small bright blob, and low noise. */
static mbsr_volume *phantom(void) {
  mbsr_volume *v = mbsr_volume_new(40, 36, 32, VOX, NULL);
  mbsr_rng *r = mbsr_rng_new(11);
  for (int64_t k = 0; k < 32; k++)
    for (int64_t j = 0; j < 36; j++)
      for (int64_t i = 0; i < 40; i++) {
        double x = (i - 18) / 12.0, y = (j - 18) / 11.0, z = (k - 16) / 10.0;
        double val = 0.05;
        if (x * x + y * y + z * z < 1) val = 0.8;
        if ((i - 18) * (i - 18) + (j - 18) * (j - 18) + (k - 16) * (k - 16) < 9) val = 0.1; /* ventricle */
        if (i >= 28 && j == 18) val = 0.05;                                                 /* cleft to outside */
        if ((i - 36) * (i - 36) + (j - 4) * (j - 4) + (k - 4) * (k - 4) < 4) val = 0.9;    /* blob */
        v->data[i + 40 * (j + 36 * k)] = (float)(val + mbsr_rng_normal(r, 0.02));
      }
  mbsr_rng_free(r);
  return v;
}

static void test_mask_threshold(void) {
  mbsr_volume *v = phantom(), *m = NULL;
  double thr = mbsr_otsu_threshold(v);
  printf("\n    phantom Otsu threshold %.4f ", thr);
  CU_ASSERT(thr > 0.1 && thr < 0.75); /* between the ventricle (0.1) and brain (0.8) levels */
  MT_ASSERT_OK(mbsr_mask_threshold(v, -1, &m));
  CU_ASSERT(mbsr_volume_same_grid(m, v, 0));
#define M(i, j, k) m->data[(i) + 40 * ((j) + 36 * (k))]
  MT_ASSERT_NEAR(M(18, 18, 16), 1, 0); /* ventricle centre: hole filled */
  MT_ASSERT_NEAR(M(10, 18, 16), 1, 0); /* brain */
  MT_ASSERT_NEAR(M(36, 4, 4), 0, 0);   /* separate blob: not the largest component */
  MT_ASSERT_NEAR(M(0, 0, 0), 0, 0);    /* background */
  MT_ASSERT_NEAR(M(29, 18, 16), 0, 0); /* the cleft reaches the outside: not a hole */
#undef M
  int64_t n = 0;
  for (int64_t i = 0; i < mbsr_volume_nvox(m); i++) {
    CU_ASSERT(m->data[i] == 0 || m->data[i] == 1);
    n += m->data[i] > 0.5f;
  }
  double ell = 4.0 / 3.0 * M_PI * 12 * 11 * 10; /* voxels of the ellipsoid */
  CU_ASSERT(n > 0.9 * ell && n < 1.05 * ell);
  mbsr_volume_free(m);
  /* a threshold above everything: error, no mask */
  CU_ASSERT(mbsr_mask_threshold(v, 5.0, &m) == MBSR_EINVAL && m == NULL);
  mbsr_volume_free(v);
}

static void test_mask_labels(void) {
  mbsr_volume *l = mbsr_volume_new(5, 4, 3, NULL, NULL), *m = NULL;
  l->data[3] = 1012;
  l->data[7] = -4;
  MT_ASSERT_OK(mbsr_mask_from_labels(l, &m));
  double s = 0;
  for (int64_t i = 0; i < mbsr_volume_nvox(m); i++) s += m->data[i];
  MT_ASSERT_NEAR(s, 2, 0);
  MT_ASSERT_NEAR(m->data[3], 1, 0);
  mbsr_volume_free(m);
  memset(l->data, 0, sizeof(float) * 60);
  CU_ASSERT(mbsr_mask_from_labels(l, &m) == MBSR_EINVAL && m == NULL);
  mbsr_volume_free(l);
}

/* The commands on the real template: downsample 2 -> upsample --like -> metrics; mask; normalize. */
static void test_cli_real(void) {
  char tpl[4096], ann[4096];
  if (!mbsr_test_data("af/allen_ccf_average_template_100um.nrrd", tpl, sizeof tpl)) return;
  if (!mbsr_test_data("af/allen_ccf_annotation_100um.nrrd", ann, sizeof ann)) return;
  const char *d = mbsr_test_tmpdir(), *b = mbsr_test_bin();
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s downsample %s %s/lr --factor 2", b, tpl, d), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s upsample %s/lr.nii.gz %s/up.nii.gz --like %s", b, d, d, tpl), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s upsample %s/lr.nii.gz %s/upf.nii.gz --factor 2 --method bspline", b, d, d), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s mask %s %s/mask.nii.gz", b, tpl, d), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s mask %s %s/lmask.nii.gz --labels", b, ann, d), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s normalize %s %s/norm.nii.gz --percentiles 0.5,99.5", b, tpl, d), 0);
  mbsr_volume *hr = NULL, *lr = NULL, *up = NULL, *upf = NULL, *mk = NULL, *lm = NULL, *nm = NULL;
  char p[4096];
  MT_ASSERT_OK(mbsr_volume_read(tpl, NULL, &hr));
  snprintf(p, sizeof p, "%s/lr.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &lr));
  snprintf(p, sizeof p, "%s/up.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &up));
  snprintf(p, sizeof p, "%s/upf.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &upf));
  snprintf(p, sizeof p, "%s/mask.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &mk));
  snprintf(p, sizeof p, "%s/lmask.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &lm));
  snprintf(p, sizeof p, "%s/norm.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &nm));
  MT_ASSERT_INT_EQ(lr->nx, 66);
  MT_ASSERT_INT_EQ(lr->ny, 40);
  MT_ASSERT_INT_EQ(lr->nz, 57);
  CU_ASSERT(mbsr_volume_check_same_grid(up, "up", hr, "template") == 0);  /* NIfTI float32 affine */
  CU_ASSERT(mbsr_volume_check_same_grid(upf, "upf", hr, "template") == 0); /* --factor reaches the same grid */
  /* the Otsu mask agrees with the annotation's brain (label != 0): Dice > 0.85 */
  double inter = 0, sa = 0, sb = 0;
  for (int64_t i = 0; i < mbsr_volume_nvox(mk); i++) {
    inter += mk->data[i] * lm->data[i];
    sa += mk->data[i];
    sb += lm->data[i];
  }
  double dice = 2 * inter / (sa + sb);
  printf("\n    template Otsu mask vs annotation (label != 0): Dice %.4f (%.0f vs %.0f voxels) ", dice, sa, sb);
  CU_ASSERT(dice > 0.85); /* 0.898 when written: Otsu misses some dark fibre tracts */
  float mn, mx;
  mbsr_volume_minmax(nm, &mn, &mx);
  MT_ASSERT_NEAR(mn, 0, 0);
  MT_ASSERT_NEAR(mx, 1, 0);
  /* metrics JSON on the brain */
  snprintf(p, sizeof p, "%s/m.json", d);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s metrics %s/up.nii.gz %s --mask %s/mask.nii.gz > %s", b, d, tpl, d, p), 0);
  FILE *f = fopen(p, "r");
  char buf[4096] = {0};
  if (f) {
    buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
    fclose(f);
  }
  printf("\n    %s", buf);
  char *s = strstr(buf, "\"ssim\": ");
  CU_ASSERT(s && atof(s + 8) > 0.5 && atof(s + 8) < 1);
  mbsr_volume_free(hr);
  mbsr_volume_free(lr);
  mbsr_volume_free(up);
  mbsr_volume_free(upf);
  mbsr_volume_free(mk);
  mbsr_volume_free(lm);
  mbsr_volume_free(nm);
}

/* Bad input to the commands: usage errors exit 2, failures 1 with one line; no output left behind. */
static void test_cli_errors(void) {
  const char *d = mbsr_test_tmpdir(), *b = mbsr_test_bin();
  CU_ASSERT(mbsr_test_sh("%s downsample --help > /dev/null", b) == 0);
  CU_ASSERT(mbsr_test_sh("%s downsample a b 2> /dev/null", b) == 2);                 /* no --factor */
  CU_ASSERT(mbsr_test_sh("%s upsample a b --like c --factor 2 2> /dev/null", b) == 2); /* both */
  CU_ASSERT(mbsr_test_sh("%s upsample a b --factor 2 --method sinc 2> /dev/null", b) == 2);
  CU_ASSERT(mbsr_test_sh("%s mask a b --labels --threshold 3 2> /dev/null", b) == 2);
  CU_ASSERT(mbsr_test_sh("%s normalize a b --percentiles 90,10 2> /dev/null", b) == 2);
  CU_ASSERT(mbsr_test_sh("%s metrics a 2> /dev/null", b) == 2);
  CU_ASSERT(mbsr_test_sh("%s downsample %s/missing.nii.gz %s/o.nii.gz --factor 2 2> /dev/null", b, d, d) == 1);
  char o[4096];
  snprintf(o, sizeof o, "%s/o.nii.gz", d);
  CU_ASSERT(!mbsr_file_exists(o));
}

int main(void) {
  static const mbsr_test_case cases[] = {{"otsu_percentiles", test_otsu_percentiles},
                                         {"normalize", test_normalize},
                                         {"mask_threshold", test_mask_threshold},
                                         {"mask_labels", test_mask_labels},
                                         {"cli_real", test_cli_real},
                                         {"cli_errors", test_cli_errors},
                                         {NULL, NULL}};
  return mbsr_test_main("image_mask", cases);
}
