/* Paired t-test, Welch's one-way ANOVA and Pearson correlation.
 * Formulas: ../shared/docs/metrics-and-stats.md (R t.test(paired=TRUE), oneway.test(var.equal=FALSE),
 * cor.test(method="pearson")). Tail probabilities from GSL (non-integer df accepted).
 * Means and sums of squares are two-pass (mean first, then centred sums) for accuracy. */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <pthread.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/stats.h"
#include "mbsr/core.h"

/* GSL's default error handler aborts the process (e.g. on the underflow of a p-value of a
 * correlation over 10^5 voxels). Library code must not abort: the distribution functions then return
 * their limiting value (0) and the caller's checks apply. Set once, for the process. */
static pthread_once_t gsl_once = PTHREAD_ONCE_INIT;
static void gsl_quiet(void) { gsl_set_error_handler_off(); }
#define GSL_QUIET() pthread_once(&gsl_once, gsl_quiet)

static int check_finite(const double *x, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if (!isfinite(x[i])) return mbsr_error(MBSR_ENONFINITE, "%s: value %d is %g (NaN/Inf not allowed)", what, i + 1, x[i]);
  return MBSR_OK;
}

void mbsr_mean_sd(const double *x, int n, double *mean, double *sd) {
  double m = NAN, s = NAN;
  if (x && n >= 1) {
    /* as R's mean(): long-double sum, then one correction pass */
    long double acc = 0;
    for (int i = 0; i < n; i++) acc += x[i];
    acc /= n;
    if (isfinite((double)acc)) {
      long double t = 0;
      for (int i = 0; i < n; i++) t += x[i] - acc;
      acc += t / n;
    }
    m = (double)acc;
    if (n >= 2) {
      long double ss = 0;
      for (int i = 0; i < n; i++) {
        long double d = x[i] - acc;
        ss += d * d;
      }
      s = sqrt((double)(ss / (n - 1)));
    }
  }
  if (mean) *mean = m;
  if (sd) *sd = s;
}

/* Two-sided p-value of a t statistic: 2 Q_t(|t|; df) = I_{df/(df+t^2)}(df/2, 1/2) (regularised incomplete
 * beta, GSL). Same value as 2*gsl_cdf_tdist_Q(|t|, df), but that loses ~1e-7 relative accuracy in the far
 * tail (p ~ 1e-18 at t = 15.4, df = 38), while this form matches R's pt() to ~1e-15 there. */
static double t_two_sided(double t, double df) {
  if (isinf(t)) return 0.0;
  if (fabs(t) < 1.0) return 2.0 * gsl_cdf_tdist_Q(fabs(t), df); /* x near 1: the Q form is the accurate one */
  return gsl_sf_beta_inc(0.5 * df, 0.5, df / (df + t * t));
}

int mbsr_ttest_paired(const double *a, const double *b, int n, mbsr_ttest *out) {
  GSL_QUIET();
  if (!a || !b || !out) return mbsr_error(MBSR_EINVAL, "ttest: NULL argument");
  memset(out, 0, sizeof *out);
  if (n < 2) return mbsr_error(MBSR_EINVAL, "ttest: need at least 2 pairs (got %d)", n);
  int rc;
  if ((rc = check_finite(a, n, "ttest: column a")) || (rc = check_finite(b, n, "ttest: column b"))) return rc;
  double *d = malloc(sizeof(double) * (size_t)n);
  if (!d) return mbsr_error(MBSR_ENOMEM, "ttest: out of memory");
  for (int i = 0; i < n; i++) d[i] = a[i] - b[i];
  double m, s;
  mbsr_mean_sd(d, n, &m, &s);
  free(d);
  if (!(s > 0)) return mbsr_error(MBSR_EINVAL, "ttest: the %d differences have zero variance (all equal to %g)", n, m);
  out->n = n;
  out->mean_diff = m;
  out->sd_diff = s;
  out->t = m / (s / sqrt((double)n));
  out->df = n - 1;
  out->p = t_two_sided(out->t, out->df);
  return MBSR_OK;
}

int mbsr_welch_anova(const double *y, const int *g, int n, mbsr_welch *out) {
  GSL_QUIET();
  if (!y || !g || !out) return mbsr_error(MBSR_EINVAL, "welch: NULL argument");
  memset(out, 0, sizeof *out);
  if (n < 4) return mbsr_error(MBSR_EINVAL, "welch: need at least 2 groups of 2 values (got %d values)", n);
  int rc = check_finite(y, n, "welch: values");
  if (rc) return rc;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (g[i] < 0) return mbsr_error(MBSR_EINVAL, "welch: value %d has a negative group index %d", i + 1, g[i]);
    if (g[i] + 1 > k) k = g[i] + 1;
  }
  if (k < 2) return mbsr_error(MBSR_EINVAL, "welch: need at least 2 groups (got %d)", k);
  double *cnt = calloc((size_t)k * 3, sizeof(double));
  if (!cnt) return mbsr_error(MBSR_ENOMEM, "welch: out of memory");
  double *mean = cnt + k, *var = cnt + 2 * k;
  for (int i = 0; i < n; i++) {
    cnt[g[i]] += 1;
    mean[g[i]] += y[i];
  }
  for (int j = 0; j < k; j++) {
    if (cnt[j] < 2) {
      int nj = (int)cnt[j];
      free(cnt);
      return mbsr_error(MBSR_EINVAL, "welch: group %d has %d value(s); every group needs at least 2", j, nj);
    }
    mean[j] /= cnt[j];
  }
  for (int i = 0; i < n; i++) {
    double d = y[i] - mean[g[i]];
    var[g[i]] += d * d;
  }
  for (int j = 0; j < k; j++) {
    var[j] /= cnt[j] - 1;
    if (!(var[j] > 0)) {
      double mj = mean[j];
      free(cnt);
      return mbsr_error(MBSR_EINVAL, "welch: group %d has zero variance (all values %g)", j, mj);
    }
  }
  /* R oneway.test(var.equal = FALSE) */
  double W = 0, mw = 0;
  for (int j = 0; j < k; j++) {
    double w = cnt[j] / var[j];
    W += w;
    mw += w * mean[j];
  }
  mw /= W;
  double num = 0, tmp = 0;
  for (int j = 0; j < k; j++) {
    double w = cnt[j] / var[j];
    num += w * (mean[j] - mw) * (mean[j] - mw);
    tmp += (1 - w / W) * (1 - w / W) / (cnt[j] - 1);
  }
  tmp /= (double)k * k - 1;
  out->k = k;
  out->n = n;
  out->F = num / ((k - 1) * (1 + 2 * (k - 2) * tmp));
  out->df1 = k - 1;
  out->df2 = 1 / (3 * tmp);
  out->p = gsl_cdf_fdist_Q(out->F, out->df1, out->df2);
  free(cnt);
  return MBSR_OK;
}

int mbsr_pearson(const double *x, const double *y, int n, mbsr_corr *out) {
  GSL_QUIET();
  if (!x || !y || !out) return mbsr_error(MBSR_EINVAL, "corr: NULL argument");
  memset(out, 0, sizeof *out);
  if (n < 3) return mbsr_error(MBSR_EINVAL, "corr: need at least 3 pairs (got %d)", n);
  int rc;
  if ((rc = check_finite(x, n, "corr: column x")) || (rc = check_finite(y, n, "corr: column y"))) return rc;
  double mx, my;
  mbsr_mean_sd(x, n, &mx, NULL);
  mbsr_mean_sd(y, n, &my, NULL);
  double sxx = 0, syy = 0, sxy = 0;
  for (int i = 0; i < n; i++) {
    double dx = x[i] - mx, dy = y[i] - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  if (!(sxx > 0)) return mbsr_error(MBSR_EINVAL, "corr: column x has zero variance (all values %g)", mx);
  if (!(syy > 0)) return mbsr_error(MBSR_EINVAL, "corr: column y has zero variance (all values %g)", my);
  double r = sxy / sqrt(sxx * syy);
  if (r > 1) r = 1;
  if (r < -1) r = -1;
  out->n = n;
  out->r = r;
  out->df = n - 2;
  /* R cor.test: t = sqrt(df) * r / sqrt(1 - r^2) */
  out->t = (1 - r * r > 0) ? sqrt(out->df) * r / sqrt(1 - r * r) : copysign(INFINITY, r);
  out->p = t_two_sided(out->t, out->df);
  return MBSR_OK;
}
