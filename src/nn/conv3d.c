/* 3-D convolution (3x3x3, padding 1, stride 1 or 2): dims, workspace sizing, and the driver of the
 * direct kernels: pre-padded copies, weight flips for backward-data, OpenMP over output rows, per-thread
 * partial sums for the weight gradient. Kernel family chosen at run time (cpuid): conv3d_avx512.c, else
 * conv3d_avx2.c (AVX2 without AVX-512), else conv3d_portable.c; conv3d_ref.c is the naive twin the tests compare against.
 *
 * Workspace (floats, see mbsr_conv3d_workspace_floats):
 *   [pad_x]    N*(D+2)*(H+2)*(W+2)*CIN            padded copy of the input (forward, dW)
 *   [pad_g]    N*(D+2)*(H+2)*(W+2)*COUT           padded copy of dout (dX; stride 2: bf16 zero-inserted,
 *                                                  fp32 padded to OD+2 for the parity classes, s2_rows);
 *                                                  the bf16 FORWARD puts its packed weights here instead
 *                                                  (27*CIN*COUT bf16), so a forward-only workspace is
 *                                                  [pad_x][weights] (mbsr_conv3d_forward_workspace_floats)
 *   [wt]       27*CIN*COUT                         flipped, transposed weights for dX (stride 2: the
 *                                                  parity classes' taps, s2_pack; or bf16 weights)
 *   [bf pairs] (MBSR_PREC_BF16 only) pair copies of the input and dout for the bf16 weight gradient
 *   [partial]  G*(27*CIN*COUT + COUT) rounded up   dW and db partial sums of G = max(8, T) fixed groups
 *              of (n, od) planes, summed in a fixed order: the weight gradient is the same from run to
 *              run although the groups are handed out dynamically
 * T = the OpenMP thread count at call time, which must not exceed the nthreads the workspace was sized
 * for (the sizing uses max(nthreads, omp_get_max_threads())).
 * Each call is ONE OpenMP parallel region (forward: copy | barrier | rows; backward: copies and weight
 * flip | barrier | dW planes and dX rows side by side | barrier | partial-sum reduction): few barriers,
 * so a thread preempted on a shared machine costs little. The helpers below are orphaned worksharing
 * loops that run inside that region. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv3d_kernels.h"
#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "nn_internal.h"
#include "winograd.h"

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

static size_t round16(size_t x) { return (x + 15) & ~(size_t)15; }
static size_t padx_floats(const mbsr_conv3d_dims *s) {
  return round16((size_t)s->n * (s->d + 2) * (s->h + 2) * (s->w + 2) * s->cin) + 16; /* + slack: bf16 pairs */
}
static size_t padg_floats(const mbsr_conv3d_dims *s) {
  return round16((size_t)s->n * (s->d + 2) * (s->h + 2) * (s->w + 2) * s->cout) + 16;
}
static size_t wt_floats(const mbsr_conv3d_dims *s) { return round16((size_t)27 * s->cin * s->cout); }
static size_t partial_floats(const mbsr_conv3d_dims *s) { return round16((size_t)27 * s->cin * s->cout + s->cout); }

/* bf16 weight gradient (MBSR_PREC_BF16, stride 1): pair copies of the padded input and of dout. */
static int bf_K(const mbsr_conv3d_dims *s) { return (s->ow + 1) / 2 + 1; }
static size_t bfx_floats(const mbsr_conv3d_dims *s) {
  return round16((size_t)s->n * (s->d + 2) * (s->h + 2) * 2 * bf_K(s) * s->cin) + 16;
}
static size_t bfg_floats(const mbsr_conv3d_dims *s) {
  return round16((size_t)s->n * s->od * s->oh * ((s->ow + 1) / 2) * s->cout) + 16;
}

static int dw_groups(int nthreads) { return nthreads > 8 ? nthreads : 8; }
static size_t bfpairs_floats(const mbsr_conv3d_dims *s) {
  return s->prec == MBSR_PREC_BF16 ? bfx_floats(s) + bfg_floats(s) : 0;
}

/* A conv that some pass may run as Winograd (winograd.c: any vector ISA of this CPU, under the current
 * MBSR_CONV_ALGO setting) has its own workspace layout there: the workspace is the larger of the two.
 * (A test that forces another algorithm sizes its workspaces after forcing it.) */
static int wino_possible(const mbsr_conv3d_dims *s) {
  const mbsr__wino_isa *isas[2] = {mbsr__cpu_get()->avx512 ? &mbsr__wino_avx512 : NULL,
                                   mbsr__cpu_get()->avx2 ? &mbsr__wino_avx2 : NULL};
  for (int i = 0; i < 2; i++)
    for (int pass = 0; pass < 3; pass++)
      if (isas[i] && mbsr__wino_pick(s, pass, isas[i]) >= 0) return 1;
  return 0;
}

size_t mbsr_conv3d_workspace_floats(const mbsr_conv3d_dims *s, int nthreads) {
  int t = omp_get_max_threads();
  if (nthreads > t) t = nthreads;
  size_t direct = padx_floats(s) + padg_floats(s) + wt_floats(s) + bfpairs_floats(s) + (size_t)dw_groups(t) * partial_floats(s);
  if (wino_possible(s)) {
    size_t wf = mbsr__wino_forward_ws(s), wb = mbsr__wino_backward_ws(s);
    if (wf > direct) direct = wf;
    if (wb > direct) direct = wb;
  }
  return direct;
}

/* The forward uses [pad_x] then, for bf16, the packed weights right after it ([pad_g] and the rest
 * are backward-only), whatever the thread count. Sized for the precision in s alone: fp32 (and the
 * reference family, which uses no workspace) need pad_x; bf16 adds the packed weight copy. */
size_t mbsr_conv3d_forward_workspace_floats(const mbsr_conv3d_dims *s) {
  size_t direct = padx_floats(s) + (s->prec != MBSR_PREC_FP32 ? wt_floats(s) : 0);
  if (wino_possible(s) && mbsr__wino_forward_ws(s) > direct) direct = mbsr__wino_forward_ws(s);
  return direct;
}

/* ---- kernel family: auto (cpuid), or forced by MBSR_CONV_KERNEL=portable|avx512|reference ---- */
typedef enum { FAM_AUTO = -1, FAM_REF = 0, FAM_PORTABLE = 1, FAM_AVX512 = 2, FAM_AVX2 = 3 } family;
static int g_force = -2; /* -2: not read yet */

static family pick(void) {
  if (g_force == -2) {
    const char *e = getenv("MBSR_CONV_KERNEL");
    int f = FAM_AUTO;
    if (e && !strcmp(e, "portable")) f = FAM_PORTABLE;
    else if (e && !strcmp(e, "reference")) f = FAM_REF;
    else if (e && !strcmp(e, "avx512")) f = FAM_AVX512;
    else if (e && !strcmp(e, "avx2")) f = FAM_AVX2;
    __atomic_store_n(&g_force, f, __ATOMIC_RELAXED);
  }
  int f = __atomic_load_n(&g_force, __ATOMIC_RELAXED);
  const int avx512 = mbsr_cpu_has_avx512(), avx2 = mbsr__cpu_get()->avx2;
  if (f == FAM_REF || f == FAM_PORTABLE) return (family)f;
  if (f == FAM_AVX2) return avx2 ? FAM_AVX2 : FAM_PORTABLE;
  return avx512 ? FAM_AVX512 : avx2 ? FAM_AVX2 : FAM_PORTABLE; /* a forced family the CPU lacks falls back */
}

int mbsr__conv3d_force_kernel(const char *name) {
  int f;
  if (!name || !strcmp(name, "auto")) f = FAM_AUTO;
  else if (!strcmp(name, "portable")) f = FAM_PORTABLE;
  else if (!strcmp(name, "reference")) f = FAM_REF;
  else if (!strcmp(name, "avx512")) f = FAM_AVX512;
  else if (!strcmp(name, "avx2")) f = FAM_AVX2;
  else return mbsr_error(MBSR_EINVAL, "conv kernel family '%s': auto, portable, reference, avx512 or avx2", name);
  __atomic_store_n(&g_force, f, __ATOMIC_RELAXED);
  return 0;
}

/* bf16 kernels run where AVX512_BF16 exists, for layers wide enough to profit (else fp32). */
static int use_bf16(mbsr_precision p, family fam, int cin, int cout) {
  return p == MBSR_PREC_BF16 && fam == FAM_AVX512 && mbsr_cpu_has_avx512bf16() && cin >= 8 && cout >= 16;
}

static int use_bf16_dw(const mbsr_conv3d_dims *s, family fam) {
  return s->stride == 1 && use_bf16(s->prec, fam, s->cin, s->cout);
}

int mbsr_conv3d_precision_available(mbsr_precision p) {
  if (p == MBSR_PREC_FP32) return 1;
  if (p == MBSR_PREC_BF16) return pick() == FAM_AVX512 && mbsr_cpu_has_avx512bf16();
  return 0;
}

const char *mbsr_conv3d_kernel_name(mbsr_precision p) {
  switch (pick()) {
  case FAM_REF: return "reference";
  case FAM_AVX512:
    if (p == MBSR_PREC_BF16 && mbsr_conv3d_precision_available(p)) return "avx512bf16-direct";
    return "avx512-fp32-direct";
  case FAM_AVX2: return "avx2-fp32-direct";
  default: return "portable-fp32-direct";
  }
}

static uint16_t f2bf(float f) { /* round to nearest even; NaN stays NaN */
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* ---- orphaned worksharing helpers (call inside a parallel region; each ends with nowait) ---- */

/* wb[k9][r2][co][2] = bf16(w[k9][2*r2 + j][co]), zero past the reduction length rlen = 3*cin. */
static void pack_bf16(uint16_t *wb, const float *w, int cin, int cout) {
  const int rlen = 3 * cin, rlen2 = (rlen + 1) / 2;
#pragma omp for schedule(static) nowait
  for (int k = 0; k < 9; k++)
    for (int r2 = 0; r2 < rlen2; r2++)
      for (int co = 0; co < cout; co++)
        for (int j = 0; j < 2; j++) {
          int r = 2 * r2 + j;
          wb[(((size_t)k * rlen2 + r2) * cout + co) * 2 + j] = r < rlen ? f2bf(w[((size_t)k * rlen + r) * cout + co]) : 0;
        }
}

/* Weights of the input-gradient conv (CIN' = COUT, COUT' = CIN), flipped and transposed:
 * wt[kd][kh][kw][co][ci] = w[2-kd][2-kh][2-kw][ci][co]. */
static void flip_weights(float *wt, const float *w, int cin, int cout) {
#pragma omp for schedule(static) nowait
  for (int k = 0; k < 27; k++)
    for (int ci = 0; ci < cin; ci++)
      for (int co = 0; co < cout; co++) wt[((size_t)k * cout + co) * cin + ci] = w[((size_t)(26 - k) * cin + ci) * cout + co];
}

/* The same flip packed as bf16 pairs for the bf16 kernel (reduction r' = kw*COUT + co of length 3*COUT). */
static void flip_pack_bf16(uint16_t *wb, const float *w, int cin, int cout) {
  const int rlen = 3 * cout, rlen2 = (rlen + 1) / 2;
#pragma omp for schedule(static) nowait
  for (int k9 = 0; k9 < 9; k9++)
    for (int r2 = 0; r2 < rlen2; r2++)
      for (int ci = 0; ci < cin; ci++)
        for (int j = 0; j < 2; j++) {
          int r = 2 * r2 + j;
          uint16_t v = 0;
          if (r < rlen) {
            int kw = r / cout, co = r % cout, k = k9 * 3 + kw;
            v = f2bf(w[((size_t)(26 - k) * cin + ci) * cout + co]);
          }
          wb[(((size_t)k9 * rlen2 + r2) * cin + ci) * 2 + j] = v;
        }
}

/* dst (N, D+2, H+2, W+2, C) = src (N, SD, SH, SW, C) placed at 1 + z*i along each axis (z = 1: plain
 * padding; z = 2: zero insertion for the transposed stride-2 conv), zero elsewhere. */
void mbsr__pad_copy(float *dst, const float *src, int n, int dp, int hp, int wp, int c, int sd, int sh, int sw, int z) {
  const long prow = (long)wp * c;
#pragma omp for schedule(static) nowait
  for (long row = 0; row < (long)n * dp * hp; row++) {
    const int ih = (int)(row % hp), id = (int)(row / hp % dp), in = (int)(row / ((long)hp * dp));
    float *o = dst + row * prow;
    const int td = id - 1, th = ih - 1;
    if (td < 0 || th < 0 || td % z || th % z || td / z >= sd || th / z >= sh) {
      memset(o, 0, sizeof(float) * prow);
      continue;
    }
    const float *s = src + ((((long)in * sd + td / z) * sh + th / z) * sw) * c;
    if (z == 1) {
      memset(o, 0, sizeof(float) * c);
      memcpy(o + c, s, sizeof(float) * (size_t)sw * c);
      memset(o + (long)(sw + 1) * c, 0, sizeof(float) * (size_t)(wp - sw - 1) * c);
    } else {
      memset(o, 0, sizeof(float) * prow);
      for (int iw = 0; iw < sw && 1 + z * iw < wp; iw++)
        memcpy(o + (long)(1 + z * iw) * c, s + (long)iw * c, sizeof(float) * c);
    }
  }
}
static void pad_copy(float *dst, const float *src, int n, int d, int h, int w, int c, int sd, int sh, int sw, int z) {
  mbsr__pad_copy(dst, src, n, d + 2, h + 2, w + 2, c, sd, sh, sw, z);
}

/* The same into bf16. */
static void pad_copy_bf16(uint16_t *dst, const float *src, int n, int d, int h, int w, int c, int sd, int sh, int sw,
                          int z) {
  const int dp = d + 2, hp = h + 2, wp = w + 2;
  const long prow = (long)wp * c;
#pragma omp for schedule(static) nowait
  for (long row = 0; row < (long)n * dp * hp; row++) {
    const int ih = (int)(row % hp), id = (int)(row / hp % dp), in = (int)(row / ((long)hp * dp));
    uint16_t *o = dst + row * prow;
    const int td = id - 1, th = ih - 1;
    memset(o, 0, sizeof(uint16_t) * prow);
    if (td < 0 || th < 0 || td % z || th % z || td / z >= sd || th / z >= sh) continue;
    const float *s = src + ((((long)in * sd + td / z) * sh + th / z) * sw) * c;
    if (z == 1) mbsr__f32_to_bf16_avx512(o + c, s, (size_t)sw * c);
    else
      for (int iw = 0; iw < sw && 1 + z * iw < wp; iw++)
        mbsr__f32_to_bf16_avx512(o + (long)(1 + z * iw) * c, s + (long)iw * c, (size_t)c);
  }
}

/* Forward-shaped conv over a padded buffer (forward, and dX with flipped weights). */
/* epi: tensor pointers (output layout) of the fused epilogue; each row gets its slice. */
static mbsr__epi epi_row(const mbsr__epi *e, long off) {
  mbsr__epi r = {e->init ? e->init + off : NULL, e->res ? e->res + off : NULL, e->mask ? e->mask + off : NULL, e->relu};
  return r;
}

/* The fp32 row kernel of a family for a conv with cout output channels. */
static void (*row_kernel(family fam, int cout))(const mbsr__conv_row *) {
  return fam == FAM_AVX512 ? mbsr__conv_fwd_row_avx512
         : fam == FAM_AVX2 && cout % 8 == 0 ? mbsr__conv_fwd_row_avx2
                                            : mbsr__conv_fwd_row_portable;
}

static void conv_rows(float *out, const float *xp, const float *w, const float *bias, int n, int dp, int hp, int wp,
                      int cin, int cout, int stride, int od, int oh, int ow, const mbsr__epi *epi, family fam,
                      int narrow) {
  void (*row_fn)(const mbsr__conv_row *) = row_kernel(fam, cout);
  const long rowH = (long)wp * cin, rowD = (long)hp * wp * cin;
#pragma omp for schedule(dynamic, 4) nowait
  for (long row = 0; row < (long)n * od * oh; row++) {
    const int r_h = (int)(row % oh), r_d = (int)(row / oh % od), r_n = (int)(row / ((long)oh * od));
    mbsr__conv_row a = {.out = out + row * ow * cout,
                        .epi = epi_row(epi, row * ow * cout),
                        .x = xp + (long)r_n * dp * rowD + (long)r_d * stride * rowD + (long)r_h * stride * rowH,
                        .rowH = rowH,
                        .rowD = rowD,
                        .w = w,
                        .bias = bias,
                        .ow = ow,
                        .cin = cin,
                        .cout = cout,
                        .stride = stride,
                        .narrow = narrow};
    row_fn(&a);
  }
}

/* ---- the input gradient of a stride-2 conv without zero insertion ----
 * y[o] = sum_k x[2o + k - 1] w[k] per axis, so input position i = 2a + p receives, for p = 0, only tap
 * k = 1 (from output a) and, for p = 1, taps k = 2 (output a) and k = 0 (output a + 1). Each of the 8
 * parity classes (pd, ph, pw) of input voxels is a small forward-shaped conv over the output gradient
 * with 1 or 2 taps per axis (27 taps in all, not 8 x 27 over a zero-inserted copy): the row kernels with
 * another tap layout (mbsr__conv_row.nd, ...), the taps of one class contiguous in the packed weights
 * [td][th][tw*COUT + co][ci], and the output gradient padded by one zero plane after its end. */
static int s2_ntaps(int p) { return p ? 2 : 1; }
static int s2_tap(int p, int t) { return p ? (t ? 0 : 2) : 1; } /* in the order of the output index a, a+1 */
static size_t s2_class_off(int cls, int cin, int cout) {
  size_t off = 0;
  for (int c = 0; c < cls; c++) off += (size_t)s2_ntaps(c >> 2 & 1) * s2_ntaps(c >> 1 & 1) * s2_ntaps(c & 1);
  return off * cin * cout;
}

static void s2_pack(float *wc, const float *w, int cin, int cout) {
#pragma omp for schedule(static) nowait
  for (int cls = 0; cls < 8; cls++) {
    const int pd = cls >> 2 & 1, ph = cls >> 1 & 1, pw = cls & 1, nh = s2_ntaps(ph), nw = s2_ntaps(pw);
    float *dst = wc + s2_class_off(cls, cin, cout);
    for (int td = 0; td < s2_ntaps(pd); td++)
      for (int th = 0; th < nh; th++)
        for (int tw = 0; tw < nw; tw++) {
          const int k = (s2_tap(pd, td) * 3 + s2_tap(ph, th)) * 3 + s2_tap(pw, tw);
          for (int co = 0; co < cout; co++)
            for (int ci = 0; ci < cin; ci++)
              dst[((size_t)((td * nh + th) * nw + tw) * cout + co) * cin + ci] = w[((size_t)k * cin + ci) * cout + co];
        }
  }
}

/* dinp (N,D,H,W,CIN) = epilogue(conv^T dout) from gp = dout padded to (N, OD+2, OH+2, OW+2, COUT) (data at
 * 1..OD) and wc = s2_pack's weights. Worksharing loop. */
static void s2_rows(float *dinp, const float *gp, const float *wc, const mbsr_conv3d_dims *s, const mbsr__epi *epi,
                    family fam, int narrow) {
  const int cin = s->cin, cout = s->cout, D = s->d, H = s->h, W = s->w, AD = (D + 1) / 2, BH = (H + 1) / 2;
  const int hp = s->oh + 2, wp = s->ow + 2, dp = s->od + 2;
  const long rowH = (long)wp * cout, rowD = (long)hp * wp * cout;
  void (*row_fn)(const mbsr__conv_row *) = row_kernel(fam, cin);
#pragma omp for schedule(dynamic, 4) nowait
  for (long row = 0; row < (long)s->n * 8 * AD * BH; row++) {
    const int b = (int)(row % BH), a = (int)(row / BH % AD), cls = (int)(row / ((long)BH * AD) % 8);
    const int n = (int)(row / ((long)BH * AD * 8));
    const int pd = cls >> 2 & 1, ph = cls >> 1 & 1, pw = cls & 1, nx = (W - pw + 1) / 2;
    if (2 * a + pd >= D || 2 * b + ph >= H || nx <= 0) continue;
    const long off = ((((long)n * D + 2 * a + pd) * H + 2 * b + ph) * W + pw) * cin;
    mbsr__conv_row r = {.out = dinp + off,
                        .epi = epi_row(epi, off),
                        .x = gp + ((((long)n * dp + a + 1) * hp + b + 1) * wp + 1) * cout,
                        .rowH = rowH,
                        .rowD = rowD,
                        .w = wc + s2_class_off(cls, cin, cout),
                        .bias = NULL,
                        .ow = nx,
                        .cin = cout,
                        .cout = cin,
                        .stride = 1,
                        .nd = s2_ntaps(pd),
                        .nh = s2_ntaps(ph),
                        .rlen = s2_ntaps(pw) * cout,
                        .ostr = 2 * cin,
                        .xps = cout,
                        .narrow = narrow};
    row_fn(&r);
  }
}

static void conv_rows_bf16(float *out, const uint16_t *xp, const uint16_t *wb, const float *bias, int n, int dp, int hp,
                           int wp, int cin, int cout, int stride, int od, int oh, int ow, const mbsr__epi *epi) {
  const long rowH = (long)wp * cin, rowD = (long)hp * wp * cin;
#pragma omp for schedule(dynamic, 4) nowait
  for (long row = 0; row < (long)n * od * oh; row++) {
    const int r_h = (int)(row % oh), r_d = (int)(row / oh % od), r_n = (int)(row / ((long)oh * od));
    mbsr__conv_row_bf a = {.out = out + row * ow * cout,
                           .epi = epi_row(epi, row * ow * cout),
                           .x = xp + (long)r_n * dp * rowD + (long)r_d * stride * rowD + (long)r_h * stride * rowH,
                           .rowH = rowH,
                           .rowD = rowD,
                           .w = wb,
                           .bias = bias,
                           .ow = ow,
                           .cin = cin,
                           .cout = cout,
                           .stride = stride};
    mbsr__conv_fwd_row_bf16(&a);
  }
}

/* Weight (and bias) gradient of the (n, od) planes [p0, p1) into one partial sum. */
static void dw_planes(float *pw, long p0, long p1, int want_dw, int want_db, const float *dout, const float *xp,
                      const mbsr_conv3d_dims *s, family fam, int narrow) {
  const int cin = s->cin, cout = s->cout, st = s->stride;
  const int dp = s->d + 2, hp = s->h + 2, wp = s->w + 2;
  const size_t nw = (size_t)27 * cin * cout;
  float *pb = pw + nw;
  void (*bww)(const mbsr__conv_bww *) = fam == FAM_AVX512                    ? mbsr__conv_bww_avx512
                                       : fam == FAM_AVX2 && cout % 8 == 0 ? mbsr__conv_bww_avx2
                                                                          : mbsr__conv_bww_portable;
  const long prow = (long)wp * cin, pplane = (long)hp * prow;
  for (long plane = p0; plane < p1; plane++) {
    const int pd = (int)(plane % s->od), pn = (int)(plane / s->od);
    const float *g = dout + plane * s->oh * s->ow * cout;
    if (want_dw)
      for (int kd = 0; kd < 3; kd++)
        for (int kh = 0; kh < 3; kh++) {
          mbsr__conv_bww a = {.dw = pw + (size_t)(kd * 3 + kh) * 3 * cin * cout,
                              .x = xp + (long)pn * dp * pplane + (long)(pd * st + kd) * pplane + (long)kh * prow,
                              .rowHs = (long)st * prow,
                              .xps = st * cin,
                              .g = g,
                              .nrows = s->oh,
                              .ow = s->ow,
                              .rlen = 3 * cin,
                              .cout = cout,
                              .narrow = narrow};
          bww(&a);
        }
    if (want_db)
      for (long p = 0; p < (long)s->oh * s->ow; p++)
        for (int c = 0; c < cout; c++) pb[c] += g[p * cout + c];
  }
}

/* The same from the bf16 pair copies (vdpbf16ps; stride 1). */
static void dw_planes_bf16(float *pw, long p0, long p1, int want_dw, int want_db, const float *dout,
                           const uint16_t *xpairs, const uint16_t *gpairs, const mbsr_conv3d_dims *s) {
  const int cin = s->cin, cout = s->cout, K = bf_K(s), ow2 = (s->ow + 1) / 2;
  const int dp = s->d + 2, hp = s->h + 2;
  const long xrow = 2L * K * cin * 2, grow = (long)ow2 * cout * 2;
  const size_t nw = (size_t)27 * cin * cout;
  float *pb = pw + nw;
  for (long plane = p0; plane < p1; plane++) {
    const int pd = (int)(plane % s->od), pn = (int)(plane / s->od);
    if (want_dw)
      for (int kd = 0; kd < 3; kd++)
        for (int kh = 0; kh < 3; kh++) {
          mbsr__conv_bww_bf a = {.dw = pw + (size_t)(kd * 3 + kh) * 3 * cin * cout,
                                 .x = xpairs + (((long)pn * dp + pd + kd) * hp + kh) * xrow,
                                 .rowHs = xrow,
                                 .K = K,
                                 .cin = cin,
                                 .g = gpairs + plane * s->oh * grow,
                                 .growstr = grow,
                                 .nrows = s->oh,
                                 .npairs = ow2,
                                 .cout = cout};
          mbsr__conv_bww_bf16(&a);
        }
    if (want_db) {
      const float *g = dout + plane * s->oh * s->ow * cout;
      for (long p = 0; p < (long)s->oh * s->ow; p++)
        for (int c = 0; c < cout; c++) pb[c] += g[p * cout + c];
    }
  }
}

/* ---- the public entry points ---- */

/* The Winograd kernels of a kernel family (NULL: it has none). */
static const mbsr__wino_isa *wino_isa(family fam) {
  return fam == FAM_AVX512 ? &mbsr__wino_avx512 : fam == FAM_AVX2 ? &mbsr__wino_avx2 : NULL;
}

/* Element-wise epilogue after the reference kernels (which have none fused). */
static void epi_post(float *out, const float *res, const float *mask, int relu, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float v = out[i];
    if (res) v += res[i];
    if (relu && !(v > 0.0f)) v = 0.0f;
    if (mask && !(mask[i] > 0.0f)) v = 0.0f;
    out[i] = v;
  }
}

/* The direct kernels' blocking of pass `pass` of s (1: narrow) in family fam. */
static int narrow_of(const mbsr_conv3d_dims *s, int pass, family fam) {
  return (fam == FAM_AVX512 || fam == FAM_AVX2) && mbsr__conv_narrow(s, pass, wino_isa(fam));
}

mbsr_conv_algo mbsr_conv3d_algo(const mbsr_conv3d_dims *s, int pass) {
  const family fam = pick();
  if (fam == FAM_REF || pass < 0 || pass > 2) return MBSR_CONV_DIRECT;
  const int v = mbsr__wino_pick(s, pass, wino_isa(fam));
  if (v >= 0) return (mbsr_conv_algo)(MBSR_CONV_WINO222 + v);
  return narrow_of(s, pass, fam) ? MBSR_CONV_DIRECT_NARROW : MBSR_CONV_DIRECT;
}

const char *mbsr_conv_algo_name(mbsr_conv_algo a) {
  switch (a) {
    case MBSR_CONV_DIRECT: return "direct";
    case MBSR_CONV_WINO222: return "wino2x2x2";
    case MBSR_CONV_WINO223: return "wino2x2x3";
    case MBSR_CONV_WINO233: return "wino2x3x3";
    case MBSR_CONV_WINO333: return "wino3x3x3";
    case MBSR_CONV_DIRECT_NARROW: return "direct-narrow";
  }
  return "unknown";
}

void mbsr_conv3d_forward_fused(float *out, const float *inp, const float *weight, const float *bias,
                               const float *residual, int relu, const mbsr_conv3d_dims *s, float *ws) {
  // out (N,OD,OH,OW,COUT) = relu?(conv(inp (N,D,H,W,CIN), weight) + bias + residual (N,OD,OH,OW,COUT) or NULL)
  family fam = pick();
  if (fam == FAM_REF) {
    mbsr_conv3d_forward_ref(out, inp, weight, bias, s);
    epi_post(out, residual, NULL, relu, (size_t)s->n * s->od * s->oh * s->ow * s->cout);
    return;
  }
  const mbsr__epi epi = {NULL, residual, NULL, relu != 0};
  const mbsr__wino_isa *isa = wino_isa(fam);
  const int var = mbsr__wino_pick(s, 0, isa);
  if (var >= 0) {
    mbsr__wino_forward(out, inp, weight, bias, &epi, s, var, isa, ws);
    return;
  }
  const int bf = use_bf16(s->prec, fam, s->cin, s->cout);
  const int dp = s->d + 2, hp = s->h + 2, wp = s->w + 2;
#pragma omp parallel
  {
    if (bf) {
      pack_bf16((uint16_t *)(ws + padx_floats(s)), weight, s->cin, s->cout);
      pad_copy_bf16((uint16_t *)ws, inp, s->n, s->d, s->h, s->w, s->cin, s->d, s->h, s->w, 1);
    } else {
      pad_copy(ws, inp, s->n, s->d, s->h, s->w, s->cin, s->d, s->h, s->w, 1);
    }
#pragma omp barrier
    if (bf)
      conv_rows_bf16(out, (const uint16_t *)ws, (const uint16_t *)(ws + padx_floats(s)), bias, s->n,
                     dp, hp, wp, s->cin, s->cout, s->stride, s->od, s->oh, s->ow, &epi);
    else
      conv_rows(out, ws, weight, bias, s->n, dp, hp, wp, s->cin, s->cout, s->stride, s->od, s->oh, s->ow, &epi, fam,
                narrow_of(s, 0, fam));
  }
}

void mbsr_conv3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                         const mbsr_conv3d_dims *s, float *ws) {
  // out (N,OD,OH,OW,COUT), inp (N,D,H,W,CIN), weight (3,3,3,CIN,COUT), bias (COUT) or NULL
  mbsr_conv3d_forward_fused(out, inp, weight, bias, NULL, 0, s, ws);
}

void mbsr_conv3d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const mbsr_conv3d_dims *s, float *ws) {
  // dinp (N,D,H,W,CIN) +=, dweight (3,3,3,CIN,COUT) +=, dbias (COUT) +=; dout (N,OD,OH,OW,COUT)
  mbsr_conv3d_backward_fused(dinp, dinp, NULL, dweight, dbias, dout, inp, weight, s, ws);
}

void mbsr_conv3d_backward_fused(float *dinp, const float *dinp_base, const float *relu_out, float *dweight,
                                float *dbias, const float *dout, const float *inp, const float *weight,
                                const mbsr_conv3d_dims *s, float *ws) {
  // dinp (N,D,H,W,CIN) = (dinp_base + dL/dinp) * (relu_out > 0); dweight, dbias +=
  family fam = pick();
  if (fam == FAM_REF) {
    const size_t ni = (size_t)s->n * s->d * s->h * s->w * s->cin;
    if (dinp && dinp_base != dinp) {
      if (dinp_base) memcpy(dinp, dinp_base, sizeof(float) * ni);
      else memset(dinp, 0, sizeof(float) * ni);
    }
    mbsr_conv3d_backward_ref(dinp, dweight, dbias, dout, inp, weight, s);
    if (dinp && relu_out) epi_post(dinp, NULL, relu_out, 0, ni);
    return;
  }
  if (!dinp && !dweight && !dbias) return;
  const mbsr__wino_isa *isa = wino_isa(fam);
  const int var_dx = dinp ? mbsr__wino_pick(s, 1, isa) : -1;
  const int var_dw = (dweight || dbias) ? mbsr__wino_pick(s, 2, isa) : -1;
  if (var_dx >= 0 || var_dw >= 0) {
    const mbsr__epi dx_ep = {dinp_base, NULL, relu_out, 0};
    mbsr__wino_backward(dinp, &dx_ep, dweight, dbias, dout, inp, weight, s, var_dx, var_dw, isa, ws);
    /* what Winograd did not do, the direct kernels do */
    if (var_dx >= 0) dinp = NULL;
    if (var_dw >= 0) dweight = dbias = NULL;
    if (!dinp && !dweight && !dbias) return;
  }
  const int cin = s->cin, cout = s->cout;
  const int dp = s->d + 2, hp = s->h + 2, wp = s->w + 2;
  float *padx = ws, *padg = padx + padx_floats(s), *wt = padg + padg_floats(s);
  float *partials = wt + wt_floats(s) + bfpairs_floats(s);
  const size_t nw = (size_t)27 * cin * cout, pstride = partial_floats(s), tot = nw + cout;
  const int bf = dinp && use_bf16(s->prec, fam, cout, cin); /* dX is a conv with CIN' = COUT, COUT' = CIN */
  const int s2 = dinp && !bf && s->stride == 2;             /* stride 2 fp32: parity classes, s2_rows */
  const int wgrad = dweight || dbias;
  const int bfdw = dweight && use_bf16_dw(s, fam);
  uint16_t *xpairs = (uint16_t *)(wt + wt_floats(s)), *gpairs = NULL;
  if (bfdw) gpairs = (uint16_t *)((float *)xpairs + bfx_floats(s));
  const long nplanes = (long)s->n * s->od;
  const int nar_dx = dinp && narrow_of(s, 1, fam), nar_dw = wgrad && narrow_of(s, 2, fam);
#pragma omp parallel
  {
    const int ng = dw_groups(omp_get_num_threads());
    if (bfdw) {
      const int K = bf_K(s), dp2 = s->d + 2, hp2 = s->h + 2;
      const long xrow = 2L * K * cin * 2, grow = (long)((s->ow + 1) / 2) * cout * 2;
#pragma omp for schedule(static) nowait
      for (long row = 0; row < (long)s->n * dp2 * hp2; row++) {
        const int ih = (int)(row % hp2) - 1, id = (int)(row / hp2 % dp2) - 1, in = (int)(row / ((long)hp2 * dp2));
        const float *src = id >= 0 && id < s->d && ih >= 0 && ih < s->h
                               ? inp + ((((long)in * s->d + id) * s->h + ih) * s->w) * cin
                               : NULL;
        mbsr__bf16_xpairs_row(xpairs + row * xrow, src, s->w, cin, K);
      }
#pragma omp for schedule(static) nowait
      for (long row = 0; row < (long)s->n * s->od * s->oh; row++)
        mbsr__bf16_gpairs_row(gpairs + row * grow, dout + row * s->ow * cout, s->ow, cout);
    } else if (dweight) {
      pad_copy(padx, inp, s->n, s->d, s->h, s->w, cin, s->d, s->h, s->w, 1);
    }
    if (dinp && bf) {
      flip_pack_bf16((uint16_t *)wt, weight, cin, cout);
      pad_copy_bf16((uint16_t *)padg, dout, s->n, s->d, s->h, s->w, cout, s->od, s->oh, s->ow, s->stride);
    } else if (s2) {
      s2_pack(wt, weight, cin, cout);
      pad_copy(padg, dout, s->n, s->od, s->oh, s->ow, cout, s->od, s->oh, s->ow, 1);
    } else if (dinp) {
      flip_weights(wt, weight, cin, cout);
      pad_copy(padg, dout, s->n, s->d, s->h, s->w, cout, s->od, s->oh, s->ow, s->stride);
    }
#pragma omp barrier
    if (wgrad) {
#pragma omp for schedule(dynamic, 1) nowait
      for (int gi = 0; gi < ng; gi++) {
        float *pw = partials + (size_t)gi * pstride;
        const long p0 = nplanes * gi / ng, p1 = nplanes * (gi + 1) / ng;
        memset(pw, 0, sizeof(float) * tot);
        if (bfdw) dw_planes_bf16(pw, p0, p1, 1, dbias != NULL, dout, xpairs, gpairs, s);
        else dw_planes(pw, p0, p1, dweight != NULL, dbias != NULL, dout, padx, s, fam, nar_dw);
      }
    }
    /* dX = stride-1 conv of the (zero-inserted for stride 2) padded dout with the flipped weights */
    const mbsr__epi epi = {dinp_base, NULL, relu_out, 0};
    if (dinp && bf)
      conv_rows_bf16(dinp, (const uint16_t *)padg, (const uint16_t *)wt, NULL, s->n, dp, hp, wp, cout, cin, 1, s->d,
                     s->h, s->w, &epi);
    else if (s2)
      s2_rows(dinp, padg, wt, s, &epi, fam, nar_dx);
    else if (dinp)
      conv_rows(dinp, padg, wt, NULL, s->n, dp, hp, wp, cout, cin, 1, s->d, s->h, s->w, &epi, fam, nar_dx);
    if (wgrad) {
#pragma omp barrier
#pragma omp for schedule(static)
      for (size_t i = 0; i < tot; i++) {
        float acc = 0.0f;
        for (int k = 0; k < ng; k++) acc += partials[(size_t)k * pstride + i];
        if (i < nw) {
          if (dweight) dweight[i] += acc;
        } else if (dbias) {
          dbias[i - nw] += acc;
        }
      }
    }
  }
}
