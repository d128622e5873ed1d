/* Internal helpers shared by the exp module's files (not a public API).
 * Files: exp_util.c (hashes, locks, cell state, volumes, evaluation rows) <- sweep.c (AF data, training,
 * the driver) <- sweep_mri.c (MRI cells); report.c (tables, statistics, figures) uses exp_util.c only. */
#ifndef MBSR_EXP_INTERNAL_H
#define MBSR_EXP_INTERNAL_H

#include <stdint.h>

#include "mbsr/exp.h"
#include "mbsr/image.h"
#include "mbsr/model.h"

/* ---- the AF data of one base grid: a prep file, the evaluation volumes, its subjects ---- */
typedef struct {
  int base_um;
  char h5[2400];        /* prep output */
  char eval[2400];      /* every evaluated subject's volumes (intensities as read), masks */
  int n_subjects;       /* in the prep file */
  char **subjects;      /* names (name order = prep's subject order) */
  char **brains;        /* the independent brain of each subject (a half of a brain: that brain) */
  int n_test;           /* fixed split: test subjects; cv: every subject is a fold */
} af_group;

/* ---- paths and state of an experiment run ---- */
typedef struct {
  char dir[2048];       /* results/<scale>/<experiment> */
  char cohort[2048];    /* AF cohort directory */
  int ngroups;
  af_group groups[8];   /* AF data per base grid, prepared on first use */
} sweep_ctx;

/* One evaluated unit and method: a row of cells/<cell>/metrics.csv. */
typedef struct {
  char fold[256];       /* the held-out subject of the fold ("-" = a fixed split) */
  char subject[256];    /* the evaluated unit: a subject, a half or a slab */
  char brain[256];      /* the independent brain it belongs to: the unit of statistics */
  char method[32];      /* cubic | <arch> | hr */
  mbsr_metrics m;
  double kc, res_um;
} eval_row;

typedef struct {
  eval_row *rows;
  int n, cap;
} eval_rows;
void mbsr__rows_free(eval_rows *r);

int mbsr__rank0(void);
uint64_t mbsr__fnv(uint64_t h, const void *p, size_t n);
uint64_t mbsr__fnv_str(uint64_t h, const char *s);
/* Hash of the resolved scale and the cell: written into the cell's done marker. */
uint64_t mbsr__cell_key(const mbsr_experiment *e, int cell);
/* 0 no done marker, 1 done with these parameters, 2 done marker without a key, -1 done with others. */
int mbsr__cell_state(const mbsr_experiment *e, const char *results, int cell);
int mbsr__lock_file(const char *path); /* blocking exclusive flock; returns the fd (or -1) */
void mbsr__unlock_file(int fd);
int mbsr__longest_axis(const mbsr_volume *v);
int64_t mbsr__dimof(const mbsr_volume *v, int a);
/* Sub-volume [lo, hi) along array axis a (affine origin moved accordingly); NULL when out of memory. */
mbsr_volume *mbsr__crop_axis(const mbsr_volume *v, int a, int64_t lo, int64_t hi);
int mbsr__save_vol(const char *cdir, const char *what, const mbsr_volume *v, const char *desc);
/* The brain a subject name belongs to: "<brain>-half<A..Z>" -> "<brain>", otherwise the name. */
void mbsr__brain_of(const char *subject, char *brain, size_t n);

/* Evaluate cubic, network and HR of one unit against HR, on the SR contract's scale: lo, hi = the
 * contract's percentiles of the cubic volume (the network input), every volume mapped by
 * clip((x - lo) / (hi - lo), 0, 1); RMSE, PSNR (data range 1), SSIM inside `mask` (> 0.5); effective
 * resolution by decorrelation of each volume (slices along `decorr_axis`, < 0 = the scale's) unless
 * crop_axis >= 0, when the volume is first cropped to [c0, c1) along that axis (a slab). Appends 3 rows. */
int mbsr__eval_unit(const mbsr_exp_scale *s, const mbsr_sr_contract *k, const mbsr_volume *cub, const mbsr_volume *sr,
                    const mbsr_volume *hr, const mbsr_volume *mask, const char *arch, const char *fold, const char *subject,
                    const char *brain, int crop_axis, int64_t c0, int64_t c1, eval_rows *out);
int mbsr__write_metrics(const char *path, const mbsr_exp_cell *c, const eval_rows *r);
/* Apply options of an experiment's evaluation (quiet, the scale's memory budget). */
void mbsr__eval_apply_opts(const mbsr_exp_scale *s, mbsr_apply_opts *ao);
/* Effective resolution (decorrelation, median over slices along `axis`; < 0 = eval.decorr_axis). */
int mbsr__eff_res(const mbsr_exp_scale *s, const mbsr_volume *v, int axis, double *kc, double *res_um);

/* ---- sweep.c, used by sweep_mri.c ---- */
/* The AF data at `base_um` (prepared on first use; collective over MPI_COMM_WORLD). */
int mbsr__af_group(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, int base_um, af_group **g);
/* The grid a pair's AF data is prepared on: data.base_um, or the pair's HR when it is 0. */
int mbsr__base_for(const mbsr_exp_scale *s, int hr_um);

typedef struct {
  const char *arch;     /* resnet | ccnn | gan */
  const char *h5;       /* prep file */
  const char *pair;     /* "200-100" */
  int samples;          /* training patches */
  const char *exclude;  /* subjects left out (the fold), or NULL */
  const char *tag;      /* model directory suffix ("fold-X", "all", ...) or NULL */
  const char *init;     /* fine-tuning: start from this checkpoint */
  int finetune_last;    /* with init: trainable last layers */
  int epochs;
} train_job;
/* Train into models/<key>/ unless a finished checkpoint exists (collective); the checkpoint path. */
int mbsr__train_or_reuse(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x, const train_job *j, char *ckpt,
                         size_t n);

/* ---- sweep_mri.c ---- */
/* A cell that trains or tests on MRI / human data (transfer, human experiments). */
int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c);

#endif
