/* AVX2+FMA instantiation of the 3-D Winograd kernels (winograd_tmpl.h) for CPUs without AVX-512; the
 * whole file is compiled for AVX2. Register budget (16 ymm): RB rows x CB vectors of accumulators with
 * CB 2: RB <= 6, CB 1: RB <= 12. */
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "winograd.h"

#define VL 8
#define VT __m256
#define VLD(p) _mm256_loadu_ps(p)
#define VST(p, v) _mm256_storeu_ps(p, v)
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSET1 _mm256_set1_ps
#define VZERO _mm256_setzero_ps
#define VMAX0(v) _mm256_max_ps(v, _mm256_setzero_ps())
#define VMASKGT0(v, m) _mm256_and_ps(v, _mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ))
#define PIN(v) __asm__("" : "+x"(v))
#define ISA_(name) name##_avx2
#define ISA(name) ISA_(name)
#define CBMAX 2

#define RB6(X, CB) X(1, CB) X(2, CB) X(3, CB) X(4, CB) X(5, CB) X(6, CB)
#define RB12(X, CB) RB6(X, CB) X(7, CB) X(8, CB) X(9, CB) X(10, CB) X(11, CB) X(12, CB)
#define ALL_BLOCKS(X) RB12(X, 1) RB6(X, 2)
#define GF_ENTRY(RB, CB) [CB][RB] = gf_avx2_##RB##_##CB,
#define GFH_ENTRY(RB, CB) [CB][RB] = gfh_avx2_##RB##_##CB,
#define GW_ENTRY(RB, CB) [CB][RB] = gw_avx2_##RB##_##CB,
#define WGEMM_INSTANCES ALL_BLOCKS(GEMM_FWD_KERNEL) ALL_BLOCKS(GEMM_DW_KERNEL)
#define WGEMM_TABLES                                                                                   \
  static const gf_fn_avx2 gf_tab_avx2[CBMAX + 1][13] = {ALL_BLOCKS(GF_ENTRY)};                         \
  static const gf_fn_avx2 gfh_tab_avx2[CBMAX + 1][13] = {ALL_BLOCKS(GFH_ENTRY)};                       \
  static const gw_fn_avx2 gw_tab_avx2[CBMAX + 1][13] = {ALL_BLOCKS(GW_ENTRY)};                         \
  static const int gf_rbmax_avx2[CBMAX + 1] = {0, 12, 6};                                              \
  static const int gw_rbmax_avx2[CBMAX + 1] = {0, 12, 6};

#define ISA_NAME "avx2"
#include "winograd_variants.inc"

#pragma GCC pop_options
