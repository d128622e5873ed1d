/* The non-convolution layers of the paper's networks as forward/backward pairs (llm.c style):
 * ReLU, LeakyReLU, residual add, global average pooling, dense, sigmoid, MSE loss, binary
 * cross-entropy with logits, Adam and Glorot-uniform initialisation.
 *
 * Every backward ACCUMULATES (+=) into the gradients it writes; a NULL gradient is skipped.
 * These layers are memory-bound and simple, so the "naive" loop is also the fast one: it is
 * vectorised by the compiler and split over OpenMP threads when the tensor is large enough to pay
 * for a parallel region. Formulas follow PyTorch 1.13 (torch.nn.functional, torch.optim.Adam). */
#include <math.h>
#include <stddef.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"

/* Below this many elements a parallel region costs more than it saves. Small loops run serially
 * WITHOUT entering OpenMP: an `if(...)` clause would alternate team sizes, and libgomp mallocs a
 * new team whenever the size changes (a training step must allocate nothing). */
#define PAR_MIN 32768
#define LOOP(n, body)                                                  \
  do {                                                                 \
    if ((n) > PAR_MIN) {                                               \
      _Pragma("omp parallel for simd schedule(static)")                \
      for (size_t i = 0; i < (n); i++) { body; }                       \
    } else {                                                           \
      for (size_t i = 0; i < (n); i++) { body; }                       \
    }                                                                  \
  } while (0)

void mbsr_relu_forward(float *out, const float *inp, size_t n) {
  // out (n), inp (n); out may alias inp
  LOOP(n, out[i] = inp[i] > 0.0f ? inp[i] : 0.0f);
}

void mbsr_relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
  // dinp (n) +=, dout (n), out (n) = the forward OUTPUT (out > 0 exactly where inp > 0)
  LOOP(n, dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f);
}

void mbsr_relu_backward_inplace(float *d, const float *out, size_t n) {
  // d (n) *= (out > 0): the gradient buffer becomes dL/dinp
  LOOP(n, d[i] = out[i] > 0.0f ? d[i] : 0.0f);
}

void mbsr_lrelu_forward(float *out, const float *inp, size_t n, float slope) {
  // out (n), inp (n); out may alias inp; slope > 0
  LOOP(n, out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i]);
}

void mbsr_lrelu_backward(float *dinp, const float *dout, const float *out, size_t n, float slope) {
  // dinp (n) +=; out = forward output (same sign as the input since slope > 0)
  LOOP(n, dinp[i] += out[i] > 0.0f ? dout[i] : slope * dout[i]);
}

void mbsr_lrelu_backward_inplace(float *d, const float *out, size_t n, float slope) {
  LOOP(n, d[i] = out[i] > 0.0f ? d[i] : slope * d[i]);
}

void mbsr_residual_forward(float *out, const float *a, const float *b, size_t n) {
  // out (n) = a + b; out may alias a or b
  LOOP(n, out[i] = a[i] + b[i]);
}

void mbsr_residual_backward(float *da, float *db, const float *dout, size_t n) {
  // da (n) +=, db (n) += dout
  if (da) {
    LOOP(n, da[i] += dout[i]);
  }
  if (db) {
    LOOP(n, db[i] += dout[i]);
  }
}

void mbsr_gap_forward(float *out, const float *inp, int nb, size_t s, int c) {
  // out (N,C) = mean over the S spatial positions of inp (N,S,C)
  for (int b = 0; b < nb; b++) {
    const float *x = inp + (size_t)b * s * c;
    for (int ch = 0; ch < c; ch++) {
      double acc = 0.0; /* serial: the discriminator's pooled maps are small */
      for (size_t p = 0; p < s; p++) acc += x[p * c + ch];
      out[(size_t)b * c + ch] = (float)(acc / (double)s);
    }
  }
}

void mbsr_gap_backward(float *dinp, const float *dout, int nb, size_t s, int c) {
  // dinp (N,S,C) += dout (N,C) / S
  const float inv = 1.0f / (float)s;
  for (int b = 0; b < nb; b++) {
    float *dx = dinp + (size_t)b * s * c;
    const float *g = dout + (size_t)b * c;
    LOOP(s * c, dx[i] += g[i % c] * inv);
  }
}

void mbsr_dense_forward(float *out, const float *inp, const float *weight, const float *bias, int nb, int cin,
                        int cout) {
  // out (N,COUT) = inp (N,CIN) @ weight (CIN,COUT) + bias (COUT) or NULL
  for (int b = 0; b < nb; b++)
    for (int o = 0; o < cout; o++) {
      double acc = bias ? bias[o] : 0.0;
      for (int i = 0; i < cin; i++) acc += (double)inp[(size_t)b * cin + i] * weight[(size_t)i * cout + o];
      out[(size_t)b * cout + o] = (float)acc;
    }
}

void mbsr_dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int nb, int cin, int cout) {
  // dinp (N,CIN) +=, dweight (CIN,COUT) +=, dbias (COUT) +=; dout (N,COUT)
  for (int b = 0; b < nb; b++) {
    const float *g = dout + (size_t)b * cout;
    const float *x = inp + (size_t)b * cin;
    if (dbias)
      for (int o = 0; o < cout; o++) dbias[o] += g[o];
    for (int i = 0; i < cin; i++) {
      double acc = 0.0;
      for (int o = 0; o < cout; o++) {
        if (dweight) dweight[(size_t)i * cout + o] += x[i] * g[o];
        acc += (double)weight[(size_t)i * cout + o] * g[o];
      }
      if (dinp) dinp[(size_t)b * cin + i] += (float)acc;
    }
  }
}

static inline float sigmoidf_(float x) {
  return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

void mbsr_sigmoid_forward(float *out, const float *inp, size_t n) {
  LOOP(n, out[i] = sigmoidf_(inp[i]));
}

void mbsr_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n) {
  // dinp += dout * s (1 - s), out = s = forward output
  LOOP(n, dinp[i] += dout[i] * out[i] * (1.0f - out[i]));
}

double mbsr_mse_forward(const float *pred, const float *target, size_t n, double scale) {
  // scale * sum (pred - target)^2
  double acc = 0.0;
  if (n > PAR_MIN) {
#pragma omp parallel for reduction(+ : acc) schedule(static)
    for (size_t i = 0; i < n; i++) {
      double d = (double)pred[i] - (double)target[i];
      acc += d * d;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      double d = (double)pred[i] - (double)target[i];
      acc += d * d;
    }
  }
  return scale * acc;
}

void mbsr_mse_backward(float *dpred, const float *pred, const float *target, size_t n, double scale) {
  // dpred += 2 scale (pred - target)
  const float s2 = (float)(2.0 * scale);
  LOOP(n, dpred[i] += s2 * (pred[i] - target[i]));
}

double mbsr_bce_logits_forward(const float *logit, const float *target, size_t n, double scale) {
  // scale * sum [ max(x,0) - x y + log(1 + exp(-|x|)) ]   (the stable form PyTorch uses)
  double acc = 0.0;
  for (size_t i = 0; i < n; i++) {
    double x = logit[i], y = target[i];
    acc += (x > 0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
  }
  return scale * acc;
}

void mbsr_bce_logits_backward(float *dlogit, const float *logit, const float *target, size_t n, double scale) {
  // dlogit += scale (sigmoid(x) - y)
  for (size_t i = 0; i < n; i++) dlogit[i] += (float)(scale * ((double)sigmoidf_(logit[i]) - target[i]));
}

void mbsr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float eps, int64_t t) {
  // PyTorch Adam (no weight decay, no amsgrad); t = step number after increment (1, 2, ...):
  // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
  const double bc1 = 1.0 - pow((double)beta1, (double)t);
  const double bc2 = 1.0 - pow((double)beta2, (double)t);
  const float step = (float)(lr / bc1);
  const float rbc2 = (float)(1.0 / sqrt(bc2));
  LOOP(n, {
    float g = grad[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= step * mi / (sqrtf(vi) * rbc2 + eps);
  });
}

void mbsr_glorot_uniform(float *w, size_t n, double fan_in, double fan_out, mbsr_rng *rng) {
  // U(-a, a), a = sqrt(6 / (fan_in + fan_out)); conv: fan_in = 27 cin, fan_out = 27 cout
  const double a = sqrt(6.0 / (fan_in + fan_out));
  for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * mbsr_rng_uniform(rng) - 1.0) * a);
}

int mbsr_all_finite(const float *x, size_t n) {
  int ok = 1;
  if (n > PAR_MIN) {
#pragma omp parallel for reduction(& : ok) schedule(static)
    for (size_t i = 0; i < n; i++) ok &= isfinite(x[i]) ? 1 : 0;
  } else {
    for (size_t i = 0; i < n; i++) ok &= isfinite(x[i]) ? 1 : 0;
  }
  return ok;
}
