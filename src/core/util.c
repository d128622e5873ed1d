/* Aligned allocation, checked size arithmetic, RNG (GSL), timing, progress lines. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mbsr/core.h"

void *mbsr_alloc(size_t bytes) {
  if (bytes == 0) bytes = 64;
  size_t rounded = (bytes + 63) & ~(size_t)63;
  if (rounded < bytes) return NULL;
  void *p = aligned_alloc(64, rounded);
  if (p) memset(p, 0, rounded);
  return p;
}

void mbsr_free(void *p) { free(p); }

int mbsr_mul_size(size_t *out, int n, ...) {
  va_list ap;
  va_start(ap, n);
  size_t acc = 1;
  int rc = MBSR_OK;
  for (int i = 0; i < n; i++) {
    size_t f = va_arg(ap, size_t);
    if (f != 0 && acc > SIZE_MAX / f) rc = MBSR_ERANGE;
    acc *= f;
  }
  va_end(ap);
  if (rc == MBSR_OK) *out = acc;
  return rc;
}

struct mbsr_rng {
  gsl_rng *g;
};

mbsr_rng *mbsr_rng_new(uint64_t seed) {
  mbsr_rng *r = malloc(sizeof *r);
  if (!r) return NULL;
  r->g = gsl_rng_alloc(gsl_rng_mt19937);
  if (!r->g) { free(r); return NULL; }
  gsl_rng_set(r->g, (unsigned long)(mbsr_seed_mix(seed, 0) & 0xffffffffUL));
  return r;
}

void mbsr_rng_free(mbsr_rng *r) {
  if (!r) return;
  gsl_rng_free(r->g);
  free(r);
}

double mbsr_rng_uniform(mbsr_rng *r) { return gsl_rng_uniform(r->g); }

uint64_t mbsr_rng_uint(mbsr_rng *r, uint64_t n) {
  if (n <= 1) return 0;
  if (n <= 0xffffffffUL) return gsl_rng_uniform_int(r->g, (unsigned long)n);
  return (uint64_t)(gsl_rng_uniform(r->g) * (double)n) % n;
}

double mbsr_rng_normal(mbsr_rng *r, double sigma) { return gsl_ran_gaussian_ziggurat(r->g, sigma); }

uint64_t mbsr_seed_mix(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double mbsr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mbsr_format_duration(double s, char *buf, size_t n) {
  if (!(s >= 0) || s > 1e8) { snprintf(buf, n, "--:--:--"); return; }
  long t = (long)(s + 0.5);
  snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

void mbsr_progress_init(mbsr_progress *p, const char *label, int64_t total) {
  memset(p, 0, sizeof *p);
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->t0 = mbsr_now();
  p->last_print = -1e30;
  p->min_interval = 0;
}

void mbsr_progress_update(mbsr_progress *p, int64_t done, const char *unit, const char *extra) {
  double now = mbsr_now();
  if (done < p->total && now - p->last_print < p->min_interval) return;
  p->last_print = now;
  double el = now - p->t0;
  double rate = el > 0 ? (double)done / el : 0;
  double eta = (rate > 0 && p->total > done) ? (double)(p->total - done) / rate : 0;
  char e[32], t[32];
  mbsr_format_duration(eta, e, sizeof e);
  mbsr_format_duration(el, t, sizeof t);
  mbsr_info("%s: %lld/%lld (%5.1f%%) %.3g %s/s elapsed %s ETA %s%s%s", p->label, (long long)done,
            (long long)p->total, p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate,
            unit ? unit : "items", t, e, extra ? "  " : "", extra ? extra : "");
}
