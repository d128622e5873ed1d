/* Per-axis (anisotropic) resolution pairs (issue 13, item 1): pair names and their errors; `mbsr prep`
 * with the pair 100x100x400-100 (factor 1,1,4) against the numpy/scipy construction of
 * tests/fixtures/gen_aniso.py (boxcar and Gaussian slice profiles, a remainder along k), the pair group's
 * attributes and the contract; an isotropic pair's patches bit-identical to mbsr before per-axis pairs
 * (CRC-32 of every patch row, recorded from commit eeee4c3); train + apply of a tiny model: apply
 * refuses an input whose thick axis is another one, accepts the right one, and its output grid. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "../image/image_fixture.h"
#include "mbsr/data.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"

static void test_pair_names(void) {
  static const struct {
    const char *in, *name;
    int lr[3], hr;
  } ok[] = {{"400-200", "400-200", {400, 400, 400}, 200},
            {"100x100x400-100", "100x100x400-100", {100, 100, 400}, 100},
            {"2500x2500x10000-2500", "2500x2500x10000-2500", {2500, 2500, 10000}, 2500},
            {"200x200x200-100", "200-100", {200, 200, 200}, 100}, /* isotropic: the old name */
            {"300x100x100-100", "300x100x100-100", {300, 100, 100}, 100}};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    mbsr_res_pair p, q;
    char nm[MBSR_PAIR_NAME_MAX];
    MT_ASSERT_OK(mbsr_res_pair_parse(ok[i].in, &p));
    for (int a = 0; a < 3; a++) MT_ASSERT_INT_EQ(p.lr_um[a], ok[i].lr[a]);
    MT_ASSERT_INT_EQ(p.hr_um, ok[i].hr);
    CU_ASSERT_STRING_EQUAL(mbsr_res_pair_name(&p, nm, sizeof nm), ok[i].name);
    MT_ASSERT_OK(mbsr_res_pair_parse(nm, &q)); /* round trip */
    CU_ASSERT(mbsr_res_pair_equal(&p, &q));
  }
  static const struct {
    const char *in, *msg;
  } bad[] = {{"150-100", "LR voxel 150 um along axis i is not a positive integer multiple of the HR 100 um"},
             {"100x100x250-100", "LR voxel 250 um along axis k is not a positive integer multiple"},
             {"100x50x400-100", "LR voxel 50 um along axis j is not a positive integer multiple"},
             {"100-100", "the LR voxel must be coarser than the HR along some axis"},
             {"100x100x100-100", "must be coarser"},
             {"100x400-100", "expected LR-HR or LRixLRjxLRk-HR"},
             {"100.5-50", "expected LR-HR"},
             {"400-0", "expected LR-HR"},
             {"-400-200", "expected LR-HR"},
             {"400-200x", "expected LR-HR"},
             {"a-b", "expected LR-HR"},
             {"", "expected LR-HR"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mbsr_res_pair p = mbsr_res_pair_iso(7, 7);
    MT_ASSERT_INT_EQ(mbsr_res_pair_parse(bad[i].in, &p), MBSR_EINVAL);
    if (!strstr(mbsr_last_error(), bad[i].msg)) printf("\n  '%s': message '%s' lacks '%s'", bad[i].in, mbsr_last_error(), bad[i].msg);
    CU_ASSERT(strstr(mbsr_last_error(), bad[i].msg) != NULL);
    CU_ASSERT(strchr(mbsr_last_error(), '\n') == NULL); /* one line */
    MT_ASSERT_INT_EQ(p.lr_um[0], 7);                    /* untouched */
  }
  /* prep's list: isotropic and per-axis pairs mixed; a bad one names the flag */
  mbsr_prep_config c;
  mbsr_prep_config_default(&c);
  MT_ASSERT_OK(mbsr_prep_parse_pairs(&c, "200-100,100x100x400-100"));
  MT_ASSERT_INT_EQ(c.npairs, 2);
  MT_ASSERT_INT_EQ(c.pairs[1].lr_um[2], 400);
  MT_ASSERT_INT_EQ(mbsr_prep_parse_pairs(&c, "200-100,100x100x300x1-100"), MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "--pairs '200-100,100x100x300x1-100': pair '100x100x300x1-100'") != NULL);
  char tag[64];
  const int um[3] = {100, 100, 400}, iso[3] = {200, 200, 200};
  CU_ASSERT_STRING_EQUAL(mbsr_eval_level_name(um, MBSR_PROFILE_BOXCAR, tag, sizeof tag), "100x100x400um");
  CU_ASSERT_STRING_EQUAL(mbsr_eval_level_name(um, MBSR_PROFILE_GAUSSIAN, tag, sizeof tag), "100x100x400um_gaussian");
  CU_ASSERT_STRING_EQUAL(mbsr_eval_level_name(iso, MBSR_PROFILE_BOXCAR, tag, sizeof tag), "200um");
}

static mbsr_volume *fixture(const char *name) { return fx_volume_file("aniso", name); }

/* Two subjects (copies of the fixture) in DIR/in; prep of `pair` with `extra` options into h5. */
static void run_prep(const char *pair, const char *extra, const char *h5) {
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char hr[4096];
  mbsr_test_fixture("aniso/hr.nii.gz", hr, sizeof hr);
  MT_ASSERT_INT_EQ(mbsr_test_sh("mkdir -p '%s/in' && cp '%s' '%s/in/a.nii.gz' && cp '%s' '%s/in/b.nii.gz' && '%s' prep --quiet --inputs "
                                "'%s/in' --out '%s' --pair %s --patch 7 --patches-per-volume 9 --split 50,50,0 %s",
                                t, hr, t, hr, t, bin, t, h5, pair, extra),
                   0);
}

/* /pairs/<pair>/<split>/center and norm_lo_hi of a prep file (the reader does not expose them). */
static int read_centers(const char *h5, const char *pair, const char *split, int32_t *ctr, int max, double lohi[4]) {
  char p[256];
  hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  snprintf(p, sizeof p, "/pairs/%s/%s/center", pair, split);
  hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t dims[2];
  H5Sget_simple_extent_dims(s, dims, NULL);
  CU_ASSERT_FATAL((int)dims[0] <= max);
  CU_ASSERT(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ctr) >= 0);
  H5Sclose(s), H5Dclose(d);
  snprintf(p, sizeof p, "/pairs/%s/norm_lo_hi", pair);
  d = H5Dopen2(f, p, H5P_DEFAULT);
  CU_ASSERT(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lohi) >= 0);
  H5Dclose(d), H5Fclose(f);
  return (int)dims[0];
}

/* Every patch of both splits = the crop of the reference input (gen_aniso.py), mapped by the subject's
 * lo, hi, at the patch centre; lo, hi = the contract percentiles of the reference; targets = the HR. */
static void check_patches_vs_numpy(const char *h5, const char *pair, const char *profile) {
  char nm[64];
  snprintf(nm, sizeof nm, "up_%s.nii.gz", profile);
  mbsr_volume *ref = fixture(nm), *hr = fixture("hr.nii.gz");
  double lo, hi;
  MT_ASSERT_OK(mbsr_norm_fit(ref, 0.1, 99.9, &lo, &hi));
  double worst = 0, worst_t = 0;
  int total = 0;
  for (int sp = 0; sp < 2; sp++) {
    const char *split = sp ? "val" : "train";
    int32_t ctr[3 * 64];
    double lh[4];
    const int n = read_centers(h5, pair, split, ctr, 64, lh);
    mbsr_patchset *ps = NULL;
    MT_ASSERT_OK(mbsr_patchset_open(h5, pair, split, &ps));
    MT_ASSERT_INT_EQ(mbsr_patchset_count(ps), n);
    const int32_t *subj = mbsr_patchset_subject_of(ps);
    for (int64_t k = 0; k < n; k++) {
      float pin[343], ptg[343];
      MT_ASSERT_OK(mbsr_patchset_read(ps, &k, 1, pin, ptg));
      const double flo = lh[2 * subj[k]], fhi = lh[2 * subj[k] + 1];
      MT_ASSERT_REL(flo, lo, 1e-5, 1e-3);
      MT_ASSERT_REL(fhi, hi, 1e-5, 1e-3);
      for (int q = 0; q < 343; q++) {
        const int64_t x = ctr[3 * k] - 3 + q % 7, y = ctr[3 * k + 1] - 3 + (q / 7) % 7, z = ctr[3 * k + 2] - 3 + q / 49;
        const int64_t o = x + ref->nx * (y + ref->ny * z);
        float e, t;
        mbsr_norm_map(ref->data + o, &e, 1, flo, fhi);
        mbsr_norm_map(hr->data + o, &t, 1, flo, fhi);
        worst = fmax(worst, fabs(pin[q] - e)), worst_t = fmax(worst_t, fabs(ptg[q] - t));
      }
      total++;
    }
    mbsr_patchset_close(ps);
  }
  printf("\n  %s %s: %d patches of 7^3: max |input - numpy| %.2e, max |target - HR| %.2e (contract units [0,1]; lo %.4g hi %.4g)", pair,
         profile, total, worst, worst_t, lo, hi);
  CU_ASSERT(total == 18);
  CU_ASSERT(worst < 2e-6); /* float32 storage of the reference: ~1e-7 relative of values ~300, over hi - lo */
  CU_ASSERT(worst_t == 0);
  mbsr_volume_free(ref), mbsr_volume_free(hr);
}

static void check_pair_group(const char *h5, const char *pair, const char *profile, int has_extra) {
  hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
  char g[128];
  snprintf(g, sizeof g, "/pairs/%s", pair);
  hid_t grp = H5Gopen2(f, g, H5P_DEFAULT);
  CU_ASSERT_FATAL(grp >= 0);
  MT_ASSERT_INT_EQ(H5Aexists(grp, "lr_um3") > 0, has_extra);
  MT_ASSERT_INT_EQ(H5Aexists(grp, "profile") > 0, has_extra);
  if (has_extra) {
    int v[3] = {0, 0, 0};
    hid_t a = H5Aopen(grp, "lr_um3", H5P_DEFAULT);
    CU_ASSERT(H5Aread(a, H5T_NATIVE_INT, v) >= 0);
    H5Aclose(a);
    CU_ASSERT(v[0] == 100 && v[1] == 100 && v[2] == 400);
    long long lr = 0, fac = 0;
    a = H5Aopen(grp, "lr_um", H5P_DEFAULT), H5Aread(a, H5T_NATIVE_LLONG, &lr), H5Aclose(a);
    a = H5Aopen(grp, "factor", H5P_DEFAULT), H5Aread(a, H5T_NATIVE_LLONG, &fac), H5Aclose(a);
    CU_ASSERT(lr == 400 && fac == 4); /* older readers: the largest */
  }
  H5Gclose(grp), H5Fclose(f);
  mbsr_patchset *ps = NULL;
  MT_ASSERT_OK(mbsr_patchset_open(h5, pair, "train", &ps));
  mbsr_sr_contract k;
  MT_ASSERT_OK(mbsr_patchset_contract(ps, &k));
  CU_ASSERT_STRING_EQUAL(mbsr_profile_name(k.profile), profile);
  mbsr_patchset_close(ps);
}

static void test_prep_vs_numpy(void) {
  const char *t = mbsr_test_tmpdir();
  char h5[4200];
  snprintf(h5, sizeof h5, "%s/box.h5", t);
  run_prep("100x100x400-100", "", h5);
  check_patches_vs_numpy(h5, "100x100x400-100", "boxcar");
  check_pair_group(h5, "100x100x400-100", "boxcar", 1);
  mbsr_patchset *ps = NULL;
  MT_ASSERT_OK(mbsr_patchset_open(h5, "100x100x400-100", "train", &ps));
  mbsr_sr_contract k;
  MT_ASSERT_OK(mbsr_patchset_contract(ps, &k));
  const double lv[3] = {0.1, 0.1, 0.4};
  for (int a = 0; a < 3; a++) {
    MT_ASSERT_NEAR(k.lr_vox_mm[a], lv[a], 1e-12);
    MT_ASSERT_NEAR(k.hr_vox_mm[a], 0.1, 1e-12);
  }
  mbsr_patchset_close(ps);
  snprintf(h5, sizeof h5, "%s/gauss.h5", t);
  run_prep("100x100x400-100", "--profile gaussian", h5);
  check_patches_vs_numpy(h5, "100x100x400-100", "gaussian");
  check_pair_group(h5, "100x100x400-100", "gaussian", 1);
  /* refusals: a non-integer factor, the same pair twice */
  const char *bin = mbsr_test_bin();
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' prep --quiet --inputs '%s/in' --out '%s/x.h5' --pair 100x100x250-100 2>&1 | grep -q "
                                "'LR voxel 250 um along axis k is not a positive integer multiple'", bin, t, t),
                   0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' prep --quiet --inputs '%s/in' --out '%s/x.h5' --pair 100x100x400-100,100x100x400-100 2>&1 | "
                                "grep -q 'pair 100x100x400-100 given twice'", bin, t, t),
                   0);
  printf("\n");
}

/* A base finer than the HR (100 um input, pair 200x200x800-200): the Gaussian LR is the HR level degraded
 * along k only, so its i and j stay exactly the HR's block average (the eval volumes show both). */
static void test_gaussian_from_hr(void) {
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char hrp[4096];
  mbsr_test_fixture("aniso/hr.nii.gz", hrp, sizeof hrp);
  MT_ASSERT_INT_EQ(mbsr_test_sh("mkdir -p '%s/in2' && cp '%s' '%s/in2/a.nii.gz' && cp '%s' '%s/in2/b.nii.gz' && '%s' prep --quiet --inputs "
                                "'%s/in2' --out '%s/g2.h5' --pair 200x200x800-200 --base 100 --profile gaussian --patch 5 "
                                "--patches-per-volume 3 --split 50,0,50 --eval-dir '%s/ev2'",
                                t, hrp, t, hrp, t, bin, t, t, t),
                   0);
  char p[4400];
  int found = 0;
  for (int s = 0; s < 2; s++) {
    snprintf(p, sizeof p, "%s/ev2/%s_200um.nii.gz", t, s ? "b" : "a");
    if (!mbsr_file_exists(p)) continue;
    found++;
    mbsr_volume *hr = NULL, *lr = NULL, *want = NULL, *base = NULL, *blk = NULL;
    MT_ASSERT_OK(mbsr_volume_read(p, NULL, &hr));
    snprintf(p, sizeof p, "%s/ev2/%s_200x200x800um_gaussian.nii.gz", t, s ? "b" : "a");
    MT_ASSERT_OK(mbsr_volume_read(p, NULL, &lr));
    const int f[3] = {1, 1, 4}, f2[3] = {2, 2, 2};
    MT_ASSERT_OK(mbsr_downsample(hr, f, MBSR_PROFILE_GAUSSIAN, &want));
    MT_ASSERT_INT_EQ(lr->nz, want->nz);
    CU_ASSERT(fx_max_abs_diff(lr->data, want->data, mbsr_volume_nvox(want)) == 0);
    MT_ASSERT_OK(mbsr_volume_read(hrp, NULL, &base));
    MT_ASSERT_OK(mbsr_downsample_block(base, f2, &blk)); /* the HR level itself: the 100 um input block-averaged */
    CU_ASSERT(fx_max_abs_diff(hr->data, blk->data, mbsr_volume_nvox(blk)) == 0);
    mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(want), mbsr_volume_free(base), mbsr_volume_free(blk);
  }
  MT_ASSERT_INT_EQ(found, 1);
}

/* CRC-32 of every patch row of pair 200-100 (train then val) for this input and options, as written by
 * mbsr at commit eeee4c3 (before per-axis pairs): isotropic pairs are unchanged bit for bit. */
static const uint32_t ISO_CRC[] = {
#include "../fixtures/aniso/iso_crc32.inc"
};

static void test_isotropic_unchanged(void) {
  char h5[4200];
  snprintf(h5, sizeof h5, "%s/iso.h5", mbsr_test_tmpdir());
  run_prep("200-100", "", h5);
  check_pair_group(h5, "200-100", "boxcar", 0);
  hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
  int n = 0;
  for (int sp = 0; sp < 2; sp++) {
    char p[128];
    snprintf(p, sizeof p, "/pairs/200-100/%s/crc32", sp ? "val" : "train");
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    uint32_t c[64];
    hid_t s = H5Dget_space(d);
    hsize_t m;
    H5Sget_simple_extent_dims(s, &m, NULL);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, c) >= 0);
    for (hsize_t i = 0; i < m && n < (int)(sizeof ISO_CRC / sizeof *ISO_CRC); i++, n++) CU_ASSERT(c[i] == ISO_CRC[n]);
    H5Sclose(s), H5Dclose(d);
  }
  H5Fclose(f);
  MT_ASSERT_INT_EQ(n, (int)(sizeof ISO_CRC / sizeof *ISO_CRC));
}

/* Train a tiny ResNet on the anisotropic pair; apply it to LR volumes. */
static void test_train_apply(void) {
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char h5[4200];
  snprintf(h5, sizeof h5, "%s/box.h5", t);
  if (!mbsr_file_exists(h5)) run_prep("100x100x400-100", "", h5);
  char gh5[4200];
  snprintf(gh5, sizeof gh5, "%s/gauss.h5", t);
  if (!mbsr_file_exists(gh5)) run_prep("100x100x400-100", "--profile gaussian", gh5);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' train --quiet --patches '%s' --pair 100x100x400-100 --out '%s/run' --channels 4 --blocks 1 "
                                "--global-residual --epochs 1 --batch 3 --threads 2",
                                bin, h5, t),
                   0);
  /* augment would permute the thick axis: refused */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' train --quiet --patches '%s' --pair 100x100x400-100 --out '%s/run-aug' --channels 4 --blocks 1 "
                                "--epochs 1 --augment 2>&1 | grep -q 'per-axis LR voxels: augment'",
                                bin, h5, t),
                   0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' train --quiet --patches '%s' --pair 100x100x400-100 --out '%s/run-g' --channels 4 --blocks 1 "
                                "--epochs 1 --batch 3 --threads 2",
                                bin, gh5, t),
                   0);
  char ck[4400];
  snprintf(ck, sizeof ck, "%s/run/best.h5", t);
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(ck, 1, 7, 7, 7, &m, NULL));
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  const double lv[3] = {0.1, 0.1, 0.4};
  for (int a = 0; a < 3; a++) MT_ASSERT_NEAR(k->lr_vox_mm[a], lv[a], 1e-12);
  CU_ASSERT(k->profile == MBSR_PROFILE_BOXCAR);
  mbsr_model_free(m);
  snprintf(ck, sizeof ck, "%s/run-g/best.h5", t);
  MT_ASSERT_OK(mbsr_checkpoint_load(ck, 1, 7, 7, 7, &m, NULL));
  CU_ASSERT(mbsr_model_get_contract(m)->profile == MBSR_PROFILE_GAUSSIAN); /* the profile travels with the model */
  mbsr_model_free(m);
  snprintf(ck, sizeof ck, "%s/run/best.h5", t);
  /* LR inputs: the fixture degraded along k (right), and along i (the thick axis elsewhere) */
  mbsr_volume *hr = fixture("hr.nii.gz"), *lrk = NULL, *lri = NULL;
  const int fk[3] = {1, 1, 4}, fi[3] = {4, 1, 1};
  MT_ASSERT_OK(mbsr_downsample(hr, fk, MBSR_PROFILE_BOXCAR, &lrk));
  MT_ASSERT_OK(mbsr_downsample(hr, fi, MBSR_PROFILE_BOXCAR, &lri));
  char pk[4200], pi[4200], out[4200], out2[4200];
  snprintf(pk, sizeof pk, "%s/lr_k.nii.gz", t), snprintf(pi, sizeof pi, "%s/lr_i.nii.gz", t);
  snprintf(out, sizeof out, "%s/sr_k.nii.gz", t), snprintf(out2, sizeof out2, "%s/sr_i.nii.gz", t);
  MT_ASSERT_OK(mbsr_volume_write(pk, lrk));
  MT_ASSERT_OK(mbsr_volume_write(pi, lri));
  /* the wrong axis: refused, naming axis i, nothing written; --force runs it */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --quiet --model '%s' '%s' '%s' 2>&1 | grep -q 'voxel size 0.4 mm along array axis i "
                                "(0.4 x 0.1 x 0.1 mm), but model .* expects its LR grid of 0.1 x 0.1 x 0.4 mm'",
                                bin, ck, pi, out2),
                   0);
  CU_ASSERT(!mbsr_file_exists(out2));
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --quiet --force --model '%s' '%s' '%s'", bin, ck, pi, out2), 0);
  /* the right one: the model's own factor 1,1,4, along k only */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --quiet --model '%s' '%s' '%s'", bin, ck, pk, out), 0);
  char js[4400];
  snprintf(js, sizeof js, "%s/sr_k.json", t);
  MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 -c \"import json; m=json.load(open('%s'))['Model']; "
                                "assert m['TrainedLRVoxelSizeMm'] == [0.1, 0.1, 0.4], m; assert m['TrainedSliceProfile'] == 'boxcar'\"",
                                js),
                   0);
  mbsr_volume *sr = NULL;
  MT_ASSERT_OK(mbsr_volume_read(out, NULL, &sr));
  MT_ASSERT_INT_EQ(sr->nx, lrk->nx);
  MT_ASSERT_INT_EQ(sr->ny, lrk->ny);
  MT_ASSERT_INT_EQ(sr->nz, 4 * lrk->nz);
  for (int a = 0; a < 3; a++) MT_ASSERT_NEAR(sr->vox[a], 0.1, 1e-6);
  /* the affine by nibabel: every SR voxel centre inside its LR slab, centred as the block average assumes
   * (A_sr = A_lr . [diag(1,1,1/4) | (0,0,-3/8)]); on the fixture's HR grid wherever the crop leaves it */
  MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 -c \"import nibabel as nib, numpy as np; from nibabel.affines import from_matvec; "
                                "s=nib.load('%s'); l=nib.load('%s'); h=nib.load('%s'); "
                                "exp=l.affine @ from_matvec(np.diag([1,1,0.25]), [0,0,-0.375]); "
                                "assert np.allclose(s.affine, exp, atol=1e-6), (s.affine, exp); "
                                "assert np.allclose(s.affine, h.affine, atol=1e-6); "
                                "assert np.allclose(s.header.get_zooms(), (0.1,0.1,0.1), atol=1e-6)\"",
                                out, pk, mbsr_test_fixture("aniso/hr.nii.gz", pi, sizeof pi)),
                   0);
  mbsr_volume_free(sr), mbsr_volume_free(hr), mbsr_volume_free(lrk), mbsr_volume_free(lri);
  printf("\n");
}

int main(void) {
  const mbsr_test_case tc[] = {{"pair_names", test_pair_names},
                               {"prep_vs_numpy", test_prep_vs_numpy},
                               {"gaussian_from_hr", test_gaussian_from_hr},
                               {"isotropic_unchanged", test_isotropic_unchanged},
                               {"train_apply", test_train_apply},
                               {NULL, NULL}};
  return mbsr_test_main("aniso", tc);
}
