/* mbsr stats: paired t-test, Welch's one-way ANOVA (R oneway.test(var.equal=FALSE)),
 * Pearson correlation with its t-based p-value, mean and sd. Distributions from GSL. */
#ifndef MBSR_STATS_H
#define MBSR_STATS_H

typedef struct {
  int n;
  double mean_diff, sd_diff, t, df, p; /* two-sided p */
  /* Two-sided confidence interval of the mean difference at conf_level, as R
   * t.test(a, b, paired = TRUE, conf.level = conf_level)$conf.int computes it:
   * (t_R - q) * se .. (t_R + q) * se with se = sqrt(var(d)/n), t_R = mean(d)/se,
   * q = qt(1 - (1 - conf_level)/2, n - 1) (gsl_cdf_tdist_Pinv). */
  double ci_lo, ci_hi, conf_level;
} mbsr_ttest;
/* d = a - b; needs n >= 2 and sd(d) > 0 (else MBSR_EINVAL with a message). The interval is at 95 %. */
int mbsr_ttest_paired(const double *a, const double *b, int n, mbsr_ttest *out);
/* The same with the interval at conf_level in [0, 1] (as R: 0 gives lo = hi, 1 gives -Inf, +Inf). */
int mbsr_ttest_paired_level(const double *a, const double *b, int n, double conf_level, mbsr_ttest *out);

/* One-sample t interval of the mean of x[n] (R t.test(x, conf.level = conf_level)$conf.int), same
 * arithmetic as above; n >= 2, conf_level in [0, 1], finite x. As in R, data that are essentially
 * constant (se < 10 DBL_EPSILON |mean|, or se = 0) are MBSR_EINVAL. On error *mean, *lo, *hi are
 * NaN. Any output pointer may be NULL. (For n = 1, mbsr_mean_sd gives the mean and sd = NaN.) */
int mbsr_mean_ci(const double *x, int n, double conf_level, double *mean, double *lo, double *hi);

/* Holm's step-down adjustment of p[n] into adj[n], as R p.adjust(p, "holm"): with the m non-NaN
 * values sorted ascending, adj_(i) = min(1, max_{j <= i} (m + 1 - j) p_(j)); ties get equal values.
 * NaN entries are handled as R handles NA: left out (m counts only the non-NaN values, R's default
 * n = length(p) after NA removal) and NaN in adj at the same place. With m <= 1, adj = p (as R).
 * adj may be p (in place). n = 0 is fine. A non-NaN value outside [0, 1] is MBSR_EINVAL (R would
 * accept it silently). */
int mbsr_p_adjust_holm(const double *p, int n, double *adj);

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

/* ---- a test on two columns of a CSV file: what `mbsr stats` runs (src/stats/csv_test.c) ---- */
typedef enum { MBSR_CSV_TTEST = 0, MBSR_CSV_WELCH = 1, MBSR_CSV_CORR = 2 } mbsr_csv_test_kind;
/* "ttest", "welch", "corr" -> *kind; MBSR_EINVAL naming the test otherwise. */
int mbsr_csv_test_parse(const char *name, mbsr_csv_test_kind *kind);
const char *mbsr_csv_test_name(mbsr_csv_test_kind kind);
typedef struct {
  char *label;
  int n;
  double mean, sd;
} mbsr_csv_group;
typedef struct {
  mbsr_csv_test_kind kind;
  mbsr_ttest ttest;                   /* ttest: paired t-test of a - b (95 % interval) */
  double mean_a, sd_a, mean_b, sd_b;  /* ttest: the two columns */
  mbsr_welch welch;                   /* welch: value by group */
  mbsr_csv_group *groups;             /* welch: welch.k groups, in order of first appearance */
  mbsr_corr corr;                     /* corr: Pearson correlation of x and y */
} mbsr_csv_test_result;
/* Read the CSV file at path and run the test on columns col_a and col_b (ttest: a and b; welch:
 * value and group; corr: x and y). Errors name the file (and line and column where they apply).
 * On success free *r with mbsr_csv_test_result_free (on error nothing is left to free). */
int mbsr_csv_test(const char *path, mbsr_csv_test_kind kind, const char *col_a, const char *col_b, mbsr_csv_test_result *r);
void mbsr_csv_test_result_free(mbsr_csv_test_result *r);

#endif
