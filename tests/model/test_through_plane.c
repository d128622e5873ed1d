/* Self-supervised through-plane apply (mbsr_apply_through_plane, `mbsr apply` with a through-plane
 * model; issue 13, item 2): a network that returns its input gives exactly the Keys-upsampled volume
 * (and the numpy/imresize one of tests/fixtures/gen_selfsup.py), on the grid nibabel computes; every
 * member (slice axis moved to axis 0 in both in-plane orders, x flips) equals a separate naive
 * transform-apply-untransform run (mean and population sd); one CLI command on a checkpoint whose
 * contract says through-plane writes the same volume and the ThroughPlane sidecar object. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../image/image_fixture.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"

static mbsr_volume *fixture(const char *name, char *path, size_t n) {
  char rel[256];
  snprintf(rel, sizeof rel, "selfsup/%s", name);
  mbsr_test_fixture(rel, path, n);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(path, NULL, &v));
  return v;
}

/* A global-residual ResNet; zero = 1: every parameter 0, so it returns its input exactly. */
static mbsr_model *tiny(uint64_t seed, int zero, const mbsr_volume *acq, int s, int F) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 4, c.blocks = 1, c.global_residual = 1;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, 1, 9, 9, 9, &m));
  mbsr_model_init(m, seed);
  if (zero) memset(mbsr_model_params(m), 0, sizeof(float) * mbsr_model_num_params(m));
  mbsr_sr_contract k;
  mbsr_sr_contract_default(&k);
  for (int a = 0; a < 3; a++) k.lr_vox_mm[a] = acq->vox[a], k.hr_vox_mm[a] = a == s ? acq->vox[a] / F : acq->vox[a];
  k.patch = 9, k.through_plane = 1;
  mbsr_model_set_contract(m, &k);
  return m;
}

static double up_affine_diff(const double a[4][4], const char *tag) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s_up_affine", tag);
  return fx_affine_diff(a, "selfsup/values.txt", prefix);
}

static int64_t bit_diffs(const mbsr_volume *a, const mbsr_volume *b) {
  int64_t d = 0;
  for (int64_t q = 0; q < mbsr_volume_nvox(a); q++) d += memcmp(&a->data[q], &b->data[q], sizeof(float)) != 0;
  return d;
}

static void test_identity_is_keys(void) {
  const struct {
    const char *tag;
    int s, F;
  } cs[] = {{"s2", 2, 3}, {"s0", 0, 4}};
  for (int c = 0; c < 2; c++) {
    char p[4096], nm[64];
    snprintf(nm, sizeof nm, "%s_acq.nii.gz", cs[c].tag);
    mbsr_volume *acq = fixture(nm, p, sizeof p), *keys = NULL, *mean = NULL, *sd = NULL;
    snprintf(nm, sizeof nm, "%s_keys.nii.gz", cs[c].tag);
    mbsr_volume *ref = fixture(nm, p, sizeof p);
    mbsr_model *m = tiny(1, 1, acq, cs[c].s, cs[c].F);
    int f[3] = {1, 1, 1};
    f[cs[c].s] = cs[c].F;
    MT_ASSERT_OK(mbsr_upsample_factor(acq, f, MBSR_INTERP_KEYS, &keys));
    for (int flips = 1; flips <= 4; flips *= 4) {
      mbsr_apply_opts o;
      mbsr_apply_opts_default(&o);
      o.progress = 0, o.patch = 11, o.flips = flips;
      MT_ASSERT_OK(mbsr_apply_through_plane(&m, 1, acq, f, &o, &mean, &sd));
      CU_ASSERT(mbsr_volume_same_grid(mean, keys, 0));
      float smx, smn;
      mbsr_volume_minmax(sd, &smn, &smx);
      const double dn = fx_max_abs_diff(mean->data, ref->data, mbsr_volume_nvox(ref)), ad = up_affine_diff(mean->affine, cs[c].tag);
      const int64_t bd = bit_diffs(mean, keys);
      printf("\n  %s, %d members, identity network: %lld voxels differ from Keys (bitwise), max |diff| vs numpy %.2e, sd max %g, "
             "affine vs nibabel %.1e",
             cs[c].tag, 2 * flips, (long long)bd, dn, smx, ad);
      MT_ASSERT_INT_EQ(bd, 0);
      CU_ASSERT(smx == 0.0f);
      CU_ASSERT(dn < 1e-3);
      CU_ASSERT(ad < 1e-6);
      mbsr_volume_free(mean), mbsr_volume_free(sd);
    }
    mbsr_volume_free(acq), mbsr_volume_free(keys), mbsr_volume_free(ref);
    mbsr_model_free(m);
  }
  printf("\n");
}

/* Naive transform by index: new axis d = old axis perm[d], reversed where bit d of fl is set; inverse
 * = 1 maps a transformed volume back onto old's grid. */
static mbsr_volume *naive(const mbsr_volume *v, const mbsr_volume *old, const int perm[3], int fl, int inverse) {
  const int64_t on[3] = {old->nx, old->ny, old->nz}, nn[3] = {on[perm[0]], on[perm[1]], on[perm[2]]};
  mbsr_volume *o = inverse ? mbsr_volume_new_like(old) : mbsr_volume_new(nn[0], nn[1], nn[2], old->vox, NULL);
  for (int64_t k = 0; k < on[2]; k++)
    for (int64_t j = 0; j < on[1]; j++)
      for (int64_t i = 0; i < on[0]; i++) {
        const int64_t oi[3] = {i, j, k};
        int64_t ni[3];
        for (int d = 0; d < 3; d++) ni[d] = (fl >> d) & 1 ? nn[d] - 1 - oi[perm[d]] : oi[perm[d]];
        const int64_t qo = i + on[0] * (j + on[1] * k), qn = ni[0] + nn[0] * (ni[1] + nn[1] * ni[2]);
        if (inverse) o->data[qo] = v->data[qn];
        else o->data[qn] = v->data[qo];
      }
  return o;
}

static void test_members_vs_separate_runs(void) {
  char p[4096];
  mbsr_volume *acq = fixture("s2_acq.nii.gz", p, sizeof p), *up = NULL, *mean = NULL, *sd = NULL;
  const int f[3] = {1, 1, 3};
  mbsr_model *m[2] = {tiny(5, 0, acq, 2, 3), tiny(77, 0, acq, 2, 3)};
  MT_ASSERT_OK(mbsr_upsample_factor(acq, f, MBSR_INTERP_KEYS, &up));
  const int64_t n = mbsr_volume_nvox(up);
  for (int nm = 1; nm <= 2; nm++)
    for (int flips = 1; flips <= 8; flips *= 8) {
      mbsr_apply_opts o;
      mbsr_apply_opts_default(&o);
      o.progress = 0, o.patch = 11, o.flips = flips;
      const int N = nm * 2 * flips;
      mbsr_volume **mem = calloc((size_t)N, sizeof *mem);
      for (int a = 0; a < nm; a++)
        for (int t = 0; t < 2 * flips; t++) {
          int perm[3], fl;
          mbsr_through_plane_member(2, t, perm, &fl);
          CU_ASSERT(perm[0] == 2 && perm[1] == (t & 1 ? 1 : 0) && perm[2] == (t & 1 ? 0 : 1) && fl == t / 2);
          mbsr_volume *x = naive(up, up, perm, fl, 0), *y = NULL;
          MT_ASSERT_OK(mbsr_apply_upsampled(m[a], x, &o, &y));
          mem[a * 2 * flips + t] = naive(y, up, perm, fl, 1);
          mbsr_volume_free(x), mbsr_volume_free(y);
        }
      MT_ASSERT_OK(mbsr_apply_through_plane(m, nm, acq, f, &o, &mean, &sd));
      double dm = 0, ds = 0, smax = 0;
      for (int64_t q = 0; q < n; q++) {
        double s = 0, ss = 0;
        for (int t = 0; t < N; t++) s += mem[t]->data[q];
        const double mu = s / N;
        for (int t = 0; t < N; t++) ss += (mem[t]->data[q] - mu) * (mem[t]->data[q] - mu);
        dm = fmax(dm, fabs(mean->data[q] - mu)), ds = fmax(ds, fabs(sd->data[q] - sqrt(ss / N)));
        smax = fmax(smax, sd->data[q]);
      }
      printf("\n  %d model(s) x %d members vs separate permute-apply-unpermute runs: max |mean diff| %.2e, |sd diff| %.2e, sd max %.3g",
             nm, 2 * flips, dm, ds, smax);
      CU_ASSERT(dm <= 1e-5);
      CU_ASSERT(ds <= 1e-5);
      CU_ASSERT(smax > 0);
      for (int t = 0; t < N; t++) mbsr_volume_free(mem[t]);
      free(mem);
      mbsr_volume_free(mean), mbsr_volume_free(sd);
    }
  printf("\n");
  /* refusals: not a through-plane model; a factor on two axes */
  mbsr_sr_contract k = *mbsr_model_get_contract(m[0]);
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.progress = 0;
  MT_ASSERT_INT_EQ(mbsr_apply_through_plane(m, 1, acq, (const int[3]){1, 3, 3}, &o, &mean, &sd), MBSR_EINVAL);
  k.through_plane = 0;
  mbsr_model_set_contract(m[0], &k);
  MT_ASSERT_INT_EQ(mbsr_apply_through_plane(m, 1, acq, f, &o, &mean, &sd), MBSR_EINVAL);
  mbsr_volume_free(acq), mbsr_volume_free(up);
  mbsr_model_free(m[0]), mbsr_model_free(m[1]);
}

/* One command: `mbsr apply --model CKPT IN OUT` on a through-plane checkpoint. */
static void test_cli_one_command(void) {
  char p[4096], ck[4200], out[4200], js[4300];
  mbsr_volume *acq = fixture("s2_acq.nii.gz", p, sizeof p), *keys = NULL, *sr = NULL;
  mbsr_model *m = tiny(1, 1, acq, 2, 3);
  snprintf(ck, sizeof ck, "%s/tp.h5", mbsr_test_tmpdir());
  snprintf(out, sizeof out, "%s/tp_sr.nii.gz", mbsr_test_tmpdir());
  snprintf(js, sizeof js, "%s/tp_sr.json", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, NULL));
  mbsr_model *back = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(ck, 1, 9, 9, 9, &back, NULL));
  CU_ASSERT(mbsr_model_get_contract(back)->through_plane == 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --quiet --model '%s' '%s' '%s'", mbsr_test_bin(), ck, p, out), 0);
  MT_ASSERT_OK(mbsr_volume_read(out, NULL, &sr));
  MT_ASSERT_OK(mbsr_upsample_factor(acq, (const int[3]){1, 1, 3}, MBSR_INTERP_KEYS, &keys));
  CU_ASSERT_FATAL(sr->nx == keys->nx && sr->ny == keys->ny && sr->nz == keys->nz); /* the affine: vs nibabel below */
  const int64_t bd = bit_diffs(sr, keys);
  const double ad = up_affine_diff(sr->affine, "s2");
  char *txt = mbsr_test_slurp(js);
  printf("\n  mbsr apply (one command): %lldx%lldx%lld, %lld voxels differ from Keys, affine vs nibabel %.1e\n", (long long)sr->nx,
         (long long)sr->ny, (long long)sr->nz, (long long)bd, ad);
  MT_ASSERT_INT_EQ(bd, 0);
  CU_ASSERT(ad < 1e-5); /* as written: float32 sform */
  CU_ASSERT(txt && strstr(txt, "\"ThroughPlane\"") && strstr(txt, "\"SliceAxis\": 2"));
  free(txt);
  /* --like does not go with a through-plane model */
  CU_ASSERT(mbsr_test_sh("'%s' apply --quiet --model '%s' --like '%s' '%s' '%s' 2>/dev/null", mbsr_test_bin(), ck, p, p, out) != 0);
  mbsr_volume_free(acq), mbsr_volume_free(keys), mbsr_volume_free(sr);
  mbsr_model_free(m), mbsr_model_free(back);
}

/* pipelines/thickslice.sh, the one-command pipeline, end to end on a small synthetic thick-slice volume
 * (20 training steps: this checks the plumbing, not the quality): OUT and OUT_sd on IN's grid with the
 * slice axis x4, the sidecar naming the ensemble; a second run resumes (reuses the patches and the
 * network); a missing input is one line and a non-zero exit. */
static void test_pipeline_script(void) {
  const char *src = getenv("MBSR_SOURCE_DIR"), *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  if (!src) {
    mbsr_test_skip("MBSR_SOURCE_DIR is not set");
    return;
  }
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' phantom --out '%s/tsph' --n 1 --vox 0.1 --dims 36,40,32 --seed 3 --quiet", bin, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' downsample \"$(ls '%s'/tsph/*_af100um.nii.gz | head -n 1)\" '%s/thick.nii.gz' --factor 1,1,4 --quiet",
                                bin, t, t),
                   0);
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "bash '%s/pipelines/thickslice.sh' '%s/thick.nii.gz' '%s/sr.nii.gz' --steps 20 --ensemble 2 --threads 2 --mbsr '%s' "
           "> '%s/ts.log' 2>&1",
           src, t, t, bin, t);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s", cmd), 0);
  char p[4200];
  snprintf(p, sizeof p, "%s/sr.nii.gz", t);
  mbsr_volume *sr = NULL, *sd = NULL, *in = NULL;
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &sr));
  snprintf(p, sizeof p, "%s/sr_sd.nii.gz", t);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &sd));
  snprintf(p, sizeof p, "%s/thick.nii.gz", t);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &in));
  MT_ASSERT_INT_EQ(sr->nx, in->nx);
  MT_ASSERT_INT_EQ(sr->ny, in->ny);
  MT_ASSERT_INT_EQ(sr->nz, 4 * in->nz);
  CU_ASSERT(mbsr_volume_same_grid(sr, sd, 1e-9));
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q '\"Ensemble\"' '%s/sr.json'", t), 0);
  /* resumed: the second run reuses the patches and the finished network */
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s", cmd), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'train:' '%s/ts.log' && ! grep -q '] prep:' '%s/ts.log'", t, t), 0);
  CU_ASSERT(mbsr_test_sh("bash '%s/pipelines/thickslice.sh' '%s/none.nii.gz' '%s/x.nii.gz' --mbsr '%s' 2>&1 | grep -q 'none.nii.gz: no such file'",
                         src, t, t, bin) == 0);
  mbsr_volume_free(sr);
  mbsr_volume_free(sd);
  mbsr_volume_free(in);
}

int main(void) {
  const mbsr_test_case tc[] = {{"identity_is_keys", test_identity_is_keys},
                               {"members_vs_separate_runs", test_members_vs_separate_runs},
                               {"cli_one_command", test_cli_one_command},
                               {"pipeline_thickslice_sh", test_pipeline_script},
                               {NULL, NULL}};
  return mbsr_test_main("through_plane", tc);
}
