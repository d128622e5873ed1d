/* mbsr nn: layer kernels as forward/backward pairs (llm.c style), each with a naive reference twin.
 *
 * Layout: activations are channels-last (N, D, H, W, C), C innermost, kept so through the whole
 * network. Conv weights are [kd][kh][kw][cin][cout]; bias [cout].
 * Backward functions ACCUMULATE (+=) into every gradient they write (dinp, dweight, dbias);
 * a NULL gradient pointer means "not needed" (frozen layer, or the network input).
 * Kernels do no I/O and no allocation: workspaces are sized once and passed in. */
#ifndef MBSR_NN_H
#define MBSR_NN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MBSR_PREC_FP32 = 0, MBSR_PREC_BF16X3 = 1, MBSR_PREC_BF16 = 2 } mbsr_precision;

typedef struct {
  int n, d, h, w;     /* input batch and spatial size */
  int cin, cout;
  int stride;         /* 1 or 2; padding 1 ("same" for stride 1, PyTorch padding=1 for stride 2) */
  int od, oh, ow;     /* output spatial size: (x - 1) / stride + 1 */
  mbsr_precision prec;
} mbsr_conv3d_dims;

void mbsr_conv3d_dims_init(mbsr_conv3d_dims *s, int n, int d, int h, int w, int cin, int cout, int stride);
/* Floats of workspace the fast kernels need for these dims with nthreads threads. */
size_t mbsr_conv3d_workspace_floats(const mbsr_conv3d_dims *s, int nthreads);

/* out (N,OD,OH,OW,COUT) = conv(inp (N,D,H,W,CIN), weight) + bias. Overwrites out. */
void mbsr_conv3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                         const mbsr_conv3d_dims *s, float *ws);
/* dinp += dL/dinp, dweight += dL/dW, dbias += dL/db (each may be NULL). */
void mbsr_conv3d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const mbsr_conv3d_dims *s, float *ws);
/* Naive reference twins (no workspace). */
void mbsr_conv3d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                             const mbsr_conv3d_dims *s);
void mbsr_conv3d_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const mbsr_conv3d_dims *s);
/* Which kernel family the fast path uses on this CPU ("avx512", "amx-bf16x3", "portable", ...). */
const char *mbsr_conv3d_kernel_name(mbsr_precision p);
/* 1 if the CPU and kernel allow AMX tiles (requests XTILEDATA permission once). */
int mbsr_cpu_has_amx(void);
int mbsr_cpu_has_avx512(void);

#endif
