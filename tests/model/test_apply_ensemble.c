/* The uncertainty ensemble (mbsr_apply_ensemble, `mbsr apply --ensemble K`): one member is plain apply
 * bit for bit with sd = 0; K flips (and several models) equal a reference made of separate plain
 * applies on flipped inputs (flip, apply, flip back; mean and population sd in two passes); sd >= 0;
 * the CLI writes OUT, its sidecar and the sd as a set (every injected write failure leaves none). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"
#include "mbsr_test.h"

static mbsr_volume *test_volume(int nx, int ny, int nz, double vox) {
  double v3[3] = {vox, vox, vox};
  mbsr_volume *v = mbsr_volume_new(nx, ny, nz, v3, NULL);
  for (int k = 0; k < nz; k++)
    for (int j = 0; j < ny; j++)
      for (int i = 0; i < nx; i++)
        v->data[i + (size_t)nx * (j + (size_t)ny * k)] =
            (float)(60 + 30 * sin(0.31 * i + 0.2 * j) * cos(0.27 * k) + 20 * sin(0.45 * i + 0.65 * k + 0.7 * j + 0.1 * i * j / (1 + k)));
  return v;
}

static mbsr_model *tiny_resnet(uint64_t seed) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 4;
  c.blocks = 1;
  c.global_residual = 1;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, 1, 9, 9, 9, &m));
  mbsr_model_init(m, seed);
  return m;
}

/* The volume with the axes of mask reversed (naive, by index). */
static mbsr_volume *flipped(const mbsr_volume *v, int mask) {
  mbsr_volume *o = mbsr_volume_new_like(v);
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        int64_t si = mask & 1 ? v->nx - 1 - i : i, sj = mask & 2 ? v->ny - 1 - j : j, sk = mask & 4 ? v->nz - 1 - k : k;
        o->data[i + v->nx * (j + v->ny * k)] = v->data[si + v->nx * (sj + v->ny * sk)];
      }
  return o;
}

/* Reference: separate plain applies on flipped inputs, flipped back; mean and population sd in two
 * passes (double). */
static void reference(mbsr_model **m, int nm, int flips, const mbsr_volume *up, const mbsr_apply_opts *o, double *mean,
                      double *sd) {
  const int64_t n = mbsr_volume_nvox(up);
  const int N = nm * flips;
  mbsr_volume **mem = calloc((size_t)N, sizeof *mem);
  for (int a = 0; a < nm; a++)
    for (int f = 0; f < flips; f++) {
      mbsr_volume *x = flipped(up, f), *y = NULL;
      MT_ASSERT_OK(mbsr_apply_upsampled(m[a], x, o, &y));
      mem[a * flips + f] = flipped(y, f);
      mbsr_volume_free(x);
      mbsr_volume_free(y);
    }
  for (int64_t q = 0; q < n; q++) {
    double s = 0, ss = 0;
    for (int t = 0; t < N; t++) s += mem[t]->data[q];
    mean[q] = s / N;
    for (int t = 0; t < N; t++) ss += (mem[t]->data[q] - mean[q]) * (mem[t]->data[q] - mean[q]);
    sd[q] = sqrt(ss / N);
  }
  for (int t = 0; t < N; t++) mbsr_volume_free(mem[t]);
  free(mem);
}

static mbsr_apply_opts small_tiles(int flips) {
  mbsr_apply_opts o;
  mbsr_apply_opts_default(&o);
  o.progress = 0;
  o.patch = 17; /* receptive radius 4: tiles of 17 cut every axis (stride 9) */
  o.flips = flips;
  return o;
}

/* One member: plain apply (LR volume, factor 2) bit for bit, sd = 0 everywhere. Two copies of one
 * model: the same (every member agrees exactly, so Welford's deviations are exactly 0). */
static void test_one_member_is_apply(void) {
  mbsr_volume *lr = test_volume(14, 12, 11, 0.2), *plain = NULL, *mean = NULL, *sd = NULL;
  mbsr_model *m = tiny_resnet(5);
  mbsr_apply_opts o = small_tiles(1);
  const int f[3] = {2, 2, 2};
  MT_ASSERT_OK(mbsr_apply_factor(m, lr, f, &o, &plain));
  for (int copies = 1; copies <= 2; copies++) {
    mbsr_model *ms[2] = {m, m};
    MT_ASSERT_OK(mbsr_apply_ensemble(ms, copies, lr, NULL, f, &o, &mean, &sd));
    CU_ASSERT(mbsr_volume_same_grid(mean, plain, 0));
    CU_ASSERT(mbsr_volume_same_grid(sd, plain, 0));
    int64_t diff = 0, nonzero = 0;
    for (int64_t q = 0; q < mbsr_volume_nvox(plain); q++) {
      diff += memcmp(&mean->data[q], &plain->data[q], sizeof(float)) != 0;
      nonzero += sd->data[q] != 0.0f;
    }
    printf("\n  %d cop%s of one model, 1 flip: %lld voxels differ from plain apply (bitwise), %lld non-zero sd", copies,
           copies > 1 ? "ies" : "y", (long long)diff, (long long)nonzero);
    MT_ASSERT_INT_EQ(diff, 0);
    MT_ASSERT_INT_EQ(nonzero, 0);
    mbsr_volume_free(mean);
    mbsr_volume_free(sd);
  }
  printf("\n");
  mbsr_volume_free(plain);
  mbsr_volume_free(lr);
  mbsr_model_free(m);
}

/* K flips x nm models against the reference; sd >= 0 and > 0 somewhere (the members differ). */
static void check_ensemble(int nm, int flips) {
  mbsr_volume *up = test_volume(31, 26, 23, 0.1), *mean = NULL, *sd = NULL;
  mbsr_model *m[2] = {tiny_resnet(5), tiny_resnet(77)};
  mbsr_apply_opts o = small_tiles(flips);
  const int64_t n = mbsr_volume_nvox(up);
  double *rm = malloc(sizeof(double) * (size_t)n), *rs = malloc(sizeof(double) * (size_t)n);
  reference(m, nm, flips, up, &o, rm, rs);
  MT_ASSERT_OK(mbsr_apply_ensemble(m, nm, up, NULL, NULL, &o, &mean, &sd));
  float lo, hi;
  mbsr_volume_minmax(up, &lo, &hi);
  double dm = 0, ds = 0, smax = 0, ssum = 0, smin = INFINITY;
  for (int64_t q = 0; q < n; q++) {
    dm = fmax(dm, fabs(mean->data[q] - rm[q]));
    ds = fmax(ds, fabs(sd->data[q] - rs[q]));
    smax = fmax(smax, sd->data[q]);
    smin = fmin(smin, sd->data[q]);
    ssum += sd->data[q];
  }
  printf("\n  %d model(s) x %d flips vs separate applies: max |mean diff| %.2e, max |sd diff| %.2e (input range %.1f); "
         "sd min %.3g mean %.3g max %.3g\n", nm, flips, dm, ds, (double)(hi - lo), smin, ssum / n, smax);
  CU_ASSERT(dm <= 1e-5); /* values < 128: float rounding of the mean is <= 7.6e-6 */
  CU_ASSERT(ds <= 1e-5);
  CU_ASSERT(smin >= 0);
  CU_ASSERT(smax > 0);
  free(rm);
  free(rs);
  mbsr_volume_free(mean);
  mbsr_volume_free(sd);
  mbsr_volume_free(up);
  mbsr_model_free(m[0]);
  mbsr_model_free(m[1]);
}
static void test_flips4(void) { check_ensemble(1, 4); }
static void test_flips8(void) { check_ensemble(1, 8); }
static void test_models2_flips3(void) { check_ensemble(2, 3); }

static void test_bad_args(void) {
  mbsr_volume *up = test_volume(12, 12, 12, 0.1), *mean = NULL, *sd = NULL;
  mbsr_model *m = tiny_resnet(5);
  mbsr_apply_opts o = small_tiles(9);
  MT_ASSERT_INT_EQ(mbsr_apply_ensemble(&m, 1, up, NULL, NULL, &o, &mean, &sd), MBSR_EINVAL);
  CU_ASSERT(mean == NULL && sd == NULL);
  o.flips = 2;
  up->data[7] = NAN;
  MT_ASSERT_INT_EQ(mbsr_apply_ensemble(&m, 1, up, NULL, NULL, &o, &mean, &sd), MBSR_ENONFINITE);
  CU_ASSERT(mean == NULL && sd == NULL);
  mbsr_volume_free(up);
  mbsr_model_free(m);
}

/* `mbsr apply --ensemble 4`: OUT = the library's mean, the sd file, the sidecar's Ensemble; any of the
 * four atomic writes failing (MBSR_FAULT_WRITE=file:N) and an unwritable sd or OUT leave none of the
 * three files. */
static void test_cli_set(void) {
  const char *d = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char lr[4200], ck[4200], out[4200], sdf[4200], js[4200];
  snprintf(lr, sizeof lr, "%s/ens_lr.nii.gz", d);
  snprintf(ck, sizeof ck, "%s/ens.h5", d);
  snprintf(out, sizeof out, "%s/ens_sr.nii.gz", d);
  snprintf(sdf, sizeof sdf, "%s/ens_sr_sd.nii.gz", d);
  snprintf(js, sizeof js, "%s/ens_sr.json", d);
  mbsr_volume *v = test_volume(14, 12, 11, 0.2);
  MT_ASSERT_OK(mbsr_volume_write(lr, v));
  mbsr_model *m = tiny_resnet(5);
  mbsr_sr_contract k;
  mbsr_sr_contract_default(&k);
  for (int a = 0; a < 3; a++) k.lr_vox_mm[a] = 0.2, k.hr_vox_mm[a] = 0.1;
  mbsr_model_set_contract(m, &k);
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, NULL));
  for (int fail = 1; fail <= 4; fail++) {
    int st = mbsr_test_sh("MBSR_FAULT_WRITE=file:%d '%s' apply --model '%s' '%s' '%s' --ensemble 4 --quiet 2>/dev/null", fail, bin, ck, lr, out);
    CU_ASSERT(st == 1);
    CU_ASSERT(!mbsr_file_exists(out) && !mbsr_file_exists(sdf) && !mbsr_file_exists(js));
    MT_ASSERT_INT_EQ(mbsr_test_sh("ls -a '%s' | grep -c '^\\.tmp-.*ens_sr' | grep -qx 0", d), 0); /* no temporaries left */
  }
  CU_ASSERT(mbsr_test_sh("'%s' apply --model '%s' '%s' '%s' --ensemble 4 --sd-out '%s/no/such/dir/sd.nii.gz' --quiet 2>/dev/null", bin, ck,
                         lr, out, d) == 1);
  CU_ASSERT(!mbsr_file_exists(out) && !mbsr_file_exists(js));
  MT_ASSERT_INT_EQ(mbsr_test_sh("mkdir -p '%s'", out), 0); /* OUT cannot be replaced: a directory */
  CU_ASSERT(mbsr_test_sh("'%s' apply --model '%s' '%s' '%s' --ensemble 4 --quiet 2>/dev/null", bin, ck, lr, out) == 1);
  CU_ASSERT(!mbsr_file_exists(sdf) && !mbsr_file_exists(js));
  MT_ASSERT_INT_EQ(mbsr_test_sh("rmdir '%s'", out), 0);
  CU_ASSERT(mbsr_test_sh("'%s' apply --model '%s' '%s' '%s' --sd-out x.nii.gz 2>/dev/null", bin, ck, lr, out) == 2);
  /* success: the set, OUT = the library's mean, the sd file = its sd */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s' '%s' '%s' --ensemble 4 --quiet", bin, ck, lr, out), 0);
  mbsr_volume *a = NULL, *b = NULL, *mean = NULL, *sd = NULL;
  MT_ASSERT_OK(mbsr_volume_read(out, NULL, &a));
  MT_ASSERT_OK(mbsr_volume_read(sdf, NULL, &b));
  mbsr_apply_opts o = small_tiles(4);
  o.patch = 0;
  const int f[3] = {2, 2, 2};
  MT_ASSERT_OK(mbsr_apply_ensemble(&m, 1, v, NULL, f, &o, &mean, &sd));
  CU_ASSERT(mbsr_volume_same_grid(a, mean, 1e-6) && mbsr_volume_same_grid(b, mean, 1e-6));
  CU_ASSERT(memcmp(a->data, mean->data, sizeof(float) * (size_t)mbsr_volume_nvox(mean)) == 0);
  CU_ASSERT(memcmp(b->data, sd->data, sizeof(float) * (size_t)mbsr_volume_nvox(sd)) == 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 -c \"import json; j=json.load(open('%s')); e=j['Ensemble']; "
                                "assert e['FlipsPerModel'] == 4 and e['Members'] == 4 and len(e['Models']) == 1; "
                                "assert e['StandardDeviation'].endswith('ens_sr_sd.nii.gz'); assert len(e['Models'][0]['Sha256']) == 64\"",
                                js), 0);
  /* two models (the same checkpoint twice) with --sd-out */
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s,%s' --in '%s' --out '%s/ens2.nii.gz' --sd-out '%s/ens2_s.nii' --quiet", bin, ck, ck,
                                lr, d, d), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("test -s '%s/ens2_s.nii' && test -s '%s/ens2.json'", d, d), 0);
  mbsr_volume_free(a);
  mbsr_volume_free(b);
  mbsr_volume_free(mean);
  mbsr_volume_free(sd);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}

int main(void) {
  const mbsr_test_case cases[] = {
      {"one_member_is_apply", test_one_member_is_apply},
      {"flips4_vs_separate_applies", test_flips4},
      {"flips8_vs_separate_applies", test_flips8},
      {"models2_flips3_vs_separate_applies", test_models2_flips3},
      {"bad_args", test_bad_args},
      {"cli_set", test_cli_set},
      {NULL, NULL},
  };
  return mbsr_test_main("apply_ensemble", cases);
}
