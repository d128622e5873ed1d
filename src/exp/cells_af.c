/* An AF cell: train on the AF cohort at the cell's training pair, apply to every test subject
 * through mbsr_apply -- the path a user runs, on volumes in their acquired intensity units -- and
 * evaluate the network AND cubic (Keys) interpolation against the HR reference (evaluate.c).
 *
 * Test designs (data.cv):
 *  - none: prep's seeded split by subject holds n_test subjects out; one network per cell.
 *  - loso: leave-one-subject-out over the subjects of the pair's grid: fold f trains on every other
 *    subject (mbsr train --exclude-subjects f) and is evaluated on f; a cohort of ONE brain is cut
 *    in two halves along its longest axis (2 folds, a within-brain design). Each row carries its
 *    brain, the unit of the report's statistics. For the cells of the largest training set a final
 *    network on all subjects is trained too (what a user would apply; its expected performance is
 *    the cross-validated one).
 * Results: cells/<cell>/metrics.csv, then cells/<cell>/done (atomic, last).
 * MPI: prep and train are collective; evaluation runs on rank 0 while the other ranks wait; every
 * step ends with a status agreement. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

static int load_eval(const char *dir, const char *subject, const char *level, int mask, mbsr_volume **v) {
  char p[4096];
  int rc = mbsr_pathf(p, sizeof p, "%s/%s_%s%s.nii.gz", dir, subject, level, mask ? "_mask" : "");
  return rc ? rc : mbsr_volume_read(p, NULL, v);
}

/* The volumes of one evaluated subject. */
typedef struct {
  mbsr_volume *hr, *lr, *mask, *cub, *sr;
} subject_vols;

static void subject_vols_free(subject_vols *v) {
  mbsr_volume_free(v->hr), mbsr_volume_free(v->lr), mbsr_volume_free(v->mask), mbsr_volume_free(v->cub), mbsr_volume_free(v->sr);
  memset(v, 0, sizeof *v);
}

/* The first subject's volumes, kept for the report's figures. */
static int save_subject(const mbsr_exp_cell *c, const char *cdir, const char *name, const subject_vols *v) {
  const char *syn = strstr(name, "phantom") ? "SYNTHETIC phantom " : "";
  char d[80], pn[MBSR_PAIR_NAME_MAX];
  mbsr_res_pair_name(&c->test_pair, pn, sizeof pn);
  snprintf(d, sizeof d, "%s%.40s LR %.*s um", syn, name, (int)strcspn(pn, "-"), pn);
  int rc = mbsr__save_vol(cdir, "lr", v->lr, d);
  snprintf(d, sizeof d, "%s%.40s cubic", syn, name);
  if (!rc) rc = mbsr__save_vol(cdir, "cubic", v->cub, d);
  snprintf(d, sizeof d, "%s%.40s %s SR", syn, name, c->arch);
  if (!rc) rc = mbsr__save_vol(cdir, "sr", v->sr, d);
  snprintf(d, sizeof d, "%s%.40s HR %d um", syn, name, c->test_pair.hr_um);
  if (!rc) rc = mbsr__save_vol(cdir, "hr", v->hr, d);
  if (!rc) rc = mbsr__save_vol(cdir, "mask", v->mask, d);
  return rc;
}

/* Evaluate `ckpt` on subjects sel[0..ns) of group g (rows appended); the first subject's volumes are
 * kept for figures when `save` is set. Rank 0. */
static int eval_af(const mbsr_experiment *e, const mbsr_exp_cell *c, const af_group *g, const char *ckpt, const char *fold,
                   const int *sel, int ns, int save, const char *cdir, eval_rows *rows) {
  const mbsr_exp_scale *s = &e->s;
  mbsr_apply_opts ao;
  mbsr__eval_apply_opts(s, &ao);
  mbsr_model *m = NULL;
  int rc = mbsr_checkpoint_load(ckpt, 1, s->patch, s->patch, s->patch, &m, NULL);
  if (rc) return mbsr_error_prefix(rc, "cell %s: ", c->name);
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  mbsr_progress pr;
  char lab[160];
  snprintf(lab, sizeof lab, "sweep: %s: evaluate", c->name);
  mbsr_progress_init(&pr, lab, ns);
  pr.min_interval = 0;
  for (int i = 0; i < ns && !rc; i++) {
    const char *name = g->subjects[sel[i]];
    subject_vols v = {0};
    char lt[64], ht[64];
    mbsr__pair_level(s, &c->test_pair, 1, lt, sizeof lt), mbsr__pair_level(s, &c->test_pair, 0, ht, sizeof ht);
    rc = load_eval(g->eval, name, ht, 0, &v.hr);
    if (!rc) rc = load_eval(g->eval, name, lt, 0, &v.lr);
    if (!rc) rc = load_eval(g->eval, name, ht, 1, &v.mask);
    double ta = mbsr_now();
    if (!rc) rc = mbsr_upsample_like(v.lr, v.hr, k->interp, &v.cub);
    if (!rc) rc = mbsr_apply(m, v.lr, v.hr, &ao, &v.sr);
    ta = mbsr_now() - ta;
    double tm = mbsr_now();
    const int r0 = rows->n;
    const eval_unit u = {c->arch, fold, name, g->brains[sel[i]], -1, 0, 0};
    if (!rc) rc = mbsr__eval_unit(s, k, v.cub, v.sr, v.hr, v.mask, &u, rows);
    if (!rc && i == 0 && save) rc = save_subject(c, cdir, name, &v);
    if (!rc) {
      char ex[512];
      snprintf(ex, sizeof ex, "%s: RMSE cubic %.5f %s %.5f (%+.1f %%) (apply %.1f s, metrics %.1f s)", name, rows->rows[r0].m.rmse,
               c->arch, rows->rows[r0 + 1].m.rmse, 100 * (rows->rows[r0].m.rmse - rows->rows[r0 + 1].m.rmse) / rows->rows[r0].m.rmse,
               ta, mbsr_now() - tm);
      mbsr_progress_update(&pr, i + 1, "subjects", ex);
    }
    subject_vols_free(&v);
  }
  mbsr_model_free(m);
  return rc;
}

/* The state of one AF cell while it runs. */
typedef struct {
  const mbsr_experiment *e;
  const mbsr_sweep_opts *o;
  sweep_ctx *x;
  const mbsr_exp_cell *c;
  af_group *gtr, *gte;  /* the training and the test grid's data */
  int *sel, ns;         /* the test subjects (indices into gte) */
  char pair[MBSR_PAIR_NAME_MAX], cdir[2600], ckpt[2800];
  eval_rows rows;
  mbsr__sbuf done;      /* the done marker's text */
} af_cell;

/* The groups, the test subjects (rank 0 looks, every rank learns) and the cell directory. */
static int cell_open(af_cell *cell) {
  const mbsr_exp_scale *s = &cell->e->s;
  const mbsr_exp_cell *c = cell->c;
  int rc = mbsr__af_group(cell->e, cell->o, cell->x, mbsr__base_for(s, c->train_pair.hr_um), &cell->gtr);
  if (!rc) rc = mbsr__af_group(cell->e, cell->o, cell->x, mbsr__base_for(s, c->test_pair.hr_um), &cell->gte);
  if (rc) return rc;
  mbsr_res_pair_name(&c->train_pair, cell->pair, sizeof cell->pair);
  char ht[64];
  mbsr__pair_level(s, &c->test_pair, 0, ht, sizeof ht);
  rc = mbsr_pathf(cell->cdir, sizeof cell->cdir, "%s/cells/%s", cell->x->dir, c->name);
  cell->sel = malloc(sizeof(int) * (size_t)(cell->gte->n_subjects + 1));
  if (!rc && !cell->sel) rc = mbsr_error(MBSR_ENOMEM, "cell %s: out of memory", c->name);
  if (!rc && mbsr__rank0()) {
    cell->ns = mbsr__af_eval_subjects(cell->gte, ht, cell->sel);
    if (cell->ns < 0) rc = cell->ns, cell->ns = 0;
    else if (cell->ns == 0) rc = mbsr_error(MBSR_EINVAL, "%s: no test subjects at %d um", cell->gte->eval, c->test_pair.hr_um);
    if (!rc) rc = mbsr_mkdir_p(cell->cdir);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  MPI_Bcast(&cell->ns, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Bcast(cell->sel, cell->ns, MPI_INT, 0, MPI_COMM_WORLD);
  mbsr__sb_add(&cell->done, "cell %s\nparams %016llx\ndata %s\n", c->name, (unsigned long long)mbsr__cell_key(cell->e, c->index), cell->gtr->h5);
  return 0;
}

/* Leave out of training every subject of the training grid that is the held-out subject, a part of
 * it (a half of a held-out brain) or the whole it is a half of: a comma-separated list (malloc'd). */
static char *fold_exclusions(const af_cell *cell, int f) {
  const char *held = cell->gte->subjects[cell->sel[f]], *held_brain = cell->gte->brains[cell->sel[f]];
  mbsr__sbuf ex = {0};
  for (int i = 0; i < cell->gtr->n_subjects; i++) {
    const char *t = cell->gtr->subjects[i];
    if (strcmp(t, held) && strcmp(cell->gtr->brains[i], held) && strcmp(t, held_brain)) continue;
    mbsr__sb_add(&ex, "%s%s", ex.n ? "," : "", t);
  }
  if (!mbsr__sb_text(&ex, "sweep: subjects to leave out")) return NULL;
  return ex.s;
}

/* Fold f (cv) or the one network of a fixed split: train (or reuse), evaluate on rank 0. */
static int run_fold(af_cell *cell, int f, int nfold) {
  const mbsr_exp_scale *s = &cell->e->s;
  const mbsr_exp_cell *c = cell->c;
  const int cv = mbsr__is_cv(s);
  const char *held = cv ? cell->gte->subjects[cell->sel[f]] : NULL;
  char *excl = held ? fold_exclusions(cell, f) : NULL, tag[300];
  if (held && !excl) return mbsr_mpi_agree(MPI_COMM_WORLD, MBSR_ENOMEM);
  snprintf(tag, sizeof tag, "fold-%s", held ? held : "");
  train_job j = {c->arch, cell->gtr->h5, cell->pair, c->samples, excl && excl[0] ? excl : NULL, cv ? tag : NULL, NULL, -1, s->epochs};
  if (mbsr__rank0() && cv)
    mbsr_info("sweep: %s: fold %d/%d: held-out subject %s (brain %s)", c->name, f + 1, nfold, held, cell->gte->brains[cell->sel[f]]);
  int rc = mbsr__train_or_reuse(cell->e, cell->o, cell->x, &j, cell->ckpt, sizeof cell->ckpt);
  free(excl);
  if (rc) return rc;
  int erc = 0;
  if (mbsr__rank0()) {
    erc = eval_af(cell->e, c, cell->gte, cell->ckpt, held ? held : "-", cv ? &cell->sel[f] : cell->sel, cv ? 1 : cell->ns, s->save_volumes && f == 0,
                  cell->cdir, &cell->rows);
    mbsr__sb_add(&cell->done, "checkpoint %s %s\n", held ? held : "-", cell->ckpt);
  }
  return mbsr_mpi_agree(MPI_COMM_WORLD, erc);
}

/* Rank 0: metrics.csv, then the done marker (last). */
static int cell_finish(af_cell *cell, double t0) {
  char p[2800];
  int rc = mbsr_pathf(p, sizeof p, "%s/metrics.csv", cell->cdir);
  if (!rc) rc = mbsr__write_metrics(p, cell->c, &cell->rows);
  if (!rc) mbsr__sb_add(&cell->done, "finished in %.1f s\n", mbsr_now() - t0);
  if (!rc) rc = mbsr_pathf(p, sizeof p, "%s/done", cell->cdir);
  const char *text = rc ? NULL : mbsr__sb_text(&cell->done, p);
  if (!rc) rc = text ? mbsr_write_text_atomic(p, text) : MBSR_ENOMEM;
  return rc;
}

int mbsr__sweep_af_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c, double t0) {
  const mbsr_exp_scale *s = &e->s;
  af_cell cell = {.e = e, .o = o, .x = x, .c = c};
  int rc = cell_open(&cell);
  const int cv = mbsr__is_cv(s), nfold = cv ? cell.ns : 1;
  for (int f = 0; f < nfold && !rc; f++) rc = run_fold(&cell, f, nfold);
  int largest = 1; /* the final network is what a user would apply: only for the largest training set */
  for (int i = 0; i < s->n_samples; i++) largest &= s->samples[i] <= c->samples;
  if (!rc && cv && largest) { /* the final network: every subject of the training grid */
    train_job j = {c->arch, cell.gtr->h5, cell.pair, c->samples, NULL, "all", NULL, -1, s->epochs};
    rc = mbsr__train_or_reuse(e, o, x, &j, cell.ckpt, sizeof cell.ckpt);
    if (!rc) mbsr__sb_add(&cell.done, "final %s\n", cell.ckpt);
  }
  if (!rc) rc = mbsr_mpi_agree(MPI_COMM_WORLD, mbsr__rank0() ? cell_finish(&cell, t0) : 0);
  mbsr__rows_free(&cell.rows);
  mbsr__sb_free(&cell.done);
  free(cell.sel);
  return rc;
}
