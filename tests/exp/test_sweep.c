/* sweep: a tiny experiment end to end through the CLI (phantom -> prep -> train -> apply ->
 * evaluate -> report), and a sweep killed mid-way (SIGKILL after its first cell finished) that,
 * run again, skips the finished cell and ends with the same table as an uninterrupted run.
 * One OpenMP thread: with more, the conv kernels' per-thread weight-gradient partials are summed
 * in a scheduling-dependent order and metrics agree to ~1e-8 relative instead of bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/exp.h"
#include "mbsr_test.h"

static const char *YAML =
    "experiment: tiny\n"
    "title: \"tiny sweep\"\n"
    "report: {anova: false, table1: true}\n"
    "scales:\n"
    "  paper: {}\n"
    "  demo:\n"
    "    data: {cohort: phantom, dir: %s/phantom, base_um: 100, n_train: 3, n_test: 2}\n"
    "    phantom: {n: 5, seed: 7, dims: [40, 48, 32]}\n"
    "    model: {channels: 4, blocks: 1, global_residual: true}\n"
    "    train: {patch: 9, batch: 4, epochs: 2, patience: 0, val_fraction: 0.3, seed: 3}\n"
    "    eval: {decorr: true, decorr_step: 6, save_volumes: true}\n"
    "    matrix: {arch: [resnet], train_pair: [200-100], samples: [16, 24, 32]}\n";

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  b[fread(b, 1, (size_t)n, f)] = 0;
  fclose(f);
  return b;
}

static void test_kill_and_resume(void) {
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char yaml[4096];
  snprintf(yaml, sizeof yaml, "%s/tiny.yaml", t);
  FILE *f = fopen(yaml, "w");
  CU_ASSERT_FATAL(f != NULL);
  fprintf(f, YAML, t);
  fclose(f);
  /* uninterrupted */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && OMP_NUM_THREADS=1 '%s' sweep '%s' --results A > a.log 2>&1", t, bin, yaml), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && '%s' report '%s' --results A > ar.log 2>&1", t, bin, yaml), 0);
  /* killed after the first cell's done marker appears, then resumed */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && (OMP_NUM_THREADS=1 '%s' sweep '%s' --results B > b1.log 2>&1 & pid=$!; "
                                "for i in $(seq 1 600); do [ -e B/demo/tiny/cells/c00_resnet_200-100_n16/done ] && break; sleep 0.05; done; "
                                "kill -9 $pid; wait $pid; true)",
                                t, bin, yaml),
                   0);
  char p[8192];
  snprintf(p, sizeof p, "%s/B/demo/tiny/cells/c00_resnet_200-100_n16/done", t);
  CU_ASSERT(mbsr_file_exists(p));
  snprintf(p, sizeof p, "%s/B/demo/tiny/cells/c02_resnet_200-100_n32/done", t);
  CU_ASSERT(!mbsr_file_exists(p)); /* really interrupted */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && OMP_NUM_THREADS=1 '%s' sweep '%s' --results B > b2.log 2>&1", t, bin, yaml), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'c00_resnet_200-100_n16: finished earlier, skipped' '%s/b2.log'", t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && '%s' report '%s' --results B > br.log 2>&1", t, bin, yaml), 0);
  /* same per-subject metrics and the same table */
  for (int c = 0; c < 3; c++) {
    const char *cells[3] = {"c00_resnet_200-100_n16", "c01_resnet_200-100_n24", "c02_resnet_200-100_n32"};
    char pa[8192], pb[8192];
    snprintf(pa, sizeof pa, "%s/A/demo/tiny/cells/%s/metrics.csv", t, cells[c]);
    snprintf(pb, sizeof pb, "%s/B/demo/tiny/cells/%s/metrics.csv", t, cells[c]);
    char *a = slurp(pa), *b = slurp(pb);
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT(strcmp(a, b) == 0);
    CU_ASSERT(strstr(a, ",cubic,") != NULL && strstr(a, ",resnet,") != NULL);
    free(a), free(b);
  }
  char pa[8192], pb[8192];
  snprintf(pa, sizeof pa, "%s/A/demo/tiny/table.csv", t);
  snprintf(pb, sizeof pb, "%s/B/demo/tiny/table.csv", t);
  char *a = slurp(pa), *b = slurp(pb);
  CU_ASSERT_FATAL(a && b);
  CU_ASSERT_STRING_EQUAL(a, b);
  free(a), free(b);
  /* the report made its figures and README; params.yaml holds the defaults too */
  snprintf(p, sizeof p, "%s/A/demo/tiny/README.md", t);
  char *rd = slurp(p);
  CU_ASSERT_FATAL(rd != NULL);
  CU_ASSERT(strstr(rd, "SYNTHETIC") != NULL);
  CU_ASSERT(strstr(rd, "fig_montage.png") != NULL);
  free(rd);
  snprintf(p, sizeof p, "%s/A/demo/tiny/fig_paired_rmse.png", t);
  CU_ASSERT(mbsr_file_exists(p));
  snprintf(p, sizeof p, "%s/A/demo/tiny/params.yaml", t);
  char *pr = slurp(p);
  CU_ASSERT_FATAL(pr != NULL);
  CU_ASSERT(strstr(pr, "      lr: 0.001") != NULL); /* a default the file did not give */
  free(pr);
  /* a finished cell counts as done only for the parameters it was computed with */
  {
    static mbsr_experiment e;
    char res[4200];
    snprintf(res, sizeof res, "%s/A", t);
    MT_ASSERT_OK(mbsr_exp_load(yaml, "demo", &e));
    CU_ASSERT(mbsr_sweep_cell_done(&e, res, 0));
    e.s.epochs += 1;
    CU_ASSERT(!mbsr_sweep_cell_done(&e, res, 0));
  }
  /* two MPI ranks (data-parallel prep and training, evaluation on rank 0): runs to the same layout */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && OMP_NUM_THREADS=1 mpiexec --allow-run-as-root --oversubscribe --bind-to none -n 2 "
                                "'%s' sweep '%s' --results C --cell 2 > c.log 2>&1",
                                t, bin, yaml),
                   0);
  snprintf(p, sizeof p, "%s/C/demo/tiny/cells/c02_resnet_200-100_n32/metrics.csv", t);
  char *cm = slurp(p);
  CU_ASSERT_FATAL(cm != NULL);
  CU_ASSERT(strstr(cm, ",cubic,") != NULL && strstr(cm, ",resnet,") != NULL);
  free(cm);
  snprintf(p, sizeof p, "%s/C/demo/tiny/cells/c00_resnet_200-100_n16/done", t);
  CU_ASSERT(!mbsr_file_exists(p)); /* --cell ran only that cell */
  /* --list and --cell */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && '%s' sweep '%s' --results A --list | grep -q '^cells: 3  (tiny, demo scale)'", t, bin, yaml), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && '%s' sweep '%s' --results A --cell 1 2>&1 | grep -q 'to run'", t, bin, yaml), 0);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"kill_and_resume", test_kill_and_resume}, {NULL, NULL}};
  return mbsr_test_main("exp_sweep", cases);
}
