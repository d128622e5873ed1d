/* CPU feature detection for the kernel dispatch (cpuid + xgetbv, so the check is what the OS enables,
 * not only what the silicon has) and the one-time AMX tile-data permission request (Linux >= 5.16). */
#include <cpuid.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mbsr/nn.h"
#include "nn_internal.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

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
    int amx_os = (xcr0 & (3u << 17)) == (3u << 17);
    int fma = (c >> 12) & 1;
    if (__get_cpuid_max(0, NULL) >= 7) {
      __cpuid_count(7, 0, a, b, c, d);
      f.avx2 = ymm_os && fma && ((b >> 5) & 1);
      f.avx512 = zmm_os && ((b >> 16) & 1) /*F*/ && ((b >> 30) & 1) /*BW*/ && ((b >> 31) & 1) /*VL*/ &&
                 ((b >> 17) & 1) /*DQ*/;
      int amx_tile = (d >> 24) & 1, amx_bf16 = (d >> 22) & 1;
      unsigned a1 = 0, b1, c1, d1;
      __cpuid_count(7, 1, a1, b1, c1, d1);
      f.avx512bf16 = f.avx512 && ((a1 >> 5) & 1);
      f.amx_hw = amx_tile && amx_bf16 && amx_os;
    }
  }
  if (f.amx_hw) {
    /* Ask the kernel for the tile data state once; it refuses on kernels older than 5.16. */
    long rc = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
    f.amx = rc == 0 && f.avx512;
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

int mbsr_cpu_has_amx(void) { return mbsr__cpu_get()->amx; }
int mbsr_cpu_has_avx512(void) { return mbsr__cpu_get()->avx512; }
int mbsr_cpu_has_avx512bf16(void) { return mbsr__cpu_get()->avx512bf16; }
