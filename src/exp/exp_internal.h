/* Internal helpers shared by the exp module's files (not a public API). */
#ifndef MBSR_EXP_INTERNAL_H
#define MBSR_EXP_INTERNAL_H

#include <stdint.h>

#include "mbsr/exp.h"
#include "mbsr/image.h"

/* ---- paths of an experiment run ---- */
typedef struct {
  char dir[2048];       /* results/<scale>/<experiment> */
  char cohort[2048];    /* AF cohort directory */
  char h5[2400];        /* prep output */
  char eval[2400];      /* prep's normalised test volumes */
  int n_subjects, n_val, n_train_eff;
  int af_ready;         /* AF patches prepared */
} sweep_ctx;

typedef struct {
  char subject[256];
  char method[32];
  mbsr_metrics m;
  double kc, res_um;
} eval_row;

int mbsr__rank0(void);
/* Hash of the resolved scale and the cell: written into the cell's done marker. */
uint64_t mbsr__cell_key(const mbsr_experiment *e, int cell);
/* 0 no done marker, 1 done with these parameters, 2 done marker without a key, -1 done with others. */
int mbsr__cell_state(const mbsr_experiment *e, const char *results, int cell);
int mbsr__lock_file(const char *path); /* blocking exclusive flock; returns the fd (or -1) */
void mbsr__unlock_file(int fd);
uint64_t mbsr__fnv(uint64_t h, const void *p, size_t n);
uint64_t mbsr__fnv_str(uint64_t h, const char *s);
/* Train on `h5` pair `pair` into models/<key>/ unless a finished checkpoint exists (collective). */
int mbsr__train_or_reuse(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x, const char *arch,
                         const char *h5, const char *pair, int samples, const char *init, int finetune_last, int epochs,
                         char *ckpt, size_t n);
/* Effective resolution (decorrelation, median over slices along `axis`; < 0 = eval.decorr_axis). */
int mbsr__eff_res(const mbsr_exp_scale *s, const mbsr_volume *v, int axis, double *kc, double *res_um);
int mbsr__write_metrics(const char *path, const mbsr_exp_cell *c, const eval_row *rows, int n);
int mbsr__longest_axis(const mbsr_volume *v);
int64_t mbsr__dimof(const mbsr_volume *v, int a);
/* Sub-volume [lo, hi) along array axis a (affine origin moved accordingly); NULL when out of memory. */
mbsr_volume *mbsr__crop_axis(const mbsr_volume *v, int a, int64_t lo, int64_t hi);
int mbsr__save_vol(const char *cdir, const char *what, const mbsr_volume *v, const char *desc);

/* Write a text file atomically. */
int mbsr__exp_write_text(const char *path, const char *text);
/* A cell that trains or tests on MRI / human data (transfer, human experiments); sweep_mri.c. */
int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c);
/* Prep the AF patches for every AF pair of the experiment (collective; reused when present). */
int mbsr__sweep_prep_af(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x);

/* gnuplot SCRIPT (terminal set, no output) -> OUT_PNG, atomically. */
int mbsr__run_gnuplot(const char *script_path, const char *out_png);
/* Figures only some experiments have (AF-vs-MRI scatter plots for transfer); appends file names. */
int mbsr__report_extra_figures(const mbsr_experiment *e, const char *dir, char figs[][256], int *nf, int max);

#endif
