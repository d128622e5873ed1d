/* conv3d (naive reference and the dispatched fast kernel) against the PyTorch fixtures written by
 * tests/fixtures/gen_nn.py: odd shapes, stride 1 and 2, 1..32 channels; forward output and every
 * gradient (input, weight, bias) within 1e-4 relative (max |diff| / max |ref|). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../fixtures/nn/nn_fixture.h"
#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "mbsr_test.h"

static void run(const char *file) {
  char p[4096];
  mbsr_test_fixture(file, p, sizeof p);
  nnfx *fx = nnfx_load(p);
  CU_ASSERT_FATAL(fx != NULL);
  const nnfx_tensor *dm = nnfx_get(fx, "dims");
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, (int)dm->d[0], (int)dm->d[1], (int)dm->d[2], (int)dm->d[3], (int)dm->d[4], (int)dm->d[5],
                        (int)dm->d[6]);
  const nnfx_tensor *inp = nnfx_get(fx, "inp"), *w = nnfx_get(fx, "weight"), *b = nnfx_get(fx, "bias"),
                    *out = nnfx_get(fx, "out"), *dout = nnfx_get(fx, "dout"), *dinp = nnfx_get(fx, "dinp"),
                    *dw = nnfx_get(fx, "dweight"), *db = nnfx_get(fx, "dbias");
  size_t ws_n = mbsr_conv3d_workspace_floats(&s, omp_get_max_threads());
  float *ws = mbsr_alloc(sizeof(float) * (ws_n + 16));
  float *y = mbsr_alloc(4 * out->count), *gi = mbsr_alloc(4 * dinp->count), *gw = mbsr_alloc(4 * dw->count),
        *gb = mbsr_alloc(4 * db->count);
  for (int fast = 0; fast < 2; fast++) {
    memset(gi, 0, 4 * dinp->count);
    memset(gw, 0, 4 * dw->count);
    memset(gb, 0, 4 * db->count);
    if (fast) {
      mbsr_conv3d_forward(y, inp->f, w->f, b->f, &s, ws);
      mbsr_conv3d_backward(gi, gw, gb, dout->f, inp->f, w->f, &s, ws);
    } else {
      mbsr_conv3d_forward_ref(y, inp->f, w->f, b->f, &s);
      mbsr_conv3d_backward_ref(gi, gw, gb, dout->f, inp->f, w->f, &s);
    }
    double e[4] = {nnfx_max_rel(y, out->f, out->count), nnfx_max_rel(gi, dinp->f, dinp->count),
                   nnfx_max_rel(gw, dw->f, dw->count), nnfx_max_rel(gb, db->f, db->count)};
    printf("\n  %s %-9s n%d %dx%dx%d %d->%d stride %d: max rel error out %.1e dinp %.1e dweight %.1e dbias %.1e", file,
           fast ? mbsr_conv3d_kernel_name(MBSR_PREC_FP32) : "reference", s.n, s.d, s.h, s.w, s.cin, s.cout, s.stride,
           e[0], e[1], e[2], e[3]);
    for (int k = 0; k < 4; k++) CU_ASSERT(e[k] <= 1e-4);
  }
  printf("\n");
  mbsr_free(ws);
  mbsr_free(y);
  mbsr_free(gi);
  mbsr_free(gw);
  mbsr_free(gb);
  nnfx_free(fx);
}

static void test_s1(void) { run("nn/conv3d_s1.bin"); }
static void test_s2(void) { run("nn/conv3d_s2.bin"); }
static void test_c1(void) { run("nn/conv3d_c1.bin"); }
static void test_wide_s1(void) { run("nn/conv3d_wide_s1.bin"); }
static void test_wide_s2(void) { run("nn/conv3d_wide_s2.bin"); }

int main(void) {
  const mbsr_test_case cases[] = {
      {"conv3d_stride1_odd", test_s1},    {"conv3d_stride2_odd", test_s2},     {"conv3d_cin1", test_c1},
      {"conv3d_wide_stride1", test_wide_s1}, {"conv3d_wide_stride2", test_wide_s2}, {NULL, NULL},
  };
  return mbsr_test_main("layers_torch", cases);
}
