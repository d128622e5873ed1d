/* The non-conv layers: every backward against central finite differences of its forward, the
 * accumulate (+=) contract, Adam against a double-precision transcription of PyTorch's update,
 * Glorot bounds and variance.
 *
 * Finite differences run on the float32 kernels: the scalar probed is L = sum_i r_i out_i (random
 * r, summed in double); step h = 1e-2 for the piecewise-linear layers (inputs kept >= 0.05 away
 * from the kinks so the step never crosses one: the difference is then exact up to rounding,
 * tolerance 1e-3 relative), h = 1e-3 for sigmoid and the losses (tolerance 2e-3 relative). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "mbsr_test.h"

static mbsr_rng *g_rng;

static void fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * mbsr_rng_uniform(g_rng));
}
/* values in [-1,1] at least 0.05 away from 0 */
static void fill_away0(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double u = 0.05 + 0.95 * mbsr_rng_uniform(g_rng);
    x[i] = (float)(mbsr_rng_uniform(g_rng) < 0.5 ? -u : u);
  }
}
static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* A layer under test: y = f(x) with parameters p; fwd computes out from (x, p). */
typedef void (*fwd_fn)(float *out, const float *x, const float *p, void *ctx);

/* Compare analytic d(r.out)/dv for v = x or p with central differences. */
static int fd_compare(const char *what, fwd_fn f, void *ctx, float *x, float *p, float *v, size_t nv,
                      const float *analytic, const float *r, size_t nout, float h, double tol) {
  float *out = malloc(sizeof(float) * nout);
  int bad = 0;
  double gmax = 0;
  for (size_t i = 0; i < nv; i++) gmax = fmax(gmax, fabs(analytic[i]));
  for (size_t i = 0; i < nv; i++) {
    float keep = v[i];
    v[i] = keep + h;
    f(out, x, p, ctx);
    double lp = dot(r, out, nout);
    v[i] = keep - h;
    f(out, x, p, ctx);
    double lm = dot(r, out, nout);
    v[i] = keep;
    double fd = (lp - lm) / (2.0 * h);
    if (fabs(fd - analytic[i]) > tol * fmax(fabs(analytic[i]), 0.1 * gmax)) {
      if (bad < 3) fprintf(stderr, "  %s[%zu]: analytic %.7g, finite difference %.7g\n", what, i, analytic[i], fd);
      bad++;
    }
  }
  free(out);
  return bad;
}

/* ---- ReLU / LeakyReLU ---- */
static void relu_f(float *o, const float *x, const float *p, void *c) { mbsr_relu_forward(o, x, *(size_t *)c); }
static void lrelu_f(float *o, const float *x, const float *p, void *c) {
  mbsr_lrelu_forward(o, x, *(size_t *)c, 0.2f);
}
static void sigmoid_f(float *o, const float *x, const float *p, void *c) { mbsr_sigmoid_forward(o, x, *(size_t *)c); }

static void test_elementwise(void) {
  size_t n = 257;
  float *x = malloc(4 * n), *o = malloc(4 * n), *r = malloc(4 * n), *d = calloc(n, 4), *d2 = malloc(4 * n);
  fill_away0(x, n);
  fill(r, n, -1, 1);
  /* relu: backward accumulates; the in-place form equals it */
  mbsr_relu_forward(o, x, n);
  memset(d, 0, 4 * n);
  mbsr_relu_backward(d, r, o, n);
  MT_ASSERT_INT_EQ(fd_compare("relu dx", relu_f, &n, x, NULL, x, n, d, r, n, 1e-2f, 1e-3), 0);
  memcpy(d2, r, 4 * n);
  mbsr_relu_backward_inplace(d2, o, n);
  CU_ASSERT(memcmp(d, d2, 4 * n) == 0);
  mbsr_relu_backward(d, r, o, n);
  for (size_t i = 0; i < n; i++) MT_ASSERT_NEAR(d[i], 2 * d2[i], 0);
  /* leaky relu */
  mbsr_lrelu_forward(o, x, n, 0.2f);
  memset(d, 0, 4 * n);
  mbsr_lrelu_backward(d, r, o, n, 0.2f);
  MT_ASSERT_INT_EQ(fd_compare("lrelu dx", lrelu_f, &n, x, NULL, x, n, d, r, n, 1e-2f, 1e-3), 0);
  memcpy(d2, r, 4 * n);
  mbsr_lrelu_backward_inplace(d2, o, n, 0.2f);
  CU_ASSERT(memcmp(d, d2, 4 * n) == 0);
  /* in place forward equals out of place */
  memcpy(d2, x, 4 * n);
  mbsr_lrelu_forward(d2, d2, n, 0.2f);
  CU_ASSERT(memcmp(d2, o, 4 * n) == 0);
  /* sigmoid */
  fill(x, n, -6, 6);
  mbsr_sigmoid_forward(o, x, n);
  memset(d, 0, 4 * n);
  mbsr_sigmoid_backward(d, r, o, n);
  MT_ASSERT_INT_EQ(fd_compare("sigmoid dx", sigmoid_f, &n, x, NULL, x, n, d, r, n, 1e-3f, 2e-3), 0);
  for (size_t i = 0; i < n; i++) MT_ASSERT_NEAR(o[i], 1.0 / (1.0 + exp(-(double)x[i])), 1e-6);
  /* residual: da, db += dout; NULL skipped */
  memset(d, 0, 4 * n);
  memset(d2, 0, 4 * n);
  mbsr_residual_forward(o, x, r, n);
  for (size_t i = 0; i < n; i++) MT_ASSERT_NEAR(o[i], x[i] + r[i], 0);
  mbsr_residual_backward(d, d2, r, n);
  mbsr_residual_backward(d, NULL, r, n);
  for (size_t i = 0; i < n; i++) {
    MT_ASSERT_NEAR(d[i], 2 * r[i], 0);
    MT_ASSERT_NEAR(d2[i], r[i], 0);
  }
  free(x);
  free(o);
  free(r);
  free(d);
  free(d2);
}

/* Big enough for the OpenMP paths (> 32768 elements). */
static void test_elementwise_parallel(void) {
  size_t n = 100003;
  float *x = malloc(4 * n), *o = malloc(4 * n), *r = malloc(4 * n), *d = calloc(n, 4);
  fill(x, n, -1, 1);
  fill(r, n, -1, 1);
  mbsr_relu_forward(o, x, n);
  mbsr_relu_backward(d, r, o, n);
  int ok = 1;
  for (size_t i = 0; i < n; i++) ok &= o[i] == (x[i] > 0 ? x[i] : 0) && d[i] == (x[i] > 0 ? r[i] : 0);
  CU_ASSERT(ok);
  double s = mbsr_mse_forward(x, r, n, 1.0), ref = 0;
  for (size_t i = 0; i < n; i++) ref += ((double)x[i] - r[i]) * ((double)x[i] - r[i]);
  MT_ASSERT_REL(s, ref, 1e-12, 1e-30);
  CU_ASSERT(mbsr_all_finite(x, n));
  x[n - 7] = NAN;
  CU_ASSERT(!mbsr_all_finite(x, n));
  x[n - 7] = INFINITY;
  CU_ASSERT(!mbsr_all_finite(x, n));
  free(x);
  free(o);
  free(r);
  free(d);
}

/* ---- global average pooling and dense ---- */
typedef struct {
  int nb, cin, cout;
  size_t s;
} shp;
static void gap_f(float *o, const float *x, const float *p, void *c) {
  shp *s = c;
  mbsr_gap_forward(o, x, s->nb, s->s, s->cin);
}
static void dense_f(float *o, const float *x, const float *p, void *c) {
  shp *s = c;
  mbsr_dense_forward(o, x, p, p + (size_t)s->cin * s->cout, s->nb, s->cin, s->cout);
}

static void test_gap_dense(void) {
  shp s = {3, 5, 4, 7};
  size_t nx = (size_t)s.nb * s.s * s.cin, no = (size_t)s.nb * s.cin;
  float *x = malloc(4 * nx), *o = malloc(4 * no), *r = malloc(4 * no), *d = calloc(nx, 4);
  fill(x, nx, -1, 1);
  fill(r, no, -1, 1);
  mbsr_gap_forward(o, x, s.nb, s.s, s.cin);
  mbsr_gap_backward(d, r, s.nb, s.s, s.cin);
  MT_ASSERT_INT_EQ(fd_compare("gap dx", gap_f, &s, x, NULL, x, nx, d, r, no, 1e-2f, 1e-3), 0);
  free(x);
  free(o);
  free(r);
  free(d);
  /* dense */
  size_t nin = (size_t)s.nb * s.cin, np = (size_t)s.cin * s.cout + s.cout, nout = (size_t)s.nb * s.cout;
  x = malloc(4 * nin);
  float *p = malloc(4 * np), *dp = calloc(np, 4);
  o = malloc(4 * nout);
  r = malloc(4 * nout);
  d = calloc(nin, 4);
  fill(x, nin, -1, 1);
  fill(p, np, -1, 1);
  fill(r, nout, -1, 1);
  mbsr_dense_forward(o, x, p, p + (size_t)s.cin * s.cout, s.nb, s.cin, s.cout);
  mbsr_dense_backward(d, dp, dp + (size_t)s.cin * s.cout, r, x, p, s.nb, s.cin, s.cout);
  MT_ASSERT_INT_EQ(fd_compare("dense dx", dense_f, &s, x, p, x, nin, d, r, nout, 1e-2f, 1e-3), 0);
  MT_ASSERT_INT_EQ(fd_compare("dense dW,db", dense_f, &s, x, p, p, np, dp, r, nout, 1e-2f, 1e-3), 0);
  /* accumulate */
  float *dp2 = malloc(4 * np);
  memcpy(dp2, dp, 4 * np);
  mbsr_dense_backward(NULL, dp, dp + (size_t)s.cin * s.cout, r, x, p, s.nb, s.cin, s.cout);
  for (size_t i = 0; i < np; i++) MT_ASSERT_NEAR(dp[i], 2 * dp2[i], 1e-6);
  free(dp2);
  free(x);
  free(p);
  free(dp);
  free(o);
  free(r);
  free(d);
}

/* ---- losses: scalar output, so r = 1 ---- */
typedef struct {
  const float *t;
  size_t n;
  double scale;
  int bce;
} lossctx;
static void loss_f(float *o, const float *x, const float *p, void *c) {
  lossctx *l = c;
  /* the loss in float would lose the difference: return it split as hi + lo */
  double v = l->bce ? mbsr_bce_logits_forward(x, l->t, l->n, l->scale) : mbsr_mse_forward(x, l->t, l->n, l->scale);
  o[0] = (float)v;
  o[1] = (float)(v - (double)o[0]);
}

static void test_losses(void) {
  size_t n = 37;
  float *x = malloc(4 * n), *t = malloc(4 * n), *d = calloc(n, 4), one[2] = {1, 1};
  fill(x, n, -3, 3);
  fill(t, n, 0, 1);
  lossctx l = {t, n, 1.0 / (n * 2.0), 0};
  mbsr_mse_backward(d, x, t, n, l.scale);
  MT_ASSERT_INT_EQ(fd_compare("mse dpred", loss_f, &l, x, NULL, x, n, d, one, 2, 1e-3f, 2e-3), 0);
  /* BCE with logits, targets 0/1 and soft; compare the value with the naive formula too */
  for (size_t i = 0; i < n; i++) t[i] = i % 3 == 0 ? 0.0f : (i % 3 == 1 ? 1.0f : t[i]);
  l.bce = 1;
  l.scale = 1.0 / n;
  memset(d, 0, 4 * n);
  mbsr_bce_logits_backward(d, x, t, n, l.scale);
  MT_ASSERT_INT_EQ(fd_compare("bce dlogit", loss_f, &l, x, NULL, x, n, d, one, 2, 1e-3f, 2e-3), 0);
  double ref = 0;
  for (size_t i = 0; i < n; i++) {
    double s = 1.0 / (1.0 + exp(-(double)x[i]));
    ref -= t[i] * log(s) + (1 - t[i]) * log(1 - s);
  }
  MT_ASSERT_REL(mbsr_bce_logits_forward(x, t, n, 1.0 / n), ref / n, 1e-7, 1e-30); /* naive log(1-s) loses ~1e-9 */
  /* large logits stay finite */
  float big[2] = {80.0f, -80.0f}, tt[2] = {0.0f, 1.0f};
  MT_ASSERT_NEAR(mbsr_bce_logits_forward(big, tt, 2, 0.5), 80.0, 1e-9);
  free(x);
  free(t);
  free(d);
}

/* ---- Adam: 3 steps against the update written out in double (PyTorch's formula) ---- */
static void test_adam(void) {
  size_t n = 50;
  float *p = malloc(4 * n), *g = malloc(4 * n), *m = calloc(n, 4), *v = calloc(n, 4);
  double *pd = malloc(8 * n), *md = calloc(n, 8), *vd = calloc(n, 8);
  fill(p, n, -1, 1);
  for (size_t i = 0; i < n; i++) pd[i] = p[i];
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (int t = 1; t <= 3; t++) {
    fill(g, n, -0.1, 0.1);
    g[0] = 0.0f; /* zero gradient: parameter stays */
    mbsr_adam_update(p, g, m, v, n, (float)lr, (float)b1, (float)b2, (float)eps, t);
    for (size_t i = 0; i < n; i++) {
      md[i] = b1 * md[i] + (1 - b1) * g[i];
      vd[i] = b2 * vd[i] + (1 - b2) * (double)g[i] * g[i];
      double mh = md[i] / (1 - pow(b1, t)), vh = vd[i] / (1 - pow(b2, t));
      pd[i] -= lr * mh / (sqrt(vh) + eps);
    }
  }
  double worst = 0;
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - pd[i]));
  printf("\n  adam: max |float - double| after 3 steps %.2e\n", worst);
  CU_ASSERT(worst < 1e-6);
  MT_ASSERT_NEAR(p[0], pd[0], 0);
  free(p);
  free(g);
  free(m);
  free(v);
  free(pd);
  free(md);
  free(vd);
}

static void test_glorot(void) {
  size_t n = 27 * 64 * 64;
  float *w = malloc(4 * n);
  mbsr_glorot_uniform(w, n, 27.0 * 64, 27.0 * 64, g_rng);
  double a = sqrt(6.0 / (27.0 * 128)), s = 0, s2 = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    s += w[i];
    s2 += (double)w[i] * w[i];
    mx = fmax(mx, fabs(w[i]));
  }
  CU_ASSERT(mx <= a);
  CU_ASSERT(mx > 0.99 * a);
  MT_ASSERT_NEAR(s / n, 0.0, 0.01 * a);
  MT_ASSERT_REL(s2 / n, a * a / 3.0, 0.02, 0);
  free(w);
}

int main(void) {
  g_rng = mbsr_rng_new(12345);
  const mbsr_test_case cases[] = {
      {"relu_lrelu_sigmoid_residual", test_elementwise},
      {"elementwise_openmp_paths", test_elementwise_parallel},
      {"gap_dense", test_gap_dense},
      {"mse_bce_losses", test_losses},
      {"adam_vs_double", test_adam},
      {"glorot_uniform", test_glorot},
      {NULL, NULL},
  };
  int rc = mbsr_test_main("layers", cases);
  mbsr_rng_free(g_rng);
  return rc;
}
