/* stats: paired t-test (with its confidence interval), one-sample t interval, Holm adjustment, Welch ANOVA,
 * Pearson correlation against R (tests/fixtures/gen_stats.R),
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

/* Interval bounds: relative to max(|bound|, half-width), since a bound near 0 is the difference of
 * two numbers of the size of the half-width. Returns the error so measured. */
static double ci_err(double got, double want, double half) {
  double scale = fmax(fabs(want), half);
  MT_ASSERT_REL(got, want, 1e-12, half);
  return fabs(got - want) / scale;
}

static void test_r_fixtures(void) {
  mbsr_csv *ex = load("stats/expected.csv");
  CU_ASSERT_FATAL(ex->nrows >= 23);
  double maxrel = 0, maxci = 0;
  int nci = 0;
  for (int i = 0; i < ex->nrows; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "stats/%s", cell(ex, i, "file"));
    mbsr_csv *t = load(rel);
    const char *kind = cell(ex, i, "kind"), *c1 = cell(ex, i, "col1"), *c2 = cell(ex, i, "col2");
    double stat = 0, df1 = 0, df2 = NAN, p = 0, e1 = NAN, e2 = NAN, lo = NAN, hi = NAN;
    double conf = cell_num(ex, i, "conf");
    double *a = column(t, c1);
    if (!strcmp(kind, "ttest")) {
      double *b = column(t, c2);
      mbsr_ttest r;
      if (conf == 0.95) MT_ASSERT_OK(mbsr_ttest_paired(a, b, t->nrows, &r)); /* the default level */
      else MT_ASSERT_OK(mbsr_ttest_paired_level(a, b, t->nrows, conf, &r));
      CU_ASSERT(r.conf_level == conf);
      stat = r.t, df1 = r.df, p = r.p, e1 = r.mean_diff, e2 = r.sd_diff, lo = r.ci_lo, hi = r.ci_hi;
      free(b);
    } else if (!strcmp(kind, "meanci")) {
      MT_ASSERT_OK(mbsr_mean_ci(a, t->nrows, conf, &e1, &lo, &hi));
      /* only the mean and the interval: R's t and p of the one-sample test are not part of this API */
    } else if (!strcmp(kind, "welch")) {
      int *g = malloc(sizeof(int) * t->nrows), k = 0;
      MT_ASSERT_OK(mbsr_csv_groups(t, mbsr_csv_col(t, c2), g, &k, NULL));
      mbsr_welch r;
      MT_ASSERT_OK(mbsr_welch_anova(a, g, t->nrows, &r));
      MT_ASSERT_INT_EQ(r.k, k);
      stat = r.F, df1 = r.df1, df2 = r.df2, p = r.p, e1 = r.k;
      free(g);
    } else {
      CU_ASSERT_FATAL(!strcmp(kind, "corr"));
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
      if (isnan(want[j]) || (!strcmp(kind, "meanci") && j != 4)) continue;
      MT_ASSERT_REL(got[j], want[j], 1e-9, 1e-300);
      double rel_err = fabs(got[j] - want[j]) / fabs(want[j]);
      if (rel_err > maxrel) maxrel = rel_err;
    }
    if (!isnan(e2)) MT_ASSERT_REL(e2, cell_num(ex, i, "extra2"), 1e-9, 1e-300);
    double wlo = cell_num(ex, i, "ci_lo"), whi = cell_num(ex, i, "ci_hi");
    CU_ASSERT(isnan(wlo) == isnan(lo) && isnan(whi) == isnan(hi));
    if (!isnan(wlo)) {
      double half = 0.5 * (whi - wlo);
      maxci = fmax(maxci, fmax(ci_err(lo, wlo, half), ci_err(hi, whi, half)));
      nci++;
    }
    free(a);
    mbsr_csv_free(t);
  }
  CU_ASSERT(nci >= 14);
  fprintf(stderr, "  stats vs R: %d results, max relative error %.3g; %d confidence intervals, max relative error %.3g\n",
          ex->nrows, maxrel, nci, maxci);
  mbsr_csv_free(ex);
}

/* holm.csv: one row per p value of each case, in order; NA where R had NA. */
static void test_holm_fixtures(void) {
  mbsr_csv *h = load("stats/holm.csv");
  CU_ASSERT_FATAL(h->nrows >= 60);
  double *p = malloc(sizeof(double) * h->nrows), *adj = malloc(sizeof(double) * h->nrows);
  double *inplace = malloc(sizeof(double) * h->nrows), maxrel = 0;
  int ncases = 0;
  for (int r0 = 0, r1; r0 < h->nrows; r0 = r1) {
    const char *name = cell(h, r0, "case");
    for (r1 = r0; r1 < h->nrows && !strcmp(cell(h, r1, "case"), name); r1++) {
      p[r1 - r0] = cell_num(h, r1, "p");
      MT_ASSERT_INT_EQ(cell_num(h, r1, "i"), r1 - r0 + 1);
    }
    int n = r1 - r0;
    MT_ASSERT_OK(mbsr_p_adjust_holm(p, n, adj));
    memcpy(inplace, p, sizeof(double) * n);
    MT_ASSERT_OK(mbsr_p_adjust_holm(inplace, n, inplace));
    for (int i = 0; i < n; i++) {
      double want = cell_num(h, r0 + i, "adj");
      CU_ASSERT(isnan(adj[i]) == isnan(want));
      CU_ASSERT(memcmp(&adj[i], &inplace[i], sizeof(double)) == 0 || (isnan(adj[i]) && isnan(inplace[i])));
      if (isnan(want)) continue;
      MT_ASSERT_REL(adj[i], want, 1e-12, 1e-300);
      if (fabs(adj[i] - want) > 1e-12 * fabs(want)) fprintf(stderr, "  holm case %s, p %d\n", name, i + 1);
      if (want > 0) maxrel = fmax(maxrel, fabs(adj[i] - want) / want);
    }
    ncases++;
  }
  CU_ASSERT(ncases >= 12);
  fprintf(stderr, "  holm vs R: %d p values in %d cases, max relative error %.3g\n", h->nrows, ncases, maxrel);
  free(p);
  free(adj);
  free(inplace);
  mbsr_csv_free(h);
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
  /* R's example(t.test) prints the interval as -2.4598858 -0.7001142 */
  MT_ASSERT_NEAR(t.ci_lo, -2.4598858, 5e-8);
  MT_ASSERT_NEAR(t.ci_hi, -0.7001142, 5e-8);
  MT_ASSERT_NEAR(t.conf_level, 0.95, 0);

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

/* Confidence levels, mean_ci and Holm: bad input, the limits R allows, and agreement of the paths. */
static void test_ci_holm_edges(void) {
  static const double a[4] = {1.0, 2.5, 2.0, 4.0}, b[4] = {0.5, 2.0, 2.2, 3.1};
  mbsr_ttest t, t95;
  double m, lo, hi;
  MT_ASSERT_INT_EQ(mbsr_ttest_paired_level(a, b, 4, 1.2, &t), MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "confidence level 1.2 is not in [0, 1]") != NULL);
  MT_ASSERT_INT_EQ(mbsr_ttest_paired_level(a, b, 4, -0.1, &t), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_ttest_paired_level(a, b, 4, NAN, &t), MBSR_EINVAL);
  /* the default level is 0.95 exactly, same numbers */
  MT_ASSERT_OK(mbsr_ttest_paired(a, b, 4, &t95));
  MT_ASSERT_OK(mbsr_ttest_paired_level(a, b, 4, 0.95, &t));
  CU_ASSERT(memcmp(&t, &t95, sizeof t) == 0);
  /* the paired interval is the one-sample interval of the differences; it contains the mean */
  double d[4];
  for (int i = 0; i < 4; i++) d[i] = a[i] - b[i];
  MT_ASSERT_OK(mbsr_mean_ci(d, 4, 0.95, &m, &lo, &hi));
  MT_ASSERT_NEAR(m, t95.mean_diff, 0);
  MT_ASSERT_NEAR(lo, t95.ci_lo, 0);
  MT_ASSERT_NEAR(hi, t95.ci_hi, 0);
  CU_ASSERT(lo < m && m < hi);
  /* nested levels; R's limits: level 1 gives -Inf..Inf, level 0 a point at the mean */
  mbsr_ttest t99, t0, t1;
  MT_ASSERT_OK(mbsr_ttest_paired_level(a, b, 4, 0.99, &t99));
  CU_ASSERT(t99.ci_lo < t95.ci_lo && t95.ci_hi < t99.ci_hi);
  MT_ASSERT_OK(mbsr_ttest_paired_level(a, b, 4, 1, &t1));
  CU_ASSERT(isinf(t1.ci_lo) && t1.ci_lo < 0 && isinf(t1.ci_hi) && t1.ci_hi > 0);
  MT_ASSERT_OK(mbsr_ttest_paired_level(a, b, 4, 0, &t0));
  MT_ASSERT_REL(t0.ci_lo, t0.mean_diff, 1e-15, 0);
  MT_ASSERT_REL(t0.ci_hi, t0.mean_diff, 1e-15, 0);

  /* mean_ci errors: outputs are NaN */
  static const double cst[3] = {0.3, 0.3, 0.3}, one[1] = {2}, bad[3] = {1, INFINITY, 2};
  MT_ASSERT_INT_EQ(mbsr_mean_ci(cst, 3, 0.95, &m, &lo, &hi), MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "essentially constant") != NULL);
  CU_ASSERT(isnan(m) && isnan(lo) && isnan(hi));
  MT_ASSERT_INT_EQ(mbsr_mean_ci(one, 1, 0.95, &m, &lo, &hi), MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "at least 2 values (got 1)") != NULL);
  MT_ASSERT_INT_EQ(mbsr_mean_ci(bad, 3, 0.95, &m, &lo, &hi), MBSR_ENONFINITE);
  MT_ASSERT_INT_EQ(mbsr_mean_ci(a, 4, 2, &m, &lo, &hi), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_mean_ci(NULL, 4, 0.95, &m, &lo, &hi), MBSR_EINVAL);
  MT_ASSERT_OK(mbsr_mean_ci(a, 4, 0.95, NULL, NULL, &hi)); /* outputs optional */
  CU_ASSERT(isfinite(hi));

  /* Holm: values outside [0, 1] are refused and adj is untouched; n = 0 and NULL with n = 0 are fine */
  double p[3] = {0.01, 1.5, 0.2}, adj[3] = {-7, -7, -7};
  MT_ASSERT_INT_EQ(mbsr_p_adjust_holm(p, 3, adj), MBSR_EINVAL);
  CU_ASSERT(strstr(mbsr_last_error(), "p value 2 is 1.5") != NULL);
  CU_ASSERT(adj[0] == -7 && adj[1] == -7 && adj[2] == -7);
  p[1] = -0.0001;
  MT_ASSERT_INT_EQ(mbsr_p_adjust_holm(p, 3, adj), MBSR_EINVAL);
  p[1] = INFINITY;
  MT_ASSERT_INT_EQ(mbsr_p_adjust_holm(p, 3, adj), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_p_adjust_holm(p, -1, adj), MBSR_EINVAL);
  MT_ASSERT_INT_EQ(mbsr_p_adjust_holm(NULL, 3, adj), MBSR_EINVAL);
  MT_ASSERT_OK(mbsr_p_adjust_holm(NULL, 0, NULL));
  /* adjusted >= raw, and the order of the raw values is kept */
  static const double q[6] = {0.04, 0.001, 0.5, 0.03, 0.2, 0.011};
  double qa[6];
  MT_ASSERT_OK(mbsr_p_adjust_holm(q, 6, qa));
  for (int i = 0; i < 6; i++) {
    CU_ASSERT(qa[i] >= q[i] && qa[i] <= 1);
    for (int j = 0; j < 6; j++)
      if (q[i] < q[j]) CU_ASSERT(qa[i] <= qa[j]);
  }
  MT_ASSERT_NEAR(qa[1], 6 * 0.001, 0); /* the smallest: m p */
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
  /* the 95 % interval of the mean difference, as R (row 1 of expected.csv is this test) */
  mbsr_csv *ex = load("stats/expected.csv");
  CU_ASSERT_FATAL(!strcmp(cell(ex, 0, "kind"), "ttest") && !strcmp(cell(ex, 0, "file"), "sleep.csv"));
  const char *keys[3] = {"conf_level", "ci_lo", "ci_hi"}, *cols[3] = {"conf", "ci_lo", "ci_hi"};
  for (int k = 0; k < 3; k++) {
    char key[32];
    snprintf(key, sizeof key, "\"%s\": ", keys[k]);
    const char *kp = strstr(buf, key);
    CU_ASSERT_FATAL(kp != NULL);
    MT_ASSERT_REL(strtod(kp + strlen(key), NULL), cell_num(ex, 0, cols[k]), 1e-12, 0);
  }
  mbsr_csv_free(ex);
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
                                         {"holm_fixtures", test_holm_fixtures}, {"ci_holm_edges", test_ci_holm_edges},
                                         {"cli", test_cli},               {NULL, NULL}};
  return mbsr_test_main("stats", cases);
}
