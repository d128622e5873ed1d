/* AVX-512 instantiation of the 3-D Winograd kernels (winograd_tmpl.h), called by winograd.c only after
 * cpuid says AVX-512 is usable; the whole file is compiled for AVX-512. Register budget (32 zmm):
 * RB rows x CB vectors of accumulators with RB*CB <= 24 (CB 4: RB <= 6, 3: 8, 2: 12, 1: 16). */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")
#include <immintrin.h>

#include "winograd.h"

#define VL 16
#define VT __m512
#define VLD(p) _mm512_loadu_ps(p)
#define VST(p, v) _mm512_storeu_ps(p, v)
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSET1 _mm512_set1_ps
#define VZERO _mm512_setzero_ps
#define VMAX0(v) _mm512_max_ps(v, _mm512_setzero_ps())
#define VMASKGT0(v, m) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ), v)
#define PIN(v) __asm__("" : "+v"(v))
#define ISA_(name) name##_avx512
#define ISA(name) ISA_(name)
#define CBMAX 4

#define RB4(X, CB) X(1, CB) X(2, CB) X(3, CB) X(4, CB)
#define RB6(X, CB) RB4(X, CB) X(5, CB) X(6, CB)
#define RB8(X, CB) RB6(X, CB) X(7, CB) X(8, CB)
#define RB12(X, CB) RB8(X, CB) X(9, CB) X(10, CB) X(11, CB) X(12, CB)
#define RB16(X, CB) RB12(X, CB) X(13, CB) X(14, CB) X(15, CB) X(16, CB)
#define ALL_BLOCKS(X) RB16(X, 1) RB12(X, 2) RB8(X, 3) RB6(X, 4)
#define GF_ENTRY(RB, CB) [CB][RB] = gf_avx512_##RB##_##CB,
#define GFH_ENTRY(RB, CB) [CB][RB] = gfh_avx512_##RB##_##CB,
#define GW_ENTRY(RB, CB) [CB][RB] = gw_avx512_##RB##_##CB,
#define WGEMM_INSTANCES ALL_BLOCKS(GEMM_FWD_KERNEL) ALL_BLOCKS(GEMM_DW_KERNEL)
#define WGEMM_TABLES                                                                                   \
  static const gf_fn_avx512 gf_tab_avx512[CBMAX + 1][17] = {ALL_BLOCKS(GF_ENTRY)};                     \
  static const gf_fn_avx512 gfh_tab_avx512[CBMAX + 1][17] = {ALL_BLOCKS(GFH_ENTRY)};                     \
  static const gw_fn_avx512 gw_tab_avx512[CBMAX + 1][17] = {ALL_BLOCKS(GW_ENTRY)};                     \
  static const int gf_rbmax_avx512[CBMAX + 1] = {0, 16, 12, 8, 6};                                     \
  static const int gw_rbmax_avx512[CBMAX + 1] = {0, 16, 12, 8, 6};

#define ISA_NAME "avx512"
#include "winograd_variants.inc"

#pragma GCC pop_options
