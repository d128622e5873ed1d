/* The three networks against PyTorch fixtures (tests/fixtures/gen_nn.py): forward output, loss,
 * every parameter gradient, and the losses of 10 Adam steps on a fixed batch, within 1e-4
 * relative (max |diff| / max |ref| per tensor). Plus finite differences on the whole model,
 * freezing, and bad input (NaN batches, NaN losses, bad batch sizes). */
#include <math.h>
#include <string.h>

#include "../fixtures/nn/nn_fixture.h"
#include "mbsr/core.h"
#include "mbsr/model.h"
#include "mbsr_test.h"

#define TOL 1e-4

static nnfx *load_fix(const char *name) {
  char p[4096];
  mbsr_test_fixture(name, p, sizeof p);
  return nnfx_load(p);
}

/* Build the model the fixture describes and load its parameters by name. */
static mbsr_model *model_from_fixture(const nnfx *fx, const char *kind, int *B, int *S) {
  const nnfx_tensor *c = nnfx_get(fx, "config");
  CU_ASSERT_FATAL(c != NULL);
  mbsr_model_config cfg;
  mbsr_arch arch;
  CU_ASSERT_FATAL(mbsr_arch_parse(kind, &arch) == 0);
  mbsr_model_config_default(&cfg, arch);
  cfg.ccnn_c1 = (int)c->d[0];
  cfg.ccnn_c2 = (int)c->d[1];
  cfg.channels = (int)c->d[2];
  cfg.blocks = (int)c->d[3];
  cfg.global_residual = (int)c->d[4];
  cfg.disc_channels = (int)c->d[5];
  cfg.disc_blocks = (int)c->d[6];
  cfg.gan_lambda = (float)c->d[7];
  *B = (int)c->d[8];
  *S = (int)c->d[9];
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&cfg, *B, *S, *S, *S, &m));
  float *p = mbsr_model_params(m);
  int nt = mbsr_model_num_tensors(m);
  size_t total = 0;
  for (int i = 0; i < nt; i++) {
    size_t off, cnt;
    const char *name = mbsr_model_tensor(m, i, &off, &cnt);
    char key[160];
    snprintf(key, sizeof key, "params/%s", name);
    const nnfx_tensor *t = nnfx_get(fx, key);
    CU_ASSERT_FATAL(t != NULL);
    MT_ASSERT_INT_EQ(t->count, cnt);
    memcpy(p + off, t->f, sizeof(float) * cnt);
    total += cnt;
  }
  MT_ASSERT_INT_EQ(total, mbsr_model_num_params(m));
  return m;
}

static double compare_grads(mbsr_model *m, const nnfx *fx, const char *prefix, size_t span_off, size_t span_cnt) {
  float *g = mbsr_model_grads(m);
  double worst = 0.0;
  int nt = mbsr_model_num_tensors(m), seen = 0;
  for (int i = 0; i < nt; i++) {
    size_t off, cnt;
    const char *name = mbsr_model_tensor(m, i, &off, &cnt);
    if (off < span_off || off >= span_off + span_cnt) continue;
    char key[160];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const nnfx_tensor *t = nnfx_get(fx, key);
    CU_ASSERT_FATAL(t != NULL);
    double r = nnfx_max_rel(g + off, t->f, cnt);
    if (r > TOL) fprintf(stderr, "  gradient %s: max rel error %.3g\n", key, r);
    if (r > worst) worst = r;
    seen++;
  }
  CU_ASSERT(seen > 0);
  return worst;
}

static void run_fixture(const char *file, const char *kind) {
  nnfx *fx = load_fix(file);
  CU_ASSERT_FATAL(fx != NULL);
  int B, S;
  mbsr_model *m = model_from_fixture(fx, kind, &B, &S);
  const nnfx_tensor *in = nnfx_get(fx, "input"), *tg = nnfx_get(fx, "target"), *out = nnfx_get(fx, "output");
  size_t nv = (size_t)B * S * S * S;
  float *y = mbsr_alloc(sizeof(float) * nv);
  MT_ASSERT_OK(mbsr_model_forward(m, in->f, B, y));
  double r_out = nnfx_max_rel(y, out->f, nv);
  double r_grad = 0.0, r_loss = 0.0;
  if (strcmp(kind, "gan")) {
    double loss = mbsr_model_phase_grad(m, 0, in->f, tg->f, B, B);
    r_loss = fabs(loss - nnfx_get(fx, "loss")->d[0]) / nnfx_get(fx, "loss")->d[0];
    size_t o, c;
    mbsr_model_phase_span(m, 0, &o, &c);
    MT_ASSERT_INT_EQ(o, 0);
    MT_ASSERT_INT_EQ(c, mbsr_model_num_params(m));
    r_grad = compare_grads(m, fx, "grads/", o, c);
  } else {
    MT_ASSERT_INT_EQ(mbsr_model_num_phases(m), 2);
    size_t o0, c0, o1, c1;
    mbsr_model_phase_span(m, 0, &o0, &c0);
    mbsr_model_phase_span(m, 1, &o1, &c1);
    MT_ASSERT_INT_EQ(o1, 0);
    MT_ASSERT_INT_EQ(o0, c1);
    MT_ASSERT_INT_EQ(c0 + c1, mbsr_model_num_params(m));
    double ld = mbsr_model_phase_grad(m, 0, in->f, tg->f, B, B);
    double lg = mbsr_model_phase_grad(m, 1, in->f, tg->f, B, B);
    double rd = fabs(ld - nnfx_get(fx, "loss_d")->d[0]) / nnfx_get(fx, "loss_d")->d[0];
    double rg = fabs(lg - nnfx_get(fx, "loss_g")->d[0]) / nnfx_get(fx, "loss_g")->d[0];
    r_loss = fmax(rd, rg);
    double gd = compare_grads(m, fx, "grads_d/", o0, c0);
    double gg = compare_grads(m, fx, "grads_g/", o1, c1);
    r_grad = fmax(gd, gg);
    double mse;
    mbsr_model_last_losses(m, &mse, NULL, NULL);
    MT_ASSERT_REL(mse, nnfx_get(fx, "mse")->d[0], TOL, 1e-12);
  }
  /* 10 Adam steps on the fixed batch */
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  a.lr = (float)nnfx_get(fx, "config")->d[10];
  const nnfx_tensor *al = nnfx_get(fx, "adam_losses");
  double r_adam = 0.0;
  for (size_t s = 0; s < al->count; s++) {
    double l = mbsr_model_train_step(m, in->f, tg->f, B, &a);
    double r = fabs(l - al->d[s]) / al->d[s];
    if (r > r_adam) r_adam = r;
  }
  MT_ASSERT_INT_EQ(mbsr_model_adam_steps(m), al->count);
  MT_ASSERT_OK(mbsr_model_forward(m, in->f, B, y));
  double r_final = nnfx_max_rel(y, nnfx_get(fx, "adam_output")->f, nv);
  printf("\n  %s: max rel error output %.2e loss %.2e grads %.2e adam-losses(10) %.2e output-after-adam %.2e\n", file,
         r_out, r_loss, r_grad, r_adam, r_final);
  CU_ASSERT(r_out <= TOL);
  CU_ASSERT(r_loss <= TOL);
  CU_ASSERT(r_grad <= TOL);
  CU_ASSERT(r_adam <= TOL);
  CU_ASSERT(r_final <= TOL);
  mbsr_free(y);
  mbsr_model_free(m);
  nnfx_free(fx);
}

static void test_fixture_ccnn(void) { run_fixture("nn/model_ccnn.bin", "ccnn"); }
static void test_fixture_resnet(void) { run_fixture("nn/model_resnet.bin", "resnet"); }
static void test_fixture_resnet_gr(void) { run_fixture("nn/model_resnet_gr.bin", "resnet"); }
static void test_fixture_gan(void) { run_fixture("nn/model_gan.bin", "gan"); }

/* ---- finite differences on a whole (tiny) model: float32 forward, loss accumulated in double,
 * central differences with h = 1e-3 on 12 random parameters per phase, tolerance 2e-2 relative
 * (float rounding of the loss ~1e-7 / h = 1e-4 of a typical 1e-2 gradient) */
static void fd_check(mbsr_arch arch) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, arch);
  cfg.channels = 4;
  cfg.blocks = 1;
  cfg.ccnn_c1 = 4;
  cfg.ccnn_c2 = 3;
  cfg.disc_channels = 3;
  cfg.disc_blocks = 1;
  cfg.gan_lambda = 0.5f;
  cfg.global_residual = 1;
  const int B = 2, S = 5;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&cfg, B, S, S, S, &m));
  mbsr_model_init(m, 7);
  size_t nv = (size_t)B * S * S * S;
  float *x = mbsr_alloc(sizeof(float) * nv), *t = mbsr_alloc(sizeof(float) * nv);
  mbsr_rng *r = mbsr_rng_new(3);
  for (size_t i = 0; i < nv; i++) {
    x[i] = (float)mbsr_rng_uniform(r);
    t[i] = (float)mbsr_rng_uniform(r);
  }
  float *p = mbsr_model_params(m), *g = mbsr_model_grads(m);
  int bad = 0, checked = 0;
  for (int ph = 0; ph < mbsr_model_num_phases(m); ph++) {
    size_t off, cnt;
    mbsr_model_phase_span(m, ph, &off, &cnt);
    double l0 = mbsr_model_phase_grad(m, ph, x, t, B, B);
    CU_ASSERT(l0 >= 0);
    float *g0 = malloc(sizeof(float) * cnt);
    memcpy(g0, g + off, sizeof(float) * cnt);
    double gmax = 0;
    for (size_t i = 0; i < cnt; i++) gmax = fmax(gmax, fabs(g0[i]));
    for (int k = 0; k < 12; k++) {
      size_t i = off + mbsr_rng_uint(r, cnt);
      const float h = 1e-3f;
      float keep = p[i];
      p[i] = keep + h;
      double lp = mbsr_model_phase_grad(m, ph, x, t, B, B);
      p[i] = keep - h;
      double lm = mbsr_model_phase_grad(m, ph, x, t, B, B);
      p[i] = keep;
      double fd = (lp - lm) / (2.0 * h);
      double an = g0[i - off];
      checked++;
      if (fabs(fd - an) > 2e-2 * fmax(fabs(an), 0.05 * gmax)) {
        bad++;
        fprintf(stderr, "  %s phase %d param %zu: analytic %.6g, finite difference %.6g\n", mbsr_arch_name(arch), ph, i,
                an, fd);
      }
    }
    free(g0);
  }
  printf("\n  %s: %d parameters checked by finite differences, %d off\n", mbsr_arch_name(arch), checked, bad);
  MT_ASSERT_INT_EQ(bad, 0);
  mbsr_rng_free(r);
  mbsr_free(x);
  mbsr_free(t);
  mbsr_model_free(m);
}

static void test_fd_ccnn(void) { fd_check(MBSR_ARCH_CCNN); }
static void test_fd_resnet(void) { fd_check(MBSR_ARCH_RESNET); }
static void test_fd_gan(void) { fd_check(MBSR_ARCH_GAN); }

/* Transfer learning: only the last 3 generator layers change. */
static void test_freeze(void) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, MBSR_ARCH_RESNET);
  cfg.channels = 4;
  cfg.blocks = 2; /* 6 parameterised layers: conv0, b0.c1, b0.c2, b1.c1, b1.c2, conv_out */
  const int B = 2, S = 5;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&cfg, B, S, S, S, &m));
  mbsr_model_init(m, 1);
  MT_ASSERT_OK(mbsr_model_freeze_all_but_last(m, 3));
  size_t np = mbsr_model_num_params(m);
  float *before = malloc(sizeof(float) * np);
  memcpy(before, mbsr_model_params(m), sizeof(float) * np);
  size_t nv = (size_t)B * S * S * S;
  float *x = mbsr_alloc(sizeof(float) * nv), *t = mbsr_alloc(sizeof(float) * nv);
  for (size_t i = 0; i < nv; i++) {
    x[i] = (float)(i % 7) / 7.0f;
    t[i] = (float)(i % 5) / 5.0f;
  }
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  CU_ASSERT(mbsr_model_train_step(m, x, t, B, &a) >= 0);
  const float *p = mbsr_model_params(m);
  for (int i = 0; i < mbsr_model_num_tensors(m); i++) {
    size_t off, cnt;
    const char *name = mbsr_model_tensor(m, i, &off, &cnt);
    int changed = memcmp(before + off, p + off, sizeof(float) * cnt) != 0;
    int should = !strncmp(name, "block1.", 7) || !strncmp(name, "conv_out", 8);
    if (!strcmp(name, "block1.conv1.bias") || !strcmp(name, "block1.conv2.bias") || !strcmp(name, "conv_out.bias"))
      continue; /* biases may stay put only if their gradient is exactly 0; weights must move */
    if (changed != should) fprintf(stderr, "  %s: changed=%d expected %d\n", name, changed, should);
    MT_ASSERT_INT_EQ(changed, should);
  }
  /* all trainable again */
  MT_ASSERT_OK(mbsr_model_freeze_all_but_last(m, -1));
  memcpy(before, p, sizeof(float) * np);
  CU_ASSERT(mbsr_model_train_step(m, x, t, B, &a) >= 0);
  size_t off, cnt;
  mbsr_model_tensor(m, 0, &off, &cnt);
  CU_ASSERT(memcmp(before + off, p + off, sizeof(float) * cnt) != 0);
  free(before);
  mbsr_free(x);
  mbsr_free(t);
  mbsr_model_free(m);
}

static void test_bad_input(void) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, MBSR_ARCH_CCNN);
  cfg.ccnn_c1 = 4;
  cfg.ccnn_c2 = 2;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&cfg, 2, 5, 5, 5, &m));
  size_t nv = 2 * 125;
  float *x = mbsr_alloc(sizeof(float) * nv), *t = mbsr_alloc(sizeof(float) * nv);
  for (size_t i = 0; i < nv; i++) x[i] = t[i] = 0.5f;
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  /* batch larger than the model was built for */
  CU_ASSERT(mbsr_model_train_step(m, x, t, 3, &a) == MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "batch 3") != NULL);
  /* NaN input: refused before anything runs */
  x[17] = NAN;
  CU_ASSERT(mbsr_model_train_step(m, x, t, 2, &a) == MBSR_ENONFINITE);
  printf("\n  NaN batch -> \"%s\"\n", mbsr_last_error());
  x[17] = 0.5f;
  MT_ASSERT_INT_EQ(mbsr_model_adam_steps(m), 0);
  /* a parameter gone Inf makes the loss non-finite: error code, no update */
  size_t np = mbsr_model_num_params(m);
  float *p = mbsr_model_params(m);
  p[3] = INFINITY;
  double l = mbsr_model_train_step(m, x, t, 2, &a);
  CU_ASSERT(l == MBSR_ENONFINITE);
  printf("  Inf weight -> \"%s\"\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(mbsr_model_adam_steps(m), 0);
  /* non-finite gradients (only): the update is refused */
  p[3] = 0.1f;
  CU_ASSERT(mbsr_model_phase_grad(m, 0, x, t, 2, 2) >= 0);
  mbsr_model_grads(m)[5] = NAN;
  CU_ASSERT(mbsr_model_phase_update(m, 0, &a) == MBSR_ENONFINITE);
  MT_ASSERT_INT_EQ(mbsr_model_adam_steps(m), 0);
  (void)np;
  /* bad configs */
  mbsr_model *m2 = NULL;
  cfg.ccnn_c1 = 0;
  CU_ASSERT(mbsr_model_create(&cfg, 2, 5, 5, 5, &m2) == MBSR_EINVAL);
  CU_ASSERT(m2 == NULL);
  mbsr_model_config_default(&cfg, MBSR_ARCH_RESNET);
  CU_ASSERT(mbsr_model_create(&cfg, 0, 5, 5, 5, &m2) == MBSR_EINVAL);
  mbsr_free(x);
  mbsr_free(t);
  mbsr_model_free(m);
}

/* Parameter counts and FLOPs of the paper's networks (architecture bookkeeping). */
static void test_paper_sizes(void) {
  mbsr_model_config cfg;
  mbsr_model *m = NULL;
  mbsr_model_config_default(&cfg, MBSR_ARCH_CCNN);
  MT_ASSERT_OK(mbsr_model_create(&cfg, 1, 21, 21, 21, &m));
  /* 27*(1*64 + 64*32 + 32*1) + 64 + 32 + 1 */
  MT_ASSERT_INT_EQ(mbsr_model_num_params(m), 27 * (64 + 64 * 32 + 32) + 97);
  MT_ASSERT_NEAR(mbsr_model_forward_flops(m), 2.0 * 27 * (64 + 2048 + 32) * 9261, 1.0);
  mbsr_model_free(m);
  mbsr_model_config_default(&cfg, MBSR_ARCH_RESNET);
  MT_ASSERT_OK(mbsr_model_create(&cfg, 1, 21, 21, 21, &m));
  MT_ASSERT_INT_EQ(mbsr_model_num_params(m), 27 * (64 + 20 * 64 * 64 + 64) + 64 + 20 * 64 + 1);
  MT_ASSERT_INT_EQ(mbsr_model_num_tensors(m), 44);
  mbsr_model_free(m);
  mbsr_model_config_default(&cfg, MBSR_ARCH_GAN);
  MT_ASSERT_OK(mbsr_model_create(&cfg, 1, 21, 21, 21, &m));
  size_t o, c;
  mbsr_model_phase_span(m, 0, &o, &c);
  /* discriminator: conv0 1->64, conv1 64->64 s2, 10 blocks, dense 64->1 */
  MT_ASSERT_INT_EQ(c, 27 * (64 + 21 * 64 * 64) + 22 * 64 + 64 + 1);
  mbsr_model_free(m);
}

/* The distributed contract: gradients of two half batches, each normalised by the GLOBAL batch
 * size, sum to the gradient of the whole batch (what a sum all-reduce over 2 ranks computes). */
static void split_check(mbsr_arch arch) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, arch);
  cfg.channels = 4;
  cfg.blocks = 1;
  cfg.ccnn_c1 = 4;
  cfg.ccnn_c2 = 3;
  cfg.disc_channels = 4;
  cfg.disc_blocks = 1;
  cfg.gan_lambda = 0.5f;
  const int B = 4, S = 6;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&cfg, B, S, S, S, &m));
  mbsr_model_init(m, 9);
  size_t nv = (size_t)B * S * S * S, half = nv / 2, np = mbsr_model_num_params(m);
  float *x = mbsr_alloc(4 * nv), *t = mbsr_alloc(4 * nv), *gfull = malloc(4 * np), *gsum = malloc(4 * np);
  for (size_t i = 0; i < nv; i++) {
    x[i] = (float)((i * 31) % 97) / 97.0f;
    t[i] = (float)((i * 17) % 89) / 89.0f;
  }
  for (int ph = 0; ph < mbsr_model_num_phases(m); ph++) {
    size_t off, cnt;
    mbsr_model_phase_span(m, ph, &off, &cnt);
    double lf = mbsr_model_phase_grad(m, ph, x, t, B, B);
    memcpy(gfull, mbsr_model_grads(m) + off, 4 * cnt);
    double l1 = mbsr_model_phase_grad(m, ph, x, t, B / 2, B);
    memcpy(gsum, mbsr_model_grads(m) + off, 4 * cnt);
    double l2 = mbsr_model_phase_grad(m, ph, x + half, t + half, B / 2, B);
    for (size_t i = 0; i < cnt; i++) gsum[i] += mbsr_model_grads(m)[off + i];
    MT_ASSERT_REL(l1 + l2, lf, 1e-6, 1e-12);
    double e = nnfx_max_rel(gsum, gfull, cnt);
    printf("\n  %s phase %d: loss(half)+loss(half) vs loss(full) ok; gradient max rel diff %.2e", mbsr_arch_name(arch), ph, e);
    CU_ASSERT(e < 1e-5);
  }
  printf("\n");
  mbsr_free(x);
  mbsr_free(t);
  free(gfull);
  free(gsum);
  mbsr_model_free(m);
}
static void test_split_resnet(void) { split_check(MBSR_ARCH_RESNET); }
static void test_split_gan(void) { split_check(MBSR_ARCH_GAN); }

/* Precision modes: refused where the CPU lacks them; otherwise close to fp32. */
static void test_precision(void) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, MBSR_ARCH_RESNET);
  cfg.channels = 32;
  cfg.blocks = 1;
  const int B = 1, S = 9;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&cfg, B, S, S, S, &m));
  mbsr_model_init(m, 3);
  size_t nv = (size_t)B * S * S * S;
  float *x = mbsr_alloc(4 * nv), *y32 = mbsr_alloc(4 * nv), *y = mbsr_alloc(4 * nv);
  for (size_t i = 0; i < nv; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
  MT_ASSERT_OK(mbsr_model_forward(m, x, B, y32));
  const mbsr_precision ps[1] = {MBSR_PREC_BF16};
  const double tol[1] = {3e-2};
  for (int k = 0; k < 1; k++) {
    int rc = mbsr_model_set_precision(m, ps[k]);
    if (!mbsr_conv3d_precision_available(ps[k])) {
      MT_ASSERT_INT_EQ(rc, MBSR_EUNSUPPORTED);
      printf("\n  precision %d: not available here (%s)", (int)ps[k], mbsr_last_error());
      continue;
    }
    MT_ASSERT_OK(rc);
    MT_ASSERT_OK(mbsr_model_forward(m, x, B, y));
    double e = nnfx_max_rel(y, y32, nv);
    printf("\n  precision %d: forward max rel error vs fp32 %.2e", (int)ps[k], e);
    CU_ASSERT(e < tol[k]);
  }
  MT_ASSERT_OK(mbsr_model_set_precision(m, MBSR_PREC_FP32));
  MT_ASSERT_OK(mbsr_model_forward(m, x, B, y));
  CU_ASSERT(memcmp(y, y32, 4 * nv) == 0);
  printf("\n");
  mbsr_free(x);
  mbsr_free(y);
  mbsr_free(y32);
  mbsr_model_free(m);
}

int main(void) {
  const mbsr_test_case cases[] = {
      {"fixture_ccnn", test_fixture_ccnn},
      {"fixture_resnet", test_fixture_resnet},
      {"fixture_resnet_global_residual", test_fixture_resnet_gr},
      {"fixture_gan", test_fixture_gan},
      {"finite_differences_ccnn", test_fd_ccnn},
      {"finite_differences_resnet", test_fd_resnet},
      {"finite_differences_gan", test_fd_gan},
      {"freeze_all_but_last_3", test_freeze},
      {"bad_input", test_bad_input},
      {"paper_sizes", test_paper_sizes},
      {"precision_modes", test_precision},
      {"half_batches_sum_to_full_resnet", test_split_resnet},
      {"half_batches_sum_to_full_gan", test_split_gan},
      {NULL, NULL},
  };
  return mbsr_test_main("model", cases);
}
