/* Shared by the train tests: a small prep file from the synthetic cohort, tiny-model configs,
 * and weight comparisons through the checkpoints. */
#ifndef MBSR_TEST_TRAIN_COMMON_H
#define MBSR_TEST_TRAIN_COMMON_H
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../data/prep_gen.h"
#include "mbsr/train.h"
#include "mbsr_test.h"

static inline void tiny_cfg(mbsr_train_config *c, const char *data, const char *out) {
  mbsr_train_config_default(c);
  c->data = data;
  c->pair = "200-100";
  c->out = out;
  mbsr_model_config_default(&c->model, MBSR_ARCH_RESNET);
  c->model.channels = 4;
  c->model.blocks = 1;
  c->model.global_residual = 1;
  c->batch = 8;
  c->epochs = 100;
  c->patience = 0;
  c->seed = 11;
  c->ckpt_every = 4;
  c->checksum_every = 2;
  c->threads = 1;
  omp_set_num_threads(c->threads); /* the caller sets the thread count: the library does not */
  c->progress = 0;
}

/* Parameters of a checkpoint (malloc'd copy) and their count. */
static inline float *ckpt_params(const char *path, size_t *n, mbsr_ckpt_meta *meta) {
  mbsr_model *m = NULL;
  if (mbsr_checkpoint_load(path, 4, 9, 9, 9, &m, meta)) {
    fprintf(stderr, "  cannot load %s: %s\n", path, mbsr_last_error());
    return NULL;
  }
  *n = mbsr_model_num_params(m);
  float *p = malloc(*n * sizeof *p);
  memcpy(p, mbsr_model_params(m), *n * sizeof *p);
  mbsr_model_free(m);
  return p;
}

/* max |a-b| / max |b| */
static inline double rel_diff(const float *a, const float *b, size_t n) {
  double md = 0, mb = 0;
  for (size_t i = 0; i < n; i++) {
    md = fmax(md, fabs((double)a[i] - (double)b[i]));
    mb = fmax(mb, fabs((double)b[i]));
  }
  return mb > 0 ? md / mb : md;
}
#endif
