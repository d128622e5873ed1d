/* mbsr train: MPI data-parallel training on a `mbsr prep` HDF5 file.
 *
 * Each global step: the global batch (a seeded shuffle of the training patches per epoch, the
 * same on every rank) is split into contiguous per-rank shares; every rank computes gradients of
 * its share normalised by the GLOBAL batch, ONE MPI_Allreduce (sum) over the contiguous gradient
 * span makes them the global mean, and every rank applies the same Adam update. Weights are
 * checksummed across ranks every `checksum_every` steps. Rank 0 writes <out>/last.h5 (atomic)
 * every ckpt_every steps and at the end, and <out>/best.h5 when the validation loss improves;
 * <out>/train.jsonl has one JSON line per epoch (null where a value is undefined, e.g. no validation
 * set), <out>/config.json the parameters used. Every checkpoint carries the SR contract (model.h)
 * read from the patch file: the intensity percentiles, the pair's voxel sizes, the patch, and a
 * summary of the training data. */
#ifndef MBSR_TRAIN_H
#define MBSR_TRAIN_H

#include <mpi.h>
#include <stdint.h>

#include "mbsr/data.h"
#include "mbsr/model.h"

typedef struct {
  const char *data;        /* the prep HDF5 file */
  const char *pair;        /* "200-100" */
  const char *out;         /* output directory (created) */
  mbsr_model_config model;
  unsigned model_given;    /* the fields of `model` the caller chose (MBSR_TRAIN_GIVEN_* bits). On a resume the
                            * network is the checkpoint's: a chosen field that differs from it is refused (naming
                            * the checkpoint and both values), the others are taken from it. Default: all (a
                            * library caller's config is complete); `mbsr train` sets the options typed. */
  mbsr_adam_config adam;
  int batch;               /* GLOBAL batch: 8 */
  int epochs;              /* max epochs: 1000 */
  int patience;            /* early stopping: epochs without validation improvement: 100 (0 = off) */
  int64_t max_patches;     /* use at most this many training patches (0 = all) */
  int64_t steps_per_epoch; /* 0 = ceil(train patches / batch) */
  int64_t max_steps;       /* stop (with a checkpoint) after this many global steps in total; 0 = no limit */
  uint64_t seed;           /* weights init + per-epoch shuffles: 1 */
  int64_t ckpt_every;      /* steps between checkpoints: 100 (0 = only at epoch ends and the end) */
  int checksum_every;      /* steps between cross-rank weight checksums: 10 */
  int resume;              /* continue from <out>/last.h5 */
  const char *init;        /* start from this checkpoint's weights (transfer learning), or NULL */
  int init_glorot;         /* 1: Glorot everywhere (the paper); 0 (default): a global-residual network's
                            * output conv starts at zero, so the network starts as its cubic input */
  const char *exclude_subjects; /* comma-separated subject names whose patches are not used, in training
                                 * nor validation (cross-validation: the held-out brain); NULL = none */
  int augment;             /* 1: each training patch pair gets a random flip per axis and a random axis
                            * permutation (seeded by seed, step and position in the global batch) */
  int finetune_last;       /* with init: train only the last k layers (< 0: all) */
  double time_limit;       /* seconds; stop cleanly with a checkpoint (0 = none) */
  int threads;             /* OpenMP threads per rank (0 = leave as is) */
  int dry_run;             /* print the plan and measure a few steps; writes nothing */
  int64_t plan_patches;    /* dry run: plan for this many training patches (0 = the file's) */
  int64_t plan_val_patches; /* dry run: ... and this many validation patches (0 = the file's ratio) */
  int val_every;           /* epochs between validations: 1 */
  int progress;            /* one line per epoch on rank 0 */
  int inject_fail_rank, inject_fail_step; /* test hook: that rank fails at that step (-1 = off) */
  int inject_diverge_rank, inject_diverge_step; /* test hook: that rank perturbs one weight after that step */
} mbsr_train_config;

/* model_given bits */
#define MBSR_TRAIN_GIVEN_ARCH 0x001u
#define MBSR_TRAIN_GIVEN_CHANNELS 0x002u
#define MBSR_TRAIN_GIVEN_BLOCKS 0x004u
#define MBSR_TRAIN_GIVEN_GLOBAL_RESIDUAL 0x008u
#define MBSR_TRAIN_GIVEN_CCNN_C1 0x010u
#define MBSR_TRAIN_GIVEN_CCNN_C2 0x020u
#define MBSR_TRAIN_GIVEN_DISC_CHANNELS 0x040u
#define MBSR_TRAIN_GIVEN_DISC_BLOCKS 0x080u
#define MBSR_TRAIN_GIVEN_GAN_LAMBDA 0x100u
#define MBSR_TRAIN_GIVEN_ALL 0x1ffu

void mbsr_train_config_default(mbsr_train_config *c);

typedef struct {
  int64_t steps, epochs;        /* completed global steps and epochs (totals, including resumed) */
  double last_train, last_val, best_val, cubic_val;
  int64_t best_epoch;
  int stopped_early, hit_time_limit, finished;
  double patches_per_s;         /* training throughput of this invocation */
  double t_compute, t_allreduce, t_io, t_val, t_total; /* seconds on this rank */
  double dry_epoch_seconds, dry_epoch_flops, dry_mem_bytes; /* dry run */
  double t_sync;                /* seconds in the per-step status all-reduce (includes waiting for the slowest rank) */
} mbsr_train_summary;

/* Collective over comm. Returns 0, or a negative code (the same on every rank; the message names
 * the failing rank). Stops with MBSR_ENONFINITE on a NaN/Inf loss (last good checkpoint kept). */
int mbsr_train_run(const mbsr_train_config *c, MPI_Comm comm, mbsr_train_summary *summary);

#endif
