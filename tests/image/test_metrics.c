/* image/metrics: RMSE, PSNR, 3-D SSIM against scikit-image 0.19 (tests/fixtures/gen_image.py),
 * a naive SSIM (whole 3-D Gaussian window per voxel), error cases, and `mbsr metrics` end to end. */
#include <math.h>
#include <string.h>

#include "image_fixture.h"
#include "mbsr/image.h"
#include "mbsr_test.h"

static const double VOX[3] = {0.1, 0.1, 0.1}, ORG[3] = {0, 0, 0};

static void check_case(const char *name, int with_mask) {
  char f1[64], f2[64], f3[64], key[64];
  snprintf(f1, sizeof f1, "%s_test.raw", name);
  snprintf(f2, sizeof f2, "%s_ref.raw", name);
  snprintf(f3, sizeof f3, "%s_mask.raw", name);
  mbsr_volume *t = fx_volume(f1, VOX, ORG), *r = fx_volume(f2, VOX, ORG), *m = NULL;
  CU_ASSERT_FATAL(t && r);
  snprintf(key, sizeof key, "%s_data_range", name);
  double L = fx_value(key);
  mbsr_metrics mt;
  MT_ASSERT_OK(mbsr_metrics_compute(t, r, NULL, L, &mt));
  snprintf(key, sizeof key, "%s_ssim", name);
  double ss = fx_value(key);
  printf("\n    %s (%lldx%lldx%lld): SSIM %.8f skimage %.8f |diff| %.2g ", name, (long long)r->nx, (long long)r->ny,
         (long long)r->nz, mt.ssim, ss, fabs(mt.ssim - ss));
  MT_ASSERT_NEAR(mt.ssim, ss, 1e-4);
  MT_ASSERT_NEAR(mt.ssim, ss, 1e-9); /* in fact: double throughout */
  snprintf(key, sizeof key, "%s_rmse", name);
  MT_ASSERT_REL(mt.rmse, fx_value(key), 1e-9, 1e-12);
  snprintf(key, sizeof key, "%s_psnr", name);
  MT_ASSERT_REL(mt.psnr, fx_value(key), 1e-9, 1e-12);
  MT_ASSERT_INT_EQ(mt.n, mbsr_volume_nvox(r));
  if (with_mask) {
    m = fx_volume(f3, VOX, ORG);
    CU_ASSERT_FATAL(m != NULL);
    MT_ASSERT_OK(mbsr_metrics_compute(t, r, m, L, &mt));
    snprintf(key, sizeof key, "%s_ssim_mask", name);
    ss = fx_value(key);
    printf("masked SSIM %.8f numpy %.8f |diff| %.2g ", mt.ssim, ss, fabs(mt.ssim - ss));
    MT_ASSERT_NEAR(mt.ssim, ss, 1e-9);
    snprintf(key, sizeof key, "%s_rmse_mask", name);
    MT_ASSERT_REL(mt.rmse, fx_value(key), 1e-9, 1e-12);
    snprintf(key, sizeof key, "%s_psnr_mask", name);
    MT_ASSERT_REL(mt.psnr, fx_value(key), 1e-9, 1e-12);
    snprintf(key, sizeof key, "%s_n_mask", name);
    MT_ASSERT_INT_EQ(mt.n, (int64_t)fx_value(key));
    /* default data range = max(ref) - min(ref): s3 was generated that way */
    mbsr_metrics md;
    MT_ASSERT_OK(mbsr_metrics_compute(t, r, m, 0, &md));
    MT_ASSERT_REL(md.data_range, L, 1e-7, 1e-12);
    mbsr_volume_free(m);
  }
  mbsr_volume_free(t);
  mbsr_volume_free(r);
}

static void test_vs_skimage(void) {
  check_case("s1", 0); /* 13x12x11 random, data range 1 */
  check_case("s2", 0); /* 17x14x19 structured, data range 2 */
  check_case("s3", 1); /* 24x20x16 vs its blur, data range max-min, with a mask */
}

/* Naive SSIM: the full 11^3 Gaussian window at every interior voxel. */
static void test_vs_naive(void) {
  const int64_t nx = 13, ny = 12, nz = 14, n = nx * ny * nz;
  float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
  mbsr_rng *rng = mbsr_rng_new(3);
  for (int64_t i = 0; i < n; i++) {
    a[i] = (float)mbsr_rng_uniform(rng) * 3 - 1;
    b[i] = a[i] + (float)mbsr_rng_normal(rng, 0.3);
  }
  mbsr_rng_free(rng);
  double g[11], gs = 0;
  for (int t = 0; t < 11; t++) gs += (g[t] = exp(-0.5 * (t - 5) * (t - 5) / 2.25));
  const double L = 4, C1 = (0.01 * L) * (0.01 * L), C2 = (0.03 * L) * (0.03 * L);
  double sum = 0;
  int64_t cnt = 0;
  for (int64_t k = 5; k < nz - 5; k++)
    for (int64_t j = 5; j < ny - 5; j++)
      for (int64_t i = 5; i < nx - 5; i++) {
        double u[5] = {0};
        for (int c = 0; c < 11; c++)
          for (int bb = 0; bb < 11; bb++)
            for (int aa = 0; aa < 11; aa++) {
              double w = g[aa] * g[bb] * g[c] / (gs * gs * gs);
              int64_t p = (i + aa - 5) + nx * ((j + bb - 5) + ny * (k + c - 5));
              double x = a[p], y = b[p];
              u[0] += w * x, u[1] += w * y, u[2] += w * x * x, u[3] += w * y * y, u[4] += w * x * y;
            }
        double vx = u[2] - u[0] * u[0], vy = u[3] - u[1] * u[1], vxy = u[4] - u[0] * u[1];
        sum += (2 * u[0] * u[1] + C1) * (2 * vxy + C2) / ((u[0] * u[0] + u[1] * u[1] + C1) * (vx + vy + C2));
        cnt++;
      }
  double s = mbsr_ssim3d(a, b, nx, ny, nz, L, NULL);
  MT_ASSERT_NEAR(s, sum / cnt, 1e-10);
  /* identical images: SSIM 1; too small: NaN with a message */
  MT_ASSERT_NEAR(mbsr_ssim3d(a, a, nx, ny, nz, L, NULL), 1, 1e-12);
  CU_ASSERT(isnan(mbsr_ssim3d(a, b, 10, 12, 14, L, NULL)));
  CU_ASSERT(strstr(mbsr_last_error(), "11-voxel") != NULL);
  free(a);
  free(b);
}

static void test_errors(void) {
  mbsr_volume *a = mbsr_volume_new(12, 12, 12, NULL, NULL), *b = mbsr_volume_new(12, 12, 13, NULL, NULL);
  mbsr_volume *c = mbsr_volume_new(12, 12, 12, VOX, NULL);
  mbsr_metrics m;
  for (int64_t i = 0; i < mbsr_volume_nvox(a); i++) a->data[i] = c->data[i] = (float)(i % 7);
  MT_ASSERT_INT_EQ(mbsr_metrics_compute(a, b, NULL, 1, &m), MBSR_EMISMATCH);
  MT_ASSERT_INT_EQ(mbsr_metrics_compute(a, c, NULL, 1, &m), MBSR_EMISMATCH); /* same dims, other affine */
  mbsr_volume *d = mbsr_volume_clone(a);
  MT_ASSERT_OK(mbsr_metrics_compute(a, d, NULL, 0, &m));
  MT_ASSERT_NEAR(m.rmse, 0, 0);
  CU_ASSERT(isinf(m.psnr));
  MT_ASSERT_NEAR(m.ssim, 1, 1e-12);
  MT_ASSERT_NEAR(m.data_range, 6, 0);
  d->data[100] = NAN;
  MT_ASSERT_INT_EQ(mbsr_metrics_compute(a, d, NULL, 1, &m), MBSR_ENONFINITE);
  mbsr_volume_free(a);
  mbsr_volume_free(b);
  mbsr_volume_free(c);
  mbsr_volume_free(d);
}

/* `mbsr metrics` end to end: JSON on stdout; mismatched grids and NaN give one line, non-zero exit. */
static void test_cli(void) {
  const char *tmp = mbsr_test_tmpdir();
  char pt[4096], pr[4096], pm[4096], pbad[4096], pnan[4096], out[4096];
  snprintf(pt, sizeof pt, "%s/s3_test.nii.gz", tmp);
  snprintf(pr, sizeof pr, "%s/s3_ref.nii.gz", tmp);
  snprintf(pm, sizeof pm, "%s/s3_mask.nii.gz", tmp);
  snprintf(pbad, sizeof pbad, "%s/shifted.nii.gz", tmp);
  snprintf(pnan, sizeof pnan, "%s/nan.nrrd", tmp);
  snprintf(out, sizeof out, "%s/metrics.json", tmp);
  mbsr_volume *t = fx_volume("s3_test.raw", VOX, ORG), *r = fx_volume("s3_ref.raw", VOX, ORG);
  mbsr_volume *m = fx_volume("s3_mask.raw", VOX, ORG);
  const double ORG2[3] = {0.5, 0, 0};
  mbsr_volume *s = fx_volume("s3_test.raw", VOX, ORG2);
  CU_ASSERT_FATAL(t && r && m && s);
  MT_ASSERT_OK(mbsr_volume_write(pt, t));
  MT_ASSERT_OK(mbsr_volume_write(pr, r));
  MT_ASSERT_OK(mbsr_volume_write(pm, m));
  MT_ASSERT_OK(mbsr_volume_write(pbad, s));
  /* NaN/Inf input: a raw NRRD (nifti_clib's reader replaces non-finite floats by 0 on its own) */
  FILE *fn = fopen(pnan, "wb");
  CU_ASSERT_FATAL(fn != NULL);
  fprintf(fn, "NRRD0004\ntype: float\ndimension: 3\nsizes: 12 12 12\nencoding: raw\nendian: little\n\n");
  for (int i = 0; i < 12 * 12 * 12; i++) {
    float x = i == 77 ? INFINITY : (float)(i % 5);
    fwrite(&x, sizeof x, 1, fn);
  }
  fclose(fn);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s metrics %s %s --mask %s > %s", mbsr_test_bin(), pt, pr, pm, out), 0);
  FILE *f = fopen(out, "r");
  char buf[4096] = {0};
  if (f) {
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = 0;
    fclose(f);
  }
  printf("\n%s", buf);
  char *p = strstr(buf, "\"ssim\":");
  CU_ASSERT_FATAL(p != NULL);
  MT_ASSERT_NEAR(atof(p + 7), fx_value("s3_ssim_mask"), 1e-6);
  p = strstr(buf, "\"n\":");
  CU_ASSERT_FATAL(p != NULL);
  MT_ASSERT_INT_EQ(atol(p + 4), (long)fx_value("s3_n_mask"));
  CU_ASSERT(strstr(buf, "\"rmse\":") && strstr(buf, "\"psnr\":") && strstr(buf, "\"data_range\":") &&
            strstr(buf, "\"files\":"));
  /* mismatched grid: one line naming both files */
  char err[4096];
  snprintf(err, sizeof err, "%s/err.txt", tmp);
  CU_ASSERT(mbsr_test_sh("%s metrics %s %s > /dev/null 2> %s", mbsr_test_bin(), pbad, pr, err) != 0);
  f = fopen(err, "r");
  buf[0] = 0;
  if (f) {
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = 0;
    fclose(f);
  }
  printf("    mismatch: %s", buf);
  CU_ASSERT(strstr(buf, "shifted.nii.gz") && strstr(buf, "s3_ref.nii.gz"));
  CU_ASSERT(strchr(buf, '\n') == strrchr(buf, '\n')); /* one line */
  /* NaN/Inf: the file is named */
  CU_ASSERT(mbsr_test_sh("%s metrics %s %s > /dev/null 2> %s", mbsr_test_bin(), pnan, pnan, err) != 0);
  f = fopen(err, "r");
  buf[0] = 0;
  if (f) {
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = 0;
    fclose(f);
  }
  printf("    non-finite: %s", buf);
  CU_ASSERT(strstr(buf, "nan.nrrd") && strstr(buf, "Inf"));
  mbsr_volume_free(t);
  mbsr_volume_free(r);
  mbsr_volume_free(m);
  mbsr_volume_free(s);
}

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1 /* timings mean nothing under ASan: smaller volume, no time limit */
#else
#define SANITIZED 0
#endif

static void test_speed(void) {
  const int64_t nx = SANITIZED ? 132 : 264, ny = SANITIZED ? 80 : 160, nz = SANITIZED ? 114 : 228, n = nx * ny * nz;
  float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    a[i] = (float)((i * 2654435761u) % 1000) / 1000.f;
    b[i] = 0.9f * a[i] + 0.05f;
  }
  double t0 = mbsr_now();
  double s = mbsr_ssim3d(a, b, nx, ny, nz, 1.0, NULL);
  double dt = mbsr_now() - t0;
  printf("\n    SSIM %lldx%lldx%lld: %.3f s (ssim %.4f) ", (long long)nx, (long long)ny, (long long)nz, dt, s);
  CU_ASSERT(s > 0 && s < 1);
  if (!SANITIZED) CU_ASSERT(dt < 10); /* about 0.2 s on 2 idle cores */
  free(a);
  free(b);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"vs_skimage", test_vs_skimage},
                                         {"vs_naive", test_vs_naive},
                                         {"errors", test_errors},
                                         {"cli", test_cli},
                                         {"speed", test_speed},
                                         {NULL, NULL}};
  return mbsr_test_main("image_metrics", cases);
}
