/* Down-sampling with a slice profile (mbsr_downsample, `mbsr downsample --profile`) at anisotropic
 * factors 1,1,4 and 3,2,1 on an oblique grid, against tests/fixtures/gen_issue13.py: boxcar (numpy block
 * mean, = scipy uniform_filter1d) and gaussian (scipy.ndimage gaussian_filter1d / correlate1d at the
 * block centres); the output affine against nibabel's (in memory, and as nibabel reads the file the
 * CLI wrote); `upsample --factor` restores the HR grid. */
#include <math.h>

#include "image_fixture.h"
#include "mbsr/volume.h"

static mbsr_volume *fixture(const char *name, char *path, size_t n) {
  char rel[256];
  snprintf(rel, sizeof rel, "issue13/%s", name);
  mbsr_test_fixture(rel, path, n);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(path, NULL, &v));
  return v;
}

static const struct {
  const char *tag;
  int f[3];
} factors[] = {{"f114", {1, 1, 4}}, {"f321", {3, 2, 1}}};

static double affine_diff(const double a[4][4], const char *tag) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s_affine", tag);
  return fx_affine_diff(a, "issue13/profile_values.txt", prefix);
}

static void test_vs_scipy(void) {
  char p[4096], q[4096];
  mbsr_volume *in = fixture("profile_in.nii.gz", p, sizeof p);
  for (int t = 0; t < 2; t++)
    for (int pr = 0; pr < 2; pr++) {
      char name[128];
      snprintf(name, sizeof name, "profile_%s_%s.nii.gz", factors[t].tag, mbsr_profile_name((mbsr_profile)pr));
      mbsr_volume *ref = fixture(name, q, sizeof q), *d = NULL;
      MT_ASSERT_OK(mbsr_downsample(in, factors[t].f, (mbsr_profile)pr, &d));
      MT_ASSERT_INT_EQ(d->nx, ref->nx);
      MT_ASSERT_INT_EQ(d->ny, ref->ny);
      MT_ASSERT_INT_EQ(d->nz, ref->nz);
      double md = fx_max_abs_diff(d->data, ref->data, mbsr_volume_nvox(ref)), ad = affine_diff(d->affine, factors[t].tag);
      float mn, mx;
      mbsr_volume_minmax(ref, &mn, &mx);
      printf("\n  factor %d,%d,%d %-8s: %lldx%lldx%lld, max |diff| vs scipy %.2e (values %.0f..%.0f), affine vs nibabel %.1e",
             factors[t].f[0], factors[t].f[1], factors[t].f[2], mbsr_profile_name((mbsr_profile)pr), (long long)d->nx, (long long)d->ny,
             (long long)d->nz, md, mn, mx, ad);
      CU_ASSERT(md < 1e-4); /* float32 values of ~100: a few ulp */
      CU_ASSERT(ad < 1e-6);
      for (int a = 0; a < 3; a++) MT_ASSERT_NEAR(d->vox[a], in->vox[a] * factors[t].f[a], 1e-6);
      mbsr_volume_free(d);
      mbsr_volume_free(ref);
    }
  printf("\n");
  mbsr_profile pp;
  MT_ASSERT_INT_EQ(mbsr_profile_parse("triangle", &pp), MBSR_EINVAL);
  mbsr_volume_free(in);
}

/* Through the CLI: `downsample --factor 1,1,4 --profile gaussian` writes the fixture's numbers and an
 * affine nibabel reads as expected; `upsample --factor 1,1,4` of it is on the input's grid (the
 * remainder cropped: 18 -> 16 slices). */
static void test_cli_grid(void) {
  const char *d = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char in[4096], ref[4096];
  mbsr_volume *vin = fixture("profile_in.nii.gz", in, sizeof in), *vref = fixture("profile_f114_gaussian.nii.gz", ref, sizeof ref);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' downsample '%s' '%s/g.nii.gz' --factor 1,1,4 --profile gaussian --quiet", bin, in, d), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' downsample '%s' '%s/x.nii.gz' --factor 1,1,4 --profile triangle 2>/dev/null", bin, in, d), 2);
  char cmd[10000];
  snprintf(cmd, sizeof cmd,
           "import nibabel as nib, numpy as np; a = nib.load('%s/g.nii.gz'); r = nib.load('%s'); "
           "assert np.allclose(a.affine, r.affine, rtol=0, atol=1e-5), (a.affine, r.affine); "
           "assert np.allclose(a.get_fdata(), r.get_fdata(), rtol=0, atol=1e-4); assert a.shape == (13, 11, 4)",
           d, ref);
  if (mbsr_test_sh("/usr/bin/python3 -c 'import nibabel' 2>/dev/null") == 0) MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 -c \"%s\"", cmd), 0);
  else mbsr_test_skip("no nibabel in /usr/bin/python3: the file's affine is checked by mbsr's reader only");
  mbsr_volume *g = NULL, *up = NULL;
  char gp[4200], upp[4200];
  snprintf(gp, sizeof gp, "%s/g.nii.gz", d);
  snprintf(upp, sizeof upp, "%s/up.nii.gz", d);
  MT_ASSERT_OK(mbsr_volume_read(gp, NULL, &g));
  CU_ASSERT(mbsr_volume_same_grid(g, vref, 1e-5));
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' upsample '%s' '%s' --factor 1,1,4 --quiet", bin, gp, upp), 0);
  MT_ASSERT_OK(mbsr_volume_read(upp, NULL, &up));
  MT_ASSERT_INT_EQ(up->nx, 13);
  MT_ASSERT_INT_EQ(up->ny, 11);
  MT_ASSERT_INT_EQ(up->nz, 16);
  double md = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) md = fmax(md, fabs(up->affine[r][c] - vin->affine[r][c]));
  printf("\n  upsample --factor 1,1,4 of the gaussian LR: %lldx%lldx%lld, affine vs the HR input's: max |diff| %.1e mm\n", (long long)up->nx,
         (long long)up->ny, (long long)up->nz, md);
  CU_ASSERT(md < 1e-5);
  mbsr_volume_free(g);
  mbsr_volume_free(up);
  mbsr_volume_free(vin);
  mbsr_volume_free(vref);
}

int main(void) {
  const mbsr_test_case cases[] = {
      {"profiles_vs_scipy_affine_vs_nibabel", test_vs_scipy},
      {"cli_downsample_upsample_grid", test_cli_grid},
      {NULL, NULL},
  };
  return mbsr_test_main("profile", cases);
}
