/* The GAN step runs the generator forward once (src/model/model.c, gan_gen_forward): phase 1 reuses
 * phase 0's generator activations when the generator's parameters and the input are bitwise unchanged,
 * and runs the forward again when anything changed. Both give bitwise the parameters of a step in
 * which phase 1 is made to recompute. Also: the stride-2 conv of the discriminator (its input gradient
 * without zero insertion) under the whole GAN step. */
#include <string.h>

#include "../../src/model/model_internal.h"
#include "mbsr/core.h"
#include "mbsr/model.h"
#include "mbsr_test.h"

enum { B = 2, S = 9 };

static mbsr_model *gan(void) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_GAN);
  c.channels = 16;
  c.blocks = 2;
  c.disc_channels = 16;
  c.disc_blocks = 2;
  c.gan_lambda = 0.1f;
  mbsr_model *m = NULL;
  CU_ASSERT_FATAL(mbsr_model_create(&c, B, S, S, S, &m) == 0);
  mbsr_model_init(m, 5);
  return m;
}

static void fill(float *p, size_t n, uint64_t seed) {
  mbsr_rng *r = mbsr_rng_new(seed);
  for (size_t i = 0; i < n; i++) p[i] = (float)mbsr_rng_uniform(r);
  mbsr_rng_free(r);
}

static int same_params(mbsr_model *a, mbsr_model *b) {
  return !memcmp(mbsr_model_params(a), mbsr_model_params(b), sizeof(float) * mbsr_model_num_params(a));
}

/* phase 0, update 0, [between], phase 1 (in1 or in), update 1 */
static void step(mbsr_model *m, float *in, const float *tg, const float *in1, int invalidate, int *reused) {
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  CU_ASSERT_FATAL(mbsr_model_phase_grad(m, 0, in, tg, B, B) >= 0);
  CU_ASSERT(m->gcache_valid == 1);
  CU_ASSERT_FATAL(mbsr_model_phase_update(m, 0, &a) == 0);
  if (invalidate) { /* another generator forward in between: phase 1 must run its own */
    float *junk = mbsr_alloc(sizeof(float) * B * S * S * S), *out = mbsr_alloc(sizeof(float) * B * S * S * S);
    fill(junk, (size_t)B * S * S * S, 77);
    CU_ASSERT(mbsr_model_forward(m, junk, B, out) == 0);
    CU_ASSERT(m->gcache_valid == 0);
    mbsr_free(junk), mbsr_free(out);
  }
  CU_ASSERT_FATAL(mbsr_model_phase_grad(m, 1, in1 ? in1 : in, tg, B, B) >= 0);
  CU_ASSERT_FATAL(mbsr_model_phase_update(m, 1, &a) == 0);
  *reused += m->gcache_valid == 0 && !invalidate; /* consumed by a reuse (or by the forward above) */
}

static void test_forward_once(void) {
  const size_t nv = (size_t)B * S * S * S;
  float *in = mbsr_alloc(nv * 4), *tg = mbsr_alloc(nv * 4), *in2 = mbsr_alloc(nv * 4), *buf = mbsr_alloc(nv * 4);
  fill(in, nv, 1), fill(tg, nv, 2), fill(in2, nv, 3);
  mbsr_model *a = gan(), *b = gan(), *c = gan(), *d = gan();
  int reused = 0, dummy = 0;
  for (int k = 0; k < 3; k++) {
    step(a, in, tg, NULL, 0, &reused);    /* phase 1 reuses phase 0's generator forward */
    step(b, in, tg, NULL, 1, &dummy);     /* phase 1 recomputes it */
  }
  MT_ASSERT_INT_EQ(reused, 3);
  CU_ASSERT(same_params(a, b));
  /* the same buffer with other values in phase 1: recomputed, like a run that never reuses */
  memcpy(buf, in, nv * 4);
  mbsr_adam_config ad;
  mbsr_adam_config_default(&ad);
  CU_ASSERT_FATAL(mbsr_model_phase_grad(c, 0, buf, tg, B, B) >= 0);
  CU_ASSERT_FATAL(mbsr_model_phase_update(c, 0, &ad) == 0);
  memcpy(buf, in2, nv * 4);
  CU_ASSERT_FATAL(mbsr_model_phase_grad(c, 1, buf, tg, B, B) >= 0);
  CU_ASSERT_FATAL(mbsr_model_phase_update(c, 1, &ad) == 0);
  step(d, in, tg, in2, 1, &dummy);
  CU_ASSERT(same_params(c, d));
  /* the caller changes the generator's parameters between the phases (a broadcast, a test hook) */
  mbsr_model *e = gan(), *f = gan();
  CU_ASSERT_FATAL(mbsr_model_phase_grad(e, 0, in, tg, B, B) >= 0);
  CU_ASSERT_FATAL(mbsr_model_phase_update(e, 0, &ad) == 0);
  mbsr_model_params(e)[3] += 1e-3f;
  CU_ASSERT_FATAL(mbsr_model_phase_grad(e, 1, in, tg, B, B) >= 0);
  CU_ASSERT_FATAL(mbsr_model_phase_grad(f, 0, in, tg, B, B) >= 0);
  CU_ASSERT_FATAL(mbsr_model_phase_update(f, 0, &ad) == 0);
  mbsr_model_params(f)[3] += 1e-3f;
  float *o = mbsr_alloc(nv * 4);
  CU_ASSERT(mbsr_model_forward(f, in2, B, o) == 0); /* invalidates */
  CU_ASSERT_FATAL(mbsr_model_phase_grad(f, 1, in, tg, B, B) >= 0);
  CU_ASSERT(!memcmp(mbsr_model_grads(e), mbsr_model_grads(f), sizeof(float) * mbsr_model_num_params(e)));
  mbsr_model *ms[] = {a, b, c, d, e, f};
  for (int i = 0; i < 6; i++) mbsr_model_free(ms[i]);
  mbsr_free(in), mbsr_free(tg), mbsr_free(in2), mbsr_free(buf), mbsr_free(o);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"gan_generator_forward_once", test_forward_once}, {NULL, NULL}};
  return mbsr_test_main("model_gan_step", cases);
}
