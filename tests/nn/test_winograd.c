/* Winograd convolution (src/nn/winograd.c): each pass (forward, input gradient, weight gradient) against
 * a float64 reference on the paper's shape (64 -> 64, batch 8 of 21^3) and on odd shapes, for every tile
 * variant and vector ISA this CPU has; the fused epilogues; bitwise-deterministic weight gradients; the
 * automatic choice. Accuracy: max |diff| / max |ref| <= 1e-5 (the bound). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "mbsr_test.h"

int mbsr__conv3d_force_kernel(const char *name); /* src/nn/conv3d.c (internal) */
int mbsr__conv3d_force_algo(const char *name);   /* src/nn/winograd.c (internal) */

static float *rnd(size_t n, mbsr_rng *r, double lo, double hi) {
  float *p = mbsr_alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * mbsr_rng_uniform(r));
  return p;
}

/* ---- float64 references (stride 1, padding 1), OpenMP over independent outputs ----
 * Test scaffolding, not the code under test: left out of the ASan/UBSan instrumentation (REF), which
 * made them 20x slower there. */
#define CMAX 128
#define REF __attribute__((no_sanitize_address, no_sanitize_undefined))

/* Voxel v of (N,D,H,W) and the voxel at tap k (0..26) from it, shifted by sign*(k - 1) per axis: its row
 * of c channels in t, or NULL outside the volume. */
REF static const float *tap(const float *t, const mbsr_conv3d_dims *s, long v, int k, int sign, int c) {
  const int x = (int)(v % s->w), y = (int)(v / s->w % s->h), z = (int)(v / ((long)s->w * s->h) % s->d);
  const long n = v / ((long)s->w * s->h * s->d);
  const int iz = z + sign * (k / 9 - 1), iy = y + sign * (k / 3 % 3 - 1), ix = x + sign * (k % 3 - 1);
  if (iz < 0 || iz >= s->d || iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) return NULL;
  return t + (((n * s->d + iz) * s->h + iy) * s->w + ix) * c;
}

/* acc[j] += sum_i a[i] * m[i * nj + j] */
REF static inline void axpy_rows(double *acc, const float *a, const double *m, int ni, int nj) {
  for (int i = 0; i < ni; i++) {
    const double av = a[i], *mr = m + (long)i * nj;
    for (int j = 0; j < nj; j++) acc[j] += av * mr[j];
  }
}

/* y (N,D,H,W,COUT) = conv(x, w) + b */
REF __attribute__((target_clones("avx2", "default"))) static void ref_forward(double *y, const float *x, const double *w,
                                                                          const float *b, const mbsr_conv3d_dims *s) {
#pragma omp parallel for schedule(static)
  for (long v = 0; v < (long)s->n * s->d * s->h * s->w; v++) {
    double acc[CMAX];
    for (int co = 0; co < s->cout; co++) acc[co] = b ? b[co] : 0.0;
    for (int k = 0; k < 27; k++) {
      const float *xr = tap(x, s, v, k, 1, s->cin);
      if (xr) axpy_rows(acc, xr, w + (long)k * s->cin * s->cout, s->cin, s->cout);
    }
    for (int co = 0; co < s->cout; co++) y[v * s->cout + co] = acc[co];
  }
}

/* dx (N,D,H,W,CIN) = conv^T(g); wt[k][co][ci] = w[k][ci][co] */
REF __attribute__((target_clones("avx2", "default"))) static void ref_dinp(double *dx, const float *g, const double *wt,
                                                                       const mbsr_conv3d_dims *s) {
#pragma omp parallel for schedule(static)
  for (long v = 0; v < (long)s->n * s->d * s->h * s->w; v++) {
    double acc[CMAX] = {0};
    for (int k = 0; k < 27; k++) {
      const float *gr = tap(g, s, v, k, -1, s->cout);
      if (gr) axpy_rows(acc, gr, wt + (long)k * s->cout * s->cin, s->cout, s->cin);
    }
    for (int ci = 0; ci < s->cin; ci++) dx[v * s->cin + ci] = acc[ci];
  }
}

/* dw (27,CIN,COUT) = sum over positions of x(p + k - 1) g(p): per-thread partials, then added. */
REF __attribute__((target_clones("avx2", "default"))) static void ref_dw(double *dw, const float *x, const float *g,
                                                                     const mbsr_conv3d_dims *s) {
  const size_t nw = (size_t)27 * s->cin * s->cout;
  memset(dw, 0, nw * sizeof(double));
#pragma omp parallel
  {
    double *acc = calloc(nw, sizeof(double));
#pragma omp for schedule(static)
    for (long v = 0; v < (long)s->n * s->d * s->h * s->w; v++)
      for (int k = 0; k < 27; k++) {
        const float *xr = tap(x, s, v, k, 1, s->cin);
        if (!xr) continue;
        for (int ci = 0; ci < s->cin; ci++) {
          const double xv = xr[ci];
          const float *gr = g + v * s->cout;
          double *ar = acc + ((size_t)k * s->cin + ci) * s->cout;
          for (int co = 0; co < s->cout; co++) ar[co] += xv * gr[co];
        }
      }
#pragma omp critical
    for (size_t i = 0; i < nw; i++) dw[i] += acc[i];
    free(acc);
  }
}

static double relerr_d(const float *a, const double *ref, size_t n) {
  double m = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    m = fmax(m, fabs(a[i] - ref[i]));
    s = fmax(s, fabs(ref[i]));
  }
  return m / fmax(s, 1e-300);
}

/* One shape: the three passes of the current kernel/algorithm setting against float64, the input x
 * uniform in [xlo, 1] (0: what follows a ReLU; -1: a signed residual stream). err[0..2]. */
static void passes_vs_f64(const mbsr_conv3d_dims *s, uint64_t seed, double xlo, double err[3]) {
  const size_t ni = (size_t)s->n * s->d * s->h * s->w * s->cin, no = (size_t)s->n * s->d * s->h * s->w * s->cout;
  const size_t nw = (size_t)27 * s->cin * s->cout;
  mbsr_rng *r = mbsr_rng_new(seed);
  const double a = sqrt(6.0 / (27.0 * (s->cin + s->cout))); /* Glorot uniform, as the models start */
  float *x = rnd(ni, r, xlo, 1), *w = rnd(nw, r, -a, a), *b = rnd(s->cout, r, -0.1, 0.1), *g = rnd(no, r, -1, 1);
  float *y = mbsr_alloc(no * 4), *dx = mbsr_alloc(ni * 4), *dw = mbsr_alloc(nw * 4), *db = mbsr_alloc(s->cout * 4);
  double *wd = malloc(nw * sizeof(double)), *wt = malloc(nw * sizeof(double));
  double *yr = malloc(no * sizeof(double)), *dxr = malloc(ni * sizeof(double)), *dwr = malloc(nw * sizeof(double));
  for (int k = 0; k < 27; k++)
    for (int ci = 0; ci < s->cin; ci++)
      for (int co = 0; co < s->cout; co++) {
        const size_t i = ((size_t)k * s->cin + ci) * s->cout + co;
        wd[i] = w[i];
        wt[((size_t)k * s->cout + co) * s->cin + ci] = w[i];
      }
  float *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(s, 2) * sizeof(float));
  memset(dw, 0, nw * 4);
  memset(db, 0, s->cout * 4);
  mbsr_conv3d_forward(y, x, w, b, s, ws);
  mbsr_conv3d_backward_fused(dx, NULL, NULL, dw, db, g, x, w, s, ws);
  ref_forward(yr, x, wd, b, s);
  ref_dinp(dxr, g, wt, s);
  ref_dw(dwr, x, g, s);
  err[0] = relerr_d(y, yr, no);
  err[1] = relerr_d(dx, dxr, ni);
  err[2] = relerr_d(dw, dwr, nw);
  float *all[] = {x, w, b, g, y, dx, dw, db, ws};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) mbsr_free(all[i]);
  free(wd), free(wt), free(yr), free(dxr), free(dwr);
  mbsr_rng_free(r);
}

static const char *families[] = {"avx512", "avx2"};
static int family_ok(const char *f) {
  if (!strcmp(f, "avx512")) return mbsr_cpu_has_avx512();
  return strcmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "portable-fp32-direct") != 0 || mbsr_cpu_has_avx512();
}

/* The paper's layer: 64 -> 64, batch 8 of 21^3, every tile variant with the fastest ISA here, and the
 * automatic choice (what training runs), with inputs in [0, 1] and in [-1, 1]. */
static void test_paper_shape(void) {
  if (!family_ok("avx2")) {
    mbsr_test_skip("no AVX2 or AVX-512: no Winograd kernels on this CPU");
    return;
  }
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 8, 21, 21, 21, 64, 64, 1);
  static const char *algos[] = {"wino222", "wino223", "wino233", "wino333", "auto"};
  for (int k = 0; k < 10; k++) {
    const double xlo = k % 2 ? -1.0 : 0.0;
    MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo(algos[k / 2]), 0);
    double e[3];
    passes_vs_f64(&s, 1 + k, xlo, e);
    printf("  paper shape 8x21^3 64->64 x in [%2.0f, 1] %-8s: forward %.2e (%s), input gradient %.2e (%s), weight "
           "gradient %.2e (%s)\n",
           xlo, algos[k / 2], e[0], mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 0)), e[1],
           mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 1)), e[2], mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 2)));
    for (int j = 0; j < 3; j++) MT_ASSERT_NEAR(e[j], 0, 1e-5);
  }
  mbsr__conv3d_force_algo("auto");
}

/* Odd shapes (tiles cut by every face, channel counts that are multiples of 8 or 16 only), every
 * variant, every ISA. */
static void test_odd_shapes(void) {
  static const int shapes[][6] = {
      /* n, d, h, w, cin, cout */
      {1, 5, 4, 6, 16, 32}, {2, 7, 9, 5, 32, 16}, {1, 3, 2, 1, 16, 16}, {1, 4, 4, 26, 64, 32},
      {2, 6, 6, 6, 48, 80}, {1, 11, 1, 13, 16, 16}, {3, 2, 5, 3, 8, 24},  {1, 13, 12, 11, 64, 64},
  };
  static const char *algos[] = {"wino222", "wino223", "wino233", "wino333"};
  double worst[3] = {0, 0, 0};
  int ran = 0;
  for (int f = 0; f < 2; f++) {
    if (!family_ok(families[f])) continue;
    MT_ASSERT_INT_EQ(mbsr__conv3d_force_kernel(families[f]), 0);
    for (int a = 0; a < 4; a++) {
      MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo(algos[a]), 0);
      for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int *q = shapes[k];
        mbsr_conv3d_dims s;
        mbsr_conv3d_dims_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], 1);
        if (mbsr_conv3d_algo(&s, 0) == MBSR_CONV_DIRECT) continue; /* channels not a multiple of this ISA's vector */
        double e[3];
        passes_vs_f64(&s, 100 + k, k % 2 ? -1.0 : 0.0, e);
        ran++;
        for (int j = 0; j < 3; j++) {
          worst[j] = fmax(worst[j], e[j]);
          if (e[j] > 1e-5)
            printf("  %s %s %dx%dx%dx%d %d->%d pass %d: %.2e\n", families[f], algos[a], q[0], q[1], q[2], q[3], q[4],
                   q[5], j, e[j]);
          MT_ASSERT_NEAR(e[j], 0, 1e-5);
        }
      }
    }
  }
  printf("  %d odd cases, worst: forward %.2e, input gradient %.2e, weight gradient %.2e\n", ran, worst[0], worst[1],
         worst[2]);
  CU_ASSERT(ran > 0);
  mbsr__conv3d_force_kernel("auto");
  mbsr__conv3d_force_algo("auto");
}

/* Fused epilogues through Winograd equal the unfused call plus the element-wise layers: forward
 * relu(conv + b + res) with res aliasing out, backward (base + dX) * (mask > 0), base == dinp. */
static void test_fused(void) {
  if (!family_ok("avx2")) {
    mbsr_test_skip("no Winograd kernels on this CPU");
    return;
  }
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 2, 5, 7, 6, 32, 32, 1);
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("winograd"), 0);
  CU_ASSERT(mbsr_conv3d_algo(&s, 0) != MBSR_CONV_DIRECT);
  const size_t na = (size_t)2 * 5 * 7 * 6 * 32, nw = (size_t)27 * 32 * 32;
  mbsr_rng *r = mbsr_rng_new(9);
  float *x = rnd(na, r, -1, 1), *w = rnd(nw, r, -0.1, 0.1), *b = rnd(32, r, -1, 1), *res = rnd(na, r, -1, 1);
  float *mask = rnd(na, r, -1, 1), *base = rnd(na, r, -1, 1), *g = rnd(na, r, -1, 1);
  float *y0 = mbsr_alloc(na * 4), *y1 = mbsr_alloc(na * 4), *d0 = mbsr_alloc(na * 4), *d1 = mbsr_alloc(na * 4);
  float *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(&s, 2) * 4);
  mbsr_conv3d_forward(y0, x, w, b, &s, ws);
  for (size_t i = 0; i < na; i++) y0[i] = fmaxf(y0[i] + res[i], 0.0f);
  memcpy(y1, res, na * 4);
  mbsr_conv3d_forward_fused(y1, x, w, b, y1, 1, &s, ws); /* residual aliases out */
  CU_ASSERT(memcmp(y0, y1, na * 4) == 0);
  memcpy(d0, base, na * 4);
  mbsr_conv3d_backward(d0, NULL, NULL, g, x, w, &s, ws);
  for (size_t i = 0; i < na; i++) d0[i] = mask[i] > 0 ? d0[i] : 0.0f;
  memcpy(d1, base, na * 4);
  mbsr_conv3d_backward_fused(d1, d1, mask, NULL, NULL, g, x, w, &s, ws);
  CU_ASSERT(memcmp(d0, d1, na * 4) == 0);
  float *all[] = {x, w, b, res, mask, base, g, y0, y1, d0, d1, ws};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) mbsr_free(all[i]);
  mbsr_rng_free(r);
  mbsr__conv3d_force_algo("auto");
}

/* The Winograd weight gradient is the same bit for bit from run to run and at 1 or 2 threads. */
static void test_deterministic(void) {
  if (!family_ok("avx2")) {
    mbsr_test_skip("no Winograd kernels on this CPU");
    return;
  }
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 3, 9, 8, 10, 32, 48, 1);
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("winograd"), 0);
  const size_t ni = (size_t)3 * 9 * 8 * 10 * 32, no = ni / 32 * 48, nw = (size_t)27 * 32 * 48;
  mbsr_rng *r = mbsr_rng_new(4);
  float *x = rnd(ni, r, -1, 1), *w = rnd(nw, r, -1, 1), *g = rnd(no, r, -1, 1);
  float *a = mbsr_alloc(nw * 4), *b = mbsr_alloc(nw * 4), *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(&s, 2) * 4);
  memset(a, 0, nw * 4);
  mbsr_conv3d_backward(NULL, a, NULL, g, x, w, &s, ws);
  int same = 1;
  for (int k = 0; k < 4; k++) {
    omp_set_num_threads(1 + k % 2);
    memset(b, 0, nw * 4);
    mbsr_conv3d_backward(NULL, b, NULL, g, x, w, &s, ws);
    same &= memcmp(a, b, nw * 4) == 0;
  }
  omp_set_num_threads(2);
  CU_ASSERT(same);
  mbsr_free(x), mbsr_free(w), mbsr_free(g), mbsr_free(a), mbsr_free(b), mbsr_free(ws);
  mbsr_rng_free(r);
  mbsr__conv3d_force_algo("auto");
}

/* The choice: what may run Winograd does on a CPU with the kernels, what may not stays direct, and
 * MBSR_CONV_ALGO=direct (here: the force call) keeps every pass direct. */
static void test_choice(void) {
  mbsr_conv3d_dims s, s2, s1;
  mbsr_conv3d_dims_init(&s, 8, 21, 21, 21, 64, 64, 1);
  mbsr_conv3d_dims_init(&s2, 8, 21, 21, 21, 64, 64, 2);
  mbsr_conv3d_dims_init(&s1, 8, 21, 21, 21, 64, 1, 1);
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("auto"), 0);
  for (int p = 0; p < 3; p++) {
    CU_ASSERT(mbsr_conv3d_algo(&s2, p) == MBSR_CONV_DIRECT); /* stride 2 */
    CU_ASSERT(mbsr_conv3d_algo(&s1, p) == MBSR_CONV_DIRECT); /* one output channel */
    if (family_ok("avx2")) CU_ASSERT(mbsr_conv3d_algo(&s, p) != MBSR_CONV_DIRECT);
    printf("  8x21^3 64->64 pass %d: %s\n", p, mbsr_conv_algo_name(mbsr_conv3d_algo(&s, p)));
  }
  s.prec = MBSR_PREC_BF16;
  CU_ASSERT(mbsr_conv3d_algo(&s, 0) == MBSR_CONV_DIRECT); /* Winograd is fp32 only */
  s.prec = MBSR_PREC_FP32;
  if (family_ok("avx2")) { /* a forced tile runs every pass */
    MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("wino222"), 0);
    for (int p = 0; p < 3; p++) CU_ASSERT(mbsr_conv3d_algo(&s, p) == MBSR_CONV_WINO222);
  }
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_algo("direct"), 0);
  for (int p = 0; p < 3; p++) CU_ASSERT(mbsr_conv3d_algo(&s, p) == MBSR_CONV_DIRECT);
  CU_ASSERT(mbsr__conv3d_force_algo("nonsense") != 0);
  mbsr__conv3d_force_algo("auto");
}

int main(void) {
  static const mbsr_test_case cases[] = {{"winograd_choice", test_choice},
                                         {"winograd_odd_shapes_vs_f64", test_odd_shapes},
                                         {"winograd_fused_epilogues", test_fused},
                                         {"winograd_deterministic_dw", test_deterministic},
                                         {"winograd_paper_shape_vs_f64", test_paper_shape},
                                         {NULL, NULL}};
  return mbsr_test_main("winograd", cases);
}
