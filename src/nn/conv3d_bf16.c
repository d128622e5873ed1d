/* bf16 direct 3-D convolution row kernels for CPUs with AVX512_BF16 (vdpbf16ps) but no AMX: bf16
 * inputs and weights, fp32 accumulation, the same blocking as conv3d_avx512.c with the reduction
 * taken in pairs (one vdpbf16ps = 16 output channels x 2 reduction values). Opt-in (MBSR_PREC_BF16);
 * compiled for AVX512_BF16 and reached only when cpuid reports it. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,avx2")
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "conv3d_kernels.h"

#define PIN(v) __asm__("" : "+v"(v))

#define TMPL_FWDBF
#define P 6
#define CB 4
#include "conv3d_avx512_tmpl.h"
#define P 4
#define CB 4
#include "conv3d_avx512_tmpl.h"
#define P 2
#define CB 4
#include "conv3d_avx512_tmpl.h"
#define P 1
#define CB 4
#include "conv3d_avx512_tmpl.h"
#define P 8
#define CB 3
#include "conv3d_avx512_tmpl.h"
#define P 4
#define CB 3
#include "conv3d_avx512_tmpl.h"
#define P 2
#define CB 3
#include "conv3d_avx512_tmpl.h"
#define P 1
#define CB 3
#include "conv3d_avx512_tmpl.h"
#define P 12
#define CB 2
#include "conv3d_avx512_tmpl.h"
#define P 6
#define CB 2
#include "conv3d_avx512_tmpl.h"
#define P 3
#define CB 2
#include "conv3d_avx512_tmpl.h"
#define P 1
#define CB 2
#include "conv3d_avx512_tmpl.h"
#define P 16
#define CB 1
#include "conv3d_avx512_tmpl.h"
#define P 8
#define CB 1
#include "conv3d_avx512_tmpl.h"
#define P 4
#define CB 1
#include "conv3d_avx512_tmpl.h"
#define P 1
#define CB 1
#include "conv3d_avx512_tmpl.h"
#undef TMPL_FWDBF

typedef void (*fwdbf_fn)(float *, int, const uint16_t *, int, long, long, int, const uint16_t *, int, const float *,
                         int, __mmask16, int);
static const fwdbf_fn tab[5][4] = {{0},
                                   {fwdbf_16_1, fwdbf_8_1, fwdbf_4_1, fwdbf_1_1},
                                   {fwdbf_12_2, fwdbf_6_2, fwdbf_3_2, fwdbf_1_2},
                                   {fwdbf_8_3, fwdbf_4_3, fwdbf_2_3, fwdbf_1_3},
                                   {fwdbf_6_4, fwdbf_4_4, fwdbf_2_4, fwdbf_1_4}};
static const int tab_p[5][4] = {{0}, {16, 8, 4, 1}, {12, 6, 3, 1}, {8, 4, 2, 1}, {6, 4, 2, 1}};

void mbsr__conv_fwd_row_bf16(const mbsr__conv_row_bf *a) {
  const int ow_n = a->ow, cout = a->cout, xps = a->stride * a->cin, rlen2 = (3 * a->cin + 1) / 2;
  for (int co0 = 0; co0 < cout; co0 += 64) {
    int nc = cout - co0 < 64 ? cout - co0 : 64;
    int cb = (nc + 15) / 16;
    __mmask16 lm = (nc & 15) ? (__mmask16)((1u << (nc & 15)) - 1) : 0xFFFF;
    int k = 0;
    while (k < 3 && tab_p[cb][k] > ow_n) k++;
    int P = tab_p[cb][k];
    for (int o = 0; o < ow_n; o += P) {
      int start = o, skip = 0;
      if (o + P > ow_n) start = ow_n - P, skip = o - start;
      tab[cb][k](a->out + (long)start * cout + co0, cout, a->x + (long)start * xps, xps, a->rowH, a->rowD, rlen2,
                 a->w + (long)co0 * 2, cout, a->bias ? a->bias + co0 : NULL, a->accum, lm, skip);
    }
  }
}

void mbsr__f32_to_bf16_avx512(uint16_t *dst, const float *src, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i)));
  }
}

#pragma GCC pop_options
