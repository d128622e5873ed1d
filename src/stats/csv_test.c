/* A statistical test on two columns of a CSV file (what `mbsr stats` runs): read the table, take
 * the columns, run the paired t-test, Welch's ANOVA or Pearson's correlation, and describe the
 * columns (means, sds; per group for Welch). */
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/stats.h"

static const char *const test_names[3] = {"ttest", "welch", "corr"};

int mbsr_csv_test_parse(const char *name, mbsr_csv_test_kind *kind) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, test_names[i])) {
      *kind = (mbsr_csv_test_kind)i;
      return MBSR_OK;
    }
  return mbsr_error(MBSR_EINVAL, "unknown test '%s' (ttest|welch|corr)", name);
}

const char *mbsr_csv_test_name(mbsr_csv_test_kind kind) {
  return kind >= 0 && kind < 3 ? test_names[kind] : "?";
}

void mbsr_csv_test_result_free(mbsr_csv_test_result *r) {
  if (!r || !r->groups) return;
  for (int j = 0; j < r->welch.k; j++) free(r->groups[j].label);
  free(r->groups);
  r->groups = NULL;
}

/* Welch's ANOVA of y by group g (k groups labelled `labels`), with each group's n, mean and sd. */
static int welch(const double *y, const int *g, int n, const char **labels, mbsr_csv_test_result *r) {
  int rc = mbsr_welch_anova(y, g, n, &r->welch);
  if (rc) return rc;
  double *tmp = malloc(sizeof(double) * (n + 1));
  r->groups = calloc((size_t)r->welch.k + 1, sizeof *r->groups);
  if (!tmp || !r->groups) {
    free(tmp);
    free(r->groups);
    r->groups = NULL;
    return mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  for (int j = 0; j < r->welch.k; j++) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (g[i] == j) tmp[m++] = y[i];
    mbsr_csv_group *G = &r->groups[j];
    G->n = m;
    mbsr_mean_sd(tmp, m, &G->mean, &G->sd);
    G->label = strdup(labels[j]);
    if (!G->label) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  free(tmp);
  if (rc) mbsr_csv_test_result_free(r);
  return rc;
}

int mbsr_csv_test(const char *path, mbsr_csv_test_kind kind, const char *col_a, const char *col_b, mbsr_csv_test_result *r) {
  memset(r, 0, sizeof *r);
  r->kind = kind;
  mbsr_csv *t = NULL;
  double *va = NULL, *vb = NULL;
  int *grp = NULL;
  const char **labels = NULL;
  int ia = -1, ib = -1, k = 0;
  int rc = mbsr_csv_read(path, &t);
  if (!rc && (ia = mbsr_csv_col(t, col_a)) < 0) rc = ia;
  if (!rc && (ib = mbsr_csv_col(t, col_b)) < 0) rc = ib;
  if (!rc) {
    va = malloc(sizeof(double) * (t->nrows + 1));
    vb = malloc(sizeof(double) * (t->nrows + 1));
    grp = malloc(sizeof(int) * (t->nrows + 1));
    if (!va || !vb || !grp) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  if (!rc) rc = mbsr_csv_numeric(t, ia, va);
  if (!rc) rc = kind == MBSR_CSV_WELCH ? mbsr_csv_groups(t, ib, grp, &k, &labels) : mbsr_csv_numeric(t, ib, vb);
  if (!rc) {
    const int n = t->nrows;
    if (kind == MBSR_CSV_TTEST) {
      rc = mbsr_ttest_paired(va, vb, n, &r->ttest);
      mbsr_mean_sd(va, n, &r->mean_a, &r->sd_a);
      mbsr_mean_sd(vb, n, &r->mean_b, &r->sd_b);
    } else if (kind == MBSR_CSV_WELCH) {
      rc = welch(va, grp, n, labels, r);
    } else {
      rc = mbsr_pearson(va, vb, n, &r->corr);
    }
    if (rc) mbsr_error_prefix(rc, "%s: ", path);
  }
  free(labels);
  free(va);
  free(vb);
  free(grp);
  mbsr_csv_free(t);
  return rc;
}
