/* conv3d: the naive reference against finite differences, and every fast kernel family available on
 * this CPU against the reference on random odd shapes (stride 1 and 2, 1/odd/64 channels), the AVX2
 * and AVX-512 direct kernels in both blockings (MBSR_CONV_ALGO=direct and direct-narrow). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "mbsr_test.h"

int mbsr__conv3d_force_kernel(const char *name); /* src/nn/conv3d.c (internal) */
int mbsr__conv3d_force_algo(const char *name);   /* src/nn/winograd.c (internal) */
static void fused_family(const char *fam);

static float *rnd(size_t n, mbsr_rng *r, double a) {
  float *p = mbsr_alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = (float)(a * (2.0 * mbsr_rng_uniform(r) - 1.0));
  return p;
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* L = <g, conv(x, w) + b>: linear in each of x, w, b, so a central difference is exact up to rounding. */
static void fd_case(int n, int d, int h, int w, int cin, int cout, int stride) {
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, n, d, h, w, cin, cout, stride);
  size_t ni = (size_t)n * d * h * w * cin, nw = 27 * (size_t)cin * cout, no = (size_t)n * s.od * s.oh * s.ow * cout;
  mbsr_rng *r = mbsr_rng_new(7);
  float *x = rnd(ni, r, 1), *wt = rnd(nw, r, 1), *b = rnd(cout, r, 1), *g = rnd(no, r, 1), *y = rnd(no, r, 1);
  float *dx = mbsr_alloc(ni * 4), *dw = mbsr_alloc(nw * 4), *db = mbsr_alloc(cout * 4);
  mbsr_conv3d_backward_ref(dx, dw, db, g, x, wt, &s);
  const float eps = 0.25f;
  double worst = 0;
  struct { float *p, *grad; size_t n; } t[3] = {{x, dx, ni}, {wt, dw, nw}, {b, db, (size_t)cout}};
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 12; j++) {
      size_t i = mbsr_rng_uint(r, t[k].n);
      float keep = t[k].p[i];
      t[k].p[i] = keep + eps;
      mbsr_conv3d_forward_ref(y, x, wt, b, &s);
      double lp = dot(g, y, no);
      t[k].p[i] = keep - eps;
      mbsr_conv3d_forward_ref(y, x, wt, b, &s);
      double lm = dot(g, y, no);
      t[k].p[i] = keep;
      double fd = (lp - lm) / (2 * eps);
      MT_ASSERT_REL(t[k].grad[i], fd, 1e-4, 1.0);
      double e = fabs(t[k].grad[i] - fd) / fmax(fabs(fd), 1.0);
      if (e > worst) worst = e;
    }
  printf("  fd %dx%dx%dx%d %d->%d s%d: worst rel err %.2e\n", n, d, h, w, cin, cout, stride, worst);
  mbsr_free(x), mbsr_free(wt), mbsr_free(b), mbsr_free(g), mbsr_free(y), mbsr_free(dx), mbsr_free(dw),
      mbsr_free(db);
  mbsr_rng_free(r);
}

static void test_reference_fd(void) {
  fd_case(2, 5, 4, 6, 3, 5, 1);
  fd_case(1, 7, 6, 5, 2, 3, 2);
  fd_case(1, 4, 4, 4, 1, 4, 1);
  fd_case(1, 4, 5, 3, 6, 1, 2);
}

/* max |a-b| / max |b| */
static double relerr(const float *a, const float *b, size_t n) {
  double m = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    m = fmax(m, fabs((double)a[i] - b[i]));
    s = fmax(s, fabs((double)b[i]));
  }
  return m / fmax(s, 1e-30);
}

static const int shapes[][7] = {
    /* n, d, h, w, cin, cout, stride */
    {2, 5, 4, 6, 1, 5, 1},   {1, 7, 5, 9, 3, 7, 2},   {1, 6, 6, 6, 64, 64, 1}, {2, 5, 5, 5, 64, 1, 1},
    {1, 5, 6, 7, 1, 64, 1},  {1, 7, 7, 7, 64, 64, 2}, {1, 4, 5, 30, 17, 33, 1}, {1, 3, 3, 3, 5, 80, 1},
    {1, 4, 4, 26, 64, 32, 1}, {1, 5, 4, 21, 32, 1, 1}, {1, 6, 5, 13, 7, 48, 2}, {1, 3, 4, 2, 9, 20, 1},
    {1, 4, 5, 9, 70, 1, 1},  {1, 5, 3, 11, 5, 1, 2},  {1, 3, 3, 40, 64, 64, 1}, {1, 3, 3, 23, 64, 32, 1},
};

static double g_tol = 2e-5;
static mbsr_precision g_prec = MBSR_PREC_FP32;
static double g_worst[4];

static void compare_family(const char *fam) {
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_kernel(fam), 0);
  mbsr_rng *r = mbsr_rng_new(11);
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    const int *q = shapes[k];
    mbsr_conv3d_dims s;
    mbsr_conv3d_dims_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], q[6]);
    s.prec = g_prec;
    size_t ni = (size_t)s.n * s.d * s.h * s.w * s.cin, nw = 27 * (size_t)s.cin * s.cout,
           no = (size_t)s.n * s.od * s.oh * s.ow * s.cout;
    float *x = rnd(ni, r, 1), *w = rnd(nw, r, 0.2), *b = rnd(s.cout, r, 1), *g = rnd(no, r, 1);
    float *y0 = rnd(no, r, 1), *y1 = rnd(no, r, 1);
    /* gradients start non-zero: backward must accumulate */
    float *dx0 = rnd(ni, r, 1), *dw0 = rnd(nw, r, 1), *db0 = rnd(s.cout, r, 1);
    float *dx1 = mbsr_alloc(ni * 4), *dw1 = mbsr_alloc(nw * 4), *db1 = mbsr_alloc(s.cout * 4);
    memcpy(dx1, dx0, ni * 4), memcpy(dw1, dw0, nw * 4), memcpy(db1, db0, s.cout * 4);
    float *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(&s, 2) * sizeof(float));
    mbsr_conv3d_forward_ref(y0, x, w, b, &s);
    mbsr_conv3d_forward(y1, x, w, b, &s, ws);
    mbsr_conv3d_backward_ref(dx0, dw0, db0, g, x, w, &s);
    mbsr_conv3d_backward(dx1, dw1, db1, g, x, w, &s, ws);
    double ey = relerr(y1, y0, no), ex = relerr(dx1, dx0, ni), ew = relerr(dw1, dw0, nw), eb = relerr(db1, db0, s.cout);
    printf("  %-8s %dx%dx%dx%d %2d->%-2d s%d: out %.1e dx %.1e dw %.1e db %.1e\n", fam, s.n, s.d, s.h, s.w, s.cin,
           s.cout, s.stride, ey, ex, ew, eb);
    double e4[4] = {ey, ex, ew, eb};
    for (int j = 0; j < 4; j++) g_worst[j] = fmax(g_worst[j], e4[j]);
    MT_ASSERT_NEAR(ey, 0, g_tol);
    MT_ASSERT_NEAR(ex, 0, g_tol);
    MT_ASSERT_NEAR(ew, 0, g_tol);
    MT_ASSERT_NEAR(eb, 0, g_tol);
    /* NULL gradients are skipped and leave the others as they are */
    memcpy(dw1, dw0, nw * 4);
    mbsr_conv3d_backward(NULL, dw1, NULL, g, x, w, &s, ws);
    mbsr_conv3d_backward(NULL, NULL, NULL, g, x, w, &s, ws);
    CU_ASSERT(relerr(dw1, dw0, nw) > 1e-3); /* it did add a second time */
    float *all[] = {x, w, b, g, y0, y1, dx0, dw0, db0, dx1, dw1, db1, ws};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) mbsr_free(all[i]);
  }
  mbsr_rng_free(r);
  mbsr__conv3d_force_kernel("auto");
}

static void test_portable_vs_reference(void) { compare_family("portable"); }
static void test_avx2_vs_reference(void) {
  if (!strcmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "portable-fp32-direct")) {
    mbsr_test_skip("this CPU has no AVX2+FMA");
    return;
  }
  compare_family("avx2");
  fused_family("avx2");
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("direct-narrow"), 0);
  compare_family("avx2");
  mbsr__conv3d_force_algo("auto");
}
static void test_avx512_vs_reference(void) {
  if (!mbsr_cpu_has_avx512()) {
    mbsr_test_skip("this CPU has no AVX-512");
    return;
  }
  compare_family("avx512");
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("direct-narrow"), 0);
  compare_family("avx512");
  mbsr__conv3d_force_algo("auto");
}

/* The weight gradient is bit-for-bit the same from run to run (planes go to fixed groups whose partial
 * sums are added in a fixed order, whatever thread ran them). */
static void test_deterministic_dw(void) {
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 3, 7, 6, 9, 16, 24, 1);
  mbsr_rng *r = mbsr_rng_new(3);
  size_t ni = (size_t)s.n * s.d * s.h * s.w * s.cin, nw = 27 * (size_t)s.cin * s.cout, no = (size_t)s.n * s.d * s.h * s.w * s.cout;
  float *x = rnd(ni, r, 1), *w = rnd(nw, r, 1), *g = rnd(no, r, 1), *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(&s, 2) * 4);
  float *a = mbsr_alloc(nw * 4), *b = mbsr_alloc(nw * 4);
  int same = 1;
  mbsr_conv3d_backward(NULL, a, NULL, g, x, w, &s, ws);
  for (int k = 0; k < 5; k++) {
    memset(b, 0, nw * 4);
    mbsr_conv3d_backward(NULL, b, NULL, g, x, w, &s, ws);
    same &= memcmp(a, b, nw * 4) == 0;
  }
  CU_ASSERT(same);
  mbsr_free(x), mbsr_free(w), mbsr_free(g), mbsr_free(ws), mbsr_free(a), mbsr_free(b);
  mbsr_rng_free(r);
}

/* The fused forms equal the plain call followed by the element-wise layer they absorb. */
static void fused_family(const char *fam) {
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_kernel(fam), 0);
  static const int fs[][7] = {{2, 5, 4, 21, 16, 64, 1}, {1, 4, 6, 9, 64, 1, 1}, {1, 5, 5, 7, 3, 20, 2}, {1, 3, 4, 5, 64, 32, 1}};
  mbsr_rng *r = mbsr_rng_new(5);
  for (size_t k = 0; k < sizeof fs / sizeof *fs; k++) {
    const int *q = fs[k];
    mbsr_conv3d_dims s;
    mbsr_conv3d_dims_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], q[6]);
    size_t ni = (size_t)s.n * s.d * s.h * s.w * s.cin, nw = 27 * (size_t)s.cin * s.cout,
           no = (size_t)s.n * s.od * s.oh * s.ow * s.cout;
    float *x = rnd(ni, r, 1), *w = rnd(nw, r, 0.2), *b = rnd(s.cout, r, 1), *g = rnd(no, r, 1), *res = rnd(no, r, 1);
    float *y0 = rnd(no, r, 1), *y1 = rnd(no, r, 1), *mask = rnd(ni, r, 1), *base = rnd(ni, r, 1);
    float *d0 = rnd(ni, r, 1), *d1 = rnd(ni, r, 1), *dw = mbsr_alloc(nw * 4);
    float *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(&s, 2) * sizeof(float));
    /* forward: relu(conv + bias + residual) */
    mbsr_conv3d_forward(y0, x, w, b, &s, ws);
    for (size_t i = 0; i < no; i++) y0[i] = fmaxf(y0[i] + res[i], 0.0f);
    mbsr_conv3d_forward_fused(y1, x, w, b, res, 1, &s, ws);
    double e1 = relerr(y1, y0, no);
    /* backward: (base + dX) * (mask > 0), base a separate tensor */
    memcpy(d0, base, ni * 4);
    mbsr_conv3d_backward(d0, NULL, NULL, g, x, w, &s, ws);
    for (size_t i = 0; i < ni; i++) d0[i] = mask[i] > 0 ? d0[i] : 0.0f;
    mbsr_conv3d_backward_fused(d1, base, mask, dw, NULL, g, x, w, &s, ws);
    double e2 = relerr(d1, d0, ni);
    /* backward from zero, no mask (d1 holds garbage first) */
    memset(d0, 0, ni * 4);
    mbsr_conv3d_backward(d0, NULL, NULL, g, x, w, &s, ws);
    mbsr_conv3d_backward_fused(d1, NULL, NULL, NULL, NULL, g, x, w, &s, ws);
    double e3 = relerr(d1, d0, ni);
    printf("  fused %-9s %dx%dx%dx%d %2d->%-2d s%d: fwd %.1e bwd(base,mask) %.1e bwd(zero) %.1e\n", fam, s.n, s.d, s.h,
           s.w, s.cin, s.cout, s.stride, e1, e2, e3);
    MT_ASSERT_NEAR(e1, 0, 1e-6);
    MT_ASSERT_NEAR(e2, 0, 1e-6);
    MT_ASSERT_NEAR(e3, 0, 1e-6);
    float *all[] = {x, w, b, g, res, y0, y1, mask, base, d0, d1, dw, ws};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) mbsr_free(all[i]);
  }
  mbsr_rng_free(r);
  mbsr__conv3d_force_kernel("auto");
}

static void test_fused_epilogues(void) {
  fused_family("reference");
  fused_family("portable");
  if (mbsr_cpu_has_avx512()) fused_family("avx512");
}

/* bf16 operands with fp32 accumulation: about 8 significant bits per factor. Layers with cin >= 8 and
 * cout >= 16 run in bf16 (output, dX; dW too for stride 1); the others stay fp32. Measured here on
 * these shapes: max |err| / max |ref| up to ~3e-3; the tolerance is 1.5e-2. */
static void test_bf16_vs_reference(void) {
  if (!mbsr_conv3d_precision_available(MBSR_PREC_BF16)) {
    mbsr_test_skip("no bf16 conv kernel on this CPU (needs AVX512_BF16)");
    return;
  }
  g_prec = MBSR_PREC_BF16;
  g_tol = 1.5e-2;
  memset(g_worst, 0, sizeof g_worst);
  compare_family("avx512");
  printf("  bf16 worst: out %.2e dx %.2e dw %.2e db %.2e\n", g_worst[0], g_worst[1], g_worst[2], g_worst[3]);
  CU_ASSERT(g_worst[0] > 1e-5); /* it really ran in bf16 */
  CU_ASSERT(g_worst[2] > 1e-5); /* the weight gradient too */
  g_prec = MBSR_PREC_FP32;
  g_tol = 2e-5;
}

int main(void) {
  static const mbsr_test_case cases[] = {{"reference_fd", test_reference_fd},
                                         {"portable_vs_reference", test_portable_vs_reference},
                                         {"avx2_vs_reference", test_avx2_vs_reference},
                                         {"avx512_vs_reference", test_avx512_vs_reference},
                                         {"bf16_vs_reference", test_bf16_vs_reference},
                                         {"fused_epilogues", test_fused_epilogues},
                                         {"deterministic_dw", test_deterministic_dw},
                                         {NULL, NULL}};
  return mbsr_test_main("conv3d", cases);
}
