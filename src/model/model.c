/* The paper's networks (section 2.3) assembled from the nn kernels: cCNN, ResNet, and the GAN
 * (ResNet generator + residual discriminator), with one contiguous buffer each for parameters,
 * gradients and the two Adam moments (views named per tensor), one allocation for every
 * activation, and training in phases so a distributed trainer can all-reduce gradients between
 * backward and update. Everything is allocated in mbsr_model_create: forward, backward and
 * update allocate nothing.
 *
 * Discriminator (our design; the paper gives only "10 residual blocks, dense, sigmoid, 64
 * channels, 3x3x3"): conv 1->C + LeakyReLU(0.2), conv C->C stride 2 + LeakyReLU (halves every
 * side: the 10 blocks then cost 1/8 of the generator's), disc_blocks residual blocks
 * (conv-LeakyReLU-conv + skip) of C channels, global average pooling, dense C->1 -> logit;
 * the sigmoid lives inside the BCE-with-logits loss (numerically stable). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/model.h"
#include "model_internal.h"

/* ---------------------------------------------------------------- config ---- */

int mbsr_arch_parse(const char *s, mbsr_arch *out) {
  if (!s) return mbsr_error(MBSR_EINVAL, "no architecture given");
  if (!strcmp(s, "ccnn") || !strcmp(s, "cnn")) *out = MBSR_ARCH_CCNN;
  else if (!strcmp(s, "resnet")) *out = MBSR_ARCH_RESNET;
  else if (!strcmp(s, "gan")) *out = MBSR_ARCH_GAN;
  else return mbsr_error(MBSR_EINVAL, "unknown architecture '%s' (ccnn, resnet, gan)", s);
  return MBSR_OK;
}

const char *mbsr_arch_name(mbsr_arch a) {
  switch (a) {
    case MBSR_ARCH_CCNN: return "ccnn";
    case MBSR_ARCH_RESNET: return "resnet";
    case MBSR_ARCH_GAN: return "gan";
  }
  return "unknown";
}

void mbsr_model_config_default(mbsr_model_config *c, mbsr_arch arch) {
  memset(c, 0, sizeof *c);
  c->arch = arch;
  c->channels = 64;
  c->blocks = 10;
  c->ccnn_c1 = 64;
  c->ccnn_c2 = 32;
  c->global_residual = 0;
  c->disc_channels = 64;
  c->disc_blocks = 10;
  c->gan_lambda = 1e-3f;
}

void mbsr_adam_config_default(mbsr_adam_config *a) {
  a->lr = 1e-3f;
  a->beta1 = 0.9f;
  a->beta2 = 0.999f;
  a->eps = 1e-8f;
}

void mbsr__config_describe(const mbsr_model_config *c, char *buf, size_t n) {
  switch (c->arch) {
    case MBSR_ARCH_CCNN:
      snprintf(buf, n, "ccnn c1=%d c2=%d global_residual=%d", c->ccnn_c1, c->ccnn_c2, c->global_residual);
      break;
    case MBSR_ARCH_RESNET:
      snprintf(buf, n, "resnet channels=%d blocks=%d global_residual=%d", c->channels, c->blocks, c->global_residual);
      break;
    case MBSR_ARCH_GAN:
      snprintf(buf, n, "gan channels=%d blocks=%d global_residual=%d disc_channels=%d disc_blocks=%d", c->channels,
               c->blocks, c->global_residual, c->disc_channels, c->disc_blocks);
      break;
    default: snprintf(buf, n, "arch=%d", (int)c->arch);
  }
}

/* Equal in everything that shapes the parameters (gan_lambda is a training setting). */
int mbsr__config_equal(const mbsr_model_config *a, const mbsr_model_config *b) {
  if (a->arch != b->arch || a->global_residual != b->global_residual) return 0;
  if (a->arch == MBSR_ARCH_CCNN) return a->ccnn_c1 == b->ccnn_c1 && a->ccnn_c2 == b->ccnn_c2;
  if (a->channels != b->channels || a->blocks != b->blocks) return 0;
  if (a->arch == MBSR_ARCH_GAN) return a->disc_channels == b->disc_channels && a->disc_blocks == b->disc_blocks;
  return 1;
}

static int check_config(const mbsr_model_config *c) {
  if (c->arch != MBSR_ARCH_CCNN && c->arch != MBSR_ARCH_RESNET && c->arch != MBSR_ARCH_GAN)
    return mbsr_error(MBSR_EINVAL, "model config: unknown architecture %d", (int)c->arch);
  if (c->arch == MBSR_ARCH_CCNN) {
    if (c->ccnn_c1 < 1 || c->ccnn_c2 < 1 || c->ccnn_c1 > 4096 || c->ccnn_c2 > 4096)
      return mbsr_error(MBSR_EINVAL, "model config: ccnn widths %d, %d out of range 1..4096", c->ccnn_c1, c->ccnn_c2);
  } else {
    if (c->channels < 1 || c->channels > 4096 || c->blocks < 0 || c->blocks > 1000)
      return mbsr_error(MBSR_EINVAL, "model config: channels=%d blocks=%d out of range", c->channels, c->blocks);
  }
  if (c->arch == MBSR_ARCH_GAN) {
    if (c->disc_channels < 1 || c->disc_channels > 4096 || c->disc_blocks < 0 || c->disc_blocks > 1000)
      return mbsr_error(MBSR_EINVAL, "model config: disc_channels=%d disc_blocks=%d out of range", c->disc_channels,
                        c->disc_blocks);
    if (!(c->gan_lambda >= 0) || !isfinite(c->gan_lambda))
      return mbsr_error(MBSR_EINVAL, "model config: gan_lambda %g must be >= 0", (double)c->gan_lambda);
  }
  return MBSR_OK;
}

/* --------------------------------------------------------- construction ---- */

/* Network plan: the conv layers' shapes, before any buffer exists. */
typedef struct {
  int cin, cout, stride;
  mbsr__act act;
  char name[48];
} conv_plan;

static int plan_net(const mbsr_model_config *c, int disc, conv_plan *p, int *nhead, int *nblocks) {
  int n = 0;
  if (disc) {
    int C = c->disc_channels;
    p[n++] = (conv_plan){1, C, 1, ACT_LRELU, "disc.conv0"};
    p[n++] = (conv_plan){C, C, 2, ACT_LRELU, "disc.conv1"};
    *nhead = 2;
    *nblocks = c->disc_blocks;
    for (int b = 0; b < c->disc_blocks; b++) {
      p[n] = (conv_plan){C, C, 1, ACT_LRELU, ""};
      snprintf(p[n++].name, 48, "disc.block%d.conv1", b);
      p[n] = (conv_plan){C, C, 1, ACT_NONE, ""};
      snprintf(p[n++].name, 48, "disc.block%d.conv2", b);
    }
    return n;
  }
  if (c->arch == MBSR_ARCH_CCNN) {
    p[n++] = (conv_plan){1, c->ccnn_c1, 1, ACT_RELU, "conv0"};
    p[n++] = (conv_plan){c->ccnn_c1, c->ccnn_c2, 1, ACT_RELU, "conv1"};
    p[n++] = (conv_plan){c->ccnn_c2, 1, 1, ACT_NONE, "conv2"};
    *nhead = 2;
    *nblocks = 0;
    return n;
  }
  int C = c->channels;
  p[n++] = (conv_plan){1, C, 1, ACT_RELU, "conv0"};
  *nhead = 1;
  *nblocks = c->blocks;
  for (int b = 0; b < c->blocks; b++) {
    p[n] = (conv_plan){C, C, 1, ACT_RELU, ""};
    snprintf(p[n++].name, 48, "block%d.conv1", b);
    p[n] = (conv_plan){C, C, 1, ACT_NONE, ""};
    snprintf(p[n++].name, 48, "block%d.conv2", b);
  }
  p[n++] = (conv_plan){C, 1, 1, ACT_NONE, "conv_out"};
  return n;
}

static void add_tensor(mbsr_model *m, const char *layer, const char *what, size_t off, size_t count, int ndim,
                       const int *shape, int *trainable) {
  mbsr__tensor *t = &m->tensors[m->ntensors++];
  snprintf(t->name, sizeof t->name, "%s.%s", layer, what);
  t->off = off;
  t->count = count;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->trainable = trainable;
}

/* Conv workspace floats for any precision the model may switch to (forward_only: inference models). */
static size_t conv_ws_floats(const mbsr_conv3d_dims *dims, int forward_only, int nthreads) {
  size_t mx = 0;
  for (int p = 0; p < 3; p++) {
    mbsr_conv3d_dims q = *dims;
    q.prec = (mbsr_precision)p;
    size_t n = forward_only ? mbsr_conv3d_forward_workspace_floats(&q) : mbsr_conv3d_workspace_floats(&q, nthreads);
    if (n > mx) mx = n;
  }
  return mx;
}

/* Lay out one network: parameter offsets (from *poff), activation sizes (counted in *afloats, or
 * assigned from *abase when abase != NULL). Called twice: once to count, once to assign. */
static int build_net(mbsr_model *m, mbsr__net *net, int disc, size_t *poff, float **abase, size_t *afloats,
                     size_t *max_act, int count_only) {
  const mbsr_model_config *c = &m->cfg;
  int nconv_max = 4 + 2 * (disc ? c->disc_blocks : c->blocks);
  conv_plan *plan = malloc(sizeof *plan * (size_t)nconv_max);
  if (!plan) return mbsr_error(MBSR_ENOMEM, "model: out of memory");
  int nhead, nblocks;
  int nconv = plan_net(c, disc, plan, &nhead, &nblocks);
  if (!count_only) {
    net->conv = calloc((size_t)nconv, sizeof *net->conv);
    if (!net->conv) {
      free(plan);
      return mbsr_error(MBSR_ENOMEM, "model: out of memory");
    }
  }
  net->nhead = nhead;
  net->nblocks = nblocks;
  net->nconv = nconv;
  net->is_disc = disc;
  net->global_residual = disc ? 0 : c->global_residual;
  net->slope = MBSR__LRELU_SLOPE;
  net->p_off = *poff;
  int d = m->d, h = m->h, w = m->w;
  const int B = m->max_batch;
  size_t inmax = (size_t)B * m->vox; /* the network input */
  if (inmax > *max_act) *max_act = inmax;
  for (int i = 0; i < nconv; i++) {
    mbsr_conv3d_dims dims;
    mbsr_conv3d_dims_init(&dims, B, d, h, w, plan[i].cin, plan[i].cout, plan[i].stride);
    size_t wn = (size_t)27 * plan[i].cin * plan[i].cout, bn = (size_t)plan[i].cout;
    size_t on = (size_t)B * dims.od * dims.oh * dims.ow * plan[i].cout;
    if (on > *max_act) *max_act = on;
    if (!count_only) {
      mbsr__conv *L = &net->conv[i];
      snprintf(L->name, sizeof L->name, "%s", plan[i].name);
      L->dims = dims;
      L->act = plan[i].act;
      L->w_off = *poff;
      L->b_off = *poff + wn;
      L->trainable = 1;
      if (abase) { /* inference models point out at their rotating buffers afterwards */
        L->out = *abase;
        *abase += (on + 15) & ~(size_t)15;
      }
      int ws[5] = {3, 3, 3, plan[i].cin, plan[i].cout}, bs[1] = {plan[i].cout};
      add_tensor(m, L->name, "weight", L->w_off, wn, 5, ws, &L->trainable);
      add_tensor(m, L->name, "bias", L->b_off, bn, 1, bs, &L->trainable);
    } else {
      m->tensors_needed += 2;
      size_t wsn = conv_ws_floats(&dims, m->inference_only, m->nthreads);
      if (wsn > m->ws_floats) m->ws_floats = wsn;
    }
    *afloats += (on + 15) & ~(size_t)15;
    *poff += wn + bn;
    d = dims.od;
    h = dims.oh;
    w = dims.ow;
  }
  if (disc) {
    int C = plan[nconv - 1].cout;
    net->dense_cin = C;
    net->dw_off = *poff;
    net->db_off = *poff + (size_t)C;
    *poff += (size_t)C + 1;
    size_t pn = ((size_t)B * C + 15) & ~(size_t)15, ln = ((size_t)B + 15) & ~(size_t)15;
    if (!count_only) {
      net->dense_trainable = 1;
      net->pooled = *abase;
      *abase += pn;
      net->logits = *abase;
      *abase += ln;
      net->out = net->logits;
      int ws[2] = {C, 1}, bs[1] = {1};
      add_tensor(m, "disc.dense", "weight", net->dw_off, (size_t)C, 2, ws, &net->dense_trainable);
      add_tensor(m, "disc.dense", "bias", net->db_off, 1, 1, bs, &net->dense_trainable);
    } else {
      m->tensors_needed += 2;
    }
    *afloats += pn + ln;
  } else if (!count_only && abase) {
    net->out = net->conv[nconv - 1].out;
  }
  net->p_count = *poff - net->p_off;
  free(plan);
  return MBSR_OK;
}

static int check_patch(int max_batch, int d, int h, int w) {
  if (max_batch < 1 || max_batch > 1 << 16 || d < 1 || h < 1 || w < 1 || d > 4096 || h > 4096 || w > 4096)
    return mbsr_error(MBSR_EINVAL, "model: batch %d of %dx%dx%d patches is out of range", max_batch, d, h, w);
  return MBSR_OK;
}

/* A model struct with its config and sizes, nothing else allocated (NULL: out of memory). */
static mbsr_model *model_new(const mbsr_model_config *c, int max_batch, int d, int h, int w) {
  mbsr_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->cfg = *c;
  m->max_batch = max_batch;
  m->d = d;
  m->h = h;
  m->w = w;
  m->vox = (size_t)d * h * w;
  m->nthreads = omp_get_max_threads();
  mbsr_adam_config_default(&m->last_adam);
  return m;
}

int mbsr_model_create(const mbsr_model_config *c, int max_batch, int d, int h, int w, mbsr_model **out) {
  *out = NULL;
  int rc = check_config(c);
  if (!rc) rc = check_patch(max_batch, d, h, w);
  if (rc) return rc;
  mbsr_model *m = model_new(c, max_batch, d, h, w);
  if (!m) return mbsr_error(MBSR_ENOMEM, "model: out of memory");
  const int gan = c->arch == MBSR_ARCH_GAN;

  /* pass 1: count parameters, tensors and activation floats */
  size_t pcount = 0, afloats = 0, max_act = 0;
  m->tensors_needed = 0;
  if ((rc = build_net(m, &m->gen, 0, &pcount, NULL, &afloats, &max_act, 1))) goto fail;
  if (gan && (rc = build_net(m, &m->disc, 1, &pcount, NULL, &afloats, &max_act, 1))) goto fail;
  m->num_params = pcount;
  m->tensors = calloc((size_t)m->tensors_needed, sizeof *m->tensors);
  if (!m->tensors) { rc = mbsr_error(MBSR_ENOMEM, "model: out of memory"); goto fail; }

  /* parameters | gradients | Adam m | Adam v: one allocation, four views */
  size_t total;
  if (mbsr_mul_size(&total, 2, pcount, (size_t)4 * sizeof(float))) { rc = mbsr_error(MBSR_ERANGE, "model: too many parameters"); goto fail; }
  m->pbuf = mbsr_alloc(total);
  if (!m->pbuf) { rc = mbsr_error(MBSR_ENOMEM, "model: cannot allocate %zu parameters", pcount); goto fail; }
  m->params = m->pbuf;
  m->grads = m->pbuf + pcount;
  m->adam_m = m->pbuf + 2 * pcount;
  m->adam_v = m->pbuf + 3 * pcount;

  /* every activation, gradient scratch and the conv workspace: one allocation */
  size_t B = (size_t)max_batch;
  size_t sa = (max_act + 15) & ~(size_t)15, bb = (B + 15) & ~(size_t)15;
  size_t npool = (B * (size_t)(gan ? c->disc_channels : 1) + 15) & ~(size_t)15;
  m->abuf_floats = afloats + 3 * sa + ((B * m->vox + 15) & ~(size_t)15) + 4 * bb + npool +
                   ((m->ws_floats + 15) & ~(size_t)15);
  size_t abytes;
  if (mbsr_mul_size(&abytes, 2, m->abuf_floats, sizeof(float))) { rc = mbsr_error(MBSR_ERANGE, "model: activations too large"); goto fail; }
  m->abuf = mbsr_alloc(abytes);
  if (!m->abuf) {
    rc = mbsr_error(MBSR_ENOMEM, "model: cannot allocate %.1f MiB of activations for batch %d of %dx%dx%d",
                    (double)abytes / 1048576.0, max_batch, d, h, w);
    goto fail;
  }
  /* pass 2: assign parameter views, tensors and activation buffers */
  float *base = m->abuf;
  size_t poff = 0, a2 = 0, mx2 = 0;
  m->ntensors = 0;
  if ((rc = build_net(m, &m->gen, 0, &poff, &base, &a2, &mx2, 0))) goto fail;
  if (gan && (rc = build_net(m, &m->disc, 1, &poff, &base, &a2, &mx2, 0))) goto fail;
  float *p = m->abuf + afloats;
  for (int i = 0; i < 3; i++, p += sa) m->scratch[i] = p;
  m->scratch_floats = max_act;
  m->dgout = p;
  p += (B * m->vox + 15) & ~(size_t)15;
  m->dlogits = p;
  p += bb;
  m->ones = p;
  p += bb;
  m->zeros = p;
  p += 2 * bb;
  m->dpooled = p;
  p += npool;
  m->ws = m->ws_floats ? p : NULL;
  for (size_t i = 0; i < B; i++) m->ones[i] = 1.0f;
  if (gan) { /* the generator forward shared by the two phases of a step (phase_grad) */
    m->gcache = mbsr_alloc(sizeof(float) * (m->gen.p_count + B * m->vox));
    if (!m->gcache) { rc = mbsr_error(MBSR_ENOMEM, "model: out of memory"); goto fail; }
  }
  mbsr_model_init(m, 0);
  *out = m;
  return MBSR_OK;
fail:
  mbsr_model_free(m);
  return rc;
}

void mbsr_model_free(mbsr_model *m) {
  if (!m) return;
  free(m->gen.conv);
  free(m->disc.conv);
  free(m->tensors);
  mbsr_free(m->pbuf);
  mbsr_free(m->abuf);
  mbsr_free(m->gcache);
  free(m);
}

/* ------------------------------------------------ inference-only models ---- */

static size_t round16f(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t round64b(size_t n) { return (n + 63) & ~(size_t)63; } /* what mbsr_alloc reserves */

/* The layout of an inference model (model_internal.h): which rotating buffer each generator conv
 * writes (slot[i] = 0..2; the tail -1 = the output buffer) and every allocation's size. */
typedef struct {
  size_t buf[3];  /* floats of the rotating buffers P0, P1, P2 */
  size_t outf;    /* floats of the output buffer (B,D,H,W,1) */
  size_t ws;      /* floats of the forward-only conv workspace */
  size_t params;  /* generator parameter floats */
  size_t abuf;    /* buf[0..2] + outf + ws: the activation allocation */
  size_t bytes;   /* everything mbsr__model_create_inference allocates */
  int nconv;
} infer_layout;

static int other_slot(int a, int b) { return a != 0 && b != 0 ? 0 : a != 1 && b != 1 ? 1 : 2; }

/* slot[nconv]: head convs write the first buffer that is not their input; block (x, t, y) take three
 * different buffers (t and y avoid x, y avoids t), so no conv writes its input or a live skip source. */
static void assign_slots(int nhead, int nblocks, int *slot) {
  int cur = -1, i = 0; /* the buffer holding the current activation; -1 = the caller's input */
  for (; i < nhead; i++) cur = slot[i] = other_slot(cur, -1);
  for (int b = 0; b < nblocks; b++, i += 2) {
    slot[i] = other_slot(cur, -1);
    cur = slot[i + 1] = other_slot(cur, slot[i]);
  }
  slot[i] = -1; /* tail */
}

/* The layout without allocating anything but the plan; *slots_out (if not NULL) receives slot[nconv]
 * (caller frees). */
static int plan_inference(const mbsr_model_config *c, int B, int d, int h, int w, infer_layout *L, int **slots_out) {
  memset(L, 0, sizeof *L);
  int rc = check_config(c);
  if (!rc) rc = check_patch(B, d, h, w);
  if (rc) return rc;
  const int arch_c = c->arch == MBSR_ARCH_CCNN ? (c->ccnn_c1 > c->ccnn_c2 ? c->ccnn_c1 : c->ccnn_c2) : c->channels;
  if ((double)B * d * h * w * arch_c > 0x1p56) /* keeps every size below in size_t */
    return mbsr_error(MBSR_ERANGE, "model: batch %d of %dx%dx%d tiles x %d channels is too large", B, d, h, w, arch_c);
  int nmax = 4 + 2 * c->blocks, nhead, nblocks;
  conv_plan *plan = malloc(sizeof *plan * (size_t)nmax);
  int *slot = malloc(sizeof *slot * (size_t)nmax);
  if (!plan || !slot) {
    free(plan);
    free(slot);
    return mbsr_error(MBSR_ENOMEM, "model: out of memory");
  }
  int nconv = plan_net(c, 0, plan, &nhead, &nblocks);
  assign_slots(nhead, nblocks, slot);
  for (int i = 0; i < nconv; i++) {
    mbsr_conv3d_dims dims;
    mbsr_conv3d_dims_init(&dims, B, d, h, w, plan[i].cin, plan[i].cout, plan[i].stride);
    size_t on = round16f((size_t)B * dims.od * dims.oh * dims.ow * plan[i].cout);
    size_t *dst = slot[i] >= 0 ? &L->buf[slot[i]] : &L->outf;
    if (on > *dst) *dst = on;
    size_t wsn = conv_ws_floats(&dims, 1, 1);
    if (wsn > L->ws) L->ws = wsn;
    L->params += (size_t)27 * plan[i].cin * plan[i].cout + (size_t)plan[i].cout;
    d = dims.od, h = dims.oh, w = dims.ow;
  }
  L->ws = round16f(L->ws);
  L->nconv = nconv;
  L->abuf = L->buf[0] + L->buf[1] + L->buf[2] + L->outf + L->ws;
  L->bytes = round64b(L->params * sizeof(float)) + round64b(L->abuf * sizeof(float)) + sizeof(mbsr_model) +
             (size_t)nconv * (sizeof(mbsr__conv) + 2 * sizeof(mbsr__tensor));
  free(plan);
  if (slots_out) *slots_out = slot;
  else free(slot);
  return MBSR_OK;
}

size_t mbsr__model_inference_bytes(const mbsr_model_config *c, int batch, int d, int h, int w) {
  infer_layout L;
  return plan_inference(c, batch, d, h, w, &L, NULL) ? 0 : L.bytes;
}

int mbsr__model_create_inference(const mbsr_model_config *c, int max_batch, int d, int h, int w, mbsr_model **out) {
  *out = NULL;
  infer_layout L;
  int *slot = NULL;
  int rc = plan_inference(c, max_batch, d, h, w, &L, &slot);
  if (rc) return rc;
  mbsr_model *m = model_new(c, max_batch, d, h, w);
  if (!m) {
    free(slot);
    return mbsr_error(MBSR_ENOMEM, "model: out of memory");
  }
  m->inference_only = 1;
  /* pass 1 counts the tensors (and must agree with the plan) */
  size_t pcount = 0, afloats = 0, max_act = 0;
  if ((rc = build_net(m, &m->gen, 0, &pcount, NULL, &afloats, &max_act, 1))) goto fail;
  if (pcount != L.params || round16f(m->ws_floats) != L.ws) {
    rc = mbsr_error(MBSR_ERANGE, "model: inference plan disagrees with the network (%zu vs %zu parameters)", L.params,
                    pcount);
    goto fail;
  }
  m->num_params = pcount;
  m->tensors = calloc((size_t)m->tensors_needed, sizeof *m->tensors);
  m->pbuf = mbsr_alloc(pcount * sizeof(float));
  m->abuf = mbsr_alloc(L.abuf * sizeof(float));
  if (!m->tensors || !m->pbuf || !m->abuf) {
    rc = mbsr_error(MBSR_ENOMEM, "model: cannot allocate %.1f MiB for inference on batch %d of %dx%dx%d",
                    (double)L.bytes / 1048576.0, max_batch, d, h, w);
    goto fail;
  }
  m->params = m->pbuf; /* grads, adam_m, adam_v stay NULL */
  m->abuf_floats = L.abuf;
  float *bufs[3] = {m->abuf, m->abuf + L.buf[0], m->abuf + L.buf[0] + L.buf[1]};
  float *outbuf = bufs[2] + L.buf[2];
  m->ws = outbuf + L.outf;
  m->ws_floats = L.ws;
  /* pass 2: parameter views and tensors, then the rotating buffers */
  size_t poff = 0, a2 = 0, mx2 = 0;
  m->ntensors = 0;
  if ((rc = build_net(m, &m->gen, 0, &poff, NULL, &a2, &mx2, 0))) goto fail;
  for (int i = 0; i < m->gen.nconv; i++) m->gen.conv[i].out = slot[i] >= 0 ? bufs[slot[i]] : outbuf;
  m->gen.out = outbuf;
  free(slot);
  mbsr_model_init(m, 0);
  *out = m;
  return MBSR_OK;
fail:
  free(slot);
  mbsr_model_free(m);
  return rc;
}

int mbsr__model_copy_params(mbsr_model *dst, const mbsr_model *src) {
  if (!mbsr__config_equal(&dst->cfg, &src->cfg)) {
    char a[256], b[256];
    mbsr__config_describe(&src->cfg, a, sizeof a);
    mbsr__config_describe(&dst->cfg, b, sizeof b);
    return mbsr_error(MBSR_EMISMATCH, "model: cannot copy the parameters of a %s into a %s", a, b);
  }
  const mbsr__net *s = &src->gen;
  mbsr__net *d = &dst->gen;
  if (s->p_count != d->p_count)
    return mbsr_error(MBSR_EMISMATCH, "model: generators of %zu and %zu parameters", s->p_count, d->p_count);
  if (dst != src) memcpy(dst->params + d->p_off, src->params + s->p_off, sizeof(float) * s->p_count);
  return mbsr_model_set_precision(dst, src->prec);
}

int mbsr__model_receptive_radius(const mbsr_model *m) {
  int r = 0, jump = 1; /* jump: input voxels per step of the current layer's grid */
  for (int i = 0; i < m->gen.nconv; i++) {
    r += jump; /* 3x3x3: one step either side */
    jump *= m->gen.conv[i].dims.stride;
  }
  return r;
}

static int refuse_inference(const char *what) {
  return mbsr_error(MBSR_EINVAL,
                    "model: built for inference only (no gradients or Adam state): %s needs a model from "
                    "mbsr_model_create",
                    what);
}

const mbsr_model_config *mbsr_model_get_config(const mbsr_model *m) { return &m->cfg; }

static void init_net(mbsr_model *m, mbsr__net *n, mbsr_rng *rng) {
  for (int i = 0; i < n->nconv; i++) {
    mbsr__conv *L = &n->conv[i];
    size_t wn = (size_t)27 * L->dims.cin * L->dims.cout;
    mbsr_glorot_uniform(m->params + L->w_off, wn, 27.0 * L->dims.cin, 27.0 * L->dims.cout, rng);
    memset(m->params + L->b_off, 0, sizeof(float) * (size_t)L->dims.cout);
  }
  if (n->is_disc) {
    mbsr_glorot_uniform(m->params + n->dw_off, (size_t)n->dense_cin, n->dense_cin, 1.0, rng);
    m->params[n->db_off] = 0.0f;
  }
}

void mbsr_model_init(mbsr_model *m, uint64_t seed) {
  mbsr_rng *rng = mbsr_rng_new(seed);
  if (!rng) return;
  memset(m->params, 0, sizeof(float) * m->num_params);
  init_net(m, &m->gen, rng);
  if (m->cfg.arch == MBSR_ARCH_GAN) init_net(m, &m->disc, rng);
  mbsr_rng_free(rng);
  if (m->grads) memset(m->grads, 0, sizeof(float) * m->num_params * 3); /* grads, m, v (training models) */
  m->adam_t[0] = m->adam_t[1] = 0;
}

int mbsr_model_set_precision(mbsr_model *m, mbsr_precision p) {
  if (p != MBSR_PREC_FP32 && p != MBSR_PREC_BF16)
    return mbsr_error(MBSR_EINVAL, "model: unknown precision %d", (int)p);
  if (p != MBSR_PREC_FP32 && !mbsr_conv3d_precision_available(p))
    return mbsr_error(MBSR_EUNSUPPORTED, "model: precision bf16 needs AVX512_BF16, which this CPU lacks");
  mbsr__net *nets[2] = {&m->gen, &m->disc};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < nets[k]->nconv; i++) nets[k]->conv[i].dims.prec = p;
  m->prec = p;
  return MBSR_OK;
}

int mbsr_model_freeze_all_but_last(mbsr_model *m, int k) {
  if (m->inference_only) return refuse_inference("freezing layers");
  mbsr__net *g = &m->gen;
  for (int i = 0; i < g->nconv; i++) g->conv[i].trainable = (k < 0) || (i >= g->nconv - k);
  return MBSR_OK;
}

size_t mbsr_model_num_params(const mbsr_model *m) { return m->num_params; }
float *mbsr_model_params(mbsr_model *m) { return m->params; }
float *mbsr_model_grads(mbsr_model *m) { return m->grads; }
int mbsr_model_num_tensors(const mbsr_model *m) { return m->ntensors; }

const char *mbsr_model_tensor(const mbsr_model *m, int i, size_t *offset, size_t *count) {
  if (i < 0 || i >= m->ntensors) return NULL;
  if (offset) *offset = m->tensors[i].off;
  if (count) *count = m->tensors[i].count;
  return m->tensors[i].name;
}

int mbsr_model_conv_layer(const mbsr_model *m, int i, const char **name, mbsr_conv3d_dims *dims) {
  const int ng = m->gen.nconv, nd = m->cfg.arch == MBSR_ARCH_GAN && m->disc.conv ? m->disc.nconv : 0;
  if (i >= 0 && i < ng + nd) {
    const mbsr__conv *L = i < ng ? &m->gen.conv[i] : &m->disc.conv[i - ng];
    if (name) *name = L->name;
    if (dims) *dims = L->dims;
  }
  return ng + nd;
}

double mbsr_model_forward_flops(const mbsr_model *m) {
  double f = 0.0;
  for (int i = 0; i < m->gen.nconv; i++) {
    const mbsr_conv3d_dims *s = &m->gen.conv[i].dims;
    f += 2.0 * 27.0 * s->cin * s->cout * (double)s->od * s->oh * s->ow;
  }
  return f;
}

int64_t mbsr_model_adam_steps(const mbsr_model *m) {
  return m->cfg.arch == MBSR_ARCH_GAN ? m->adam_t[1] : m->adam_t[0];
}

/* ------------------------------------------------------ forward/backward ---- */

static void act_forward(const mbsr__net *n, mbsr__act a, float *x, size_t cnt) {
  if (a == ACT_RELU) mbsr_relu_forward(x, x, cnt);
  else if (a == ACT_LRELU) mbsr_lrelu_forward(x, x, cnt, n->slope);
}

static void act_backward(const mbsr__net *n, mbsr__act a, float *d, const float *out, size_t cnt) {
  if (a == ACT_RELU) mbsr_relu_backward_inplace(d, out, cnt);
  else if (a == ACT_LRELU) mbsr_lrelu_backward_inplace(d, out, cnt, n->slope);
}

static size_t conv_out_count(const mbsr_conv3d_dims *s, int B) {
  return (size_t)B * s->od * s->oh * s->ow * s->cout;
}
static size_t conv_in_count(const mbsr_conv3d_dims *s, int B) { return (size_t)B * s->d * s->h * s->w * s->cin; }

static void conv_fwd(mbsr_model *m, mbsr__conv *L, const float *in, int B) {
  mbsr_conv3d_dims s = L->dims;
  s.n = B;
  L->in = in;
  mbsr_conv3d_forward(L->out, in, m->params + L->w_off, m->params + L->b_off, &s, m->ws);
}

/* Fused forms (nn.h): out = relu?(conv + bias + residual) */
static void conv_fwd_fused(mbsr_model *m, mbsr__conv *L, const float *in, const float *residual, int relu, int B) {
  mbsr_conv3d_dims s = L->dims;
  s.n = B;
  L->in = in;
  mbsr_conv3d_forward_fused(L->out, in, m->params + L->w_off, m->params + L->b_off, residual, relu, &s, m->ws);
}
/* dinp = (base + conv^T dout) * (relu_out > 0); base NULL = from zero */
static void conv_bwd_fused(mbsr_model *m, mbsr__conv *L, float *dinp, const float *base, const float *relu_out,
                           int wgrad, const float *dout, int B) {
  mbsr_conv3d_dims s = L->dims;
  s.n = B;
  float *dw = wgrad ? m->grads + L->w_off : NULL, *db = wgrad ? m->grads + L->b_off : NULL;
  if (!dinp && !dw) return;
  mbsr_conv3d_backward_fused(dinp, base, relu_out, dw, db, dout, L->in, m->params + L->w_off, &s, m->ws);
}

static void conv_bwd(mbsr_model *m, mbsr__conv *L, float *dinp, int wgrad, const float *dout, int B) {
  mbsr_conv3d_dims s = L->dims;
  s.n = B;
  float *dw = wgrad ? m->grads + L->w_off : NULL, *db = wgrad ? m->grads + L->b_off : NULL;
  if (!dinp && !dw) return;
  mbsr_conv3d_backward(dinp, dw, db, dout, L->in, m->params + L->w_off, &s, m->ws);
}

/* x (B,D,H,W,1) -> n->out */
static void net_forward(mbsr_model *m, mbsr__net *n, const float *x, int B) {
  if (n == &m->gen) m->gcache_valid = 0; /* the generator's activations change */
  n->x = x;
  const float *cur = x;
  int i = 0;
  for (; i < n->nhead; i++) {
    mbsr__conv *L = &n->conv[i];
    if (L->act == ACT_RELU) conv_fwd_fused(m, L, cur, NULL, 1, B);
    else {
      conv_fwd(m, L, cur, B);
      act_forward(n, L->act, L->out, conv_out_count(&L->dims, B));
    }
    cur = L->out;
  }
  for (int b = 0; b < n->nblocks; b++, i += 2) {
    mbsr__conv *c1 = &n->conv[i], *c2 = &n->conv[i + 1];
    if (c1->act == ACT_RELU) conv_fwd_fused(m, c1, cur, NULL, 1, B);
    else {
      conv_fwd(m, c1, cur, B);
      act_forward(n, c1->act, c1->out, conv_out_count(&c1->dims, B));
    }
    conv_fwd_fused(m, c2, c1->out, cur, 0, B); /* + the skip */
    cur = c2->out;
  }
  if (n->is_disc) {
    const mbsr_conv3d_dims *s = &n->conv[n->nconv - 1].dims;
    size_t S = (size_t)s->od * s->oh * s->ow;
    mbsr_gap_forward(n->pooled, cur, B, S, n->dense_cin);
    mbsr_dense_forward(n->logits, n->pooled, m->params + n->dw_off, m->params + n->db_off, B, n->dense_cin, 1);
  } else {
    mbsr__conv *L = &n->conv[n->nconv - 1];
    conv_fwd(m, L, cur, B);
    if (n->global_residual) mbsr_residual_forward(L->out, L->out, x, (size_t)B * m->vox);
  }
}

/* Backward through the network of the last net_forward. dout: d loss / d n->out (generator
 * (B,D,H,W), discriminator (B) logits). wgrad: accumulate parameter gradients of trainable
 * layers. dinput (may be NULL): += d loss / d input. dout itself is not modified. */
static void net_backward(mbsr_model *m, mbsr__net *n, const float *dout, int wgrad, float *dinput, int B) {
  /* The earliest conv that needs any work: everything before it is skipped. */
  int stop = n->nconv;
  if (dinput) stop = 0;
  else if (wgrad)
    for (int i = 0; i < n->nconv; i++)
      if (n->conv[i].trainable) { stop = i; break; }
#define WG(i) (wgrad && n->conv[i].trainable)
#define NEED_DIN(i) ((i) > stop || ((i) == 0 && dinput))
  float *g = m->scratch[0], *t = m->scratch[1], *u = m->scratch[2];
  int last_trunk = n->is_disc ? n->nconv - 1 : n->nconv - 2; /* conv whose output feeds the tail */
  size_t gcount; /* floats of the trunk output gradient */
  if (n->is_disc) {
    const mbsr_conv3d_dims *s = &n->conv[last_trunk].dims;
    size_t S = (size_t)s->od * s->oh * s->ow;
    const int dtr = wgrad && n->dense_trainable;
    memset(m->dpooled, 0, sizeof(float) * (size_t)B * n->dense_cin);
    mbsr_dense_backward(m->dpooled, dtr ? m->grads + n->dw_off : NULL, dtr ? m->grads + n->db_off : NULL, dout,
                        n->pooled, m->params + n->dw_off, B, n->dense_cin, 1);
    if (stop >= n->nconv) return;
    gcount = S * B * n->dense_cin;
    memset(g, 0, sizeof(float) * gcount);
    mbsr_gap_backward(g, m->dpooled, B, S, n->dense_cin);
  } else {
    int tl = n->nconv - 1;
    mbsr__conv *L = &n->conv[tl];
    if (n->global_residual && dinput) mbsr_residual_backward(dinput, NULL, dout, (size_t)B * m->vox);
    if (tl < stop) return;
    float *din = NULL;
    if (NEED_DIN(tl)) {
      din = (tl == 0) ? dinput : g;
      if (tl != 0) memset(g, 0, sizeof(float) * conv_in_count(&L->dims, B));
    }
    conv_bwd(m, L, din, WG(tl), dout, B);
    if (!NEED_DIN(tl) || tl == 0) return;
  }
  /* g = d loss / d (output of conv[last_trunk], after its block's residual add) */
  int i = n->nconv - (n->is_disc ? 0 : 1); /* one past the last trunk conv */
  for (int b = n->nblocks - 1; b >= 0; b--) {
    i -= 2;
    mbsr__conv *c1 = &n->conv[i], *c2 = &n->conv[i + 1];
    if (i + 1 < stop) return;
    /* conv2: dh1 into t */
    float *dh1 = NULL;
    if (NEED_DIN(i + 1)) dh1 = t;
    if (dh1 && c1->act == ACT_RELU) {
      conv_bwd_fused(m, c2, dh1, NULL, c1->out, WG(i + 1), g, B); /* written, then ReLU-masked */
    } else {
      if (dh1) memset(t, 0, sizeof(float) * conv_in_count(&c2->dims, B));
      conv_bwd(m, c2, dh1, WG(i + 1), g, B);
      if (!dh1) return;
      act_backward(n, c1->act, t, c1->out, conv_out_count(&c1->dims, B));
    }
    /* conv1 + skip: d block input = g (skip) + conv1's input gradient */
    if (NEED_DIN(i)) {
      float *dx = (i == 0) ? dinput : u;
      size_t cnt = conv_in_count(&c1->dims, B);
      if (i == 0) {
        mbsr_residual_backward(dx, NULL, g, cnt);
        conv_bwd(m, c1, dx, WG(i), t, B);
      } else {
        conv_bwd_fused(m, c1, u, g, NULL, WG(i), t, B); /* u = g (the skip) + conv1's input gradient */
      }
      if (i == 0) return;
      float *tmp = g;
      g = u;
      u = tmp;
    } else {
      conv_bwd(m, c1, NULL, WG(i), t, B);
      return;
    }
  }
  /* head convs, last to first */
  for (int h = n->nhead - 1; h >= 0; h--) {
    mbsr__conv *L = &n->conv[h];
    if (h < stop) return;
    act_backward(n, L->act, g, L->out, conv_out_count(&L->dims, B));
    float *din = NULL;
    if (NEED_DIN(h)) {
      if (h == 0) din = dinput;
      else {
        din = t;
        memset(t, 0, sizeof(float) * conv_in_count(&L->dims, B));
      }
    }
    conv_bwd(m, L, din, WG(h), g, B);
    if (!din || h == 0) return;
    float *tmp = g;
    g = t;
    t = tmp;
  }
#undef WG
#undef NEED_DIN
}

static int check_batch(const mbsr_model *m, int batch) {
  if (batch < 1 || batch > m->max_batch)
    return mbsr_error(MBSR_EINVAL, "model: batch %d outside 1..%d (the size the model was built for)", batch,
                      m->max_batch);
  return MBSR_OK;
}

int mbsr_model_forward(mbsr_model *m, const float *in, int batch, float *out) {
  int rc = check_batch(m, batch);
  if (rc) return rc;
  net_forward(m, &m->gen, in, batch);
  memcpy(out, m->gen.out, sizeof(float) * (size_t)batch * m->vox);
  return MBSR_OK;
}

/* The GAN generator forward: phase 0 runs it and keeps copies of the generator's parameters and of the
 * input; phase 1 (the generator's step, after the discriminator's update, which leaves the generator
 * alone) reuses its activations when the parameters, the input and the precision are bitwise the same,
 * so a GAN step runs the generator forward once. Anything else that runs the generator (forward,
 * eval_sse) or changes its parameters (init, checkpoints, the caller through mbsr_model_params) makes
 * phase 1 run it again: the copies are compared, nothing is assumed. */
static void gan_gen_forward(mbsr_model *m, const float *in, int batch, int phase) {
  mbsr__net *G = &m->gen;
  const size_t np = G->p_count, nv = (size_t)batch * m->vox;
  float *pc = m->gcache, *ic = m->gcache + np;
  if (phase == 1 && m->gcache_valid && m->gcache_batch == batch && m->gcache_prec == m->prec &&
      !memcmp(ic, in, sizeof(float) * nv) && !memcmp(pc, m->params + G->p_off, sizeof(float) * np)) {
    G->x = in; /* the same values, perhaps in another buffer: the backward reads them from here */
    G->conv[0].in = in;
    m->gcache_valid = 0; /* one reuse */
    return;
  }
  net_forward(m, G, in, batch);
  if (phase == 0) {
    memcpy(pc, m->params + G->p_off, sizeof(float) * np);
    memcpy(ic, in, sizeof(float) * nv);
    m->gcache_valid = 1;
    m->gcache_batch = batch;
    m->gcache_prec = m->prec;
  }
}

int mbsr_model_num_phases(const mbsr_model *m) { return m->cfg.arch == MBSR_ARCH_GAN ? 2 : 1; }

static mbsr__net *phase_net(mbsr_model *m, int phase) {
  return (m->cfg.arch == MBSR_ARCH_GAN && phase == 0) ? &m->disc : &m->gen;
}

void mbsr_model_phase_span(const mbsr_model *m, int phase, size_t *offset, size_t *count) {
  const mbsr__net *n = phase_net((mbsr_model *)m, phase);
  *offset = n->p_off;
  *count = n->p_count;
}

double mbsr_model_phase_grad(mbsr_model *m, int phase, const float *in, const float *target, int batch,
                             double norm) {
  if (m->inference_only) return refuse_inference("mbsr_model_phase_grad");
  int rc = check_batch(m, batch);
  if (rc) return rc;
  if (phase < 0 || phase >= mbsr_model_num_phases(m))
    return mbsr_error(MBSR_EINVAL, "model: phase %d outside 0..%d", phase, mbsr_model_num_phases(m) - 1);
  if (!(norm > 0)) return mbsr_error(MBSR_EINVAL, "model: gradient normaliser %g must be > 0", norm);
  const size_t nv = (size_t)batch * m->vox;
  if (!mbsr_all_finite(in, nv)) return mbsr_error(MBSR_ENONFINITE, "training batch: NaN or Inf in the input patches");
  if (!mbsr_all_finite(target, nv))
    return mbsr_error(MBSR_ENONFINITE, "training batch: NaN or Inf in the target patches");
  mbsr__net *pn = phase_net(m, phase);
  memset(m->grads + pn->p_off, 0, sizeof(float) * pn->p_count);
  const double mse_scale = 1.0 / ((double)m->vox * norm);
  double loss;
  if (m->cfg.arch != MBSR_ARCH_GAN) {
    net_forward(m, &m->gen, in, batch);
    loss = mbsr_mse_forward(m->gen.out, target, nv, mse_scale);
    memset(m->dgout, 0, sizeof(float) * nv);
    mbsr_mse_backward(m->dgout, m->gen.out, target, nv, mse_scale);
    net_backward(m, &m->gen, m->dgout, 1, NULL, batch);
    m->last_mse = loss;
  } else if (phase == 0) {
    /* discriminator: BCE(D(real), 1) + BCE(D(G(in)), 0), each summed over the batch / norm */
    mbsr__net *D = &m->disc;
    gan_gen_forward(m, in, batch, 0);
    m->last_mse = mbsr_mse_forward(m->gen.out, target, nv, mse_scale);
    double lr_ = 0.0, lf = 0.0;
    net_forward(m, D, target, batch);
    lr_ = mbsr_bce_logits_forward(D->logits, m->ones, (size_t)batch, 1.0 / norm);
    memset(m->dlogits, 0, sizeof(float) * (size_t)batch);
    mbsr_bce_logits_backward(m->dlogits, D->logits, m->ones, (size_t)batch, 1.0 / norm);
    net_backward(m, D, m->dlogits, 1, NULL, batch);
    net_forward(m, D, m->gen.out, batch);
    lf = mbsr_bce_logits_forward(D->logits, m->zeros, (size_t)batch, 1.0 / norm);
    memset(m->dlogits, 0, sizeof(float) * (size_t)batch);
    mbsr_bce_logits_backward(m->dlogits, D->logits, m->zeros, (size_t)batch, 1.0 / norm);
    net_backward(m, D, m->dlogits, 1, NULL, batch);
    loss = lr_ + lf;
    m->last_dloss = loss;
  } else {
    /* generator: MSE(G(in), target) + lambda * BCE(D(G(in)), 1); D's parameters get no gradient */
    mbsr__net *D = &m->disc;
    gan_gen_forward(m, in, batch, 1);
    double mse = mbsr_mse_forward(m->gen.out, target, nv, mse_scale);
    memset(m->dgout, 0, sizeof(float) * nv);
    mbsr_mse_backward(m->dgout, m->gen.out, target, nv, mse_scale);
    double lam = m->cfg.gan_lambda;
    double adv = 0.0;
    if (lam > 0) {
      net_forward(m, D, m->gen.out, batch);
      adv = mbsr_bce_logits_forward(D->logits, m->ones, (size_t)batch, lam / norm);
      memset(m->dlogits, 0, sizeof(float) * (size_t)batch);
      mbsr_bce_logits_backward(m->dlogits, D->logits, m->ones, (size_t)batch, lam / norm);
      net_backward(m, D, m->dlogits, 0, m->dgout, batch);
    }
    net_backward(m, &m->gen, m->dgout, 1, NULL, batch);
    m->last_mse = mse;
    m->last_adv = adv;
    loss = mse + adv;
  }
  if (!isfinite(loss)) return mbsr_error(MBSR_ENONFINITE, "training: the loss became %g (phase %d)", loss, phase);
  return loss;
}

static void adam_tensor(mbsr_model *m, size_t off, size_t cnt, const mbsr_adam_config *a, int64_t t) {
  mbsr_adam_update(m->params + off, m->grads + off, m->adam_m + off, m->adam_v + off, cnt, a->lr, a->beta1,
                   a->beta2, a->eps, t);
}

int mbsr_model_phase_update(mbsr_model *m, int phase, const mbsr_adam_config *a) {
  if (m->inference_only) return refuse_inference("mbsr_model_phase_update");
  if (phase < 0 || phase >= mbsr_model_num_phases(m))
    return mbsr_error(MBSR_EINVAL, "model: phase %d outside 0..%d", phase, mbsr_model_num_phases(m) - 1);
  if (!(a->lr >= 0) || !(a->beta1 >= 0 && a->beta1 < 1) || !(a->beta2 >= 0 && a->beta2 < 1) || !(a->eps > 0))
    return mbsr_error(MBSR_EINVAL, "adam: lr=%g beta1=%g beta2=%g eps=%g out of range", (double)a->lr,
                      (double)a->beta1, (double)a->beta2, (double)a->eps);
  mbsr__net *n = phase_net(m, phase);
  if (!mbsr_all_finite(m->grads + n->p_off, n->p_count))
    return mbsr_error(MBSR_ENONFINITE, "training: NaN or Inf in the gradients (phase %d); parameters not updated",
                      phase);
  int64_t t = ++m->adam_t[phase];
  m->last_adam = *a;
  for (int i = 0; i < n->nconv; i++) {
    mbsr__conv *L = &n->conv[i];
    if (!L->trainable) continue;
    adam_tensor(m, L->w_off, (size_t)27 * L->dims.cin * L->dims.cout + (size_t)L->dims.cout, a, t);
  }
  if (n->is_disc && n->dense_trainable) adam_tensor(m, n->dw_off, (size_t)n->dense_cin + 1, a, t);
  return MBSR_OK;
}

double mbsr_model_train_step(mbsr_model *m, const float *in, const float *target, int batch,
                             const mbsr_adam_config *a) {
  if (m->inference_only) return refuse_inference("mbsr_model_train_step");
  int np = mbsr_model_num_phases(m);
  for (int ph = 0; ph < np; ph++) {
    double l = mbsr_model_phase_grad(m, ph, in, target, batch, (double)batch);
    if (l < 0) return l;
    int rc = mbsr_model_phase_update(m, ph, a);
    if (rc) return rc;
  }
  return m->last_mse;
}

double mbsr_model_eval_sse(mbsr_model *m, const float *in, const float *target, int batch) {
  double sse = 0.0;
  for (int b0 = 0; b0 < batch; b0 += m->max_batch) {
    int nb = batch - b0 < m->max_batch ? batch - b0 : m->max_batch;
    size_t off = (size_t)b0 * m->vox;
    net_forward(m, &m->gen, in + off, nb);
    sse += mbsr_mse_forward(m->gen.out, target + off, (size_t)nb * m->vox, 1.0 / (double)m->vox);
  }
  return sse;
}

void mbsr_model_last_losses(const mbsr_model *m, double *mse, double *adv, double *dloss) {
  if (mse) *mse = m->last_mse;
  if (adv) *adv = m->last_adv;
  if (dloss) *dloss = m->last_dloss;
}

void mbsr_model_patch_dims(const mbsr_model *m, int *max_batch, int *d, int *h, int *w) {
  if (max_batch) *max_batch = m->max_batch;
  if (d) *d = m->d;
  if (h) *h = m->h;
  if (w) *w = m->w;
}
