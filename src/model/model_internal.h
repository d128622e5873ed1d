/* Internal to src/model: the model struct shared by model.c (networks, training), checkpoint.c
 * (HDF5) and apply.c (whole-volume inference). */
#ifndef MBSR_MODEL_INTERNAL_H
#define MBSR_MODEL_INTERNAL_H

#include "mbsr/model.h"

typedef enum { ACT_NONE = 0, ACT_RELU = 1, ACT_LRELU = 2 } mbsr__act;

#define MBSR__LRELU_SLOPE 0.2f

typedef struct {
  char name[48];          /* "conv0", "block3.conv1", "disc.conv1", ... */
  mbsr_conv3d_dims dims;  /* n = max_batch; the call-time batch replaces n */
  size_t w_off, b_off;    /* views into the parameter buffer: weight (3,3,3,CIN,COUT), bias (COUT) */
  mbsr__act act;          /* applied in place to the output */
  const float *in;        /* input seen by the last forward (an activation or the caller's batch) */
  float *out;             /* (N,OD,OH,OW,COUT) */
  int trainable;
} mbsr__conv;

/* A sequential network: head convs (each + activation), residual blocks (conv-act-conv + skip),
 * then either a tail conv to one channel (generator; + optional global residual) or global
 * average pooling + dense to one logit (discriminator). */
typedef struct {
  int nhead, nblocks, nconv; /* conv[] = head..., block0.conv1, block0.conv2, ..., [tail] */
  mbsr__conv *conv;
  int is_disc;
  int global_residual;
  float slope;
  /* discriminator tail */
  int dense_cin;
  size_t dw_off, db_off;
  int dense_trainable;
  float *pooled, *logits;  /* (N,C), (N,1) */
  /* parameter span of this network */
  size_t p_off, p_count;
  float *out;              /* network output: generator (N,D,H,W,1), discriminator = logits */
  const float *x;          /* the input of the last forward */
} mbsr__net;

typedef struct {
  char name[64];
  size_t off, count;
  int ndim;
  int shape[5];
  int *trainable; /* the layer's flag */
} mbsr__tensor;

struct mbsr_model {
  mbsr_model_config cfg;
  int max_batch, d, h, w;
  size_t vox; /* d*h*w */
  int nthreads;
  /* 1: built by mbsr__model_create_inference: generator only, parameters only (grads, adam_m, adam_v,
   * scratch, dgout, ... are NULL), conv outputs in three rotating buffers. Training calls refuse it. */
  int inference_only;
  mbsr__net gen, disc; /* disc used by the GAN only */
  /* one allocation: params | grads | adam m | adam v, each num_params floats */
  float *pbuf;
  float *params, *grads, *adam_m, *adam_v;
  size_t num_params;
  mbsr__tensor *tensors;
  int ntensors, tensors_needed;
  /* one allocation for every activation, gradient scratch and the conv workspace */
  float *abuf;
  size_t abuf_floats;
  float *scratch[3];  /* gradient ping-pong buffers, each max activation size */
  size_t scratch_floats;
  float *dgout;       /* (N,D,H,W): d loss / d generator output */
  float *dlogits;     /* (N) */
  float *dpooled;     /* (N,C) */
  float *ones, *zeros;/* (N) BCE targets */
  float *ws;          /* conv workspace */
  size_t ws_floats;
  int64_t adam_t[2];  /* Adam steps per phase (GAN: 0 = D, 1 = G) */
  mbsr_adam_config last_adam;
  double last_mse, last_adv, last_dloss;
  mbsr_precision prec;
  mbsr_sr_contract contract; /* valid when contract_set (else the default: see apply.c) */
  int contract_set;
  /* GAN (model.c): the generator forward of phase 0 is reused by phase 1 when the generator's parameters,
   * the input batch and the precision are bitwise those of that forward (copies kept here). */
  float *gcache;             /* generator parameters (gen.p_count), then the input (max_batch * vox) */
  int gcache_valid, gcache_batch;
  mbsr_precision gcache_prec;
};

/* The Adam step counter of a phase (checkpoints set them). */
static inline int64_t *mbsr__adam_t(mbsr_model *m, int phase) { return &m->adam_t[phase]; }
/* "resnet channels=64 blocks=10 global_residual=0" etc. */
void mbsr__config_describe(const mbsr_model_config *c, char *buf, size_t n);
int mbsr__config_equal(const mbsr_model_config *a, const mbsr_model_config *b);

/* ---- inference-only models (model.c), for tiled whole-volume inference ----
 * The generator network alone (the GAN's generator; no discriminator), parameters only, and
 * activations in three rotating C-channel buffers plus a 1-channel output buffer, whatever the depth:
 *   head conv i:        out = the first buffer that is not its input
 *   residual block:     x -> conv1 + act -> t -> conv2 + skip x -> y, with x, t, y three different
 *                       buffers (y never aliases the skip source x nor the conv input t), so the blocks
 *                       rotate (x, t, y) = (P0, P1, P2), (P2, P0, P1), (P1, P0, P2), ...
 *   tail conv (C -> 1): its own buffer, where the global residual (+ input) is added in place.
 * Buffers are sized by the widest conv written into them; the conv workspace is forward-only
 * (mbsr_conv3d_forward_workspace_floats, any precision). mbsr_model_forward, mbsr_model_eval_sse,
 * mbsr_model_init (parameters only) and mbsr_model_set_precision work, bitwise equal to a training model
 * with the same parameters; phase_grad, phase_update, train_step and freeze_all_but_last refuse with
 * MBSR_EINVAL; mbsr_model_grads returns NULL. NEVER pass one to mbsr_checkpoint_save or
 * mbsr_checkpoint_load_into (they use the gradient and Adam buffers, which do not exist here): load a
 * checkpoint into a small training model (mbsr_checkpoint_load with a 1 x 8^3 patch), then
 * mbsr__model_copy_params. Parameters start as mbsr_model_init(m, 0) (= a training model's generator). */
int mbsr__model_create_inference(const mbsr_model_config *c, int max_batch, int d, int h, int w, mbsr_model **out);
/* Bytes mbsr__model_create_inference(c, batch, d, h, w) allocates (parameters + activations + workspace +
 * the model's tables), computed without building it: for a tiling planner. 0 for an invalid request
 * (message set). */
size_t mbsr__model_inference_bytes(const mbsr_model_config *c, int batch, int d, int h, int w);
/* Copy the generator's parameters (and the precision setting) from src into dst: any two models,
 * training or inference, any patch size or batch, whose configs are mbsr__config_equal; MBSR_EMISMATCH
 * naming both configs otherwise. A training dst keeps its discriminator, gradients and Adam state. */
int mbsr__model_copy_params(mbsr_model *dst, const mbsr_model *src);
/* Receptive radius R of the generator: output voxel p depends only on the input voxels q with
 * max(|q - p|) <= R per axis (a (2R+1)^3 cube; each 3x3x3 stride-1 conv adds 1, so cCNN 3, ResNet/GAN
 * blocks*2 + 2, the paper's 22). Every layer pads with zeros, so a tile's output is exact (bitwise, as
 * the per-voxel arithmetic does not depend on the tile) at voxels that are at least R voxels from every
 * face of the tile that is not also a face of the volume. */
int mbsr__model_receptive_radius(const mbsr_model *m);

#endif
