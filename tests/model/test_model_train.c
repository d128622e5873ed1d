/* Learning on real data: the Allen CCFv3 average template (100 um, auto-fluorescence) is block-
 * averaged 2x (200 um) and Keys-upsampled back; a small ResNet with a global residual, trained
 * briefly on random 21^3 patches of the anterior half, must lower the validation MSE on patches
 * of the posterior half below that of the cubic-upsampled input. Skipped visibly when
 * ../shared/data is absent. Budget: < 60 s on 2 cores. */
#include <math.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"
#include "mbsr_test.h"

#define P 21

/* Patch (D,H,W) = volume (k,j,i) at corner (i0,j0,k0). */
static void cut(const mbsr_volume *v, int64_t i0, int64_t j0, int64_t k0, float *dst) {
  for (int k = 0; k < P; k++)
    for (int j = 0; j < P; j++)
      memcpy(dst + ((size_t)k * P + j) * P, v->data + (size_t)i0 + (size_t)v->nx * (size_t)(j0 + j + v->ny * (k0 + k)),
             sizeof(float) * P);
}

/* Random patch corners with i in [ilo, ihi - P], rejecting mostly-background patches. */
static void sample(const mbsr_volume *hr, mbsr_rng *r, int64_t ilo, int64_t ihi, int n, const mbsr_volume *up,
                   float *in, float *tg) {
  const size_t pv = (size_t)P * P * P;
  for (int b = 0; b < n;) {
    int64_t i0 = ilo + (int64_t)mbsr_rng_uint(r, (uint64_t)(ihi - ilo - P + 1));
    int64_t j0 = (int64_t)mbsr_rng_uint(r, (uint64_t)(hr->ny - P + 1));
    int64_t k0 = (int64_t)mbsr_rng_uint(r, (uint64_t)(hr->nz - P + 1));
    cut(hr, i0, j0, k0, tg + b * pv);
    double mean = 0;
    for (size_t q = 0; q < pv; q++) mean += tg[b * pv + q];
    if (mean / pv < 0.05) continue; /* background */
    cut(up, i0, j0, k0, in + b * pv);
    b++;
  }
}

static void test_train_beats_cubic(void) {
  char tpl[4096];
  if (!mbsr_test_data("af/allen_ccf_average_template_100um.nrrd", tpl, sizeof tpl)) return;
  double t0 = mbsr_now();
  mbsr_volume *hr = NULL, *lr = NULL, *up = NULL;
  MT_ASSERT_OK(mbsr_volume_read(tpl, NULL, &hr));
  const int f[3] = {2, 2, 2};
  MT_ASSERT_OK(mbsr_downsample_block(hr, f, &lr));
  MT_ASSERT_OK(mbsr_upsample_factor(lr, f, MBSR_INTERP_KEYS, &up));
  CU_ASSERT_FATAL(mbsr_volume_same_grid(up, hr, 1e-6));
  /* one [0,1] scale for both (the HR min/max), so MSEs compare */
  float mn, mx;
  mbsr_volume_minmax(hr, &mn, &mx);
  for (int64_t i = 0; i < mbsr_volume_nvox(hr); i++) {
    hr->data[i] = (hr->data[i] - mn) / (mx - mn);
    up->data[i] = (up->data[i] - mn) / (mx - mn);
  }
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 8;
  c.blocks = 2;
  c.global_residual = 1;
  const int B = 4, NVAL = 24;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, B, P, P, P, &m));
  mbsr_model_init(m, 2023);
  /* Glorot everywhere except the last conv, zeroed: with the global residual the network then
   * starts exactly at the cubic input (a common SR trick) instead of spending its first steps
   * removing the random initial output; every layer still learns (its gradient flows once
   * conv_out moves off zero) */
  for (int i = 0; i < mbsr_model_num_tensors(m); i++) {
    size_t off, cnt;
    const char *name = mbsr_model_tensor(m, i, &off, &cnt);
    if (!strncmp(name, "conv_out.", 9)) memset(mbsr_model_params(m) + off, 0, sizeof(float) * cnt);
  }
  const size_t pv = (size_t)P * P * P;
  float *in = mbsr_alloc(4 * pv * B), *tg = mbsr_alloc(4 * pv * B);
  float *vin = mbsr_alloc(4 * pv * NVAL), *vtg = mbsr_alloc(4 * pv * NVAL);
  mbsr_rng *r = mbsr_rng_new(7);
  const int64_t half = hr->nx / 2;
  sample(hr, r, half, hr->nx, NVAL, up, vin, vtg); /* validation: posterior half */
  double cubic = 0;
  for (int b = 0; b < NVAL; b++)
    cubic += mbsr_mse_forward(vin + b * pv, vtg + b * pv, pv, 1.0 / (double)pv);
  cubic /= NVAL;
  double v0 = mbsr_model_eval_sse(m, vin, vtg, NVAL) / NVAL;
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  double best = v0, tstep = 0;
  int steps = 0;
  const double budget = 25.0; /* seconds: a guard for a very busy machine (normally ~5 s) */
  double ts = mbsr_now();
  for (; steps < 120 && mbsr_now() - ts < budget; steps++) {
    sample(hr, r, 0, half, B, up, in, tg); /* training: anterior half */
    double l = mbsr_model_train_step(m, in, tg, B, &a);
    CU_ASSERT_FATAL(l >= 0);
    if ((steps + 1) % 25 == 0) {
      double v = mbsr_model_eval_sse(m, vin, vtg, NVAL) / NVAL;
      printf("\n  step %d: train MSE %.3e, validation MSE %.3e (cubic %.3e)", steps + 1, l, v, cubic);
      if (v < best) best = v;
    }
  }
  tstep = (mbsr_now() - ts) / steps;
  double vfinal = mbsr_model_eval_sse(m, vin, vtg, NVAL) / NVAL;
  if (vfinal < best) best = vfinal;
  printf("\n  Allen 100 um, 2x: validation MSE cubic %.4e, network at init %.4e, after %d steps of batch %d %.4e "
         "(%.1f %% of cubic); %.0f ms/step, total %.1f s\n",
         cubic, v0, steps, B, vfinal, 100.0 * vfinal / cubic, 1e3 * tstep, mbsr_now() - t0);
  CU_ASSERT(vfinal < cubic);

  /* end to end: save the checkpoint, super-resolve the whole 200 um volume with `mbsr apply`,
   * compare with the 100 um template on the held-out posterior half */
  char ck[4200], lrp[4200], srp[4200];
  const char *d = mbsr_test_tmpdir();
  snprintf(ck, sizeof ck, "%s/allen_resnet8x2.h5", d);
  snprintf(lrp, sizeof lrp, "%s/allen_200um.nii.gz", d);
  snprintf(srp, sizeof srp, "%s/allen_sr_100um.nii.gz", d);
  mbsr_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  meta.step = steps;
  meta.last_val = vfinal;
  snprintf(meta.info, sizeof meta.info, "{\"test\": \"test_model_train\", \"data\": \"allen 100um, 2x\"}");
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, &meta));
  MT_ASSERT_OK(mbsr_volume_write(lrp, lr));
  double ta = mbsr_now();
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s' --in '%s' --out '%s' --like '%s' --quiet", mbsr_test_bin(), ck,
                                lrp, srp, tpl), 0);
  ta = mbsr_now() - ta;
  mbsr_volume *sr = NULL, *hr0 = NULL, *up0 = NULL;
  MT_ASSERT_OK(mbsr_volume_read(srp, NULL, &sr));
  MT_ASSERT_OK(mbsr_volume_read(tpl, NULL, &hr0));
  MT_ASSERT_OK(mbsr_upsample_factor(lr, f, MBSR_INTERP_KEYS, &up0));
  CU_ASSERT_FATAL(mbsr_volume_same_grid(sr, hr0, 1e-4));
  double e_sr = 0, e_cu = 0;
  int64_t cnt = 0;
  for (int64_t k = 0; k < hr0->nz; k++)
    for (int64_t j = 0; j < hr0->ny; j++)
      for (int64_t i = half; i < hr0->nx; i++) {
        size_t q = (size_t)i + (size_t)hr0->nx * (size_t)(j + hr0->ny * k);
        double a1 = sr->data[q] - hr0->data[q], a2 = up0->data[q] - hr0->data[q];
        e_sr += a1 * a1;
        e_cu += a2 * a2;
        cnt++;
      }
  printf("  mbsr apply (whole volume, %.1f s): posterior-half RMSE vs the 100 um template: SR %.3f, cubic %.3f "
         "(intensity units 0..516)\n",
         ta, sqrt(e_sr / cnt), sqrt(e_cu / cnt));
  CU_ASSERT(e_sr < e_cu);
  mbsr_volume_free(sr);
  mbsr_volume_free(hr0);
  mbsr_volume_free(up0);
  mbsr_rng_free(r);
  mbsr_free(in);
  mbsr_free(tg);
  mbsr_free(vin);
  mbsr_free(vtg);
  mbsr_model_free(m);
  mbsr_volume_free(hr);
  mbsr_volume_free(lr);
  mbsr_volume_free(up);
}

int main(void) {
  const mbsr_test_case cases[] = {{"train_beats_cubic_allen", test_train_beats_cubic}, {NULL, NULL}};
  return mbsr_test_main("model_train", cases);
}
