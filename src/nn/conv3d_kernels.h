/* Internal to src/nn: the row kernels of the direct 3-D convolution (conv3d_avx512.c, conv3d_portable.c)
 * and their argument blocks. Driver and threading: conv3d.c. */
#ifndef MBSR_CONV3D_KERNELS_H
#define MBSR_CONV3D_KERNELS_H

/* One output row (n, od, oh) of a forward-shaped conv over a pre-padded input. */
typedef struct {
  float *out;         /* (OW, COUT) of this row */
  const float *x;     /* padded input at (n, od*stride, oh*stride, 0, 0) */
  long rowH, rowD;    /* floats to the next padded row (kh+1) and plane (kd+1) */
  const float *w;     /* [3][3][3][CIN][COUT] */
  const float *bias;  /* (COUT) or NULL */
  int ow, cin, cout, stride;
  int accum;          /* 1: out += conv (bias ignored); 0: out = conv + bias */
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
} mbsr__conv_bww;

void mbsr__conv_fwd_row_avx512(const mbsr__conv_row *a);
void mbsr__conv_bww_avx512(const mbsr__conv_bww *a);
void mbsr__conv_fwd_row_portable(const mbsr__conv_row *a);
void mbsr__conv_bww_portable(const mbsr__conv_bww *a);

#endif
