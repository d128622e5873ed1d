/* AVX-512 fp32 direct 3-D convolution kernels (3x3x3, stride 1 or 2), called by conv3d.c only after
 * cpuid says AVX-512 is usable. The whole file is compiled for AVX-512 (pragma below); nothing here is
 * reached on other CPUs.
 *
 * Input is a pre-padded channels-last copy (N, D+2, H+2, W+2, CIN), so no bounds checks are needed;
 * along one padded row the 3 taps x CIN channels a position needs are contiguous, so kw and ci merge
 * into one reduction index r = kw*CIN + ci of length 3*CIN, which matches the weight layout
 * [kd][kh][kw][ci][co] = [kd][kh][r][co].
 * Forward register block: P output positions along W x CB zmm of output channels (P*CB <= 24
 * accumulators); the input value is broadcast into a register (vbroadcastss) once and reused for CB
 * FMAs (an embedded-broadcast memory operand in each FMA halves the speed). */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "conv3d_kernels.h"

#define AI static inline __attribute__((always_inline))
/* Keep a broadcast in a register (stops GCC from folding it into every FMA as {1to16}). */
#define PIN(v) __asm__("" : "+v"(v))

/* One block of P positions x CB zmm of channels. out points at (position 0 of the block, channel co0);
 * x at the padded input of position 0, tap (0,0,0), channel 0; w at [0][0][0][0][co0]. Positions
 * p < skip are computed but not stored (an overlapping tail block). */
AI void fwd_blk(const int P, const int CB, float *out, int ostr, const float *x, int xps, long rowH, long rowD,
                int rlen, const float *w, int wstr, const float *bias, int accum, __mmask16 lm, int skip) {
  __m512 acc[P][CB];
  for (int c = 0; c < CB; c++) {
    __mmask16 m = c == CB - 1 ? lm : 0xFFFF;
    __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * c) : _mm512_setzero_ps();
    for (int p = 0; p < P; p++) acc[p][c] = accum ? _mm512_maskz_loadu_ps(m, out + (long)p * ostr + 16 * c) : b;
  }
  for (int kd = 0; kd < 3; kd++)
    for (int kh = 0; kh < 3; kh++) {
      const float *xr = x + kd * rowD + kh * rowH;
      const float *wr = w + (long)(kd * 3 + kh) * rlen * wstr;
      for (int r = 0; r < rlen; r++) {
        __m512 wv[CB];
        for (int c = 0; c < CB; c++)
          wv[c] = c == CB - 1 ? _mm512_maskz_loadu_ps(lm, wr + (long)r * wstr + 16 * c)
                              : _mm512_loadu_ps(wr + (long)r * wstr + 16 * c);
        for (int p = 0; p < P; p++) {
          __m512 xv = _mm512_set1_ps(xr[(long)p * xps + r]);
          if (CB > 1) PIN(xv);
          for (int c = 0; c < CB; c++) acc[p][c] = _mm512_fmadd_ps(xv, wv[c], acc[p][c]);
        }
      }
    }
  for (int p = skip; p < P; p++)
    for (int c = 0; c < CB; c++) {
      __mmask16 m = c == CB - 1 ? lm : 0xFFFF;
      _mm512_mask_storeu_ps(out + (long)p * ostr + 16 * c, m, acc[p][c]);
    }
}

#define FWD_INST(P, CB)                                                                                      \
  static void fwd_##P##_##CB(float *out, int ostr, const float *x, int xps, long rowH, long rowD, int rlen, \
                             const float *w, int wstr, const float *bias, int accum, __mmask16 lm, int skip) { \
    fwd_blk(P, CB, out, ostr, x, xps, rowH, rowD, rlen, w, wstr, bias, accum, lm, skip);                    \
  }
typedef void (*fwd_fn)(float *, int, const float *, int, long, long, int, const float *, int, const float *, int,
                       __mmask16, int);
FWD_INST(6, 4) FWD_INST(4, 4) FWD_INST(2, 4) FWD_INST(1, 4)
FWD_INST(8, 3) FWD_INST(4, 3) FWD_INST(2, 3) FWD_INST(1, 3)
FWD_INST(12, 2) FWD_INST(6, 2) FWD_INST(3, 2) FWD_INST(1, 2)
FWD_INST(16, 1) FWD_INST(8, 1) FWD_INST(4, 1) FWD_INST(1, 1)
static const fwd_fn fwd_tab[5][4] = {{0},
                                     {fwd_16_1, fwd_8_1, fwd_4_1, fwd_1_1},
                                     {fwd_12_2, fwd_6_2, fwd_3_2, fwd_1_2},
                                     {fwd_8_3, fwd_4_3, fwd_2_3, fwd_1_3},
                                     {fwd_6_4, fwd_4_4, fwd_2_4, fwd_1_4}};
static const int fwd_p[5][4] = {{0}, {16, 8, 4, 1}, {12, 6, 3, 1}, {8, 4, 2, 1}, {6, 4, 2, 1}};

/* COUT = 1: vectorise over the reduction (16 values of r per zmm), P positions at once, then a
 * horizontal sum. */
AI void fwd1_blk(const int P, float *out, const float *x, int xps, long rowH, long rowD, int rlen, const float *w,
                 const float *bias, int accum, int skip) {
  __m512 acc[P];
  for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
  const int rv = rlen & ~15;
  const __mmask16 tm = (__mmask16)((1u << (rlen & 15)) - 1);
  for (int kd = 0; kd < 3; kd++)
    for (int kh = 0; kh < 3; kh++) {
      const float *xr = x + kd * rowD + kh * rowH;
      const float *wr = w + (long)(kd * 3 + kh) * rlen;
      for (int r = 0; r < rv; r += 16) {
        __m512 wv = _mm512_loadu_ps(wr + r);
        for (int p = 0; p < P; p++) acc[p] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + (long)p * xps + r), wv, acc[p]);
      }
      if (tm) {
        __m512 wv = _mm512_maskz_loadu_ps(tm, wr + rv);
        for (int p = 0; p < P; p++)
          acc[p] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, xr + (long)p * xps + rv), wv, acc[p]);
      }
    }
  for (int p = skip; p < P; p++) {
    float v = _mm512_reduce_add_ps(acc[p]) + (bias ? bias[0] : 0.0f);
    out[p] = accum ? out[p] + v : v;
  }
}
static void fwd1_8(float *out, const float *x, int xps, long rowH, long rowD, int rlen, const float *w,
                   const float *bias, int accum, int skip) {
  fwd1_blk(8, out, x, xps, rowH, rowD, rlen, w, bias, accum, skip);
}
static void fwd1_1(float *out, const float *x, int xps, long rowH, long rowD, int rlen, const float *w,
                   const float *bias, int accum, int skip) {
  fwd1_blk(1, out, x, xps, rowH, rowD, rlen, w, bias, accum, skip);
}

/* One output row (n, od, oh): OW positions x COUT channels. */
void mbsr__conv_fwd_row_avx512(const mbsr__conv_row *a) {
  const int ow_n = a->ow, cout = a->cout, xps = a->stride * a->cin, rlen = 3 * a->cin;
  if (cout == 1) {
    int P = ow_n >= 8 ? 8 : 1;
    for (int o = 0; o < ow_n; o += P) {
      int start = o, skip = 0;
      if (o + P > ow_n) start = ow_n - P, skip = o - start;
      (P == 8 ? fwd1_8 : fwd1_1)(a->out + start, a->x + (long)start * xps, xps, a->rowH, a->rowD, rlen, a->w,
                                 a->bias, a->accum, skip);
    }
    return;
  }
  for (int co0 = 0; co0 < cout; co0 += 64) {
    int nc = cout - co0 < 64 ? cout - co0 : 64;
    int cb = (nc + 15) / 16;
    __mmask16 lm = (nc & 15) ? (__mmask16)((1u << (nc & 15)) - 1) : 0xFFFF;
    int k = 0;
    while (k < 3 && fwd_p[cb][k] > ow_n) k++;
    int P = fwd_p[cb][k];
    fwd_fn fn = fwd_tab[cb][k];
    for (int o = 0; o < ow_n; o += P) {
      int start = o, skip = 0;
      if (o + P > ow_n) start = ow_n - P, skip = o - start;
      fn(a->out + (long)start * cout + co0, cout, a->x + (long)start * xps, xps, a->rowH, a->rowD, rlen,
         a->w + co0, cout, a->bias ? a->bias + co0 : NULL, a->accum, lm, skip);
    }
  }
}

/* Backward weights for one tap row (kd, kh) over a set of output rows:
 * dw[r][co] += sum_{oh, ow} x[oh*rowHs + ow*xps + r] * g[(oh*OW + ow)*COUT + co].
 * Register block: RB values of r x CB zmm of channels, the x value broadcast into a register. */
AI void bww_blk(const int RB, const int CB, float *dw, int cout, const float *x, int xps, long rowHs,
                const float *g, int nrows, int ow_n, __mmask16 lm) {
  __m512 acc[RB][CB];
  for (int i = 0; i < RB; i++)
    for (int c = 0; c < CB; c++) acc[i][c] = _mm512_setzero_ps();
  for (int oh = 0; oh < nrows; oh++) {
    const float *xr = x + oh * rowHs;
    const float *gr = g + (long)oh * ow_n * cout;
    for (int o = 0; o < ow_n; o++) {
      __m512 gv[CB];
      for (int c = 0; c < CB; c++)
        gv[c] = c == CB - 1 ? _mm512_maskz_loadu_ps(lm, gr + (long)o * cout + 16 * c)
                            : _mm512_loadu_ps(gr + (long)o * cout + 16 * c);
      for (int i = 0; i < RB; i++) {
        __m512 xv = _mm512_set1_ps(xr[(long)o * xps + i]);
        if (CB > 1) PIN(xv);
        for (int c = 0; c < CB; c++) acc[i][c] = _mm512_fmadd_ps(xv, gv[c], acc[i][c]);
      }
    }
  }
  for (int i = 0; i < RB; i++)
    for (int c = 0; c < CB; c++) {
      __mmask16 m = c == CB - 1 ? lm : 0xFFFF;
      float *d = dw + (long)i * cout + 16 * c;
      _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), acc[i][c]));
    }
}
#define BWW_INST(RB, CB)                                                                                   \
  static void bww_##RB##_##CB(float *dw, int cout, const float *x, int xps, long rowHs, const float *g,   \
                              int nrows, int ow_n, __mmask16 lm) {                                         \
    bww_blk(RB, CB, dw, cout, x, xps, rowHs, g, nrows, ow_n, lm);                                          \
  }
typedef void (*bww_fn)(float *, int, const float *, int, long, const float *, int, int, __mmask16);
BWW_INST(6, 4) BWW_INST(3, 4) BWW_INST(2, 4) BWW_INST(1, 4)
BWW_INST(8, 3) BWW_INST(3, 3) BWW_INST(2, 3) BWW_INST(1, 3)
BWW_INST(12, 2) BWW_INST(3, 2) BWW_INST(2, 2) BWW_INST(1, 2)
BWW_INST(16, 1) BWW_INST(3, 1) BWW_INST(2, 1) BWW_INST(1, 1)
static const bww_fn bww_tab[5][4] = {{0},
                                     {bww_16_1, bww_3_1, bww_2_1, bww_1_1},
                                     {bww_12_2, bww_3_2, bww_2_2, bww_1_2},
                                     {bww_8_3, bww_3_3, bww_2_3, bww_1_3},
                                     {bww_6_4, bww_3_4, bww_2_4, bww_1_4}};
static const int bww_rb[5][4] = {{0}, {16, 3, 2, 1}, {12, 3, 2, 1}, {8, 3, 2, 1}, {6, 3, 2, 1}};

/* COUT = 1: dw[r] += sum_pos x[pos][r] * g[pos], vectorised over r (RV zmm = 16*RV values of r). */
AI void bww1_blk(const int RV, float *dw, const float *x, int xps, long rowHs, const float *g, int nrows, int ow_n,
                 int rlen) {
  __m512 acc[RV];
  __mmask16 m[RV];
  for (int j = 0; j < RV; j++) {
    int left = rlen - 16 * j;
    m[j] = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
    acc[j] = _mm512_setzero_ps();
  }
  for (int oh = 0; oh < nrows; oh++)
    for (int o = 0; o < ow_n; o++) {
      const float *xr = x + oh * rowHs + (long)o * xps;
      __m512 gv = _mm512_set1_ps(g[(long)oh * ow_n + o]);
      for (int j = 0; j < RV; j++) acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[j], xr + 16 * j), gv, acc[j]);
    }
  for (int j = 0; j < RV; j++)
    _mm512_mask_storeu_ps(dw + 16 * j, m[j], _mm512_add_ps(_mm512_maskz_loadu_ps(m[j], dw + 16 * j), acc[j]));
}
static void bww1_12(float *dw, const float *x, int xps, long rowHs, const float *g, int nrows, int ow_n, int rlen) {
  bww1_blk(12, dw, x, xps, rowHs, g, nrows, ow_n, rlen);
}
static void bww1_1(float *dw, const float *x, int xps, long rowHs, const float *g, int nrows, int ow_n, int rlen) {
  bww1_blk(1, dw, x, xps, rowHs, g, nrows, ow_n, rlen);
}

void mbsr__conv_bww_avx512(const mbsr__conv_bww *a) {
  const int cout = a->cout, rlen = a->rlen;
  if (cout == 1) {
    int r = 0;
    for (; r + 192 <= rlen; r += 192) bww1_12(a->dw + r, a->x + r, a->xps, a->rowHs, a->g, a->nrows, a->ow, 192);
    for (; r < rlen; r += 16)
      bww1_1(a->dw + r, a->x + r, a->xps, a->rowHs, a->g, a->nrows, a->ow, rlen - r < 16 ? rlen - r : 16);
    return;
  }
  for (int co0 = 0; co0 < cout; co0 += 64) {
    int nc = cout - co0 < 64 ? cout - co0 : 64;
    int cb = (nc + 15) / 16;
    __mmask16 lm = (nc & 15) ? (__mmask16)((1u << (nc & 15)) - 1) : 0xFFFF;
    int r = 0;
    for (int k = 0; k < 4; k++) {
      int rb = bww_rb[cb][k];
      for (; r + rb <= rlen; r += rb)
        bww_tab[cb][k](a->dw + (long)r * cout + co0, cout, a->x + r, a->xps, a->rowHs, a->g + co0, a->nrows, a->ow,
                       lm);
    }
  }
}

#pragma GCC pop_options
