/* mbsr sweep: run the cells of an experiment (the driver). A finished cell (its done marker carries
 * the hash of its parameters) is skipped; a killed sweep, run again, recomputes only unfinished cells
 * with the same seeds. The cells: cells_af.c (train and test on the AF cohort), cells_mri.c (test on
 * MRI, train on AF or human T1); their data: afdata.c, prepjob.c; their networks: trainjob.c.
 * Threads: the caller sets OpenMP's thread count (the CLI's --threads); o->threads is passed to the
 * trainer's logs. MPI: every step ends with a status agreement over MPI_COMM_WORLD. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exp_internal.h"

/* "cohort: DIR (SOURCE)\n": the cohort these results come from. */
static int source_line(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x, char *t, size_t n) {
  int w = snprintf(t, n, "cohort: %s (%s)\n", x->cohort, o->data ? "mbsr sweep --data" : e->s.cohort);
  return w < 0 || (size_t)w >= n ? mbsr_error(MBSR_ERANGE, "%s: cohort path too long", x->cohort) : 0;
}

/* results/<scale>/<experiment>: directories, params.yaml, and the cohort these results come from
 * (recorded in data/SOURCE.txt once a cell has finished; another cohort in the same directory is
 * refused). Rank 0. */
static int setup_dir(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x) {
  char p[2400];
  int rc = 0;
  const char *sub[3] = {"cells", "data", "models"};
  for (int i = 0; i < 3 && !rc; i++) {
    rc = mbsr_pathf(p, sizeof p, "%s/%s", x->dir, sub[i]);
    if (!rc) rc = mbsr_mkdir_p(p);
  }
  if (!rc) rc = mbsr_pathf(p, sizeof p, "%s/params.yaml", x->dir);
  if (!rc) rc = mbsr_exp_write_params(e, p);
  char t[2600], old[2600] = "";
  if (!rc) rc = source_line(e, o, x, t, sizeof t);
  if (!rc) rc = mbsr_pathf(p, sizeof p, "%s/data/SOURCE.txt", x->dir);
  FILE *sf = rc ? NULL : fopen(p, "r");
  if (sf) {
    if (!fgets(old, sizeof old, sf)) old[0] = 0;
    fclose(sf);
  }
  int any_done = 0;
  for (int c = 0; c < e->n_cells; c++) any_done |= mbsr__cell_state(e, o->results, c) != MBSR__CELL_OPEN;
  if (!rc && old[0] && strcmp(old, t) && any_done && !o->force) {
    old[strcspn(old, "\n")] = 0;
    rc = mbsr_error(MBSR_EINVAL, "%s holds results of another cohort (%s); use another results root, or force a recomputation", x->dir, old);
  }
  return rc;
}

/* Cell ci: skipped when finished; a done marker of other parameters is removed; then run. */
static int run_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, int ci, int *k, int todo, double t0) {
  const mbsr_exp_cell *c = &e->cells[ci];
  mbsr__cell_state_t st = mbsr__cell_state(e, o->results, ci);
  if (!o->force && st == MBSR__CELL_DONE) {
    if (mbsr__rank0()) mbsr_info("sweep: cell %d/%d %s: finished earlier, skipped", ci + 1, e->n_cells, c->name);
    return 0;
  }
  int rc = 0;
  if (st == MBSR__CELL_OTHER || st == MBSR__CELL_NOKEY) {
    char p[2600];
    rc = mbsr_pathf(p, sizeof p, "%s/cells/%s/done", x->dir, c->name);
    if (!rc && mbsr__rank0()) {
      mbsr_warn("sweep: %s finished with other parameters: recomputed", c->name);
      unlink(p);
    }
    if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  }
  (*k)++;
  double tc = mbsr_now();
  if (mbsr__rank0()) mbsr_info("sweep: cell %d/%d %s (%d of %d to run)", ci + 1, e->n_cells, c->name, *k, todo);
  if (c->train_data != MBSR_DS_AF || c->test_data != MBSR_DS_AF) rc = mbsr__sweep_mri_cell(e, o, x, c);
  else rc = mbsr__sweep_af_cell(e, o, x, c, tc);
  if (!rc && mbsr__rank0()) {
    char el[32], p[2400], t[2600];
    mbsr_format_duration(mbsr_now() - t0, el, sizeof el);
    mbsr_info("sweep: cell %d/%d %s done in %.1f s (sweep elapsed %s)", ci + 1, e->n_cells, c->name, mbsr_now() - tc, el);
    /* the cohort of these results (after the first finished cell: a failed run records nothing) */
    rc = source_line(e, o, x, t, sizeof t);
    if (!rc) rc = mbsr_pathf(p, sizeof p, "%s/data/SOURCE.txt", x->dir);
    if (!rc) rc = mbsr_write_text_atomic(p, t);
  }
  return mbsr_mpi_agree(MPI_COMM_WORLD, rc);
}

int mbsr_sweep_run(const mbsr_experiment *e, const mbsr_sweep_opts *o) {
  sweep_ctx *x = calloc(1, sizeof *x);
  if (!x) return mbsr_error(MBSR_ENOMEM, "sweep: out of memory");
  int rc = mbsr_exp_dir(e, o->results, x->dir, sizeof x->dir);
  if (!rc && o->cell >= e->n_cells)
    rc = mbsr_error(MBSR_EINVAL, "%s: cell %d out of range 0..%d", e->path, o->cell, e->n_cells - 1);
  if (!rc) rc = mbsr__cohort_dir(o->data ? o->data : e->s.data_dir, x->cohort, sizeof x->cohort);
  if (rc) {
    free(x);
    return rc;
  }
  if (mbsr__rank0()) rc = setup_dir(e, o, x);
  int first = o->cell >= 0 ? o->cell : 0, last = o->cell >= 0 ? o->cell : e->n_cells - 1, todo = 0;
  if (!(rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    for (int c = first; c <= last; c++) todo += o->force || !mbsr_sweep_cell_done(e, o->results, c);
    if (mbsr__rank0())
      mbsr_info("sweep: %s (%s scale): %d cell(s) selected, %d to run, results in %s", e->name, e->scale_name, last - first + 1,
                todo, x->dir);
  }
  double t0 = mbsr_now();
  int k = 0;
  for (int ci = first; ci <= last && !rc && todo; ci++) rc = run_cell(e, o, x, ci, &k, todo, t0);
  mbsr__af_groups_free(x);
  free(x);
  return rc;
}
