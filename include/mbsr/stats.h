/* mbsr stats: paired t-test, Welch's one-way ANOVA (R oneway.test(var.equal=FALSE)),
 * Pearson correlation with its t-based p-value, mean and sd. Distributions from GSL. */
#ifndef MBSR_STATS_H
#define MBSR_STATS_H

typedef struct {
  int n;
  double mean_diff, sd_diff, t, df, p; /* two-sided p */
} mbsr_ttest;
/* d = a - b; needs n >= 2 and sd(d) > 0 (else MBSR_EINVAL with a message). */
int mbsr_ttest_paired(const double *a, const double *b, int n, mbsr_ttest *out);

typedef struct {
  int k, n;
  double F, df1, df2, p;
} mbsr_welch;
/* y[i] belongs to group g[i] in 0..k-1; every group needs n_i >= 2 and s_i > 0. */
int mbsr_welch_anova(const double *y, const int *g, int n, mbsr_welch *out);

typedef struct {
  int n;
  double r, t, df, p;
} mbsr_corr;
int mbsr_pearson(const double *x, const double *y, int n, mbsr_corr *out);

void mbsr_mean_sd(const double *x, int n, double *mean, double *sd); /* sd with n-1 */

/* ---- CSV tables (header row + data rows) for the stats command and the report ----
 * Separator ','; fields may be double-quoted ("a,b" and "" inside quotes); surrounding
 * whitespace is trimmed; blank lines are skipped; CRLF accepted. Every data row must have
 * as many fields as the header (error naming file and line otherwise). */
typedef struct {
  int ncols, nrows;
  char **names;   /* ncols header names */
  char **cells;   /* nrows*ncols, row-major */
  int *line;      /* file line number (1-based) of each data row */
  char *path;
} mbsr_csv;
int mbsr_csv_read(const char *path, mbsr_csv **out);
void mbsr_csv_free(mbsr_csv *t);
/* Column index of `name`, or MBSR_EINVAL with "<file>: no column 'name' (columns: ...)". */
int mbsr_csv_col(const mbsr_csv *t, const char *name);
/* Parse column `col` as numbers into out[nrows]; a bad or missing number is MBSR_EFORMAT with
 * "<file>:<line>: column '<name>': '<text>' is not a number". */
int mbsr_csv_numeric(const mbsr_csv *t, int col, double *out);
/* Map the labels of column `col` to group indices 0..k-1 in order of first appearance;
 * labels (k strings, owned by t) returned in *labels (malloc'd array, free it) when not NULL. */
int mbsr_csv_groups(const mbsr_csv *t, int col, int *g, int *k, const char ***labels);

#endif
