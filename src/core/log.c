/* Rank-aware logging: info on rank 0 only, warnings and errors on every rank with its number.
 * Every log line goes to stderr: stdout carries only a command's machine output (JSON, tables). */
#include <stdarg.h>

#include "mbsr/core.h"

static int g_rank = 0, g_nranks = 1, g_quiet = 0;

void mbsr_log_set_rank(int rank, int nranks) { g_rank = rank; g_nranks = nranks; }
int mbsr_log_rank(void) { return g_rank; }
void mbsr_log_set_quiet(int quiet) { g_quiet = quiet; }

void mbsr_info(const char *fmt, ...) {
  if (g_rank != 0 || g_quiet) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

static void vprint_err(const char *kind, const char *fmt, va_list ap) {
  char buf[8400]; /* the library keeps messages of up to 8 KiB (long paths) */
  vsnprintf(buf, sizeof buf, fmt, ap);
  if (g_nranks > 1)
    fprintf(stderr, "[rank %d] mbsr: %s%s\n", g_rank, kind, buf);
  else
    fprintf(stderr, "mbsr: %s%s\n", kind, buf);
  fflush(stderr);
}

void mbsr_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprint_err("warning: ", fmt, ap);
  va_end(ap);
}

void mbsr_errmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprint_err("", fmt, ap);
  va_end(ap);
}
