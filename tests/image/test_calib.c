/* The sd calibration (mbsr_sd_calibrate, `mbsr metrics --sd`) against the numpy reference of
 * tests/fixtures/gen_issue13.py: Pearson r of sd with |test - ref| and the ten sd deciles (ties in sd
 * broken by voxel index), over a mask and over all voxels; errors for mismatched grids and bad sd. */
#include <math.h>

#include "image_fixture.h"
#include "mbsr/volume.h"

static mbsr_volume *fixture(const char *name) { return fx_volume_file("issue13", name); }

static double val(const char *tag, const char *what, int b) {
  char key[128];
  if (b < 0) snprintf(key, sizeof key, "%s_%s", tag, what);
  else snprintf(key, sizeof key, "%s_%s%d", tag, what, b);
  return fx_value_in("issue13/calib_values.txt", key);
}

static void check(const char *tag, const mbsr_sd_calibration *c) {
  MT_ASSERT_INT_EQ(c->n, (int64_t)val(tag, "n", -1));
  MT_ASSERT_NEAR(c->corr, val(tag, "corr", -1), 1e-12);
  double worst = 0;
  for (int b = 0; b < MBSR_SD_BINS; b++) {
    MT_ASSERT_INT_EQ(c->count[b], (int64_t)val(tag, "count", b));
    MT_ASSERT_NEAR(c->sd_lo[b], val(tag, "sdlo", b), 1e-7);
    MT_ASSERT_NEAR(c->sd_hi[b], val(tag, "sdhi", b), 1e-7);
    MT_ASSERT_NEAR(c->sd_mean[b], val(tag, "sdmean", b), 1e-9);
    MT_ASSERT_NEAR(c->err_mean[b], val(tag, "errmean", b), 1e-9);
    worst = fmax(worst, fabs(c->err_mean[b] - val(tag, "errmean", b)));
  }
  printf("\n  %s: n %lld, r(sd, err) %.6f (numpy %.6f); mean err by sd decile %.3f .. %.3f, max |diff| vs numpy %.1e", tag,
         (long long)c->n, c->corr, val(tag, "corr", -1), c->err_mean[0], c->err_mean[MBSR_SD_BINS - 1], worst);
}

static void test_vs_numpy(void) {
  mbsr_volume *t = fixture("calib_test.nii.gz"), *r = fixture("calib_ref.nii.gz"), *s = fixture("calib_sd.nii.gz"),
              *m = fixture("calib_mask.nii.gz");
  mbsr_sd_calibration c;
  MT_ASSERT_OK(mbsr_sd_calibrate(t, r, s, m, &c));
  check("mask", &c);
  MT_ASSERT_OK(mbsr_sd_calibrate(t, r, s, NULL, &c));
  check("all", &c);
  printf("\n");
  /* errors: a grid mismatch, a negative sd */
  mbsr_volume *small = mbsr_volume_new(4, 4, 4, NULL, NULL);
  MT_ASSERT_INT_EQ(mbsr_sd_calibrate(t, r, small, NULL, &c), MBSR_EMISMATCH);
  s->data[3] = -1;
  MT_ASSERT_INT_EQ(mbsr_sd_calibrate(t, r, s, NULL, &c), MBSR_ENONFINITE);
  mbsr_volume_free(small);
  mbsr_volume_free(t);
  mbsr_volume_free(r);
  mbsr_volume_free(s);
  mbsr_volume_free(m);
}

/* `mbsr metrics TEST REF --mask M --sd SD`: the same numbers in its JSON. */
static void test_cli(void) {
  char t[4096], r[4096], s[4096], m[4096];
  mbsr_test_fixture("issue13/calib_test.nii.gz", t, sizeof t);
  mbsr_test_fixture("issue13/calib_ref.nii.gz", r, sizeof r);
  mbsr_test_fixture("issue13/calib_sd.nii.gz", s, sizeof s);
  mbsr_test_fixture("issue13/calib_mask.nii.gz", m, sizeof m);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "import json,sys; j=json.loads(sys.stdin.read()); d=j['sd_deciles']; "
           "assert abs(j['sd_err_corr'] - %.17g) < 1e-9, j['sd_err_corr']; assert len(d) == 10 and sum(x['n'] for x in d) == j['n']; "
           "assert abs(d[9]['err_mean'] - %.17g) < 1e-7; assert j['files']['sd'].endswith('calib_sd.nii.gz')",
           val("mask", "corr", -1), val("mask", "errmean", 9));
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' metrics '%s' '%s' --mask '%s' --sd '%s' --quiet | /usr/bin/python3 -c \"%s\"", mbsr_test_bin(), t, r, m,
                                s, cmd), 0);
  /* the mask as an sd (0/1 on the same grid) is valid; an sd on another grid is not (exit 1) */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' metrics '%s' '%s' --sd '%s' --quiet 2>/dev/null >/dev/null", mbsr_test_bin(), t, r, m), 0);
  char other[4096];
  mbsr_test_fixture("issue13/profile_in.nii.gz", other, sizeof other);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' metrics '%s' '%s' --sd '%s' --quiet 2>/dev/null >/dev/null", mbsr_test_bin(), t, r, other), 1);
}

int main(void) {
  const mbsr_test_case cases[] = {
      {"calibration_vs_numpy", test_vs_numpy},
      {"metrics_cli_sd", test_cli},
      {NULL, NULL},
  };
  return mbsr_test_main("calib", cases);
}
