/* Internal to src/nn: the row kernels of the direct 3-D convolution (conv3d_avx512.c, conv3d_portable.c)
 * and their argument blocks. Driver and threading: conv3d.c. */
#ifndef MBSR_CONV3D_KERNELS_H
#define MBSR_CONV3D_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Fused epilogue of a forward-shaped conv, per output row (pointers at the row's first element, same
 * layout as the output; NULL = unused): out = mask(relu(init_or_bias + conv + res)), where init replaces
 * the bias as the starting value (init == out: accumulate), relu clamps at 0 and mask zeroes where
 * mask <= 0. */
typedef struct {
  const float *init, *res, *mask;
  int relu;
} mbsr__epi;

/* Output channels per register block of the direct fp32 kernels (the wide blocking; the narrow one,
 * mbsr__conv_row.narrow, takes half). */
#define MBSR__CO_BLOCK_AVX512 64
#define MBSR__CO_BLOCK_AVX2 16

/* One output row (n, od, oh) of a forward-shaped conv over a pre-padded input. */
typedef struct {
  float *out;         /* (OW, COUT) of this row */
  const float *x;     /* padded input at (n, od*stride, oh*stride, 0, 0) */
  long rowH, rowD;    /* floats to the next padded row (kh+1) and plane (kd+1) */
  const float *w;     /* [3][3][3][CIN][COUT] */
  const float *bias;  /* (COUT) or NULL */
  int ow, cin, cout, stride;
  mbsr__epi epi;      /* row pointers; all NULL / 0: out = conv + bias */
  /* Another tap layout (0 = the plain 3x3x3 conv's): nd x nh tap rows, each a reduction of rlen
   * contiguous values (weights [nd][nh][rlen][COUT]); ostr, xps floats between consecutive output
   * positions and their inputs. Used by the input gradient of stride-2 convs, one parity class at a
   * time (conv3d.c): 0 = 3, 3, 3*CIN, COUT, STRIDE*CIN. */
  int nd, nh, rlen, ostr, xps;
  int narrow;         /* 1: register blocks of half the widest output-channel block (twice the positions) */
} mbsr__conv_row;

/* Backward weights of one tap row (kd, kh) over nrows consecutive output rows of one (n, od) plane:
 * dw[r][co] += sum_{rows, ow} x[row*rowHs + ow*xps + r] * g[(row*OW + ow)*COUT + co], r < rlen = 3*CIN. */
typedef struct {
  float *dw;          /* (rlen, COUT) slice of the weight gradient for tap (kd, kh) */
  const float *x;     /* padded input at (n, od*stride+kd, oh0*stride+kh, 0, 0) */
  long rowHs;         /* floats between the padded rows of consecutive output rows (stride * padded row) */
  int xps;            /* floats between consecutive output positions (stride * CIN) */
  const float *g;     /* dout at (n, od, oh0, 0, 0) */
  int nrows, ow, rlen, cout;
  int narrow;         /* 1: register blocks of half the widest output-channel block (twice the rows of r) */
} mbsr__conv_bww;

/* The same with bf16 input and weights (AVX512_BF16, fp32 accumulation): x is a padded bf16 copy,
 * w is [3][3][rlen2][COUT][2] bf16 (pairs of consecutive reduction values, rlen2 = ceil(3*CIN/2)). */
typedef struct {
  float *out;
  const uint16_t *x;
  long rowH, rowD;
  const uint16_t *w;
  const float *bias;
  int ow, cin, cout, stride;
  mbsr__epi epi;
} mbsr__conv_row_bf;

void mbsr__conv_fwd_row_bf16(const mbsr__conv_row_bf *a);

/* bf16 weight gradient (stride 1) of one tap row (kd, kh) over the rows of one (n, od) plane, the
 * reduction over pairs of output positions. x: the padded input as pair copies, per padded row
 * [2 parities][K][CIN][2] (pair k of parity p = positions (2k+p, 2k+p+1)); g: dout as [OW2][COUT][2]
 * per output row (OW2 = ceil(OW/2), the odd tail paired with zero). */
typedef struct {
  float *dw;          /* (3*CIN, COUT) slice for tap (kd, kh) */
  const uint16_t *x;  /* pair copy of padded row (n, od+kd, kh) */
  long rowHs;         /* bf16 between consecutive padded rows' pair copies (2*K*CIN*2) */
  int K, cin;
  const uint16_t *g;  /* pair copy of dout row (n, od, 0) */
  long growstr;       /* bf16 between consecutive dout rows' pair copies (OW2*COUT*2) */
  int nrows, npairs, cout;
} mbsr__conv_bww_bf;
void mbsr__conv_bww_bf16(const mbsr__conv_bww_bf *a);
/* One padded row (W+2 positions; src = the unpadded input row (W, C), or NULL for a border row) as pair
 * copies [2][K][C][2]; one dout row (OW, C) as [ceil(OW/2)][C][2]. */
void mbsr__bf16_xpairs_row(uint16_t *dst, const float *src, int w, int c, int K);
void mbsr__bf16_gpairs_row(uint16_t *dst, const float *src, int ow, int c);
/* dst = bf16(src), round to nearest even (AVX512_BF16) */
void mbsr__f32_to_bf16_avx512(uint16_t *dst, const float *src, size_t n);

/* dst (N, DP, HP, WP, C) = src (N, SD, SH, SW, C) placed at 1 + z*i along each axis (z = 1: padding;
 * z = 2: zero insertion), zero elsewhere (DP >= z*(SD-1) + 2 etc.). Orphaned worksharing loop (nowait):
 * call inside a parallel region. conv3d.c. */
void mbsr__pad_copy(float *dst, const float *src, int n, int dp, int hp, int wp, int c, int sd, int sh, int sw, int z);

void mbsr__conv_fwd_row_avx512(const mbsr__conv_row *a);
void mbsr__conv_bww_avx512(const mbsr__conv_bww *a);
void mbsr__conv_fwd_row_avx2(const mbsr__conv_row *a); /* COUT % 8 == 0 */
void mbsr__conv_bww_avx2(const mbsr__conv_bww *a);        /* COUT % 8 == 0 */
void mbsr__conv_fwd_row_portable(const mbsr__conv_row *a);
void mbsr__conv_bww_portable(const mbsr__conv_bww *a);

#endif
