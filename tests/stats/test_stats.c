/* stats: paired t-test, Welch ANOVA, Pearson correlation against R (tests/fixtures/gen_stats.R),
 * the check values of metrics-and-stats.md, error cases, the CSV reader and the CLI end to end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/stats.h"
#include "mbsr_test.h"

static double cell_num(const mbsr_csv *t, int r, const char *col) {
  int c = mbsr_csv_col(t, col);
  CU_ASSERT_FATAL(c >= 0);
  const char *s = t->cells[(size_t)r * t->ncols + c];
  return strcmp(s, "NA") ? strtod(s, NULL) : NAN;
}
static const char *cell(const mbsr_csv *t, int r, const char *col) {
  int c = mbsr_csv_col(t, col);
  CU_ASSERT_FATAL(c >= 0);
  return t->cells[(size_t)r * t->ncols + c];
}

static mbsr_csv *load(const char *rel) {
  char p[4096];
  mbsr_csv *t = NULL;
  MT_ASSERT_OK(mbsr_csv_read(mbsr_test_fixture(rel, p, sizeof p), &t));
  return t;
}

/* Columns of a fixture CSV as doubles (and as groups for welch). */
static double *column(const mbsr_csv *t, const char *name) {
  double *v = malloc(sizeof(double) * t->nrows);
  MT_ASSERT_OK(mbsr_csv_numeric(t, mbsr_csv_col(t, name), v));
  return v;
}

static void test_r_fixtures(void) {
  mbsr_csv *ex = load("stats/expected.csv");
  CU_ASSERT_FATAL(ex->nrows >= 9);
  double maxrel = 0;
  for (int i = 0; i < ex->nrows; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "stats/%s", cell(ex, i, "file"));
    mbsr_csv *t = load(rel);
    const char *kind = cell(ex, i, "kind"), *c1 = cell(ex, i, "col1"), *c2 = cell(ex, i, "col2");
    double stat = 0, df1 = 0, df2 = NAN, p = 0, e1 = NAN, e2 = NAN;
    double *a = column(t, c1);
    if (!strcmp(kind, "ttest")) {
      double *b = column(t, c2);
      mbsr_ttest r;
      MT_ASSERT_OK(mbsr_ttest_paired(a, b, t->nrows, &r));
      stat = r.t, df1 = r.df, p = r.p, e1 = r.mean_diff, e2 = r.sd_diff;
      free(b);
    } else if (!strcmp(kind, "welch")) {
      int *g = malloc(sizeof(int) * t->nrows), k = 0;
      MT_ASSERT_OK(mbsr_csv_groups(t, mbsr_csv_col(t, c2), g, &k, NULL));
      mbsr_welch r;
      MT_ASSERT_OK(mbsr_welch_anova(a, g, t->nrows, &r));
      MT_ASSERT_INT_EQ(r.k, k);
      stat = r.F, df1 = r.df1, df2 = r.df2, p = r.p, e1 = r.k;
      free(g);
    } else {
      double *b = column(t, c2);
      mbsr_corr r;
      MT_ASSERT_OK(mbsr_pearson(a, b, t->nrows, &r));
      stat = r.t, df1 = r.df, p = r.p, e1 = r.r;
      free(b);
    }
    double got[5] = {stat, df1, df2, p, e1}, want[5];
    const char *keys[5] = {"stat", "df1", "df2", "p", "extra1"};
    for (int j = 0; j < 5; j++) {
      want[j] = cell_num(ex, i, keys[j]);
      if (isnan(want[j])) continue;
      MT_ASSERT_REL(got[j], want[j], 1e-9, 1e-300);
      double rel_err = fabs(got[j] - want[j]) / fabs(want[j]);
      if (rel_err > maxrel) maxrel = rel_err;
    }
    if (!isnan(e2)) MT_ASSERT_REL(e2, cell_num(ex, i, "extra2"), 1e-9, 1e-300);
    free(a);
    mbsr_csv_free(t);
  }
  fprintf(stderr, "  stats vs R: %d results, max relative error %.3g\n", ex->nrows, maxrel);
  mbsr_csv_free(ex);
}

/* The values printed in ../shared/docs/metrics-and-stats.md (typed in, independent of R here). */
static void test_doc_values(void) {
  static const double e1[10] = {0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0};
  static const double e2[10] = {1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4};
  mbsr_ttest t;
  MT_ASSERT_OK(mbsr_ttest_paired(e1, e2, 10, &t));
  MT_ASSERT_REL(t.t, -4.062127683382, 1e-11, 0);
  MT_ASSERT_INT_EQ(t.df, 9);
  MT_ASSERT_REL(t.p, 2.832890197384e-3, 1e-11, 0);

  mbsr_csv *pg = load("stats/plantgrowth.csv");
  double *w = column(pg, "weight");
  int g[30], k;
  MT_ASSERT_OK(mbsr_csv_groups(pg, mbsr_csv_col(pg, "group"), g, &k, NULL));
  mbsr_welch r;
  MT_ASSERT_OK(mbsr_welch_anova(w, g, pg->nrows, &r));
  MT_ASSERT_REL(r.F, 5.180972408113, 1e-11, 0);
  MT_ASSERT_REL(r.df2, 17.128418616644, 1e-11, 0);
  MT_ASSERT_REL(r.p, 1.739282149017e-2, 1e-11, 0);
  MT_ASSERT_INT_EQ(r.df1, 2);
  free(w);
  mbsr_csv_free(pg);

  mbsr_csv *is = load("stats/insectsprays.csv");
  double *c = column(is, "count");
  int g2[72];
  MT_ASSERT_OK(mbsr_csv_groups(is, mbsr_csv_col(is, "spray"), g2, &k, NULL));
  MT_ASSERT_INT_EQ(k, 6);
  MT_ASSERT_OK(mbsr_welch_anova(c, g2, is->nrows, &r));
  MT_ASSERT_REL(r.F, 36.065443893577, 1e-11, 0);
  MT_ASSERT_REL(r.df2, 30.042560508767, 1e-11, 0);
  MT_ASSERT_REL(r.p, 7.9994e-12, 1e-4, 0);
  free(c);
  mbsr_csv_free(is);

  double m, s;
  static const double x[4] = {1, 2, 3, 4};
  mbsr_mean_sd(x, 4, &m, &s);
  MT_ASSERT_NEAR(m, 2.5, 1e-15);
  MT_ASSERT_NEAR(s, sqrt(5.0 / 3.0), 1e-15);
}

static void test_errors(void) {
  double a[3] = {1, 2, 3}, b[3] = {0, 1, 2}, nanv[3] = {1, NAN, 3};
  int g[4] = {0, 0, 1, 1};
  mbsr_ttest t;
  mbsr_welch w;
  mbsr_corr c;
  MT_ASSERT_INT_EQ(mbsr_ttest_paired(a, b, 1, &t), MBSR_EINVAL);      /* n < 2 */
  MT_ASSERT_INT_EQ(mbsr_ttest_paired(a, b, 3, &t), MBSR_EINVAL);      /* zero variance of d */
  CU_ASSERT(strstr(mbsr_last_error(), "zero variance") != NULL);
  MT_ASSERT_INT_EQ(mbsr_ttest_paired(a, nanv, 3, &t), MBSR_ENONFINITE);
  double y4[4] = {1, 2, 3, 5}, y4c[4] = {1, 1, 3, 5};
  int g1[4] = {0, 0, 0, 0}, gs[4] = {0, 1, 1, 1};
  MT_ASSERT_INT_EQ(mbsr_welch_anova(y4, g1, 4, &w), MBSR_EINVAL); /* k < 2 */
  MT_ASSERT_INT_EQ(mbsr_welch_anova(y4, gs, 4, &w), MBSR_EINVAL); /* a group of 1 */
  MT_ASSERT_INT_EQ(mbsr_welch_anova(y4c, g, 4, &w), MBSR_EINVAL); /* zero variance in group 0 */
  MT_ASSERT_OK(mbsr_welch_anova(y4, g, 4, &w));
  double y4n[4] = {1, 2, NAN, 5};
  MT_ASSERT_INT_EQ(mbsr_welch_anova(y4n, g, 4, &w), MBSR_ENONFINITE);
  MT_ASSERT_INT_EQ(mbsr_pearson(a, b, 2, &c), MBSR_EINVAL);
  double cst[3] = {2, 2, 2};
  MT_ASSERT_INT_EQ(mbsr_pearson(a, cst, 3, &c), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_pearson(a, nanv, 3, &c), MBSR_ENONFINITE);
  MT_ASSERT_OK(mbsr_pearson(a, b, 3, &c)); /* perfect correlation: t infinite, p = 0 */
  MT_ASSERT_NEAR(c.r, 1.0, 1e-15);
  CU_ASSERT(isinf(c.t) && c.p == 0);
  mbsr_mean_sd(a, 1, NULL, &c.r);
  CU_ASSERT(isnan(c.r));
}

static const char *write_tmp(const char *name, const char *text) {
  static char p[4][4096];
  static int i;
  char *q = p[i++ & 3];
  snprintf(q, 4096, "%s/%s", mbsr_test_tmpdir(), name);
  FILE *f = fopen(q, "w");
  fputs(text, f);
  fclose(f);
  return q;
}

static void test_csv(void) {
  mbsr_csv *t = NULL;
  const char *p = write_tmp("q.csv", "name, \"a,b\" ,c\r\n\"x \"\"y\"\"\",1.5,2\n\nz,  -3e2 ,4\n");
  MT_ASSERT_OK(mbsr_csv_read(p, &t));
  MT_ASSERT_INT_EQ(t->ncols, 3);
  MT_ASSERT_INT_EQ(t->nrows, 2);
  CU_ASSERT_STRING_EQUAL(t->names[1], "a,b");
  CU_ASSERT_STRING_EQUAL(t->cells[0], "x \"y\"");
  MT_ASSERT_INT_EQ(t->line[1], 4);
  double v[2];
  MT_ASSERT_OK(mbsr_csv_numeric(t, mbsr_csv_col(t, "a,b"), v));
  MT_ASSERT_NEAR(v[1], -300, 0);
  CU_ASSERT(mbsr_csv_col(t, "nope") < 0);
  CU_ASSERT(strstr(mbsr_last_error(), "no column 'nope'") != NULL);
  mbsr_csv_free(t);

  p = write_tmp("bad.csv", "a,b\n1,2\n3,x4\n");
  MT_ASSERT_OK(mbsr_csv_read(p, &t));
  MT_ASSERT_INT_EQ(mbsr_csv_numeric(t, 1, v), MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "bad.csv:3: column 'b': 'x4' is not a number") != NULL);
  fprintf(stderr, "  message: %s\n", mbsr_last_error());
  mbsr_csv_free(t);
  t = NULL;
  MT_ASSERT_INT_EQ(mbsr_csv_read(write_tmp("rag.csv", "a,b\n1,2\n3\n"), &t), MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "rag.csv:3: 1 fields, but the header has 2") != NULL);
  MT_ASSERT_INT_EQ(mbsr_csv_read(write_tmp("empty.csv", ""), &t), MBSR_EFORMAT);
  MT_ASSERT_INT_EQ(mbsr_csv_read(write_tmp("quote.csv", "a,b\n\"1,2\n"), &t), MBSR_EFORMAT);
  MT_ASSERT_INT_EQ(mbsr_csv_read("/nonexistent/x.csv", &t), MBSR_EIO);
  CU_ASSERT(t == NULL);
}

static void test_cli(void) {
  char fx[4096], out[4096];
  mbsr_test_fixture("stats/sleep.csv", fx, sizeof fx);
  snprintf(out, sizeof out, "%s/tt.json", mbsr_test_tmpdir());
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s stats ttest %s --a extra1 --b extra2 --out %s", mbsr_test_bin(), fx, out), 0);
  FILE *f = fopen(out, "r");
  CU_ASSERT_FATAL(f != NULL);
  char buf[4096] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  const char *tp = strstr(buf, "\"t\": ");
  CU_ASSERT_FATAL(tp != NULL);
  MT_ASSERT_REL(strtod(tp + 5, NULL), -4.062127683382, 1e-11, 0);
  const char *pp = strstr(buf, "\"p\": ");
  CU_ASSERT_FATAL(pp != NULL);
  MT_ASSERT_REL(strtod(pp + 5, NULL), 2.832890197384e-3, 1e-11, 0);
  mbsr_test_fixture("stats/plantgrowth.csv", fx, sizeof fx);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s stats welch %s --value weight --group group > %s/w.json", mbsr_test_bin(), fx,
                                mbsr_test_tmpdir()), 0);
  mbsr_test_fixture("stats/rand_corr.csv", fx, sizeof fx);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s stats corr %s --x x --y y_strong", mbsr_test_bin(), fx), 0);
  /* a bad number: non-zero exit, the message names file, line and column */
  const char *bad = write_tmp("cli_bad.csv", "a,b\n1,2\n3,oops\n4,5\n");
  char msg[4096];
  snprintf(msg, sizeof msg, "%s/err.txt", mbsr_test_tmpdir());
  CU_ASSERT(mbsr_test_sh("%s stats ttest %s --a a --b b 2> %s", mbsr_test_bin(), bad, msg) != 0);
  f = fopen(msg, "r");
  CU_ASSERT_FATAL(f != NULL);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  CU_ASSERT(strstr(buf, "cli_bad.csv:3: column 'b': 'oops' is not a number") != NULL);
  CU_ASSERT(mbsr_test_sh("%s stats ttest %s --a a", mbsr_test_bin(), bad) == 2); /* usage error */
  CU_ASSERT(mbsr_test_sh("%s stats anova %s --a a --b b", mbsr_test_bin(), bad) == 2);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"r_fixtures", test_r_fixtures}, {"doc_values", test_doc_values},
                                         {"errors", test_errors},         {"csv", test_csv},
                                         {"cli", test_cli},               {NULL, NULL}};
  return mbsr_test_main("stats", cases);
}
