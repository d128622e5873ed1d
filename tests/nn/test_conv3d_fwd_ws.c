/* conv3d forward-only workspace (mbsr_conv3d_forward_workspace_floats): for every kernel family the CPU
 * runs and every precision, a forward (plain and fused with residual + ReLU) through a workspace of
 * exactly that many floats, allocated with plain malloc so that AddressSanitizer sees any access past
 * its end, is BITWISE equal to the same forward through the full training workspace. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "mbsr_test.h"

int mbsr__conv3d_force_kernel(const char *name); /* src/nn/conv3d.c (internal) */

static float *rnd(size_t n, mbsr_rng *r, double a) {
  float *p = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = (float)(a * (2.0 * mbsr_rng_uniform(r) - 1.0));
  return p;
}

static const int shapes[][7] = {
    /* n, d, h, w, cin, cout, stride: narrow layers (fp32 even in bf16 mode), odd widths, stride 2 */
    {2, 5, 4, 7, 1, 16, 1}, {1, 7, 5, 9, 3, 7, 2},  {2, 5, 5, 5, 24, 1, 1},  {1, 6, 5, 11, 16, 16, 1},
    {1, 5, 6, 7, 9, 48, 1}, {1, 7, 7, 7, 32, 32, 2}, {1, 3, 4, 21, 64, 64, 1}, {2, 3, 3, 5, 17, 33, 1},
};

static int g_cases;

static void family_case(const char *fam, mbsr_precision prec) {
  MT_ASSERT_INT_EQ(mbsr__conv3d_force_kernel(fam), 0);
  mbsr_rng *r = mbsr_rng_new(5);
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    const int *q = shapes[k];
    mbsr_conv3d_dims s;
    mbsr_conv3d_dims_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], q[6]);
    s.prec = prec;
    size_t ni = (size_t)s.n * s.d * s.h * s.w * s.cin, nw = 27 * (size_t)s.cin * s.cout,
           no = (size_t)s.n * s.od * s.oh * s.ow * s.cout;
    size_t nfull = mbsr_conv3d_workspace_floats(&s, 2), nfwd = mbsr_conv3d_forward_workspace_floats(&s);
    CU_ASSERT(nfwd < nfull);
    float *x = rnd(ni, r, 1), *w = rnd(nw, r, 0.2), *b = rnd(s.cout, r, 1), *res = rnd(no, r, 1);
    float *y0 = rnd(no, r, 1), *y1 = rnd(no, r, 1);
    float *wsfull = calloc(nfull, sizeof(float)), *wsfwd = malloc(nfwd * sizeof(float));
    memset(wsfwd, 0x7f, nfwd * sizeof(float)); /* garbage: the forward must not read what it did not write */
    for (int fused = 0; fused < 2; fused++) {
      const float *rp = fused ? res : NULL;
      mbsr_conv3d_forward_fused(y0, x, w, b, rp, fused, &s, wsfull);
      mbsr_conv3d_forward_fused(y1, x, w, b, rp, fused, &s, wsfwd);
      int same = !memcmp(y0, y1, no * sizeof(float));
      if (!same)
        fprintf(stderr, "  %s prec %d %dx%dx%dx%d %d->%d s%d fused %d: outputs differ\n", fam, (int)prec, s.n, s.d,
                s.h, s.w, s.cin, s.cout, s.stride, fused);
      CU_ASSERT(same);
      g_cases++;
    }
    float *all[] = {x, w, b, res, y0, y1, wsfull, wsfwd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
  }
  mbsr_rng_free(r);
  mbsr__conv3d_force_kernel("auto");
}

static void test_forward_workspace(void) {
  const char *fams[] = {"reference", "portable", "avx2", "avx512"};
  const mbsr_precision precs[] = {MBSR_PREC_FP32, MBSR_PREC_BF16};
  g_cases = 0;
  for (int f = 0; f < 4; f++)
    for (int p = 0; p < 2; p++) family_case(fams[f], precs[p]);
  /* a forced family the CPU lacks falls back (see conv3d.c); name what actually ran */
  mbsr__conv3d_force_kernel("avx512");
  printf("  %d forward cases bitwise equal; bf16 kernel here: %s\n", g_cases, mbsr_conv3d_kernel_name(MBSR_PREC_BF16));
  mbsr__conv3d_force_kernel("auto");
  MT_ASSERT_INT_EQ(g_cases, 4 * 2 * 2 * (int)(sizeof shapes / sizeof *shapes));
}

/* The forward-only size is what the docs say: the padded input, plus the weight copy off fp32; a conv
 * that may run as Winograd (stride 1, fp32, channels a multiple of 8, a CPU with AVX2 or AVX-512) needs
 * the Winograd forward's room instead when that is larger (transformed weights, its own padded copy,
 * per-thread blocks), still less than the training workspace. */
static void test_forward_workspace_size(void) {
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 2, 7, 9, 11, 17, 64, 1); /* 17 channels in: direct only */
  size_t padded = (size_t)2 * 9 * 11 * 13 * 17;
  size_t f32 = mbsr_conv3d_forward_workspace_floats(&s);
  CU_ASSERT(f32 >= padded && f32 <= padded + 32);
  s.prec = MBSR_PREC_BF16;
  size_t bf = mbsr_conv3d_forward_workspace_floats(&s);
  CU_ASSERT(bf >= f32 + 27 * 17 * 64 && bf <= f32 + 27 * 17 * 64 + 16);
  /* the training workspace is more than twice as large (pad_g, dW partial sums) */
  CU_ASSERT(mbsr_conv3d_workspace_floats(&s, 2) > 2 * bf);
  /* 64 -> 64: the bf16 forward is direct; the fp32 one may be Winograd */
  mbsr_conv3d_dims_init(&s, 2, 7, 9, 11, 64, 64, 1);
  padded = (size_t)2 * 9 * 11 * 13 * 64;
  s.prec = MBSR_PREC_BF16;
  bf = mbsr_conv3d_forward_workspace_floats(&s);
  CU_ASSERT(bf >= padded + 27 * 64 * 64 && bf <= padded + 27 * 64 * 64 + 32);
  s.prec = MBSR_PREC_FP32;
  f32 = mbsr_conv3d_forward_workspace_floats(&s);
  CU_ASSERT(f32 >= padded && f32 < mbsr_conv3d_workspace_floats(&s, 2));
  if (mbsr_conv3d_algo(&s, 0) != MBSR_CONV_DIRECT) {
    CU_ASSERT(f32 > padded + 27 * 64 * 64); /* Winograd room */
  } else {
    CU_ASSERT(f32 <= padded + 32);
  }
}

int main(void) {
  static const mbsr_test_case cases[] = {{"forward_workspace_bitwise", test_forward_workspace},
                                         {"forward_workspace_size", test_forward_workspace_size},
                                         {NULL, NULL}};
  return mbsr_test_main("conv3d_fwd_ws", cases);
}
