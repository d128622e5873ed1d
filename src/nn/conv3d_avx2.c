/* AVX2+FMA direct 3-D convolution row kernels for CPUs without AVX-512 (e.g. AMD Zen 2/3 clusters):
 * the layout and blocking of conv3d_avx512.c with 8-wide vectors (up to 12 accumulators of 16 ymm).
 * Used when cpuid reports AVX2 and FMA but no AVX-512, for COUT a multiple of 8 (other shapes: the
 * portable kernels). Compiled for AVX2 here only; nothing in it runs on older CPUs. */
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include <stddef.h>

#include "conv3d_kernels.h"

#define PIN2(v) __asm__("" : "+x"(v))

#define TMPL2_FWD
#define P 1
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define P 2
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define P 3
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define P 4
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define P 5
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define P 6
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define P 1
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 2
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 3
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 4
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 5
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 6
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 7
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 8
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 9
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 10
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 11
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define P 12
#define CB 1
#include "conv3d_avx2_tmpl.h"
#undef TMPL2_FWD
#define TMPL2_BWW
#define RB 6
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define RB 3
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define RB 2
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define RB 1
#define CB 2
#include "conv3d_avx2_tmpl.h"
#define RB 12
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define RB 3
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define RB 2
#define CB 1
#include "conv3d_avx2_tmpl.h"
#define RB 1
#define CB 1
#include "conv3d_avx2_tmpl.h"
#undef TMPL2_BWW

typedef void (*fwd2_fn)(float *, int, const float *, int, long, long, int, int, int, const float *, int, const float *,
                        const mbsr__epi *, long);
static const fwd2_fn fwd2_tab[3][12] = {{0},
  {fwd2_1_1, fwd2_2_1, fwd2_3_1, fwd2_4_1, fwd2_5_1, fwd2_6_1, fwd2_7_1, fwd2_8_1, fwd2_9_1, fwd2_10_1, fwd2_11_1, fwd2_12_1},
  {fwd2_1_2, fwd2_2_2, fwd2_3_2, fwd2_4_2, fwd2_5_2, fwd2_6_2}};
static const int fwd2_pmax[3] = {0, 12, 6};

void mbsr__conv_fwd_row_avx2(const mbsr__conv_row *a) {
  const int ow_n = a->ow, cout = a->cout;
  const int xps = a->xps ? a->xps : a->stride * a->cin, rlen = a->rlen ? a->rlen : 3 * a->cin;
  const int nd = a->nd ? a->nd : 3, nh = a->nh ? a->nh : 3, ostr = a->ostr ? a->ostr : cout;
  const int cw = a->narrow ? MBSR__CO_BLOCK_AVX2 / 2 : MBSR__CO_BLOCK_AVX2; /* channels per block (cout % 8 == 0) */
  for (int co0 = 0; co0 < cout; co0 += cw) {
    const int cb = cout - co0 >= cw ? cw / 8 : 1;
    const int nblk = (ow_n + fwd2_pmax[cb] - 1) / fwd2_pmax[cb], base = ow_n / nblk, big = ow_n % nblk;
    for (int k = 0, o = 0; k < nblk; k++) {
      const int P = base + (k < big);
      fwd2_tab[cb][P - 1](a->out + (long)o * ostr + co0, ostr, a->x + (long)o * xps, xps, a->rowH, a->rowD, nd, nh,
                          rlen, a->w + co0, cout, a->bias ? a->bias + co0 : NULL, &a->epi, (long)o * ostr + co0);
      o += P;
    }
  }
}

typedef void (*bww2_fn)(float *, int, const float *, int, long, const float *, int, int);
static const bww2_fn bww2_tab[3][4] = {{0}, {bww2_12_1, bww2_3_1, bww2_2_1, bww2_1_1}, {bww2_6_2, bww2_3_2, bww2_2_2, bww2_1_2}};
static const int bww2_rb[3][4] = {{0}, {12, 3, 2, 1}, {6, 3, 2, 1}};

void mbsr__conv_bww_avx2(const mbsr__conv_bww *a) {
  const int cout = a->cout, rlen = a->rlen;
  const int cw = a->narrow ? MBSR__CO_BLOCK_AVX2 / 2 : MBSR__CO_BLOCK_AVX2; /* channels per block (cout % 8 == 0) */
  for (int co0 = 0; co0 < cout; co0 += cw) {
    const int cb = cout - co0 >= cw ? cw / 8 : 1;
    int r = 0;
    for (int k = 0; k < 4; k++) {
      const int rb = bww2_rb[cb][k];
      for (; r + rb <= rlen; r += rb)
        bww2_tab[cb][k](a->dw + (long)r * cout + co0, cout, a->x + r, a->xps, a->rowHs, a->g + co0, a->nrows, a->ow);
    }
  }
}

#pragma GCC pop_options
