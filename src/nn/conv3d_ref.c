/* Naive reference 3-D convolution (3x3x3 kernel, padding 1, stride 1 or 2), forward and backward.
 * The ground truth the fast kernels (conv3d_*.c) are tested against: plain loops, double accumulation,
 * gather form everywhere (each output element is summed in one double, then stored once).
 *
 * Layout (see include/mbsr/nn.h): activations (N,D,H,W,C) channels-last, weights [kd][kh][kw][cin][cout],
 * bias [cout]. Output index o and input index i along an axis are related by i = o*stride - 1 + k. */
#include <stddef.h>

#include "mbsr/nn.h"

#define KS 3

void mbsr_conv3d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                             const mbsr_conv3d_dims *s) {
  // out (N,OD,OH,OW,COUT), inp (N,D,H,W,CIN), weight (3,3,3,CIN,COUT), bias (COUT) or NULL
  const int st = s->stride, cin = s->cin, cout = s->cout;
  for (int n = 0; n < s->n; n++)
    for (int od = 0; od < s->od; od++)
      for (int oh = 0; oh < s->oh; oh++)
        for (int ow = 0; ow < s->ow; ow++) {
          float *o = out + ((((size_t)n * s->od + od) * s->oh + oh) * s->ow + ow) * cout;
          for (int co = 0; co < cout; co++) {
            double acc = bias ? bias[co] : 0.0;
            for (int kd = 0; kd < KS; kd++) {
              int id = od * st - 1 + kd;
              if (id < 0 || id >= s->d) continue;
              for (int kh = 0; kh < KS; kh++) {
                int ih = oh * st - 1 + kh;
                if (ih < 0 || ih >= s->h) continue;
                for (int kw = 0; kw < KS; kw++) {
                  int iw = ow * st - 1 + kw;
                  if (iw < 0 || iw >= s->w) continue;
                  const float *x = inp + ((((size_t)n * s->d + id) * s->h + ih) * s->w + iw) * cin;
                  const float *wt = weight + ((size_t)((kd * KS + kh) * KS + kw) * cin) * cout + co;
                  for (int ci = 0; ci < cin; ci++) acc += (double)x[ci] * (double)wt[(size_t)ci * cout];
                }
              }
            }
            o[co] = (float)acc;
          }
        }
}

/* Output index along one axis that input index i sees through tap k, or -1 if none. */
static inline int out_index(int i, int k, int st, int on) {
  int t = i + 1 - k;
  if (t < 0 || t % st) return -1;
  t /= st;
  return t < on ? t : -1;
}

void mbsr_conv3d_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const mbsr_conv3d_dims *s) {
  // dinp (N,D,H,W,CIN) +=, dweight (3,3,3,CIN,COUT) +=, dbias (COUT) +=; dout (N,OD,OH,OW,COUT)
  const int st = s->stride, cin = s->cin, cout = s->cout;
  const size_t npos = (size_t)s->n * s->od * s->oh * s->ow;
  if (dbias)
    for (int co = 0; co < cout; co++) {
      double acc = 0.0;
      for (size_t p = 0; p < npos; p++) acc += dout[p * cout + co];
      dbias[co] += (float)acc;
    }
  if (dweight)
    for (int kd = 0; kd < KS; kd++)
      for (int kh = 0; kh < KS; kh++)
        for (int kw = 0; kw < KS; kw++)
          for (int ci = 0; ci < cin; ci++)
            for (int co = 0; co < cout; co++) {
              double acc = 0.0;
              for (int n = 0; n < s->n; n++)
                for (int od = 0; od < s->od; od++) {
                  int id = od * st - 1 + kd;
                  if (id < 0 || id >= s->d) continue;
                  for (int oh = 0; oh < s->oh; oh++) {
                    int ih = oh * st - 1 + kh;
                    if (ih < 0 || ih >= s->h) continue;
                    for (int ow = 0; ow < s->ow; ow++) {
                      int iw = ow * st - 1 + kw;
                      if (iw < 0 || iw >= s->w) continue;
                      size_t po = (((size_t)n * s->od + od) * s->oh + oh) * s->ow + ow;
                      size_t pi = (((size_t)n * s->d + id) * s->h + ih) * s->w + iw;
                      acc += (double)inp[pi * cin + ci] * (double)dout[po * cout + co];
                    }
                  }
                }
              dweight[((size_t)((kd * KS + kh) * KS + kw) * cin + ci) * cout + co] += (float)acc;
            }
  if (dinp)
    for (int n = 0; n < s->n; n++)
      for (int id = 0; id < s->d; id++)
        for (int ih = 0; ih < s->h; ih++)
          for (int iw = 0; iw < s->w; iw++) {
            float *dx = dinp + ((((size_t)n * s->d + id) * s->h + ih) * s->w + iw) * cin;
            for (int ci = 0; ci < cin; ci++) {
              double acc = 0.0;
              for (int kd = 0; kd < KS; kd++) {
                int od = out_index(id, kd, st, s->od);
                if (od < 0) continue;
                for (int kh = 0; kh < KS; kh++) {
                  int oh = out_index(ih, kh, st, s->oh);
                  if (oh < 0) continue;
                  for (int kw = 0; kw < KS; kw++) {
                    int ow = out_index(iw, kw, st, s->ow);
                    if (ow < 0) continue;
                    const float *g = dout + ((((size_t)n * s->od + od) * s->oh + oh) * s->ow + ow) * cout;
                    const float *wt = weight + ((size_t)((kd * KS + kh) * KS + kw) * cin + ci) * cout;
                    for (int co = 0; co < cout; co++) acc += (double)g[co] * (double)wt[co];
                  }
                }
              }
              dx[ci] += (float)acc;
            }
          }
}
