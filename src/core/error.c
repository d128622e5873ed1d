/* Error codes (one table, see core.h) and the per-thread last error message.
 *
 * The message buffer holds 8 KiB: enough for a PATH_MAX path and its context. A longer message
 * is cut at a UTF-8 character boundary (never inside a multi-byte sequence) and ends in "...". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mbsr/core.h"

enum { MSG_CAP = 8192 };
static _Thread_local char last_msg[MSG_CAP];

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

/* Length of the longest prefix of s[0..len) that does not end inside a UTF-8 sequence. */
static size_t utf8_boundary(const char *s, size_t len) {
  size_t i = len, back = 0;
  while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, back++;
  if (i == 0) return len;
  unsigned char lead = (unsigned char)s[i - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (need == 1) return len; /* ASCII (or stray continuation bytes): nothing to protect */
  return back + 1 >= need ? len : i - 1;
}

/* vsnprintf into buf (MSG_CAP bytes); a message that does not fit is cut cleanly + "...". */
static void format_msg(char *buf, const char *fmt, va_list ap) {
  int w = vsnprintf(buf, MSG_CAP, fmt, ap);
  if (w < 0) {
    snprintf(buf, MSG_CAP, "(unformattable error message)");
  } else if ((size_t)w >= MSG_CAP) {
    size_t keep = utf8_boundary(buf, MSG_CAP - 4);
    memcpy(buf + keep, "...", 4);
  }
}

int mbsr_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  format_msg(last_msg, fmt, ap);
  va_end(ap);
  return code;
}

int mbsr_error_prefix(int code, const char *fmt, ...) {
  static _Thread_local char pre[MSG_CAP], old[MSG_CAP];
  va_list ap;
  va_start(ap, fmt);
  format_msg(pre, fmt, ap);
  va_end(ap);
  memcpy(old, last_msg, sizeof old);
  mbsr_error(code, "%s%s", pre, old[0] ? old : mbsr_strerror(code));
  return code;
}

const char *mbsr_last_error(void) { return last_msg; }
void mbsr_error_clear(void) { last_msg[0] = 0; }
