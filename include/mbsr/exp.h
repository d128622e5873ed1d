/* mbsr exp: what users run mbsr for. The synthetic phantom cohort, experiment files (typed YAML
 * schema, two scales), sweeps over the cells of an experiment (prep, train, apply, evaluate)
 * and reports (statistics, Table 1, figures, README).
 *
 * Layout of a run (results root R, default "results"):
 *   R/<scale>/<experiment>/params.yaml            the fully resolved parameters (defaults included)
 *   R/<scale>/<experiment>/cells/<cell>/metrics.csv   one row per test subject and method
 *   R/<scale>/<experiment>/cells/<cell>/done      written last, atomically: the cell is finished
 *   R/<scale>/<experiment>/models/<arch>_<pair>_n<samples>[_ft][_fold-S|_all]-<hash>/{best,last}.h5 and
 *                                                FINISHED: checkpoints, shared by cells that train the same
 *                                                network (hash = the training parameters)
 *   R/<scale>/<experiment>/README.md, table.md, table.csv, stats.csv, fig_*.png   (mbsr report) */
#ifndef MBSR_EXP_H
#define MBSR_EXP_H

#include <stdint.h>

#include "mbsr/data.h"
#include "mbsr/volume.h"

/* ---------------------------------------------------------------- phantom cohort ---------- */
typedef struct {
  int n;            /* subjects: 12 */
  uint64_t seed;    /* cohort seed: 1 */
  double vox_mm;    /* isotropic voxel size in mm: 0.05 */
  int dims[3];      /* grid (i = left->right, j = posterior->anterior, k = inferior->superior);
                     * 0 = derived from the field of view 8.5 x 10.0 x 6.5 mm */
} mbsr_phantom_opts;
void mbsr_phantom_opts_default(mbsr_phantom_opts *o);
/* One SYNTHETIC subject: AF-like image (values ~0..520) and its brain mask (0/1), same grid.
 * Deterministic for (opts, index), independent of the number of OpenMP threads. */
int mbsr_phantom_subject(const mbsr_phantom_opts *o, int index, mbsr_volume **img, mbsr_volume **mask);
/* Writes DIR/phantom-XX_af<um>um.nii.gz, DIR/phantom-XX_mask<um>um.nii.gz (descrip field says
 * SYNTHETIC) and DIR/SYNTHETIC-COHORT.txt; prints one progress line per subject. */
int mbsr_phantom_cohort(const mbsr_phantom_opts *o, const char *dir);
/* mbsr_volume_write with descrip (79 chars max) in the header instead of v's (atomic; v's codes kept). */
int mbsr_exp_write_nifti_desc(const char *path, const mbsr_volume *v, const char *descrip);

/* ---------------------------------------------------------------- experiment files -------- */
#define MBSR_EXP_MAX_AXIS 8
#define MBSR_EXP_MAX_CELLS 256

typedef enum { MBSR_DS_AF = 0, MBSR_DS_T2W = 1, MBSR_DS_FA = 2, MBSR_DS_HUMAN_T1 = 3 } mbsr_dataset;
const char *mbsr_dataset_name(mbsr_dataset d);

/* One cell of the matrix (one trained network, one test configuration). */
typedef struct {
  int index;
  char name[96];            /* e.g. "c02_resnet_200-100_n5000" */
  char arch[16];            /* resnet | ccnn | gan */
  mbsr_res_pair train_pair;  /* e.g. 200-100, or 100x100x400-100 (per-axis LR voxels) */
  mbsr_res_pair test_pair;
  int samples;
  mbsr_dataset train_data, test_data;
  int finetune;             /* fine-tune the last finetune_layers on HR data of the test modality */
} mbsr_exp_cell;

typedef struct {
  /* data */
  char cohort[16];          /* phantom | dir | ambca */
  char data_dir[1024];      /* volumes (phantom or real); --data overrides */
  int base_um;              /* grid every volume is brought to, um; 0 = each pair's HR grid (a volume
                             * serves a pair when its voxels are not coarser than that grid) */
  int n_train, n_test;      /* subjects (fixed split; test = held out by prep's seeded split) */
  char cv[16];              /* "none" | "loso": leave-one-subject-out cross-validation over the brains
                             * (one fold per brain; a single brain is cut in two halves, 2 folds) */
  double norm_pct[2];       /* the intensity contract's percentiles: 0.1, 99.9 */
  char profile[16];         /* slice profile of every LR degradation: boxcar (block average) | gaussian */
  char mri_dir[1024];       /* co-registered AF/T2w and the diffusion map (transfer, human) */
  char human_dir[1024];     /* human T1 volumes (human) */
  int human_n_train;
  /* phantom generation (cohort: phantom) */
  int phantom_n, phantom_dims[3];
  uint64_t phantom_seed;
  /* model */
  int channels, blocks, global_residual, ccnn_c1, ccnn_c2, disc_channels, disc_blocks;
  double gan_lambda;
  /* training */
  int patch, batch, epochs, patience, finetune_layers, finetune_samples, finetune_epochs;
  int steps_per_epoch;      /* 0 = training patches / batch */
  int augment;              /* random flips and axis permutations of training patches */
  int init_glorot;          /* Glorot everywhere (the paper) instead of a zero output conv */
  double lr, val_fraction;
  uint64_t seed;
  /* evaluation */
  int eval_decorr;          /* effective resolution by decorrelation: 1 */
  int decorr_axis;          /* slices along array axis: 2 */
  int decorr_step;          /* every n-th slice: 1 */
  double apply_max_mb;      /* memory for inference tiles, MiB */
  int save_volumes;         /* SR/cubic/LR/HR of the first test subject for figures: 1 */
  /* matrix axes (cartesian product, in this order: arch, train_pair, test_pair, samples,
   * train_data, test_data, finetune) */
  int n_arch; char arch[MBSR_EXP_MAX_AXIS][16];
  int n_train_pair; mbsr_res_pair train_pair[MBSR_EXP_MAX_AXIS]; /* "400-200" or "100x100x400-100" */
  int n_test_pair; mbsr_res_pair test_pair[MBSR_EXP_MAX_AXIS]; /* 0 entries = same as the train pair */
  int n_samples; int samples[MBSR_EXP_MAX_AXIS];
  int n_train_data; mbsr_dataset train_data[MBSR_EXP_MAX_AXIS];
  int n_test_data; mbsr_dataset test_data[MBSR_EXP_MAX_AXIS];
  int n_finetune; int finetune[MBSR_EXP_MAX_AXIS];
} mbsr_exp_scale;

typedef struct {
  char path[1024];
  char name[64];            /* experiment: table1, networks, ... */
  char title[256];
  char paper_ref[128];      /* "Table 1, Figure 4B" */
  char description[2048];
  char scale_name[32];      /* the selected scale */
  mbsr_exp_scale s;         /* the selected scale, defaults applied */
  /* report */
  int anova;                /* Welch ANOVA across the groups (cubic + every cell's network) */
  int table1;               /* format the table as the paper's Table 1 */
  int n_cells;
  mbsr_exp_cell cells[MBSR_EXP_MAX_CELLS];
} mbsr_experiment;

/* Parse and validate every scale; selects `scale` (any scale the file defines: demo, paper, real, ...).
 * Unknown keys, wrong types and bad values are errors naming the file and line. */
int mbsr_exp_load(const char *path, const char *scale, mbsr_experiment *e);
/* The resolved parameters (every key, defaults included) as YAML, atomically. */
int mbsr_exp_write_params(const mbsr_experiment *e, const char *path);
/* "<results>/<scale>/<experiment>" into buf. */
int mbsr_exp_dir(const mbsr_experiment *e, const char *results, char *buf, size_t n);

/* ---------------------------------------------------------------- sweep ------------------- */
typedef struct {
  const char *results;      /* results root: "results" */
  const char *data;         /* overrides data_dir (NULL: the file's) */
  int cell;                 /* -1 = all */
  int threads;              /* 0 = OpenMP default */
  int force;                /* recompute finished cells */
} mbsr_sweep_opts;
int mbsr_sweep_run(const mbsr_experiment *e, const mbsr_sweep_opts *o);
/* 1 if the cell's done marker exists. */
int mbsr_sweep_cell_done(const mbsr_experiment *e, const char *results, int cell);

/* ---------------------------------------------------------------- report ------------------ */
typedef struct {
  const char *results;
  int figures;              /* 0: tables and statistics only */
  const char *command;      /* the command line, quoted in the README */
} mbsr_report_opts;
int mbsr_report_run(const mbsr_experiment *e, const mbsr_report_opts *o);

#endif
