/* Whole-volume inference: blended patches equal a single whole-volume pass (no seams), the output
 * grid and affine, NaN refusal, and the `mbsr apply` CLI end to end (real Allen template
 * down-sampled to 200 um -> 100 um grid; failures leave existing outputs untouched). */
#include <math.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"
#include "mbsr_test.h"

/* A smooth test volume with structure at several scales (values 10..110). */
static mbsr_volume *test_volume(int nx, int ny, int nz) {
  double vox[3] = {0.1, 0.1, 0.1};
  mbsr_volume *v = mbsr_volume_new(nx, ny, nz, vox, NULL);
  for (int k = 0; k < nz; k++)
    for (int j = 0; j < ny; j++)
      for (int i = 0; i < nx; i++)
        v->data[i + (size_t)nx * (j + (size_t)ny * k)] =
            (float)(60 + 30 * sin(0.31 * i + 0.2 * j) * cos(0.27 * k) + 20 * sin(0.9 * i * 0.5 + 1.3 * k * 0.5 + 0.7 * j));
  return v;
}

static mbsr_model *make(const mbsr_model_config *c, int B, int d, int h, int w, const mbsr_model *params_from) {
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(c, B, d, h, w, &m));
  if (params_from)
    memcpy(mbsr_model_params(m), mbsr_model_params((mbsr_model *)params_from),
           sizeof(float) * mbsr_model_num_params(m));
  else
    mbsr_model_init(m, 11);
  return m;
}

/* Reference: the SR contract evaluated directly: one forward pass of the whole volume at the
 * training scale, mapped back (sr = x + (hi - lo) * (net - clip((x - lo) / (hi - lo)))). */
static mbsr_volume *contract_reference(const mbsr_model *src, const mbsr_volume *x) {
  const mbsr_sr_contract *k = mbsr_model_get_contract(src);
  double lo, hi;
  MT_ASSERT_OK(mbsr_norm_fit(x, k->norm_plo, k->norm_phi, &lo, &hi));
  mbsr_model *whole = make(mbsr_model_get_config(src), 1, (int)x->nz, (int)x->ny, (int)x->nx, src);
  mbsr_volume *n = mbsr_volume_clone(x), *out = mbsr_volume_new_like(x);
  mbsr_norm_map(x->data, n->data, mbsr_volume_nvox(x), lo, hi);
  MT_ASSERT_OK(mbsr_model_forward(whole, n->data, 1, out->data));
  for (int64_t i = 0; i < mbsr_volume_nvox(x); i++)
    out->data[i] = (float)((double)x->data[i] + (hi - lo) * ((double)out->data[i] - (double)n->data[i]));
  mbsr_volume_free(n);
  mbsr_model_free(whole);
  return out;
}

/* Tiles far smaller than the volume, for networks whose receptive radius R exceeds the old default
 * overlap of 7 (patch/3 of 21): the tiled output equals one whole-volume pass, with no error that
 * repeats with the tile stride. */
static void seams(mbsr_arch arch, int blocks) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, arch);
  c.ccnn_c1 = 8;
  c.ccnn_c2 = 4;
  c.channels = 6;
  c.blocks = blocks;
  c.global_residual = 1;
  const int nx = 61, ny = 47, nz = 39;
  mbsr_volume *v = test_volume(nx, ny, nz);
  mbsr_model *m = make(&c, 1, 9, 9, 9, NULL);
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.progress = 0;
  o.patch = 2 * (arch == MBSR_ARCH_CCNN ? 3 : 2 + 2 * blocks) + 9; /* stride 9 */
  mbsr_apply_plan pl;
  const int64_t n3[3] = {nx, ny, nz};
  MT_ASSERT_OK(mbsr_apply_plan_for(m, n3, &o, &pl));
  const int R = pl.margin, stride = pl.tile[0] - pl.overlap;
  MT_ASSERT_INT_EQ(pl.overlap, 2 * R);
  CU_ASSERT(pl.count[0] >= 4 && pl.count[1] >= 3 && pl.count[2] >= 3);
  mbsr_volume *sr = NULL, *ref = contract_reference(m, v);
  MT_ASSERT_OK(mbsr_apply_upsampled(m, v, &o, &sr));
  CU_ASSERT(mbsr_volume_same_grid(sr, v, 1e-9));
  float mn, mx;
  mbsr_volume_minmax(ref, &mn, &mx);
  const double range = mx - mn;
  double maxd = 0, phase[64] = {0};
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++) {
        const int64_t q = i + nx * (j + ny * k);
        double d = fabs(sr->data[q] - ref->data[q]) / range;
        maxd = fmax(maxd, d);
        phase[i % stride] = fmax(phase[i % stride], d); /* error by position within the stride */
      }
  double pmax = 0;
  for (int t = 0; t < stride; t++) pmax = fmax(pmax, phase[t]);
  printf("\n  %s, receptive radius %d: %dx%dx%d tiles of %dx%dx%d (overlap %d) vs one whole-volume pass: max |diff| %.2e of the range; "
         "worst position within the stride %.2e\n",
         mbsr_arch_name(arch), R, pl.count[0], pl.count[1], pl.count[2], pl.tile[0], pl.tile[1], pl.tile[2], pl.overlap, maxd, pmax);
  CU_ASSERT(R > 7 || arch == MBSR_ARCH_CCNN);
  CU_ASSERT(maxd < 1e-5);
  CU_ASSERT(pmax < 1e-5);
  mbsr_volume_free(ref);
  mbsr_volume_free(sr);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}
static void test_seams_ccnn(void) { seams(MBSR_ARCH_CCNN, 0); }
static void test_seams_resnet(void) { seams(MBSR_ARCH_RESNET, 4); } /* 10 convs: R = 10 > 7 */

/* The tile plan of the paper ResNet (receptive radius 22) on the whole 50 um grid of the Allen template
 * (264x160x228) under budgets from 400 MiB to 16 GiB: each plan fits its budget, covers every axis with
 * tiles that overlap by 2R, and a larger budget never computes more voxels (the old cube-edge search
 * recomputed 4.5x at 4 GiB against 3.5x at 2 GiB). */
static void test_plan_budget(void) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.global_residual = 1;
  mbsr_model *m = make(&c, 1, 21, 21, 21, NULL);
  const int64_t n[3] = {264, 160, 228};
  const double mbs[] = {400, 900, 2048, 4096, 8192, 16384};
  double prev = INFINITY;
  for (int i = 0; i < 6; i++) {
    mbsr_apply_opts o;
    mbsr_apply_opts_default(&o);
    o.max_mb = mbs[i];
    mbsr_apply_plan p;
    MT_ASSERT_OK(mbsr_apply_plan_for(m, n, &o, &p));
    MT_ASSERT_INT_EQ(p.margin, 22);
    double computed = 1;
    for (int a = 0; a < 3; a++) {
      CU_ASSERT(p.tile[a] <= n[a]);
      CU_ASSERT(p.tile[a] == n[a] || p.tile[a] >= 2 * p.margin + 1);
      CU_ASSERT((int64_t)(p.count[a] - 1) * (p.tile[a] - p.overlap) + p.tile[a] >= n[a]);
      computed *= (double)p.count[a] * p.tile[a] / (double)n[a];
    }
    printf("\n  --max-mb %5.0f: tiles %3dx%3dx%3d, %dx%dx%d of them, %6.0f MiB, %.2f voxels computed per output voxel", mbs[i],
           p.tile[0], p.tile[1], p.tile[2], p.count[0], p.count[1], p.count[2], p.bytes / 1048576.0, computed);
    CU_ASSERT(p.bytes > 0 && p.bytes <= mbs[i] * 1048576.0);
    CU_ASSERT(computed <= prev + 1e-12);
    prev = computed;
  }
  CU_ASSERT(prev == 1.0); /* 16 GiB: the whole volume in one tile */
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.max_mb = 64; /* below the smallest tile (45^3): a clear error */
  mbsr_apply_plan p;
  CU_ASSERT(mbsr_apply_plan_for(m, n, &o, &p) == MBSR_ENOMEM);
  mbsr_error_clear();
  mbsr_model_free(m);
}

/* The intensity contract on a volume with saturated voxels: percentiles 0.1, 99.9 of the input; the
 * output in the input's units; where the input exceeds hi, the network's correction is added to it. */
static void test_contract_saturated(void) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 4;
  c.blocks = 1;
  c.global_residual = 1;
  mbsr_model *m = make(&c, 1, 9, 9, 9, NULL);
  mbsr_volume *v = test_volume(30, 26, 22);
  for (int i = 0; i < 12; i++) v->data[(size_t)i * 1301] = 30000.0f; /* saturated spots, 300x the tissue */
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.progress = 0;
  mbsr_volume *sr = NULL, *ref = contract_reference(m, v);
  MT_ASSERT_OK(mbsr_apply_upsampled(m, v, &o, &sr));
  double lo, hi, maxd = 0;
  MT_ASSERT_OK(mbsr_norm_fit(v, 0.1, 99.9, &lo, &hi));
  for (int64_t i = 0; i < mbsr_volume_nvox(v); i++) maxd = fmax(maxd, fabs(sr->data[i] - ref->data[i]) / (hi - lo));
  printf("\n  contract: lo %.2f hi %.2f (max %.0f); apply vs the contract's forward pass: max |diff| %.2e of hi - lo; "
         "a saturated voxel %.0f -> %.1f\n", lo, hi, 30000.0, maxd, v->data[0], sr->data[0]);
  CU_ASSERT(hi < 200);        /* the percentile, not the saturated max */
  CU_ASSERT(maxd < 1e-5);
  CU_ASSERT(fabs(sr->data[0] - 30000.0f) < 2 * (hi - lo)); /* kept near its value, not clipped to hi */
  /* a model whose contract is unknown (a checkpoint from before the contract) is refused */
  mbsr_sr_contract k;
  mbsr_sr_contract_default(&k);
  k.known = 0;
  mbsr_model_set_contract(m, &k);
  mbsr_volume_free(sr);
  sr = NULL;
  MT_ASSERT_INT_EQ(mbsr_apply_upsampled(m, v, &o, &sr), MBSR_EUNSUPPORTED);
  mbsr_volume_free(ref);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}

/* A volume smaller than the patch along an axis, and a batch that does not divide the patches. */
static void test_small_volume(void) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_CCNN);
  c.ccnn_c1 = 4;
  c.ccnn_c2 = 2;
  mbsr_model *m = make(&c, 3, 9, 9, 9, NULL);
  mbsr_volume *v = test_volume(20, 5, 11);
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.progress = 0;
  mbsr_volume *sr = NULL;
  MT_ASSERT_OK(mbsr_apply_upsampled(m, v, &o, &sr));
  CU_ASSERT(mbsr_volume_same_grid(sr, v, 1e-9));
  int finite = 1;
  for (int64_t i = 0; i < mbsr_volume_nvox(sr); i++) finite &= isfinite(sr->data[i]);
  CU_ASSERT(finite);
  mbsr_volume_free(sr);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}

static void test_factor_grid_and_nan(void) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_CCNN);
  c.ccnn_c1 = 4;
  c.ccnn_c2 = 2;
  mbsr_model *m = make(&c, 4, 9, 9, 9, NULL);
  mbsr_volume *v = test_volume(10, 8, 7);
  v->affine[0][3] = -3.0;
  v->affine[2][3] = 1.5;
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.progress = 0;
  const int f[3] = {2, 2, 2};
  mbsr_volume *sr = NULL, *up = NULL;
  MT_ASSERT_OK(mbsr_apply_factor(m, v, f, &o, &sr));
  MT_ASSERT_OK(mbsr_upsample_factor(v, f, MBSR_INTERP_KEYS, &up));
  MT_ASSERT_INT_EQ(sr->nx, 20);
  MT_ASSERT_INT_EQ(sr->ny, 16);
  MT_ASSERT_INT_EQ(sr->nz, 14);
  CU_ASSERT(mbsr_volume_same_grid(sr, up, 1e-9));
  MT_ASSERT_NEAR(sr->vox[0], 0.05, 1e-12);
  mbsr_volume_free(sr);
  sr = NULL;
  v->data[37] = NAN;
  MT_ASSERT_INT_EQ(mbsr_apply_factor(m, v, f, &o, &sr), MBSR_ENONFINITE);
  CU_ASSERT(sr == NULL);
  printf("\n  NaN input -> %s\n", mbsr_last_error());
  mbsr_volume_free(up);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}

/* CLI on the real Allen template: 100 um -> block-average 200 um -> apply -> 100 um grid. */
static void test_cli_allen(void) {
  char tpl[4096];
  if (!mbsr_test_data("af/allen_ccf_average_template_100um.nrrd", tpl, sizeof tpl)) return;
  const char *d = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char lr[4200], ck[4200], sr[4200], sr2[4200];
  snprintf(lr, sizeof lr, "%s/lr200.nii.gz", d);
  snprintf(ck, sizeof ck, "%s/tiny.h5", d);
  snprintf(sr, sizeof sr, "%s/sr100.nii.gz", d);
  snprintf(sr2, sizeof sr2, "%s/sr100_factor.nii.gz", d);
  mbsr_volume *hr = NULL, *low = NULL;
  MT_ASSERT_OK(mbsr_volume_read(tpl, NULL, &hr));
  const int f[3] = {2, 2, 2};
  MT_ASSERT_OK(mbsr_downsample_block(hr, f, &low));
  MT_ASSERT_OK(mbsr_volume_write(lr, low));
  /* a tiny initialised checkpoint (the CLI path, not the quality, is under test here) */
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 4;
  c.blocks = 1;
  c.global_residual = 1;
  mbsr_model *m = make(&c, 1, 21, 21, 21, NULL);
  mbsr_sr_contract k;
  mbsr_sr_contract_default(&k);
  for (int a = 0; a < 3; a++) k.lr_vox_mm[a] = 0.2, k.hr_vox_mm[a] = 0.1;
  k.patch = 21;
  mbsr_model_set_contract(m, &k);
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, NULL));
  double t0 = mbsr_now();
  /* positional IN OUT; no grid option: the model's own factor (0.2 -> 0.1 mm) */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s' '%s' '%s'", bin, ck, lr, sr), 0);
  printf("\n  mbsr apply on %lldx%lldx%lld -> 100 um grid: %.2f s\n", (long long)low->nx, (long long)low->ny,
         (long long)low->nz, mbsr_now() - t0);
  mbsr_volume *out = NULL, *out2 = NULL;
  MT_ASSERT_OK(mbsr_volume_read(sr, NULL, &out));
  /* --factor on the smaller 400 um volume (a quarter of the patches per axis): 200 um grid of
   * the block-averaged 200 um volume */
  mbsr_volume *lr400 = NULL, *g200 = NULL;
  char lr4[4200];
  snprintf(lr4, sizeof lr4, "%s/lr400.nii.gz", d);
  MT_ASSERT_OK(mbsr_downsample_block(low, f, &lr400));
  MT_ASSERT_OK(mbsr_volume_write(lr4, lr400));
  /* a 400 um input is not on the model's 200 um LR grid: refused, naming the sizes; --force runs it */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s' --in '%s' --out '%s' --factor 2 --quiet 2>&1 | grep -q 'voxel size 0.4 mm along array axis i (0.4 x 0.4 x 0.4 mm), "
                                "but model .* expects its LR grid of 0.2'", bin, ck, lr4, sr2), 0);
  CU_ASSERT(!mbsr_file_exists(sr2));
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s' --in '%s' --out '%s' --factor 2 --force --quiet", bin, ck, lr4, sr2), 0);
  /* the JSON sidecar: sources, model sha256, parameters */
  char js[4400];
  snprintf(js, sizeof js, "%s/sr100_factor.json", d);
  MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 -c \"import json,sys; j=json.load(open('%s')); "
                                "assert j['Sources'][0].endswith('lr400.nii.gz'); assert len(j['Model']['Sha256']) == 64; "
                                "assert j['Parameters']['NormalisationPercentiles'] == [0.1, 99.9]; assert j['Parameters']['VoxelCheckOverridden']; "
                                "assert j['GeneratedBy'][0]['Name'] == 'mbsr'\"", js), 0);
  MT_ASSERT_OK(mbsr_volume_read(sr2, NULL, &out2));
  MT_ASSERT_OK(mbsr_upsample_factor(lr400, f, MBSR_INTERP_KEYS, &g200));
  CU_ASSERT(mbsr_volume_same_grid(out2, g200, 1e-6));
  mbsr_volume_free(lr400);
  mbsr_volume_free(g200);
  /* block averaging crops 132x80x114 by 2 exactly: the 100 um grid is the template's */
  MT_ASSERT_INT_EQ(out->nx, hr->nx);
  MT_ASSERT_INT_EQ(out->ny, hr->ny);
  MT_ASSERT_INT_EQ(out->nz, hr->nz);
  CU_ASSERT(mbsr_volume_same_grid(out, hr, 1e-4));
  MT_ASSERT_NEAR(out->vox[0], 0.1, 1e-6);
  MT_ASSERT_NEAR(out2->vox[0], 0.2, 1e-6);
  float mn, mx, hmn, hmx;
  mbsr_volume_minmax(out, &mn, &mx);
  mbsr_volume_minmax(hr, &hmn, &hmx);
  printf("  SR range %.1f..%.1f, template %.1f..%.1f\n", mn, mx, hmn, hmx);
  CU_ASSERT(mx > mn);
  mbsr_volume_free(out);
  mbsr_volume_free(out2);
  mbsr_volume_free(hr);
  mbsr_volume_free(low);
  mbsr_model_free(m);
}

/* Bad input through the CLI: non-zero exit, one line on stderr, existing output untouched. */
static void test_cli_errors(void) {
  const char *d = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char in[4200], nan_in[4200], ck[4200], bad_ck[4200], out[4200], err[4200];
  snprintf(in, sizeof in, "%s/e_in.nii.gz", d);
  snprintf(nan_in, sizeof nan_in, "%s/e_nan.nii", d);
  snprintf(ck, sizeof ck, "%s/e_ck.h5", d);
  snprintf(bad_ck, sizeof bad_ck, "%s/e_bad.h5", d);
  snprintf(out, sizeof out, "%s/e_out.nii.gz", d);
  snprintf(err, sizeof err, "%s/e_err.txt", d);
  mbsr_volume *v = test_volume(12, 10, 9);
  MT_ASSERT_OK(mbsr_volume_write(in, v));
  v->data[5] = NAN;
  /* a NaN volume can only be made by writing raw NIfTI: use the io writer if it allows it,
   * otherwise patch the float data of an uncompressed file */
  int wrote_nan = mbsr_volume_write(nan_in, v) == 0;
  if (!wrote_nan) {
    v->data[5] = 1234.5f;
    MT_ASSERT_OK(mbsr_volume_write(nan_in, v));
    FILE *f = fopen(nan_in, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    /* NIfTI-1 single file: data at vox_offset 352 */
    float nanv = NAN;
    fseek(f, 352 + 5 * 4, SEEK_SET);
    fwrite(&nanv, 4, 1, f);
    fclose(f);
  }
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_CCNN);
  c.ccnn_c1 = 4;
  c.ccnn_c2 = 2;
  mbsr_model *m = make(&c, 1, 9, 9, 9, NULL);
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("head -c 3000 '%s' > '%s'", ck, bad_ck), 0);
  char nan_ck[4200];
  snprintf(nan_ck, sizeof nan_ck, "%s/e_nanw.h5", d);
  for (size_t i = 0; i < mbsr_model_num_params(m); i++) mbsr_model_params(m)[i] = NAN;
  MT_ASSERT_OK(mbsr_checkpoint_save(m, nan_ck, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("echo keep > '%s'", out), 0);
  const char *cases[][2] = {{nan_in, ck}, {in, bad_ck}, {in, "/nonexistent.h5"}, {in, nan_ck}};
  for (int i = 0; i < 4; i++) {
    int st = mbsr_test_sh("'%s' apply --model '%s' --in '%s' --out '%s' --upsampled --quiet 2> '%s'", bin, cases[i][1], cases[i][0],
                          out, err);
    CU_ASSERT(st != 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < '%s') -eq 1", err), 0);
    mbsr_test_sh("sed 's/^/  stderr: /' '%s'", err);
    MT_ASSERT_INT_EQ(mbsr_test_sh("grep -qx keep '%s'", out), 0);
  }
  /* usage errors */
  CU_ASSERT(mbsr_test_sh("'%s' apply --model '%s' --in '%s' --out '%s' --like x --factor 2 2>/dev/null", bin, ck, in, out) == 2);
  CU_ASSERT(mbsr_test_sh("'%s' apply --model no-such-model '%s' '%s' 2>&1 | grep -q \"no model named 'no-such-model'\\|no models/manifest.json\"", bin, in, out) == 0);
  CU_ASSERT(mbsr_test_sh("'%s' apply --in '%s' 2>/dev/null", bin, in) == 2);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --help > /dev/null", bin), 0);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}

int main(void) {
  const mbsr_test_case cases[] = {
      {"seams_ccnn", test_seams_ccnn},
      {"seams_resnet_radius_10", test_seams_resnet},
      {"plan_budget_paper_resnet", test_plan_budget},
      {"contract_saturated", test_contract_saturated},
      {"small_volume", test_small_volume},
      {"factor_grid_and_nan", test_factor_grid_and_nan},
      {"cli_allen_200um_to_100um", test_cli_allen},
      {"cli_errors", test_cli_errors},
      {NULL, NULL},
  };
  return mbsr_test_main("apply", cases);
}
