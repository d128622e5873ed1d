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

#endif
