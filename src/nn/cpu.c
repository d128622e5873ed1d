/* CPU feature detection for the kernel dispatch (cpuid + xgetbv, so the check is what the OS enables,
 * not only what the silicon has). */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h> /* sysconf */

#include "mbsr/nn.h"
#include "nn_internal.h"

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static int g_init = 0;
static mbsr__cpu g_cpu;

static void detect(void) {
  unsigned a, b, c, d;
  mbsr__cpu f = {0};
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE)) {
    uint64_t xcr0 = xgetbv0();
    int ymm_os = (xcr0 & 0x6) == 0x6;
    int zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0;
    int fma = (c >> 12) & 1;
    if (__get_cpuid_max(0, NULL) >= 7) {
      __cpuid_count(7, 0, a, b, c, d);
      f.avx2 = ymm_os && fma && ((b >> 5) & 1);
      f.avx512 = zmm_os && ((b >> 16) & 1) /*F*/ && ((b >> 30) & 1) /*BW*/ && ((b >> 31) & 1) /*VL*/ &&
                 ((b >> 17) & 1) /*DQ*/;
      unsigned a1 = 0, b1, c1, d1;
      __cpuid_count(7, 1, a1, b1, c1, d1);
      f.avx512bf16 = f.avx512 && ((a1 >> 5) & 1);
    }
  }
  g_cpu = f;
}

const mbsr__cpu *mbsr__cpu_get(void) {
  /* Benign race: detect() is idempotent and every thread writes the same values. */
  if (!__atomic_load_n(&g_init, __ATOMIC_ACQUIRE)) {
#pragma omp critical(mbsr_cpu_detect)
    if (!g_init) {
      detect();
      __atomic_store_n(&g_init, 1, __ATOMIC_RELEASE);
    }
  }
  return &g_cpu;
}

static char g_model[256];
static int g_model_init = 0;
const char *mbsr_cpu_model(void) {
  if (__atomic_load_n(&g_model_init, __ATOMIC_ACQUIRE)) return g_model;
#pragma omp critical(mbsr_cpu_model)
  if (!g_model_init) {
    unsigned r[12] = {0}, a, b, c, d;
    char brand[49] = "unknown CPU";
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
      for (unsigned k = 0; k < 3; k++) __cpuid(0x80000002u + k, r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3]);
      memcpy(brand, r, 48);
      brand[48] = 0;
    }
    char *p = brand;
    while (*p == ' ') p++;
    for (char *e = p + strlen(p); e > p && e[-1] == ' '; e--) e[-1] = 0;
    int fam = 0, model = 0, step = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
      fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf, step = a & 0xf;
      if (fam == 0xf) fam += (a >> 20) & 0xff;
      if (fam >= 6) model |= ((a >> 16) & 0xf) << 4;
    }
    long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    snprintf(g_model, sizeof g_model, "%s (family 0x%x model 0x%x stepping %d), L2 %ld KiB", p, fam, model, step,
             l2 > 0 ? l2 / 1024 : -1);
    __atomic_store_n(&g_model_init, 1, __ATOMIC_RELEASE);
  }
  return g_model;
}

int mbsr_cpu_has_avx512(void) { return mbsr__cpu_get()->avx512; }
int mbsr_cpu_has_avx512bf16(void) { return mbsr__cpu_get()->avx512bf16; }

/* ---- FMA peak, measured on the spot: independent FMA chains on every thread, no memory traffic ---- */
#include <omp.h>

#include "mbsr/core.h"

#define FMA_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx512f"), noinline)) static float fma_loop_avx512(long iters) {

#define D512(i) __m512 a##i = _mm512_set1_ps(1e-3f * (i));
  FMA_CHAINS(D512)
  __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
  for (long it = 0; it < iters; it++) {
#define F512(i) a##i = _mm512_fmadd_ps(a##i, b, c);
    FMA_CHAINS(F512)
    __asm__("" : "+v"(b));
  }
  __m512 s = _mm512_setzero_ps();
#define S512(i) s = _mm512_add_ps(s, a##i);
  FMA_CHAINS(S512)
  return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(long iters) {
#define D256(i) __m256 a##i = _mm256_set1_ps(1e-3f * (i));
  FMA_CHAINS(D256)
  __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-4f);
  for (long it = 0; it < iters; it++) {
#define F256(i) a##i = _mm256_fmadd_ps(a##i, b, c);
    FMA_CHAINS(F256)
    __asm__("" : "+x"(b));
  }
  __m256 s = _mm256_setzero_ps();
#define S256(i) s = _mm256_add_ps(s, a##i);
  FMA_CHAINS(S256)
  float t[8];
  _mm256_storeu_ps(t, s);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

double mbsr_cpu_fma_peak_gflops(int nthreads, double seconds) {
  const mbsr__cpu *f = mbsr__cpu_get();
  if (!f->avx512 && !f->avx2) return 0.0; /* no FMA unit we know how to drive */
  if (nthreads < 1) nthreads = omp_get_max_threads();
  /* the peak of the vector width the conv kernels use (MBSR_CONV_KERNEL=avx2 on an AVX-512 CPU: 256 bits) */
  const int z = f->avx512 && !strncmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "avx512", 6);
  const int lanes = z ? 16 : 8;
  long iters = 1 << 20;
  double best = 0.0, spent = 0.0;
  /* grow the loop until one run takes >= 20 ms, then keep the best of the runs that fit in `seconds` */
  while (spent < seconds) {
    volatile float sink = 0.0f;
    double t0 = mbsr_now();
#pragma omp parallel num_threads(nthreads)
    {
      float r = z ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
#pragma omp atomic
      sink += r;
    }
    double dt = mbsr_now() - t0;
    spent += dt;
    if (dt < 0.02) {
      iters *= 4;
      continue;
    }
    double g = 2.0 * lanes * 12 * (double)iters * nthreads / dt / 1e9;
    if (g > best) best = g;
  }
  return best;
}
