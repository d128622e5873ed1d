/* A growing text buffer (printf-append) for the text files of a sweep and a report. */
#include <stdarg.h>
#include <stdlib.h>

#include "exp_internal.h"

void mbsr__sb_add(mbsr__sbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0) {
    b->failed = 1;
    return;
  }
  if (b->n + (size_t)need + 1 > b->cap) {
    size_t cap = 2 * (b->cap + (size_t)need + 1024);
    char *ns = realloc(b->s, cap);
    if (!ns) {
      b->failed = 1;
      return;
    }
    b->s = ns, b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  b->n += (size_t)need;
}

const char *mbsr__sb_text(mbsr__sbuf *b, const char *what) {
  if (!b->failed && !b->s) mbsr__sb_add(b, "%s", "");
  if (b->failed) {
    mbsr_error(MBSR_ENOMEM, "%s: out of memory", what);
    return NULL;
  }
  return b->s;
}

void mbsr__sb_free(mbsr__sbuf *b) {
  free(b->s);
  b->s = NULL;
  b->n = b->cap = 0;
  b->failed = 0;
}
