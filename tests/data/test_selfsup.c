/* Self-supervised through-plane pairs (issue 13, item 2): mbsr_selfsup_pair against the numpy
 * construction of tests/fixtures/gen_selfsup.py (slice axis 2 with factor 3, slice axis 0 with factor 4
 * and a cropped remainder; both in-plane axes; boxcar and Gaussian profiles; values and the transposed
 * affines), the refusals, and `mbsr prep --self-supervised` end to end: one pair named by the per-axis
 * voxel, the through-plane contract, and patches that are crops of the (normalised) pair. */
#include <math.h>

#include "../image/image_fixture.h"
#include "mbsr/data.h"
#include "mbsr/volume.h"

static mbsr_volume *fixture(const char *name) { return fx_volume_file("selfsup", name); }

static double affine_diff(const double a[4][4], const double b[4][4]) {
  double d = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) d = fmax(d, fabs(a[r][c] - b[r][c]));
  return d;
}

static void check_same(const mbsr_volume *got, const mbsr_volume *ref, const char *what) {
  MT_ASSERT_INT_EQ(got->nx, ref->nx);
  MT_ASSERT_INT_EQ(got->ny, ref->ny);
  MT_ASSERT_INT_EQ(got->nz, ref->nz);
  float mn, mx;
  mbsr_volume_minmax(ref, &mn, &mx);
  const double md = fx_max_abs_diff(got->data, ref->data, mbsr_volume_nvox(ref)), ad = affine_diff(got->affine, ref->affine);
  printf("\n  %-26s %lldx%lldx%lld: max |diff| vs numpy %.2e (values %.0f..%.0f), affine %.1e", what, (long long)got->nx,
         (long long)got->ny, (long long)got->nz, md, mn, mx, ad);
  CU_ASSERT(md < 1e-4 * fmax(1.0, fabs(mx)));
  CU_ASSERT(ad < 1e-6);
  for (int a = 0; a < 3; a++) MT_ASSERT_NEAR(got->vox[a], ref->vox[a], 1e-6);
}

static const struct {
  const char *name;
  int slice, factor;
} cases[] = {{"s2", 2, 3}, {"s0", 0, 4}};

static void test_pairs_vs_numpy(void) {
  for (int c = 0; c < 2; c++) {
    char nm[128];
    snprintf(nm, sizeof nm, "%s_acq.nii.gz", cases[c].name);
    mbsr_volume *acq = fixture(nm);
    int F = 0;
    MT_ASSERT_OK(mbsr_selfsup_factor(acq, cases[c].slice, &F));
    MT_ASSERT_INT_EQ(F, cases[c].factor);
    for (int d = 0; d < 3; d++) {
      if (d == cases[c].slice) continue;
      for (int p = 0; p < 2; p++) {
        mbsr_volume *in = NULL, *tg = NULL;
        MT_ASSERT_OK(mbsr_selfsup_pair(acq, cases[c].slice, d, (mbsr_profile)p, &in, &tg));
        snprintf(nm, sizeof nm, "%s_d%d_%s_input.nii.gz", cases[c].name, d, mbsr_profile_name((mbsr_profile)p));
        mbsr_volume *ri = fixture(nm);
        check_same(in, ri, nm);
        snprintf(nm, sizeof nm, "%s_d%d_%s_target.nii.gz", cases[c].name, d, mbsr_profile_name((mbsr_profile)p));
        mbsr_volume *rt = fixture(nm);
        check_same(tg, rt, nm);
        mbsr_volume_free(ri), mbsr_volume_free(rt), mbsr_volume_free(in), mbsr_volume_free(tg);
      }
    }
    mbsr_volume *in = NULL, *tg = NULL;
    MT_ASSERT_INT_EQ(mbsr_selfsup_pair(acq, cases[c].slice, cases[c].slice, MBSR_PROFILE_BOXCAR, &in, &tg), MBSR_EINVAL);
    CU_ASSERT(in == NULL && tg == NULL);
    F = 0;
    MT_ASSERT_INT_EQ(mbsr_selfsup_factor(acq, (cases[c].slice + 1) % 3, &F), MBSR_EINVAL); /* an in-plane axis is no slice axis */
    mbsr_volume_free(acq);
  }
  printf("\n");
}

/* prep --self-supervised on two copies of the slice-axis-2 fixture: pair name, contract, patch values. */
static void test_prep_cli(void) {
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char acq[4096], h5[4200];
  mbsr_test_fixture("selfsup/s2_acq.nii.gz", acq, sizeof acq);
  snprintf(h5, sizeof h5, "%s/ss.h5", t);
  MT_ASSERT_INT_EQ(mbsr_test_sh("mkdir -p '%s/ssin' && cp '%s' '%s/ssin/a.nii.gz' && cp '%s' '%s/ssin/b.nii.gz' && '%s' prep --quiet "
                                "--self-supervised --inputs '%s/ssin' --out '%s' --patch 5 --patches-per-volume 7 --split 50,50,0 "
                                "--mask-threshold 0",
                                t, acq, t, acq, t, bin, t, h5),
                   0);
  /* the pair is named by the acquired voxel in um; refused with --pair */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' prep --quiet --self-supervised --pair 200-100 --inputs '%s/ssin' --out '%s/x.h5' 2>/dev/null", bin,
                                t, t),
                   2);
  mbsr_patchset *ps = NULL;
  MT_ASSERT_OK(mbsr_patchset_open(h5, "200x200x600-200", "train", &ps));
  mbsr_sr_contract k;
  MT_ASSERT_OK(mbsr_patchset_contract(ps, &k));
  CU_ASSERT(k.through_plane == 1);
  const double lv[3] = {0.2, 0.2, 0.6}, hv[3] = {0.2, 0.2, 0.2};
  for (int a = 0; a < 3; a++) {
    MT_ASSERT_NEAR(k.lr_vox_mm[a], lv[a], 1e-6); /* float32 pixdim */
    MT_ASSERT_NEAR(k.hr_vox_mm[a], hv[a], 1e-6);
  }
  MT_ASSERT_INT_EQ(mbsr_patchset_count(ps), 7);
  /* patch 0 (the first orientation: axis 0 degraded) = a crop of the normalised pair at its centre */
  mbsr_volume *v = NULL, *in = NULL, *tg = NULL;
  MT_ASSERT_OK(mbsr_volume_read(acq, NULL, &v));
  MT_ASSERT_OK(mbsr_selfsup_pair(v, 2, 0, MBSR_PROFILE_BOXCAR, &in, &tg));
  double lo, hi;
  MT_ASSERT_OK(mbsr_norm_fit(in, 0.1, 99.9, &lo, &hi));
  float pin[125], ptg[125];
  const int64_t idx = 0;
  MT_ASSERT_OK(mbsr_patchset_read(ps, &idx, 1, pin, ptg));
  /* the centre is not exposed by the reader: find the crop of the normalised input that matches */
  mbsr_norm_map(in->data, in->data, mbsr_volume_nvox(in), lo, hi);
  mbsr_norm_map(tg->data, tg->data, mbsr_volume_nvox(tg), lo, hi);
  int found = 0;
  for (int64_t z = 0; z + 5 <= in->nz && !found; z++)
    for (int64_t y = 0; y + 5 <= in->ny && !found; y++)
      for (int64_t x = 0; x + 5 <= in->nx && !found; x++) {
        double di = 0, dt = 0;
        for (int q = 0; q < 125; q++) {
          const int64_t o = (x + q % 5) + in->nx * ((y + (q / 5) % 5) + in->ny * (z + q / 25));
          di = fmax(di, fabs(pin[q] - in->data[o])), dt = fmax(dt, fabs(ptg[q] - tg->data[o]));
        }
        if (di < 1e-6 && dt < 1e-6) found = 1;
      }
  CU_ASSERT(found);
  mbsr_patchset_close(ps);
  mbsr_volume_free(v), mbsr_volume_free(in), mbsr_volume_free(tg);
}

int main(void) {
  const mbsr_test_case tc[] = {{"pairs_vs_numpy", test_pairs_vs_numpy}, {"prep_cli", test_prep_cli}, {NULL, NULL}};
  return mbsr_test_main("selfsup", tc);
}
