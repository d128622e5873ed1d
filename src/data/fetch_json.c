/* A small JSON tree parser (RFC 8259) for the Allen RMA answers: objects, arrays, strings with
 * escapes (\uXXXX incl. surrogate pairs -> UTF-8), numbers kept as text so 64-bit ids stay exact.
 * Depth is bounded; any syntax error is reported with its byte offset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/fetch.h"

struct mbsr_json {
  mbsr_json_type kind;
  int b;
  char *s;             /* string value, or number text */
  char **keys;         /* object keys */
  struct mbsr_json **items;
  size_t n, cap;
};

typedef struct {
  const char *p, *end, *start;
  int depth;
} parser;

static int fail(parser *ps, const char *what) {
  return mbsr_error(MBSR_EFORMAT, "JSON: %s at byte %ld", what, (long)(ps->p - ps->start));
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

void mbsr_json_free(mbsr_json *j) {
  if (!j) return;
  for (size_t i = 0; i < j->n; i++) {
    mbsr_json_free(j->items[i]);
    if (j->keys) free(j->keys[i]);
  }
  free(j->items);
  free(j->keys);
  free(j->s);
  free(j);
}

static int push(mbsr_json *j, char *key, mbsr_json *v) {
  if (j->n == j->cap) {
    size_t nc = j->cap ? 2 * j->cap : 8;
    mbsr_json **ni = realloc(j->items, nc * sizeof *ni);
    if (!ni) return MBSR_ENOMEM;
    j->items = ni;
    if (j->kind == MBSR_JSON_OBJECT) {
      char **nk = realloc(j->keys, nc * sizeof *nk);
      if (!nk) return MBSR_ENOMEM;
      j->keys = nk;
    }
    j->cap = nc;
  }
  j->items[j->n] = v;
  if (j->kind == MBSR_JSON_OBJECT) j->keys[j->n] = key;
  j->n++;
  return 0;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static int put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* ps->p at the opening quote. */
static int parse_string(parser *ps, char **out) {
  ps->p++;
  const char *q = ps->p;
  size_t cap = 0;
  while (q < ps->end && *q != '"') { if (*q == '\\') q++; q++; cap++; }
  if (q >= ps->end) return fail(ps, "unterminated string");
  char *s = malloc(4 * cap + 1), *o = s;
  if (!s) return MBSR_ENOMEM;
  while (*ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p;
    if (c < 0x20) { free(s); return fail(ps, "control character in string"); }
    if (c != '\\') { *o++ = (char)c; ps->p++; continue; }
    ps->p++;
    char e = *ps->p++;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (ps->end - ps->p < 4 || hex4(ps->p, &cp)) { free(s); return fail(ps, "bad \\u escape"); }
        ps->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' &&
            !hex4(ps->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          ps->p += 6;
        }
        o += put_utf8(o, cp);
        break;
      }
      default: free(s); return fail(ps, "bad escape");
    }
  }
  ps->p++;
  *o = 0;
  *out = s;
  return 0;
}

static int parse_value(parser *ps, mbsr_json **out);

static int parse_container(parser *ps, mbsr_json *j, char close) {
  if (++ps->depth > 64) return fail(ps, "nesting deeper than 64");
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return 0; }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (j->kind == MBSR_JSON_OBJECT) {
      if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a key");
      int rc = parse_string(ps, &key);
      if (rc) return rc;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { free(key); return fail(ps, "expected ':'"); }
      ps->p++;
    }
    mbsr_json *v = NULL;
    int rc = parse_value(ps, &v);
    if (rc == 0) rc = push(j, key, v);
    if (rc) { free(key); mbsr_json_free(v); return rc; }
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end");
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p == close) { ps->p++; ps->depth--; return 0; }
    return fail(ps, "expected ',' or a closing bracket");
  }
}

static int parse_value(parser *ps, mbsr_json **out) {
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, "unexpected end");
  mbsr_json *j = calloc(1, sizeof *j);
  if (!j) return MBSR_ENOMEM;
  int rc = 0;
  char c = *ps->p;
  if (c == '{' || c == '[') {
    j->kind = c == '{' ? MBSR_JSON_OBJECT : MBSR_JSON_ARRAY;
    rc = parse_container(ps, j, c == '{' ? '}' : ']');
  } else if (c == '"') {
    j->kind = MBSR_JSON_STRING;
    rc = parse_string(ps, &j->s);
  } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "true", 4)) {
    j->kind = MBSR_JSON_BOOL; j->b = 1; ps->p += 4;
  } else if (ps->end - ps->p >= 5 && !memcmp(ps->p, "false", 5)) {
    j->kind = MBSR_JSON_BOOL; ps->p += 5;
  } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) {
    j->kind = MBSR_JSON_NULL; ps->p += 4;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    const char *q = ps->p;
    if (*q == '-') q++;
    if (q >= ps->end || *q < '0' || *q > '9') { rc = fail(ps, "bad number"); goto done; }
    while (q < ps->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')) q++;
    j->kind = MBSR_JSON_NUMBER;
    j->s = strndup(ps->p, (size_t)(q - ps->p));
    if (!j->s) rc = MBSR_ENOMEM;
    ps->p = q;
  } else {
    rc = fail(ps, "unexpected character");
  }
done:
  if (rc) { mbsr_json_free(j); return rc; }
  *out = j;
  return 0;
}

int mbsr_json_parse(const char *text, size_t len, mbsr_json **out) {
  *out = NULL;
  parser ps = {text, text + len, text, 0};
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) ps.p += 3; /* BOM */
  mbsr_json *j = NULL;
  int rc = parse_value(&ps, &j);
  if (rc) return rc;
  skip_ws(&ps);
  if (ps.p != ps.end && *ps.p != 0) { mbsr_json_free(j); return fail(&ps, "trailing characters"); }
  *out = j;
  return 0;
}

mbsr_json_type mbsr_json_kind(const mbsr_json *j) { return j ? j->kind : MBSR_JSON_NULL; }

const mbsr_json *mbsr_json_get(const mbsr_json *o, const char *key) {
  if (!o || o->kind != MBSR_JSON_OBJECT) return NULL;
  for (size_t i = 0; i < o->n; i++)
    if (!strcmp(o->keys[i], key)) return o->items[i];
  return NULL;
}

size_t mbsr_json_len(const mbsr_json *a) {
  return (a && (a->kind == MBSR_JSON_ARRAY || a->kind == MBSR_JSON_OBJECT)) ? a->n : 0;
}

const mbsr_json *mbsr_json_at(const mbsr_json *a, size_t i) { return i < mbsr_json_len(a) ? a->items[i] : NULL; }

const char *mbsr_json_str(const mbsr_json *j) { return j && j->kind == MBSR_JSON_STRING ? j->s : NULL; }

int mbsr_json_bool(const mbsr_json *j, int dflt) {
  if (!j) return dflt;
  if (j->kind == MBSR_JSON_BOOL) return j->b;
  if (j->kind == MBSR_JSON_STRING) {
    if (!strcmp(j->s, "true")) return 1;
    if (!strcmp(j->s, "false")) return 0;
  }
  return dflt;
}

int mbsr_json_int64(const mbsr_json *j, int64_t *out) {
  if (!j || (j->kind != MBSR_JSON_NUMBER && j->kind != MBSR_JSON_STRING) || !j->s[0])
    return mbsr_error(MBSR_EINVAL, "JSON: expected an integer");
  char *end;
  errno = 0;
  long long v = strtoll(j->s, &end, 10);
  if (errno || *end != 0) {
    /* "1.0e3"-style integral numbers */
    char *e2;
    double d = strtod(j->s, &e2);
    if (*e2 != 0 || d != (double)(long long)d) return mbsr_error(MBSR_EINVAL, "JSON: '%s' is not an integer", j->s);
    v = (long long)d;
  }
  *out = v;
  return 0;
}
