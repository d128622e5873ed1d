/* Paired t-test with its confidence interval, one-sample t interval, Holm adjustment, Welch's one-way ANOVA
 * and Pearson correlation.
 * Formulas: ../shared/docs/metrics-and-stats.md (R t.test(paired=TRUE), oneway.test(var.equal=FALSE),
 * cor.test(method="pearson"), t.test(x)$conf.int, p.adjust(p, "holm")). Tail probabilities and quantiles
 * from GSL (non-integer df accepted).
 * Means and sums of squares are two-pass (mean first, then centred sums) for accuracy. */
#include <float.h>
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

/* Mean and variance (n - 1), NaN where undefined (the variance needs n >= 2). */
static void mean_var(const double *x, int n, double *mean, double *var) {
  double m = NAN, v = NAN;
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
      v = (double)(ss / (n - 1));
    }
  }
  *mean = m;
  *var = v;
}

void mbsr_mean_sd(const double *x, int n, double *mean, double *sd) {
  double m, v;
  mean_var(x, n, &m, &v);
  if (mean) *mean = m;
  if (sd) *sd = sqrt(v);
}

/* Two-sided p-value of a t statistic: 2 Q_t(|t|; df) = I_{df/(df+t^2)}(df/2, 1/2) (regularised incomplete
 * beta, GSL). Same value as 2*gsl_cdf_tdist_Q(|t|, df), but that loses ~1e-7 relative accuracy in the far
 * tail (p ~ 1e-18 at t = 15.4, df = 38), while this form matches R's pt() to ~1e-15 there. */
static double t_two_sided(double t, double df) {
  if (isinf(t)) return 0.0;
  if (fabs(t) < 1.0) return 2.0 * gsl_cdf_tdist_Q(fabs(t), df); /* x near 1: the Q form is the accurate one */
  return gsl_sf_beta_inc(0.5 * df, 0.5, df / (df + t * t));
}

static int check_level(double conf_level, const char *what) {
  if (!(conf_level >= 0 && conf_level <= 1))
    return mbsr_error(MBSR_EINVAL, "%s: confidence level %g is not in [0, 1]", what, conf_level);
  return MBSR_OK;
}

/* R t.test's one-sample interval, in R's order of operations (stats:::t.test.default):
 * stderr <- sqrt(vx/nx); tstat <- mx/stderr; cint <- qt(1 - alpha/2, df); (tstat + c(-cint, cint)) * stderr.
 * The quantile takes the same argument 1 - alpha/2 as R's qt (both agree to ~1e-15 for levels <= 0.99;
 * at 0.999999 the rounding of that argument alone moves the quantile by ~1e-11 in either). */
static void t_interval(double mean, double var, int n, double conf_level, double *lo, double *hi) {
  double se = sqrt(var / n), t = mean / se;
  double q = gsl_cdf_tdist_Pinv(1 - (1 - conf_level) / 2, n - 1);
  *lo = (t - q) * se;
  *hi = (t + q) * se;
}

int mbsr_ttest_paired_level(const double *a, const double *b, int n, double conf_level, mbsr_ttest *out) {
  GSL_QUIET();
  if (!a || !b || !out) return mbsr_error(MBSR_EINVAL, "ttest: NULL argument");
  memset(out, 0, sizeof *out);
  if (n < 2) return mbsr_error(MBSR_EINVAL, "ttest: need at least 2 pairs (got %d)", n);
  int rc;
  if ((rc = check_finite(a, n, "ttest: column a")) || (rc = check_finite(b, n, "ttest: column b"))) return rc;
  if ((rc = check_level(conf_level, "ttest"))) return rc;
  double *d = malloc(sizeof(double) * (size_t)n);
  if (!d) return mbsr_error(MBSR_ENOMEM, "ttest: out of memory");
  for (int i = 0; i < n; i++) d[i] = a[i] - b[i];
  double m, v;
  mean_var(d, n, &m, &v);
  free(d);
  double s = sqrt(v);
  if (!(s > 0)) return mbsr_error(MBSR_EINVAL, "ttest: the %d differences have zero variance (all equal to %g)", n, m);
  out->n = n;
  out->mean_diff = m;
  out->sd_diff = s;
  out->t = m / (s / sqrt((double)n));
  out->df = n - 1;
  out->p = t_two_sided(out->t, out->df);
  out->conf_level = conf_level;
  t_interval(m, v, n, conf_level, &out->ci_lo, &out->ci_hi);
  return MBSR_OK;
}

int mbsr_ttest_paired(const double *a, const double *b, int n, mbsr_ttest *out) {
  return mbsr_ttest_paired_level(a, b, n, 0.95, out);
}

int mbsr_mean_ci(const double *x, int n, double conf_level, double *mean, double *lo, double *hi) {
  GSL_QUIET();
  double m = NAN, v = NAN, l = NAN, h = NAN;
  int rc = MBSR_OK;
  if (!x) rc = mbsr_error(MBSR_EINVAL, "mean_ci: NULL argument");
  else if (n < 2) rc = mbsr_error(MBSR_EINVAL, "mean_ci: need at least 2 values (got %d)", n);
  else if (!(rc = check_finite(x, n, "mean_ci: values")) && !(rc = check_level(conf_level, "mean_ci"))) {
    mean_var(x, n, &m, &v);
    double se = sqrt(v / n);
    if (!(se > 0) || se < 10 * DBL_EPSILON * fabs(m)) /* R: "data are essentially constant" */
      rc = mbsr_error(MBSR_EINVAL, "mean_ci: the %d values are essentially constant (mean %g, sd %g)", n, m, sqrt(v));
    else
      t_interval(m, v, n, conf_level, &l, &h);
  }
  if (rc) m = NAN;
  if (mean) *mean = m;
  if (lo) *lo = l;
  if (hi) *hi = h;
  return rc;
}

/* R p.adjust(p, "holm"): o <- order(p); pmin(1, cummax((n + 1 - i) * p[o]))[order(o)], NA left out. */
typedef struct {
  double p;
  int i;
} p_index;

static int cmp_p_index(const void *x, const void *y) {
  const p_index *a = x, *b = y;
  if (a->p != b->p) return a->p < b->p ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i); /* stable, as R's order (ties get equal values anyway) */
}

int mbsr_p_adjust_holm(const double *p, int n, double *adj) {
  if (n < 0) return mbsr_error(MBSR_EINVAL, "holm: negative count %d", n);
  if (n > 0 && (!p || !adj)) return mbsr_error(MBSR_EINVAL, "holm: NULL argument");
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (isnan(p[i])) continue;
    if (!(p[i] >= 0 && p[i] <= 1)) return mbsr_error(MBSR_EINVAL, "holm: p value %d is %g (not in [0, 1])", i + 1, p[i]);
    m++;
  }
  if (adj != p) memmove(adj, p, sizeof(double) * (size_t)n); /* NaN stay NaN; m <= 1: unchanged */
  if (m <= 1) return MBSR_OK;
  p_index *o = malloc(sizeof *o * (size_t)m);
  if (!o) return mbsr_error(MBSR_ENOMEM, "holm: out of memory");
  for (int i = 0, k = 0; i < n; i++)
    if (!isnan(p[i])) o[k++] = (p_index){p[i], i};
  qsort(o, (size_t)m, sizeof *o, cmp_p_index);
  double run = 0;
  for (int k = 0; k < m; k++) {
    double v = (double)(m - k) * o[k].p;
    if (v > run) run = v;
    adj[o[k].i] = run < 1 ? run : 1;
  }
  free(o);
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
