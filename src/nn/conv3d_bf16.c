/* bf16 direct 3-D convolution row kernels for CPUs with AVX512_BF16 (vdpbf16ps): bf16
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
#include "conv3d_avx512_rowblocks.inc"
#undef TMPL_FWDBF

typedef void (*fwdbf_fn)(float *, int, const uint16_t *, int, long, long, int, const uint16_t *, int, const float *,
                         const mbsr__epi *, long, __mmask16);
/* [CB][P-1]: every block width up to the register budget, so a row splits into near-equal blocks */
static const fwdbf_fn fwdbf_tab[5][16] = {{0},
  {fwdbf_1_1, fwdbf_2_1, fwdbf_3_1, fwdbf_4_1, fwdbf_5_1, fwdbf_6_1, fwdbf_7_1, fwdbf_8_1, fwdbf_9_1, fwdbf_10_1, fwdbf_11_1, fwdbf_12_1, fwdbf_13_1, fwdbf_14_1, fwdbf_15_1, fwdbf_16_1},
  {fwdbf_1_2, fwdbf_2_2, fwdbf_3_2, fwdbf_4_2, fwdbf_5_2, fwdbf_6_2, fwdbf_7_2, fwdbf_8_2, fwdbf_9_2, fwdbf_10_2, fwdbf_11_2, fwdbf_12_2},
  {fwdbf_1_3, fwdbf_2_3, fwdbf_3_3, fwdbf_4_3, fwdbf_5_3, fwdbf_6_3, fwdbf_7_3, fwdbf_8_3},
  {fwdbf_1_4, fwdbf_2_4, fwdbf_3_4, fwdbf_4_4, fwdbf_5_4, fwdbf_6_4}};
static const int fwdbf_pmax[5] = {0, 16, 12, 8, 6};

void mbsr__conv_fwd_row_bf16(const mbsr__conv_row_bf *a) {
  const int ow_n = a->ow, cout = a->cout, xps = a->stride * a->cin, rlen2 = (3 * a->cin + 1) / 2;
  for (int co0 = 0; co0 < cout; co0 += 64) {
    int nc = cout - co0 < 64 ? cout - co0 : 64;
    int cb = (nc + 15) / 16;
    __mmask16 lm = (nc & 15) ? (__mmask16)((1u << (nc & 15)) - 1) : 0xFFFF;
    const int nblk = (ow_n + fwdbf_pmax[cb] - 1) / fwdbf_pmax[cb], base = ow_n / nblk, big = ow_n % nblk;
    for (int k = 0, o = 0; k < nblk; k++) {
      const int P = base + (k < big);
      fwdbf_tab[cb][P - 1](a->out + (long)o * cout + co0, cout, a->x + (long)o * xps, xps, a->rowH, a->rowD, rlen2,
                           a->w + (long)co0 * 2, cout, a->bias ? a->bias + co0 : NULL, &a->epi, (long)o * cout + co0,
                           lm);
      o += P;
    }
  }
}

#define TMPL_BWWBF
#include "conv3d_avx512_wgradblocks.inc"
#undef TMPL_BWWBF

typedef void (*bwwbf_fn)(float *, int, const uint16_t *, long, const int *, int, const uint16_t *, long, int, int,
                         __mmask16);
static const bwwbf_fn bwwbf_tab[5][4] = {{0},
                                         {bwwbf_16_1, bwwbf_3_1, bwwbf_2_1, bwwbf_1_1},
                                         {bwwbf_12_2, bwwbf_3_2, bwwbf_2_2, bwwbf_1_2},
                                         {bwwbf_8_3, bwwbf_3_3, bwwbf_2_3, bwwbf_1_3},
                                         {bwwbf_6_4, bwwbf_3_4, bwwbf_2_4, bwwbf_1_4}};
static const int bwwbf_rb[5][4] = {{0}, {16, 3, 2, 1}, {12, 3, 2, 1}, {8, 3, 2, 1}, {6, 3, 2, 1}};

void mbsr__conv_bww_bf16(const mbsr__conv_bww_bf *a) {
  const int cout = a->cout, cin = a->cin, rlen = 3 * cin;
  for (int co0 = 0; co0 < cout; co0 += 64) {
    int nc = cout - co0 < 64 ? cout - co0 : 64;
    int cb = (nc + 15) / 16;
    __mmask16 lm = (nc & 15) ? (__mmask16)((1u << (nc & 15)) - 1) : 0xFFFF;
    int r = 0;
    for (int k = 0; k < 4; k++) {
      const int rb = bwwbf_rb[cb][k];
      for (; r + rb <= rlen; r += rb) {
        int off[16];
        for (int i = 0; i < rb; i++) { /* value r+i: tap kw, channel ci, in the parity copy of position j*2+kw */
          const int kw = (r + i) / cin, ci = (r + i) % cin;
          off[i] = (kw & 1) * a->K * cin * 2 + ((kw >> 1) * cin + ci) * 2;
        }
        bwwbf_tab[cb][k](a->dw + (long)r * cout + co0, cout, a->x, a->rowHs, off, 2 * cin, a->g + (long)co0 * 2,
                         a->growstr, a->nrows, a->npairs, lm);
      }
    }
  }
}

/* dst[i][2] = (bf16(a[i]), bf16(b[i])) for i < n; a NULL operand reads as zeros. */
static void pair_interleave(uint16_t *dst, const float *a, const float *b, int n) {
  int i = 0;
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    __m512 va = a ? _mm512_maskz_loadu_ps(m, a + i) : _mm512_setzero_ps();
    __m512 vb = b ? _mm512_maskz_loadu_ps(m, b + i) : _mm512_setzero_ps();
    __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(va));
    __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(vb));
    _mm512_mask_storeu_epi32(dst + 2 * i, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
  }
}

void mbsr__bf16_xpairs_row(uint16_t *dst, const float *src, int w, int c, int K) {
  for (int p = 0; p < 2; p++)
    for (int k = 0; k < K; k++) {
      const int q0 = 2 * k + p, q1 = q0 + 1; /* padded positions; input position q - 1 */
      const float *a = src && q0 >= 1 && q0 <= w ? src + (long)(q0 - 1) * c : NULL;
      const float *b = src && q1 >= 1 && q1 <= w ? src + (long)(q1 - 1) * c : NULL;
      pair_interleave(dst + ((long)p * K + k) * c * 2, a, b, c);
    }
}

void mbsr__bf16_gpairs_row(uint16_t *dst, const float *src, int ow, int c) {
  for (int j = 0; j < (ow + 1) / 2; j++)
    pair_interleave(dst + (long)j * c * 2, src + (long)(2 * j) * c, 2 * j + 1 < ow ? src + (long)(2 * j + 1) * c : NULL,
                    c);
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
