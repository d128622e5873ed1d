/* "A training step allocates nothing", checked by counting: this program interposes malloc,
 * calloc, realloc, aligned_alloc, posix_memalign and memalign (forwarding to glibc's __libc_*
 * entry points) and asserts that after one warm-up step (OpenMP creates its thread pool on the
 * first parallel region) further training steps, GAN phases, evaluation and inference call
 * none of them. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/model.h"
#include "mbsr_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define MBSR_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MBSR_UNDER_ASAN 1
#endif
#endif

static atomic_long g_allocs;

#ifndef MBSR_UNDER_ASAN
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) {
  atomic_fetch_add(&g_allocs, 1);
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  atomic_fetch_add(&g_allocs, 1);
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  atomic_fetch_add(&g_allocs, 1);
  return __libc_realloc(p, n);
}
void *memalign(size_t al, size_t n) {
  atomic_fetch_add(&g_allocs, 1);
  return __libc_memalign(al, n);
}
void *aligned_alloc(size_t al, size_t n) {
  atomic_fetch_add(&g_allocs, 1);
  return __libc_memalign(al, n);
}
int posix_memalign(void **p, size_t al, size_t n) {
  atomic_fetch_add(&g_allocs, 1);
  *p = __libc_memalign(al, n);
  return *p ? 0 : ENOMEM;
}
void free(void *p) { __libc_free(p); }
#endif

static void run(mbsr_arch arch) {
#ifdef MBSR_UNDER_ASAN
  mbsr_test_skip("malloc interposition is not possible under AddressSanitizer");
  return;
#endif
  mbsr_model_config c;
  mbsr_model_config_default(&c, arch);
  /* 24 channels x 2 x 9^3 = 35k floats per activation: above the layers' OpenMP threshold, so
   * both the serial and the parallel paths run */
  c.channels = 24;
  c.blocks = 1;
  c.ccnn_c1 = 24;
  c.ccnn_c2 = 8;
  c.disc_channels = 24;
  c.disc_blocks = 1;
  const int B = 2, S = 9;
  mbsr_model *m = NULL;
  long before_create = atomic_load(&g_allocs);
  MT_ASSERT_OK(mbsr_model_create(&c, B, S, S, S, &m));
  CU_ASSERT(atomic_load(&g_allocs) > before_create); /* the counter works */
  size_t nv = (size_t)B * S * S * S;
  float *x = mbsr_alloc(4 * nv), *t = mbsr_alloc(4 * nv), *y = mbsr_alloc(4 * nv);
  for (size_t i = 0; i < nv; i++) {
    x[i] = (float)(i % 13) / 13.0f;
    t[i] = (float)(i % 11) / 11.0f;
  }
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  CU_ASSERT(mbsr_model_train_step(m, x, t, B, &a) >= 0); /* warm-up */
  /* no CUnit assertion inside the counted region (CUnit itself allocates) */
  int ok = 1;
  long n0 = atomic_load(&g_allocs);
  for (int s = 0; s < 3; s++) ok &= mbsr_model_train_step(m, x, t, B, &a) >= 0;
  for (int ph = 0; ph < mbsr_model_num_phases(m); ph++) {
    ok &= mbsr_model_phase_grad(m, ph, x, t, 1, 4.0) >= 0;
    ok &= mbsr_model_phase_update(m, ph, &a) == 0;
  }
  ok &= mbsr_model_eval_sse(m, x, t, B) >= 0;
  ok &= mbsr_model_forward(m, x, B, y) == 0;
  long n1 = atomic_load(&g_allocs);
  printf("\n  %s: allocations during 3 train steps + phases + eval + forward: %ld\n", mbsr_arch_name(arch), n1 - n0);
  MT_ASSERT_INT_EQ(n1 - n0, 0);
  CU_ASSERT(ok);
  mbsr_free(x);
  mbsr_free(t);
  mbsr_free(y);
  mbsr_model_free(m);
}

static void test_ccnn(void) { run(MBSR_ARCH_CCNN); }
static void test_resnet(void) { run(MBSR_ARCH_RESNET); }
static void test_gan(void) { run(MBSR_ARCH_GAN); }

int main(void) {
  const mbsr_test_case cases[] = {
      {"no_alloc_ccnn", test_ccnn}, {"no_alloc_resnet", test_resnet}, {"no_alloc_gan", test_gan}, {NULL, NULL}};
  return mbsr_test_main("model_alloc", cases);
}
