/* Inference-only models (mbsr__model_create_inference, model_internal.h): the same generator as a
 * training model with three rotating activation buffers and a forward-only workspace. Checked here:
 * forward (and eval_sse) BITWISE equal to a training model's for cCNN, ResNet (with and without the
 * global residual) and the GAN generator on odd shapes, for every kernel family and precision this
 * CPU runs; activation memory independent of depth; mbsr__model_inference_bytes against what was
 * allocated; training calls refused; parameters copied across patch sizes; the receptive radius
 * (values, and that it is exactly the reach of one output voxel). */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/model/model_internal.h"
#include "mbsr/core.h"
#include "mbsr/model.h"
#include "mbsr_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

int mbsr__conv3d_force_kernel(const char *name); /* src/nn/conv3d.c (internal) */

enum { B = 2, D = 7, H = 9, W = 11 };

static mbsr_model_config cfg_ccnn(void) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_CCNN);
  c.ccnn_c1 = 9;
  c.ccnn_c2 = 5;
  return c;
}
static mbsr_model_config cfg_resnet(int channels, int blocks, int gres) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = channels;
  c.blocks = blocks;
  c.global_residual = gres;
  return c;
}
static mbsr_model_config cfg_gan(int gres) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_GAN);
  c.channels = 16;
  c.blocks = 2;
  c.disc_channels = 4;
  c.disc_blocks = 1;
  c.global_residual = gres;
  return c;
}

static void fill(float *p, size_t n, mbsr_rng *r, double a) {
  for (size_t i = 0; i < n; i++) p[i] = (float)(a * (2.0 * mbsr_rng_uniform(r) - 1.0));
}

/* Glorot weights from the seed, plus random biases (the default init leaves them 0). */
static void randomize(mbsr_model *m, uint64_t seed) {
  mbsr_model_init(m, seed);
  mbsr_rng *r = mbsr_rng_new(seed + 1000);
  for (int i = 0; i < mbsr_model_num_tensors(m); i++) {
    size_t off, cnt;
    const char *name = mbsr_model_tensor(m, i, &off, &cnt);
    if (strstr(name, ".bias")) fill(mbsr_model_params(m) + off, cnt, r, 0.1);
  }
  mbsr_rng_free(r);
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

/* train vs inference forward and eval_sse, batch B and 1, twice (no state kept between calls). */
static void compare_forward(mbsr_model *tm, mbsr_model *im, const char *what) {
  const size_t nv = (size_t)B * D * H * W;
  float *x = malloc(nv * 4), *tgt = malloc(nv * 4), *yt = malloc(nv * 4), *yi = malloc(nv * 4);
  mbsr_rng *r = mbsr_rng_new(3);
  for (int rep = 0; rep < 2; rep++) {
    fill(x, nv, r, 1.0);
    fill(tgt, nv, r, 1.0);
    for (int b = B; b >= 1; b--) {
      memset(yi, 0xff, nv * 4);
      MT_ASSERT_OK(mbsr_model_forward(tm, x, b, yt));
      MT_ASSERT_OK(mbsr_model_forward(im, x, b, yi));
      int eq = same(yt, yi, (size_t)b * D * H * W);
      if (!eq) fprintf(stderr, "  %s: forward differs (batch %d, round %d)\n", what, b, rep);
      CU_ASSERT(eq);
    }
    double st = mbsr_model_eval_sse(tm, x, tgt, B), si = mbsr_model_eval_sse(im, x, tgt, B);
    CU_ASSERT(st == si && st > 0);
  }
  mbsr_rng_free(r);
  free(x), free(tgt), free(yt), free(yi);
}

static void forward_case(const mbsr_model_config *c, const char *what) {
  mbsr_model *tm = NULL, *im = NULL;
  MT_ASSERT_OK(mbsr_model_create(c, B, D, H, W, &tm));
  MT_ASSERT_OK(mbsr__model_create_inference(c, B, D, H, W, &im));
  randomize(tm, 42);
  MT_ASSERT_OK(mbsr__model_copy_params(im, tm));
  const char *fams[] = {"reference", "portable", "avx2", "avx512"};
  for (int f = 0; f < 4; f++) {
    mbsr__conv3d_force_kernel(fams[f]);
    char buf[160];
    snprintf(buf, sizeof buf, "%s [%s fp32]", what, fams[f]);
    compare_forward(tm, im, buf);
  }
  mbsr__conv3d_force_kernel("auto");
  if (mbsr_conv3d_precision_available(MBSR_PREC_BF16)) { /* copy_params carries the precision over */
    MT_ASSERT_OK(mbsr_model_set_precision(tm, MBSR_PREC_BF16));
    MT_ASSERT_OK(mbsr__model_copy_params(im, tm));
    MT_ASSERT_INT_EQ(im->prec, MBSR_PREC_BF16);
    char buf[160];
    snprintf(buf, sizeof buf, "%s [%s]", what, mbsr_conv3d_kernel_name(MBSR_PREC_BF16));
    compare_forward(tm, im, buf);
  } else {
    printf("  (bf16 kernels not available on this CPU: fp32 only)\n");
  }
  printf("  %-52s forward bitwise equal to the training model\n", what);
  mbsr_model_free(tm);
  mbsr_model_free(im);
}

static void test_forward_bitwise(void) {
  mbsr_model_config c = cfg_ccnn();
  forward_case(&c, "ccnn c1=9 c2=5");
  c = cfg_resnet(16, 3, 0);
  forward_case(&c, "resnet channels=16 blocks=3");
  c = cfg_resnet(8, 2, 1);
  forward_case(&c, "resnet channels=8 blocks=2 global_residual=1");
  c = cfg_gan(1);
  forward_case(&c, "gan generator channels=16 blocks=2 global_residual=1");
  c = cfg_gan(0);
  forward_case(&c, "gan generator channels=16 blocks=2");
}

/* No conv output aliases its input or a skip source still needed: check the assignment directly. */
static void test_buffer_assignment(void) {
  mbsr_model_config c = cfg_resnet(8, 5, 1);
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr__model_create_inference(&c, 1, 3, 4, 5, &m));
  const mbsr__net *n = &m->gen;
  const float *cur = NULL; /* the caller's input */
  int i = 0, distinct = 0;
  const float *seen[8];
  for (; i < n->nhead; i++) {
    CU_ASSERT(n->conv[i].out != cur);
    cur = n->conv[i].out;
  }
  for (int b = 0; b < n->nblocks; b++, i += 2) {
    const float *t = n->conv[i].out, *y = n->conv[i + 1].out;
    CU_ASSERT(t != cur && y != cur && y != t);
    cur = y;
  }
  CU_ASSERT(n->out == n->conv[n->nconv - 1].out && n->out != cur);
  for (i = 0; i < n->nconv; i++) { /* three rotating buffers + the output */
    int k = 0;
    while (k < distinct && seen[k] != n->conv[i].out) k++;
    if (k == distinct && distinct < 8) seen[distinct++] = n->conv[i].out;
  }
  MT_ASSERT_INT_EQ(distinct, 4);
  MT_ASSERT_INT_EQ(m->gen.nconv, 12);
  CU_ASSERT(m->grads == NULL && m->adam_m == NULL && m->adam_v == NULL && m->scratch[0] == NULL);
  CU_ASSERT(m->disc.nconv == 0);
  mbsr_model_free(m);
}

static size_t train_bytes(const mbsr_model *m) {
  return 4 * (4 * m->num_params + m->abuf_floats); /* params|grads|m|v + activations, scratch, workspace */
}
static size_t infer_act_bytes(const mbsr_model *m) { return 4 * (m->abuf_floats - m->ws_floats); }

/* Activation memory: 3 C-channel buffers + the output, whatever the depth; the workspace is the
 * padded input plus a weight copy. Both reported against the training model. */
static void test_memory_bounded(void) {
  const int C = 16;
  const size_t vox = (size_t)B * D * H * W, cact = 4 * vox * C;
  size_t act0 = 0;
  for (int blocks = 1; blocks <= 7; blocks += 3) {
    mbsr_model_config c = cfg_resnet(C, blocks, 0);
    mbsr_model *tm = NULL, *im = NULL;
    MT_ASSERT_OK(mbsr_model_create(&c, B, D, H, W, &tm));
    MT_ASSERT_OK(mbsr__model_create_inference(&c, B, D, H, W, &im));
    size_t tb = train_bytes(tm), ib = 4 * (im->num_params + im->abuf_floats), act = infer_act_bytes(im);
    printf("  resnet C=%d blocks=%d, batch %d of %dx%dx%d: training %zu B (%.0f B/voxel), inference %zu B "
           "(%.0f B/voxel; activations %zu B = %.2f C-channel tensors, workspace %zu B, params %zu B)\n",
           C, blocks, B, D, H, W, tb, (double)tb / vox, ib, (double)ib / vox, act, (double)act / cact,
           4 * im->ws_floats, 4 * im->num_params);
    if (blocks == 1) act0 = act;
    MT_ASSERT_INT_EQ(act, act0);                            /* independent of depth */
    CU_ASSERT(act <= 3 * cact + 4 * vox + 4 * 4 * 16);      /* P0..P2 + output (+ rounding) */
    CU_ASSERT(4 * im->ws_floats <= 4 * (size_t)B * (D + 2) * (H + 2) * (W + 2) * C + 4 * (27 * C * C + 64));
    CU_ASSERT(ib < tb);
    mbsr_model_free(tm);
    mbsr_model_free(im);
  }
}

/* mbsr__model_inference_bytes: the same as the model's own buffers + tables, and (outside ASan, whose
 * allocator mallinfo2 does not see) the growth of the heap while building it. */
static void bytes_case(const mbsr_model_config *c, int b, int d, int h, int w) {
  size_t pred = mbsr__model_inference_bytes(c, b, d, h, w);
  CU_ASSERT(pred > 0);
#ifndef UNDER_ASAN
  struct mallinfo2 a = mallinfo2();
#endif
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr__model_create_inference(c, b, d, h, w, &m));
#ifndef UNDER_ASAN
  struct mallinfo2 z = mallinfo2();
  long grew = (long)((z.uordblks + z.hblkhd) - (a.uordblks + a.hblkhd));
  printf("  %dx%dx%dx%d: predicted %zu B, heap grew by %ld B\n", b, d, h, w, pred, grew);
  CU_ASSERT(labs(grew - (long)pred) <= 12 * 1024); /* page-rounded mmaps, malloc headers */
#endif
  size_t own = ((4 * m->num_params + 63) & ~(size_t)63) + ((4 * m->abuf_floats + 63) & ~(size_t)63) + sizeof *m +
               (size_t)m->gen.nconv * sizeof(mbsr__conv) + (size_t)m->ntensors * sizeof(mbsr__tensor);
  MT_ASSERT_INT_EQ(own, pred);
  mbsr_model_free(m);
}

static void test_inference_bytes(void) {
  mbsr_model_config c = cfg_resnet(16, 4, 1);
  bytes_case(&c, 1, 24, 20, 22);
  bytes_case(&c, 2, D, H, W);
  c = cfg_ccnn();
  bytes_case(&c, 3, 17, 13, 21);
  c = cfg_gan(0);
  bytes_case(&c, 1, 30, 30, 30);
  /* the paper ResNet, computed only: bytes per voxel of large tiles approach a constant */
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  for (int s = 32; s <= 128; s *= 2) {
    size_t by = mbsr__model_inference_bytes(&c, 1, s, s, s);
    printf("  paper resnet (64 x 10 blocks) inference, %d^3 tile: %.1f MiB, %.0f B/voxel\n", s, by / 1048576.0,
           (double)by / ((double)s * s * s));
  }
  CU_ASSERT(mbsr__model_inference_bytes(&c, 0, 8, 8, 8) == 0); /* invalid: 0 and a message */
  CU_ASSERT(mbsr__model_inference_bytes(&c, 1 << 16, 4096, 4096, 4096) == 0); /* beyond size_t: refused */
  c.channels = 0;
  CU_ASSERT(mbsr__model_inference_bytes(&c, 1, 8, 8, 8) == 0);
}

static void test_training_refused(void) {
  mbsr_model_config cs[2] = {cfg_resnet(8, 1, 0), cfg_gan(0)};
  for (int k = 0; k < 2; k++) {
    mbsr_model *m = NULL, *tm = NULL;
    MT_ASSERT_OK(mbsr__model_create_inference(&cs[k], B, D, H, W, &m));
    MT_ASSERT_OK(mbsr_model_create(&cs[k], B, D, H, W, &tm));
    const size_t nv = (size_t)B * D * H * W;
    float *x = calloc(nv, 4), *t = calloc(nv, 4);
    mbsr_adam_config a;
    mbsr_adam_config_default(&a);
    for (int ph = 0; ph < mbsr_model_num_phases(m); ph++) {
      double l = mbsr_model_phase_grad(m, ph, x, t, B, B);
      CU_ASSERT(l == MBSR_EINVAL && strstr(mbsr_last_error(), "inference only"));
      CU_ASSERT(mbsr_model_phase_update(m, ph, &a) == MBSR_EINVAL && strstr(mbsr_last_error(), "inference only"));
    }
    CU_ASSERT(mbsr_model_train_step(m, x, t, B, &a) == MBSR_EINVAL);
    CU_ASSERT(mbsr_model_freeze_all_but_last(m, 1) == MBSR_EINVAL);
    CU_ASSERT(mbsr_model_grads(m) == NULL);
    CU_ASSERT(mbsr_model_forward(m, x, B + 1, t) == MBSR_EINVAL); /* batch beyond max_batch */
    /* what does work: init (= a training model's generator for the same seed), precision, eval */
    mbsr_model_init(m, 77);
    mbsr_model_init(tm, 77);
    size_t off, cnt;
    mbsr_model_phase_span(tm, mbsr_model_num_phases(tm) - 1, &off, &cnt);
    MT_ASSERT_INT_EQ(off, 0);
    MT_ASSERT_INT_EQ(cnt, mbsr_model_num_params(m));
    CU_ASSERT(same(mbsr_model_params(m), mbsr_model_params(tm), cnt));
    MT_ASSERT_OK(mbsr_model_set_precision(m, MBSR_PREC_FP32));
    CU_ASSERT(mbsr_model_eval_sse(m, x, t, B) >= 0);
    free(x), free(t);
    mbsr_model_free(m);
    mbsr_model_free(tm);
  }
}

/* Parameters move between models of any patch size (train -> inference and back); the forward on a
 * shared size then agrees bitwise. */
static void test_copy_params(void) {
  mbsr_model_config c = cfg_resnet(8, 2, 1);
  mbsr_model *small = NULL, *inf = NULL, *tm = NULL, *back = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, 1, 5, 6, 7, &small));
  randomize(small, 9);
  MT_ASSERT_OK(mbsr__model_create_inference(&c, B, D, H, W, &inf));
  MT_ASSERT_OK(mbsr_model_create(&c, B, D, H, W, &tm));
  MT_ASSERT_OK(mbsr__model_copy_params(inf, small));
  MT_ASSERT_OK(mbsr__model_copy_params(tm, small));
  compare_forward(tm, inf, "copied from a 1x5x6x7 training model");
  /* inference -> training, another size */
  MT_ASSERT_OK(mbsr_model_create(&c, 1, 4, 4, 4, &back));
  MT_ASSERT_OK(mbsr__model_copy_params(back, inf));
  CU_ASSERT(same(mbsr_model_params(back), mbsr_model_params(small), mbsr_model_num_params(small)));
  MT_ASSERT_OK(mbsr__model_copy_params(inf, inf)); /* self: a no-op */
  /* GAN: the generator only; a training GAN keeps its discriminator */
  mbsr_model_config g = cfg_gan(1);
  mbsr_model *gt = NULL, *gi = NULL;
  MT_ASSERT_OK(mbsr_model_create(&g, 1, 6, 6, 6, &gt));
  MT_ASSERT_OK(mbsr__model_create_inference(&g, 1, 9, 9, 9, &gi));
  randomize(gi, 5);
  size_t doff, dcnt;
  mbsr_model_phase_span(gt, 0, &doff, &dcnt);
  float keep = mbsr_model_params(gt)[doff + 3];
  MT_ASSERT_OK(mbsr__model_copy_params(gt, gi));
  CU_ASSERT(same(mbsr_model_params(gt), mbsr_model_params(gi), mbsr_model_num_params(gi)));
  CU_ASSERT(mbsr_model_params(gt)[doff + 3] == keep);
  /* mismatched architectures are refused, naming both */
  mbsr_model_config c3 = cfg_resnet(8, 3, 1);
  mbsr_model *other = NULL;
  MT_ASSERT_OK(mbsr__model_create_inference(&c3, 1, 4, 4, 4, &other));
  MT_ASSERT_INT_EQ(mbsr__model_copy_params(other, small), MBSR_EMISMATCH);
  const char *e = mbsr_last_error();
  CU_ASSERT(strstr(e, "blocks=2") && strstr(e, "blocks=3"));
  printf("  mismatch: %s\n", e);
  MT_ASSERT_INT_EQ(mbsr__model_copy_params(gi, small), MBSR_EMISMATCH);
  mbsr_model *all[] = {small, inf, tm, back, gt, gi, other};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) mbsr_model_free(all[i]);
}

/* R by formula; then, on a 15^3 volume, perturbing the input R + 1 voxels from the centre (along an
 * axis, or at a corner of the cube) leaves the centre output bitwise unchanged while R voxels away it
 * changes it; and a tile's output equals the whole volume's where it lies >= R from every cut face. */
static void test_receptive_radius(void) {
  struct {
    mbsr_model_config c;
    int r;
  } cases[] = {{cfg_ccnn(), 3}, {cfg_resnet(8, 0, 0), 2}, {cfg_resnet(8, 2, 1), 6}, {cfg_gan(0), 6}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    mbsr_model *m = NULL;
    MT_ASSERT_OK(mbsr__model_create_inference(&cases[k].c, 1, 3, 3, 3, &m));
    MT_ASSERT_INT_EQ(mbsr__model_receptive_radius(m), cases[k].r);
    mbsr_model_free(m);
  }
  mbsr_model_config p;
  mbsr_model_config_default(&p, MBSR_ARCH_RESNET); /* the paper's: 22 convs */
  mbsr_model *pm = NULL;
  MT_ASSERT_OK(mbsr__model_create_inference(&p, 1, 1, 1, 1, &pm));
  MT_ASSERT_INT_EQ(mbsr__model_receptive_radius(pm), 22);
  mbsr_model_free(pm);

  mbsr_model_config c = cfg_resnet(8, 2, 0);
  const int S = 15, ctr = 7, R = 6;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr__model_create_inference(&c, 1, S, S, S, &m));
  randomize(m, 21);
  const size_t nv = (size_t)S * S * S;
  float *x = malloc(nv * 4), *y0 = malloc(nv * 4), *y1 = malloc(nv * 4);
  mbsr_rng *r = mbsr_rng_new(8);
  fill(x, nv, r, 1.0);
  mbsr_rng_free(r);
  MT_ASSERT_OK(mbsr_model_forward(m, x, 1, y0));
  const size_t ci = ((size_t)ctr * S + ctr) * S + ctr;
  const int offs[4][3] = {{0, 0, R + 1}, {R + 1, R + 1, R + 1}, {0, 0, R}, {R, R, R}};
  for (int k = 0; k < 4; k++) {
    size_t pi = ((size_t)(ctr + offs[k][0]) * S + ctr + offs[k][1]) * S + ctr + offs[k][2];
    float keep = x[pi];
    x[pi] += 5.0f;
    MT_ASSERT_OK(mbsr_model_forward(m, x, 1, y1));
    x[pi] = keep;
    int changed = y1[ci] != y0[ci];
    MT_ASSERT_INT_EQ(changed, k >= 2); /* k < 2: outside the cube; else on its face / corner */
  }
  /* a 13x13x14 tile at (1, 2, 0): cut on both d faces, on the low h and the high w face; exact >= R
   * from the cut faces */
  const int td = 13, th = 13, tw = 14, o0 = 1, o1 = 2, o2 = 0;
  mbsr_model *t = NULL;
  MT_ASSERT_OK(mbsr__model_create_inference(&c, 1, td, th, tw, &t));
  MT_ASSERT_OK(mbsr__model_copy_params(t, m));
  float *tx = malloc((size_t)td * th * tw * 4), *ty = malloc((size_t)td * th * tw * 4);
  for (int i = 0; i < td; i++)
    for (int j = 0; j < th; j++)
      for (int l = 0; l < tw; l++) tx[((size_t)i * th + j) * tw + l] = x[((size_t)(i + o0) * S + j + o1) * S + l + o2];
  MT_ASSERT_OK(mbsr_model_forward(t, tx, 1, ty));
  long checked = 0, differ = 0, differ_near = 0;
  for (int i = 0; i < td; i++)
    for (int j = 0; j < th; j++)
      for (int l = 0; l < tw; l++) {
        int exact = 1, idx[3] = {i, j, l}, org[3] = {o0, o1, o2}, ext[3] = {td, th, tw};
        for (int a = 0; a < 3; a++)
          exact &= (org[a] == 0 || idx[a] >= R) && (org[a] + ext[a] == S || idx[a] < ext[a] - R);
        int d = ty[((size_t)i * th + j) * tw + l] != y0[((size_t)(i + o0) * S + j + o1) * S + l + o2];
        if (exact) checked++, differ += d;
        else differ_near += d;
      }
  printf("  tile vs whole volume: %ld voxels >= R from cut faces, %ld differ; %ld differ nearer the faces\n",
         checked, differ, differ_near);
  CU_ASSERT(checked > 0 && differ == 0 && differ_near > 0);
  free(x), free(y0), free(y1), free(tx), free(ty);
  mbsr_model_free(m);
  mbsr_model_free(t);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"forward_bitwise", test_forward_bitwise},
                                         {"buffer_assignment", test_buffer_assignment},
                                         {"memory_bounded", test_memory_bounded},
                                         {"inference_bytes", test_inference_bytes},
                                         {"training_refused", test_training_refused},
                                         {"copy_params", test_copy_params},
                                         {"receptive_radius", test_receptive_radius},
                                         {NULL, NULL}};
  return mbsr_test_main("model_infer", cases);
}
