/* Internal interfaces of the exp module (not a public API).
 *
 * Files, one job each; "->" lists the files whose functions it calls. There is no circle:
 * `python3 tests/exp/file_deps.py src/exp` prints this graph from the code and fails on a circle.
 *
 *   expfile.c         experiment files (typed YAML), params.yaml, the results directory    (leaf)
 *   phantom.c         the SYNTHETIC phantom cohort, NIfTI writing with a description       (leaf)
 *   sbuf.c            a growing text buffer (printf-append)                                 (leaf)
 *   crop.c            pieces of a volume: longest axis, crops along an axis (halves, slabs) (leaf)
 *   cells.c           bookkeeping: hashes, cell keys and done markers, file locks, brains   -> expfile
 *   evaluate.c        the evaluation of one unit (cubic, network, HR), metrics.csv          -> crop phantom sbuf
 *   prepjob.c         prep a patch file unless it exists (locked, collective)               -> cells
 *   trainjob.c        train a network unless a finished one exists (locked, collective)     -> cells
 *   afdata.c          AF data per base grid: cohort, manifest, split, prep                  -> cells crop phantom prepjob sbuf
 *   cells_af.c        an AF cell: fixed split or cross-validation folds                    -> afdata cells evaluate sbuf trainjob
 *   cells_mri.c       a cell tested on MRI (transfer; human T1 training)                    -> afdata cells crop evaluate expfile
 *                                                                                              phantom prepjob sbuf trainjob
 *   sweep.c           the sweep driver (mbsr_sweep_run)                                     -> afdata cells cells_af cells_mri expfile
 *   report_stats.c    metrics.csv -> per-brain statistics of a cell; Holm; Welch            (leaf: knows no sweep)
 *   report_figures.c  gnuplot figures (PNG, PDF, SVG) from numbers and volumes              (leaf: knows no sweep)
 *   report_tables.c   stats.csv, table.csv, table.md, table.tex                             -> expfile report_stats sbuf
 *   report_readme.c   the results README.md                                                 -> sbuf
 *   report.c          the report driver (mbsr_report_run): collect, statistics, tables, figures, README
 *                                                                                           -> cells expfile report_* sbuf
 *
 * Add an experiment: a new kind of cell is a cells_<kind>.c with one entry point that sweep.c calls;
 * a new figure is a function of report_figures.c taking numbers or volumes, that report.c calls. */
#ifndef MBSR_EXP_INTERNAL_H
#define MBSR_EXP_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "mbsr/data.h"
#include "mbsr/exp.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/stats.h"

/* ================================================================ sbuf.c */
/* A growing text buffer; after an allocation failure `failed` is set and later appends are ignored. */
typedef struct {
  char *s;
  size_t n, cap;
  int failed;
} mbsr__sbuf;
void mbsr__sb_add(mbsr__sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (never NULL when !failed), or NULL with an error "out of memory" naming `what`. */
const char *mbsr__sb_text(mbsr__sbuf *b, const char *what);
void mbsr__sb_free(mbsr__sbuf *b);

/* ================================================================ crop.c */
int mbsr__longest_axis(const mbsr_volume *v);
int64_t mbsr__dimof(const mbsr_volume *v, int a);
/* Sub-volume [lo, hi) along array axis a (affine origin moved accordingly); NULL when out of memory. */
mbsr_volume *mbsr__crop_axis(const mbsr_volume *v, int a, int64_t lo, int64_t hi);

/* ================================================================ cells.c */
int mbsr__rank0(void);
uint64_t mbsr__fnv(uint64_t h, const void *p, size_t n);
uint64_t mbsr__fnv_str(uint64_t h, const char *s);
#define MBSR__FNV_SEED 0xcbf29ce484222325ULL
/* Hash of the resolved scale and the cell: written into the cell's done marker. */
uint64_t mbsr__cell_key(const mbsr_experiment *e, int cell);
/* The state of a cell's done marker. */
typedef enum {
  MBSR__CELL_OPEN = 0,       /* no done marker */
  MBSR__CELL_DONE = 1,       /* done with these parameters */
  MBSR__CELL_NOKEY = 2,      /* done marker without a parameter key */
  MBSR__CELL_OTHER = 3       /* done with other parameters */
} mbsr__cell_state_t;
mbsr__cell_state_t mbsr__cell_state(const mbsr_experiment *e, const char *results, int cell);
/* Blocking exclusive flock of path (created); the fd, or a negative error code naming the file. */
int mbsr__lock_file(const char *path);
void mbsr__unlock_file(int fd);
/* The brain a subject name belongs to: "<brain>-half<A..Z>" -> "<brain>", otherwise the name. */
void mbsr__brain_of(const char *subject, char *brain, size_t n);
/* path made absolute against the working directory (malloc'd; NULL when out of memory). */
char *mbsr__abspath(const char *path);

/* ================================================================ evaluate.c */
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

/* Evaluate cubic, network and HR of one unit against HR, on the SR contract's scale: lo, hi = the
 * contract's percentiles of the cubic volume (the network input), every volume mapped by
 * clip((x - lo) / (hi - lo), 0, 1); RMSE, PSNR (data range 1), SSIM inside `mask` (> 0.5); effective
 * resolution by decorrelation of each volume (slices along `decorr_axis`, < 0 = the scale's) unless
 * crop_axis >= 0, when the volume is first cropped to [c0, c1) along that axis (a slab). Appends 3 rows. */
typedef struct {
  const char *arch, *fold, *subject, *brain;
  int crop_axis;        /* < 0: the whole volume */
  int64_t c0, c1;
} eval_unit;
int mbsr__eval_unit(const mbsr_exp_scale *s, const mbsr_sr_contract *k, const mbsr_volume *cub, const mbsr_volume *sr,
                    const mbsr_volume *hr, const mbsr_volume *mask, const eval_unit *u, eval_rows *out);
int mbsr__write_metrics(const char *path, const mbsr_exp_cell *c, const eval_rows *r);
/* Apply options of an experiment's evaluation (quiet, the scale's memory budget). */
void mbsr__eval_apply_opts(const mbsr_exp_scale *s, mbsr_apply_opts *ao);
/* "CDIR/vol_WHAT.nii.gz" with a description (figures of the report). */
int mbsr__save_vol(const char *cdir, const char *what, const mbsr_volume *v, const char *desc);

/* ================================================================ prepjob.c */
/* Prep `pc` into pc->out unless that file exists (rank 0 holds pc->out.lock meanwhile). `manifest`
 * (optional): text written to pc->inputs first, by rank 0, when the file is to be made. Collective
 * over MPI_COMM_WORLD; every rank returns the agreed status. */
int mbsr__prep_or_reuse(const mbsr_prep_config *pc, const char *manifest, const char *what);

/* ================================================================ afdata.c */
/* The AF data of one base grid: a prep file, the evaluation volumes, its subjects. */
typedef struct {
  int base_um;
  char h5[2400];        /* prep output */
  char eval[2400];      /* every evaluated subject's volumes (intensities as read), masks */
  int n_subjects;       /* in the prep file */
  char **subjects;      /* names (name order = prep's subject order) */
  char **brains;        /* the independent brain of each subject (a half of a brain: that brain) */
  int n_test;           /* fixed split: test subjects; cv: every subject is a fold */
} af_group;

/* Paths and state of an experiment run. */
typedef struct {
  char dir[2048];       /* results/<scale>/<experiment> */
  char cohort[2048];    /* AF cohort directory */
  int ngroups;
  af_group groups[8];   /* AF data per base grid, prepared on first use */
} sweep_ctx;

/* The AF data at `base_um` (prepared on first use; collective over MPI_COMM_WORLD). */
int mbsr__af_group(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, int base_um, af_group **g);
void mbsr__af_groups_free(sweep_ctx *x);
/* The grid a pair's AF data is prepared on: data.base_um, or the pair's HR when it is 0. */
int mbsr__base_for(const mbsr_exp_scale *s, int hr_um);
int mbsr__is_cv(const mbsr_exp_scale *s);
/* Resolve the cohort directory: DIR, or DIR/af when DIR is a data root like ../shared/data. */
int mbsr__cohort_dir(const char *data, char *out, size_t n);
/* The slice profile of the experiment's LR volumes (data.profile, checked when the file was loaded). */
mbsr_profile mbsr__exp_profile(const mbsr_exp_scale *s);
/* The eval-volume tag (mbsr_eval_level_name) of a pair's LR (lr = 1: its per-axis voxel and the profile)
 * or HR (lr = 0) volume. */
const char *mbsr__pair_level(const mbsr_exp_scale *s, const mbsr_res_pair *p, int lr, char *buf, size_t n);
/* Indices of g's subjects that have evaluation volumes at level (a tag of mbsr__pair_level; name order)
 * into idx; their count or a negative error code. */
int mbsr__af_eval_subjects(const af_group *g, const char *level, int *idx);

/* ================================================================ trainjob.c */
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

/* ================================================================ cells_af.c, cells_mri.c */
/* An AF cell: fixed split (one network) or cross-validation (one network per fold). t0: its start. */
int mbsr__sweep_af_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c, double t0);
/* A cell that trains or tests on MRI / human data (transfer, human experiments). */
int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c);

/* ================================================================ report_stats.c */
#define MBSR__MAXSUB 512
#define MBSR__MIN_BRAINS_FOR_TESTS 3
/* The statistics of one cell, per independent brain. */
typedef struct {
  int present;
  int n;                           /* independent brains */
  int n_units;                     /* evaluated units (subjects, halves, slabs) */
  char brain[MBSR__MAXSUB][128];
  double rmse[2][MBSR__MAXSUB], ssim[2][MBSR__MAXSUB], psnr[2][MBSR__MAXSUB], res[3][MBSR__MAXSUB]; /* [0] cubic [1] net [2] hr */
  double imp[MBSR__MAXSUB];
  double imp_mean, imp_lo, imp_hi; /* mean improvement and its 95 % CI (n >= 3) */
  mbsr_ttest t_rmse, t_ssim;
  int ok_rmse, ok_ssim;            /* tests computed (n >= 3) */
  double p_rmse_holm, p_ssim_holm;
} cell_stats;
int mbsr__tested(const cell_stats *c);
/* metrics.csv -> per-brain means (rows of one brain, e.g. its halves or slabs, averaged), tests. */
int mbsr__read_cell_stats(const char *path, cell_stats *cs);
/* Holm across the n cells that were tested (p of the others stays NaN). */
void mbsr__holm_cells(cell_stats *cs, int n);
/* Welch ANOVA across cubic (first present cell) + every cell's network, per brain (m: 0 RMSE, 1 SSIM):
 * 1 when computed, 0 when not (fewer than 2 brains in a group, zero variance). */
int mbsr__welch_cells(const cell_stats *cs, int n, int m, mbsr_welch *an);

/* ================================================================ report_tables.c */
void mbsr__write_stats_csv(const mbsr_experiment *e, const cell_stats *cs, const mbsr_welch *an, const int *an_ok, mbsr__sbuf *t);
void mbsr__write_table_csv(const mbsr_experiment *e, const cell_stats *cs, mbsr__sbuf *t);
/* table.tex: LaTeX (booktabs), one row per present cell (as table.csv), p as in table.md. */
void mbsr__write_table_tex(const mbsr_experiment *e, const cell_stats *cs, int synth, const mbsr_welch *an, const int *an_ok,
                           mbsr__sbuf *t);
/* The paper's Table 1 value at (lr, hr, samples): 1 and its mean, sd; 0 when the paper has none. */
int mbsr__paper_table1_num(const mbsr_res_pair *p, int samples, double *mean, double *sd);
/* A pair's name with its LR-HR separator replaced by dash ("400–200", "100x100x400--100" in TeX). */
const char *mbsr__pair_label(const mbsr_res_pair *p, const char *dash, char *buf, size_t n);
void mbsr__write_table_md(const mbsr_experiment *e, const cell_stats *cs, int synth, const mbsr_welch *an, const int *an_ok,
                          mbsr__sbuf *md);

/* ================================================================ report_readme.c */
typedef struct {
  const char *dir;                 /* results directory */
  const char *source;              /* first line of data/SOURCE.txt (without newline), "" if absent */
  int synth;                       /* the AF data are the SYNTHETIC phantom */
  const char *md;                  /* the tables (table.md) */
  char (*figs)[256];               /* figure file names */
  int nf;
  double r_corr[2];                /* AF-vs-T2w Pearson r: brain mask, whole volume (NaN: none) */
} readme_input;
void mbsr__write_readme(const mbsr_experiment *e, const mbsr_report_opts *o, const cell_stats *cs, const readme_input *in,
                        mbsr__sbuf *rd);

/* ================================================================ report_figures.c */
/* Run a figure script (it sets the terminal with mbsr__fig_terminal, not the output) without a shell,
 * three times: out_png, and the PDF and SVG beside it (fig_x.pdf, fig_x.svg); each is written to a
 * temporary name and renamed when complete. Only the PNG's failure is an error (a PDF or SVG that
 * fails is a warning). */
int mbsr__run_gnuplot(const char *script_path, const char *out_png);
/* "DIR/fig_x.png" -> "DIR/fig_src/fig_x.png<suffix>" (directory made); an error when it does not fit. */
int mbsr__fig_src_path(const char *png, const char *suffix, char *buf, size_t n);
/* The terminal lines of a figure script (pngcairo w x h, or pdfcairo/svg at the same proportions,
 * chosen by the gnuplot variable fmt that mbsr__run_gnuplot sets). */
void mbsr__fig_terminal(FILE *g, int w, int h);
/* "DIR/fig_x.png" -> "DIR/fig_x.<ext>". */
int mbsr__fig_vector_path(const char *png, const char *ext, char *buf, size_t n);
/* s as a double-quoted gnuplot string. */
void mbsr__gp_str(FILE *g, const char *s);
/* Paired plot: ng groups of columns; column 0 of a group is cubic, the others the networks of cells
 * that share that cubic (same test pair, data and brains); v[g][c * nb[g] + b] is brain b's value in
 * column c, drawn as one line per brain through the group's columns in the colour of brain_id[g][b]
 * (an index into brains). col_label: every group's column labels, concatenated. */
typedef struct {
  const char *title, *ylabel;
  int ng;
  const int *ncol, *nb;
  const double *const *v;
  const int *const *brain_id;
  const char *const *group_label, *const *col_label;
  int nbrains;
  const char *const *brains;
} fig_paired_data;
int mbsr__fig_paired(const fig_paired_data *d, const char *out_png);
/* Improvement over cubic vs the number of training samples (Figure 4B style): nl lines (label[l]);
 * each point of line `line` at x samples: the mean over brains, its 95 % CI lo..hi (NaN: none), the n
 * brains' values v, and the paper's mean and sd at that point (NaN: none). */
typedef struct {
  int line, n;
  double x, mean, lo, hi, paper_mean, paper_sd;
  const double *v;
} fig_improve_point;
typedef struct {
  const char *title;
  int nl;
  const char *const *label;
  int np;
  const fig_improve_point *p;
} fig_improve_data;
int mbsr__fig_improvement(const fig_improve_data *d, const char *out_png);
/* Montage (Figure 3 style): columns of volumes on one grid (LR shown by nearest neighbour on the HR
 * grid: column 0; the methods; the HR reference: the last column); rows axial (k mid), coronal
 * (j mid), a zoom of the axial slice where the reference has the most gradient energy, and the
 * absolute error against the reference of each method (axial, coronal); a grey colour bar for the
 * images (display window lo..hi, labelled cb_label), another for the errors, scale bars in mm. */
typedef struct {
  const char *title;
  const mbsr_volume *const *cols;
  const char *const *titles;
  int ncol;
  double lo, hi;
  const char *cb_label;
} fig_montage_data;
int mbsr__fig_montage(const fig_montage_data *d, const char *out_png);
/* LR shown on the HR grid by nearest neighbour (blocky, as in the paper's Figure 3). */
mbsr_volume *mbsr__nearest_like(const mbsr_volume *lr, const mbsr_volume *hr);
/* Decorrelation curves of the central axial slice of each of nv <= 3 volumes (keys: data file
 * suffixes; hr_um: the grid, for the resolution in the panel titles). */
int mbsr__fig_decorr(const char *title_suffix, const mbsr_volume *const *v, const char *const *keys, const char *const *titles, int nv,
                     double hr_um, const char *out_png);
/* Voxel-wise scatter of x against y inside mask (Pearson r in the mask and over the whole volume). */
typedef struct {
  const char *title, *xlabel, *ylabel;
  mbsr_corr r[2];                  /* out: 0 brain mask, 1 whole volume */
  int r_ok;                        /* out: r computed (even when the plot then failed) */
} fig_scatter_data;
int mbsr__fig_scatter(const mbsr_volume *x, const mbsr_volume *y, const mbsr_volume *mask, fig_scatter_data *d, const char *out_png);

#endif
