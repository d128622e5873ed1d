/* 3-D convolution: dims, workspace sizing and the run-time dispatch to the fastest kernel family
 * this CPU supports. Kernels live in conv3d_ref.c (naive) and conv3d_*.c (fast paths). */
#include <stddef.h>

#include "mbsr/nn.h"
#include "nn_internal.h"

void mbsr_conv3d_dims_init(mbsr_conv3d_dims *s, int n, int d, int h, int w, int cin, int cout, int stride) {
  s->n = n;
  s->d = d;
  s->h = h;
  s->w = w;
  s->cin = cin;
  s->cout = cout;
  s->stride = stride;
  s->od = (d - 1) / stride + 1;
  s->oh = (h - 1) / stride + 1;
  s->ow = (w - 1) / stride + 1;
  s->prec = MBSR_PREC_FP32;
}

size_t mbsr_conv3d_workspace_floats(const mbsr_conv3d_dims *s, int nthreads) {
  (void)s;
  (void)nthreads;
  return 0; /* the reference path needs none; grows with the fast kernels */
}

void mbsr_conv3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                         const mbsr_conv3d_dims *s, float *ws) {
  (void)ws;
  mbsr_conv3d_forward_ref(out, inp, weight, bias, s);
}

void mbsr_conv3d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const mbsr_conv3d_dims *s, float *ws) {
  (void)ws;
  mbsr_conv3d_backward_ref(dinp, dweight, dbias, dout, inp, weight, s);
}

const char *mbsr_conv3d_kernel_name(mbsr_precision p) {
  (void)p;
  return "reference";
}
