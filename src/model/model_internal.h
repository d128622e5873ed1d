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
};

/* The Adam step counter of a phase (checkpoints set them). */
static inline int64_t *mbsr__adam_t(mbsr_model *m, int phase) { return &m->adam_t[phase]; }
/* "resnet channels=64 blocks=10 global_residual=0" etc. */
void mbsr__config_describe(const mbsr_model_config *c, char *buf, size_t n);
int mbsr__config_equal(const mbsr_model_config *a, const mbsr_model_config *b);

#endif
