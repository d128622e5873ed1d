/* The JSON reader of fetch (the Allen RMA answers): a thin layer over Jansson, the one JSON library
 * of mbsr. mbsr_json is Jansson's json_t; integers are Jansson's 64-bit json_int_t, so ids stay
 * exact. A leading UTF-8 byte-order mark is skipped and the text ends at a NUL byte; nesting is
 * bounded (MAX_DEPTH) after the parse; any syntax error names its byte offset. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/fetch.h"

#define MAX_DEPTH 64

static json_t *J(const mbsr_json *j) { return (json_t *)j; }

static int depth_of(const json_t *j, int limit) {
  int d = 0;
  if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j) && d <= limit; i++) {
      int k = depth_of(json_array_get(j, i), limit - 1);
      d = k > d ? k : d;
    }
    return d + 1;
  }
  if (json_is_object(j)) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
      int k = depth_of(v, limit - 1);
      d = k > d ? k : d;
      if (d > limit) break;
    }
    return d + 1;
  }
  return 0;
}

int mbsr_json_parse(const char *text, size_t len, mbsr_json **out) {
  *out = NULL;
  size_t skip = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0; /* BOM */
  size_t n = strnlen(text + skip, len - skip);
  json_error_t err;
  json_t *j = json_loadb(text + skip, n, JSON_DECODE_ANY, &err);
  if (!j) return mbsr_error(MBSR_EFORMAT, "JSON: %s at byte %ld", err.text, (long)(err.position + (int)skip));
  if (depth_of(j, MAX_DEPTH) > MAX_DEPTH) {
    json_decref(j);
    return mbsr_error(MBSR_EFORMAT, "JSON: nested deeper than %d levels", MAX_DEPTH);
  }
  *out = (mbsr_json *)j;
  return 0;
}

void mbsr_json_free(mbsr_json *j) { json_decref(J(j)); }

mbsr_json_type mbsr_json_kind(const mbsr_json *j) {
  switch (j ? json_typeof(J(j)) : JSON_NULL) {
    case JSON_OBJECT: return MBSR_JSON_OBJECT;
    case JSON_ARRAY: return MBSR_JSON_ARRAY;
    case JSON_STRING: return MBSR_JSON_STRING;
    case JSON_INTEGER:
    case JSON_REAL: return MBSR_JSON_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE: return MBSR_JSON_BOOL;
    default: return MBSR_JSON_NULL;
  }
}

const mbsr_json *mbsr_json_get(const mbsr_json *o, const char *key) {
  return json_is_object(J(o)) ? (const mbsr_json *)json_object_get(J(o), key) : NULL;
}

size_t mbsr_json_len(const mbsr_json *a) {
  return json_is_array(J(a)) ? json_array_size(J(a)) : json_is_object(J(a)) ? json_object_size(J(a)) : 0;
}

const mbsr_json *mbsr_json_at(const mbsr_json *a, size_t i) {
  if (json_is_array(J(a))) return (const mbsr_json *)json_array_get(J(a), i);
  if (!json_is_object(J(a))) return NULL;
  const char *key;
  json_t *v;
  size_t k = 0;
  json_object_foreach(J(a), key, v) if (k++ == i) return (const mbsr_json *)v; /* the values in the text's order */
  return NULL;
}

const char *mbsr_json_str(const mbsr_json *j) { return json_string_value(J(j)); }

int mbsr_json_bool(const mbsr_json *j, int dflt) {
  if (json_is_boolean(J(j))) return json_is_true(J(j));
  const char *s = json_string_value(J(j));
  if (s && !strcmp(s, "true")) return 1;
  if (s && !strcmp(s, "false")) return 0;
  return dflt;
}

/* "123", "1.0e3"-style integral text. */
static int int_from_text(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end) {
    char *e2;
    double d = strtod(s, &e2);
    if (*e2 || d != (double)(long long)d) return mbsr_error(MBSR_EINVAL, "JSON: '%s' is not an integer", s);
    v = (long long)d;
  }
  *out = v;
  return 0;
}

int mbsr_json_int64(const mbsr_json *j, int64_t *out) {
  if (json_is_integer(J(j))) return *out = (int64_t)json_integer_value(J(j)), 0;
  if (json_is_real(J(j))) {
    double d = json_real_value(J(j));
    if (d != (double)(long long)d) return mbsr_error(MBSR_EINVAL, "JSON: %g is not an integer", d);
    return *out = (long long)d, 0;
  }
  const char *s = json_string_value(J(j));
  if (!s || !s[0]) return mbsr_error(MBSR_EINVAL, "JSON: expected an integer");
  return int_from_text(s, out);
}
