/* report: statistics of `mbsr report` equal R's t.test(paired = TRUE) and oneway.test(var.equal =
 * FALSE) on the same numbers (fixtures from tests/fixtures/gen_report_stats.R); tables written. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/exp.h"
#include "mbsr/stats.h"
#include "mbsr_test.h"

static const char *YAML =
    "experiment: rstats\n"
    "title: \"report statistics against R\"\n"
    "report: {anova: true, table1: true}\n"
    "scales:\n"
    "  paper: {}\n"
    "  demo:\n"
    "    matrix: {arch: [ccnn, resnet, gan], train_pair: [200-100], samples: [1000]}\n";

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void test_stats_vs_r(void) {
  char yaml[4096], res[4096], fx[4096], p[8192];
  snprintf(yaml, sizeof yaml, "%s/rstats.yaml", mbsr_test_tmpdir());
  snprintf(res, sizeof res, "%s/results", mbsr_test_tmpdir());
  write_file(yaml, YAML);
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(yaml, "demo", &e));
  MT_ASSERT_INT_EQ(e.n_cells, 3);
  /* split the fixture's rows into the cells' metrics.csv + done markers */
  mbsr_csv *in = NULL;
  MT_ASSERT_OK(mbsr_csv_read(mbsr_test_fixture("report/input.csv", fx, sizeof fx), &in));
  int ccell = mbsr_csv_col(in, "cell");
  for (int c = 0; c < e.n_cells; c++) {
    snprintf(p, sizeof p, "%s/demo/rstats/cells/%s", res, e.cells[c].name);
    MT_ASSERT_OK(mbsr_mkdir_p(p));
    snprintf(p, sizeof p, "%s/demo/rstats/cells/%s/metrics.csv", res, e.cells[c].name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int j = 0; j < in->ncols; j++) fprintf(f, "%s%s", j ? "," : "", in->names[j]);
    fputc('\n', f);
    int rows = 0;
    for (int i = 0; i < in->nrows; i++) {
      if (strcmp(in->cells[i * in->ncols + ccell], e.cells[c].name)) continue;
      for (int j = 0; j < in->ncols; j++) fprintf(f, "%s%s", j ? "," : "", in->cells[i * in->ncols + j]);
      fputc('\n', f);
      rows++;
    }
    fclose(f);
    MT_ASSERT_INT_EQ(rows, 21);
    snprintf(p, sizeof p, "%s/demo/rstats/cells/%s/done", res, e.cells[c].name);
    write_file(p, "done\n");
  }
  mbsr_csv_free(in);
  mbsr_report_opts o = {.results = res, .figures = 0, .command = "test"};
  MT_ASSERT_OK(mbsr_report_run(&e, &o));
  /* compare stats.csv with R */
  mbsr_csv *got = NULL, *want = NULL;
  snprintf(p, sizeof p, "%s/demo/rstats/stats.csv", res);
  MT_ASSERT_OK(mbsr_csv_read(p, &got));
  MT_ASSERT_OK(mbsr_csv_read(mbsr_test_fixture("report/expected.csv", fx, sizeof fx), &want));
  MT_ASSERT_INT_EQ(got->nrows, want->nrows);
  int gt = mbsr_csv_col(got, "test"), gc = mbsr_csv_col(got, "cell"), gm = mbsr_csv_col(got, "metric"),
      gs = mbsr_csv_col(got, "statistic"), g1 = mbsr_csv_col(got, "df1"), g2 = mbsr_csv_col(got, "df2"),
      gp = mbsr_csv_col(got, "p");
  int wt = mbsr_csv_col(want, "test"), wc = mbsr_csv_col(want, "cell"), wm = mbsr_csv_col(want, "metric"),
      ws = mbsr_csv_col(want, "statistic"), w1 = mbsr_csv_col(want, "df1"), w2 = mbsr_csv_col(want, "df2"),
      wp = mbsr_csv_col(want, "p");
  int matched = 0;
  for (int i = 0; i < want->nrows; i++) {
    const char **W = (const char **)want->cells + i * want->ncols;
    for (int k = 0; k < got->nrows; k++) {
      const char **G = (const char **)got->cells + k * got->ncols;
      if (strcmp(W[wt], G[gt]) || strcmp(W[wc], G[gc]) || strcmp(W[wm], G[gm])) continue;
      matched++;
      MT_ASSERT_REL(atof(G[gs]), atof(W[ws]), 1e-10, 1e-12);
      MT_ASSERT_REL(atof(G[g1]), atof(W[w1]), 1e-10, 1e-12);
      if (!strcmp(W[wt], "welch_anova")) MT_ASSERT_REL(atof(G[g2]), atof(W[w2]), 1e-10, 1e-12);
      MT_ASSERT_REL(atof(G[gp]), atof(W[wp]), 1e-8, 1e-300);
    }
  }
  MT_ASSERT_INT_EQ(matched, want->nrows);
  mbsr_csv_free(got);
  mbsr_csv_free(want);
  /* tables exist and name the paper's column */
  snprintf(p, sizeof p, "%s/demo/rstats/table.md", res);
  FILE *f = fopen(p, "r");
  CU_ASSERT_FATAL(f != NULL);
  char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  CU_ASSERT(strstr(buf, "Improvement over cubic interpolation in RMSE, %") != NULL);
  CU_ASSERT(strstr(buf, "Welch") != NULL);
  snprintf(p, sizeof p, "%s/demo/rstats/table.csv", res);
  CU_ASSERT(mbsr_file_exists(p));
  snprintf(p, sizeof p, "%s/demo/rstats/README.md", res);
  CU_ASSERT(mbsr_file_exists(p));
}

static void test_unfinished_cells_left_out(void) {
  char yaml[4096], res[4096], p[8192];
  snprintf(yaml, sizeof yaml, "%s/empty.yaml", mbsr_test_tmpdir());
  snprintf(res, sizeof res, "%s/results-empty", mbsr_test_tmpdir());
  write_file(yaml, YAML);
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(yaml, "demo", &e));
  /* a metrics file without its done marker does not count */
  snprintf(p, sizeof p, "%s/demo/rstats/cells/%s", res, e.cells[0].name);
  MT_ASSERT_OK(mbsr_mkdir_p(p));
  snprintf(p, sizeof p, "%s/demo/rstats/cells/%s/metrics.csv", res, e.cells[0].name);
  write_file(p, "cell,subject,method,rmse,ssim,psnr,kc,res_um,n_vox\n");
  mbsr_report_opts o = {.results = res, .figures = 0, .command = "test"};
  int rc = mbsr_report_run(&e, &o);
  CU_ASSERT(rc != 0);
  CU_ASSERT(strstr(mbsr_last_error(), "no finished cell") != NULL);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"stats_vs_r", test_stats_vs_r},
                                         {"unfinished_cells_left_out", test_unfinished_cells_left_out},
                                         {NULL, NULL}};
  return mbsr_test_main("exp_report", cases);
}
