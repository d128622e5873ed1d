/* Error codes (one table, see core.h) and the per-thread last error message. */
#include <stdarg.h>
#include <string.h>

#include "mbsr/core.h"

static _Thread_local char last_msg[1024];

const char *mbsr_strerror(int code) {
  switch (code) {
    case MBSR_OK: return "success";
#define X(name, val, msg) \
  case MBSR_##name: return msg;
      MBSR_ERRNO_MAP(X)
#undef X
  }
  return "unknown error";
}

int mbsr_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  return code;
}

int mbsr_error_prefix(int code, const char *fmt, ...) {
  char pre[512], old[sizeof last_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, last_msg, sizeof old);
  snprintf(last_msg, sizeof last_msg, "%s%s", pre, old[0] ? old : mbsr_strerror(code));
  return code;
}

const char *mbsr_last_error(void) { return last_msg; }
void mbsr_error_clear(void) { last_msg[0] = 0; }
