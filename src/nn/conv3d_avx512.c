/* AVX-512 fp32 direct 3-D convolution kernels (3x3x3, stride 1 or 2), called by conv3d.c only after
 * cpuid says AVX-512 is usable. The whole file is compiled for AVX-512 (the target pragma below is the
 * file-wide form of __attribute__((target(...)))); nothing here is reached on other CPUs.
 *
 * Input is a pre-padded channels-last copy (N, D+2, H+2, W+2, CIN), so no bounds checks are needed;
 * along one padded row the 3 taps x CIN channels a position needs are contiguous, so kw and ci merge
 * into one reduction index r = kw*CIN + ci of length 3*CIN, which matches the weight layout
 * [kd][kh][kw][ci][co] = [kd][kh][r][co].
 * Forward register block: P output positions along W x CB zmm of output channels (P*CB <= 24
 * accumulators); the input value is broadcast into a register (vbroadcastss) once and reused for CB
 * FMAs (an embedded-broadcast memory operand in each FMA halves the speed). The micro-kernels are in
 * conv3d_avx512_tmpl.h, instantiated here per block shape. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "conv3d_kernels.h"

/* Keep a broadcast in a register (stops GCC from folding it into every FMA as {1to16}). */
#define PIN(v) __asm__("" : "+v"(v))

#define TMPL_FWD
#include "conv3d_avx512_rowblocks.inc"
#undef TMPL_FWD

#define TMPL_BWW
#include "conv3d_avx512_wgradblocks.inc"
#undef TMPL_BWW

#define TMPL_FWD1
#define P 1
#include "conv3d_avx512_tmpl.h"
#define P 2
#include "conv3d_avx512_tmpl.h"
#define P 3
#include "conv3d_avx512_tmpl.h"
#define P 4
#include "conv3d_avx512_tmpl.h"
#define P 5
#include "conv3d_avx512_tmpl.h"
#define P 6
#include "conv3d_avx512_tmpl.h"
#define P 7
#include "conv3d_avx512_tmpl.h"
#define P 8
#include "conv3d_avx512_tmpl.h"
#undef TMPL_FWD1

#define TMPL_BWW1
#define RV 1
#include "conv3d_avx512_tmpl.h"
#define RV 2
#include "conv3d_avx512_tmpl.h"
#define RV 3
#include "conv3d_avx512_tmpl.h"
#define RV 4
#include "conv3d_avx512_tmpl.h"
#define RV 5
#include "conv3d_avx512_tmpl.h"
#define RV 6
#include "conv3d_avx512_tmpl.h"
#define RV 7
#include "conv3d_avx512_tmpl.h"
#define RV 8
#include "conv3d_avx512_tmpl.h"
#define RV 9
#include "conv3d_avx512_tmpl.h"
#define RV 10
#include "conv3d_avx512_tmpl.h"
#define RV 11
#include "conv3d_avx512_tmpl.h"
#define RV 12
#include "conv3d_avx512_tmpl.h"
#undef TMPL_BWW1

typedef void (*fwd_fn)(float *, int, const float *, int, long, long, int, int, int, const float *, int, const float *,
                       const mbsr__epi *, long, __mmask16);
/* [CB][P-1]: every block width up to the register budget, so a row splits into near-equal blocks */
static const fwd_fn fwd_tab[5][16] = {{0},
  {fwd_1_1, fwd_2_1, fwd_3_1, fwd_4_1, fwd_5_1, fwd_6_1, fwd_7_1, fwd_8_1, fwd_9_1, fwd_10_1, fwd_11_1, fwd_12_1, fwd_13_1, fwd_14_1, fwd_15_1, fwd_16_1},
  {fwd_1_2, fwd_2_2, fwd_3_2, fwd_4_2, fwd_5_2, fwd_6_2, fwd_7_2, fwd_8_2, fwd_9_2, fwd_10_2, fwd_11_2, fwd_12_2},
  {fwd_1_3, fwd_2_3, fwd_3_3, fwd_4_3, fwd_5_3, fwd_6_3, fwd_7_3, fwd_8_3},
  {fwd_1_4, fwd_2_4, fwd_3_4, fwd_4_4, fwd_5_4, fwd_6_4}};
static const int fwd_pmax[5] = {0, 16, 12, 8, 6};
typedef void (*bww1_fn)(float *, const float *, int, long, const float *, int, int, int);
static const bww1_fn bww1_tab[12] = {bww1_1_x, bww1_2_x, bww1_3_x, bww1_4_x,  bww1_5_x,  bww1_6_x,
                                     bww1_7_x, bww1_8_x, bww1_9_x, bww1_10_x, bww1_11_x, bww1_12_x};
typedef void (*fwd1_fn)(float *, int, const float *, int, long, long, int, int, int, const float *, const float *,
                        const mbsr__epi *, long);
static const fwd1_fn fwd1_tab[8] = {fwd1_1_x, fwd1_2_x, fwd1_3_x, fwd1_4_x, fwd1_5_x, fwd1_6_x, fwd1_7_x, fwd1_8_x};

typedef void (*bww_fn)(float *, int, const float *, int, long, const float *, int, int, __mmask16);
static const bww_fn bww_tab[5][4] = {{0},
                                     {bww_16_1, bww_3_1, bww_2_1, bww_1_1},
                                     {bww_12_2, bww_3_2, bww_2_2, bww_1_2},
                                     {bww_8_3, bww_3_3, bww_2_3, bww_1_3},
                                     {bww_6_4, bww_3_4, bww_2_4, bww_1_4}};
static const int bww_rb[5][4] = {{0}, {16, 3, 2, 1}, {12, 3, 2, 1}, {8, 3, 2, 1}, {6, 3, 2, 1}};

/* One output row (n, od, oh): OW positions x COUT channels. */
void mbsr__conv_fwd_row_avx512(const mbsr__conv_row *a) {
  const int ow_n = a->ow, cout = a->cout;
  const int xps = a->xps ? a->xps : a->stride * a->cin, rlen = a->rlen ? a->rlen : 3 * a->cin;
  const int nd = a->nd ? a->nd : 3, nh = a->nh ? a->nh : 3, ostr = a->ostr ? a->ostr : cout;
  if (cout == 1) {
    const int nblk = (ow_n + 7) / 8, base = ow_n / nblk, big = ow_n % nblk;
    for (int k = 0, o = 0; k < nblk; k++) {
      const int P = base + (k < big);
      fwd1_tab[P - 1](a->out + (long)o * ostr, ostr, a->x + (long)o * xps, xps, a->rowH, a->rowD, nd, nh, rlen, a->w,
                      a->bias, &a->epi, (long)o * ostr);
      o += P;
    }
    return;
  }
  const int cw = a->narrow ? MBSR__CO_BLOCK_AVX512 / 2 : MBSR__CO_BLOCK_AVX512; /* channels per register block */
  for (int co0 = 0; co0 < cout; co0 += cw) {
    int nc = cout - co0 < cw ? cout - co0 : cw;
    int cb = (nc + 15) / 16;
    __mmask16 lm = (nc & 15) ? (__mmask16)((1u << (nc & 15)) - 1) : 0xFFFF;
    /* near-equal blocks of at most pmax positions (21 = 6+5+5+5): no recomputed positions */
    const int nblk = (ow_n + fwd_pmax[cb] - 1) / fwd_pmax[cb], base = ow_n / nblk, big = ow_n % nblk;
    for (int k = 0, o = 0; k < nblk; k++) {
      const int P = base + (k < big);
      fwd_tab[cb][P - 1](a->out + (long)o * ostr + co0, ostr, a->x + (long)o * xps, xps, a->rowH, a->rowD, nd, nh, rlen,
                         a->w + co0, cout, a->bias ? a->bias + co0 : NULL, &a->epi, (long)o * ostr + co0, lm);
      o += P;
    }
  }
}

void mbsr__conv_bww_avx512(const mbsr__conv_bww *a) {
  const int cout = a->cout, rlen = a->rlen;
  if (cout == 1) { /* chunks of up to 12 zmm (192 values) of the reduction */
    for (int r = 0; r < rlen; r += 192) {
      const int len = rlen - r < 192 ? rlen - r : 192;
      bww1_tab[(len + 15) / 16 - 1](a->dw + r, a->x + r, a->xps, a->rowHs, a->g, a->nrows, a->ow, len);
    }
    return;
  }
  const int cw = a->narrow ? MBSR__CO_BLOCK_AVX512 / 2 : MBSR__CO_BLOCK_AVX512; /* channels per register block */
  for (int co0 = 0; co0 < cout; co0 += cw) {
    int nc = cout - co0 < cw ? cout - co0 : cw;
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
