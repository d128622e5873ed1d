/* A small CSV reader for numeric tables with a header row (the stats command, the report).
 *
 * Bounded and linear (issue 9): at most CSV_MAX_BYTES of file, CSV_MAX_COLS fields per record,
 * CSV_MAX_RECORD bytes per record (a quoted field may span lines) and CSV_MAX_CELLS fields in all;
 * each excess is an error naming the file (and line) as soon as it is seen. Duplicate header
 * names and group labels are found by sorting (O(n log n)), not by comparing every pair (a
 * header of 100,000 columns took 40 s). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/stats.h"
#include "mbsr/core.h"

#define CSV_MAX_BYTES (256L << 20)
#define CSV_MAX_COLS 4096
#define CSV_MAX_RECORD (1L << 20)
#define CSV_MAX_CELLS (4L << 20)

typedef struct {
  char **v;
  size_t n, cap;
} strvec;

/* (string, index) pairs sorted by string then index: duplicates become neighbours */
typedef struct {
  const char *s;
  int i;
} stridx;

static int cmp_stridx(const void *a, const void *b) {
  const stridx *x = a, *y = b;
  int c = strcmp(x->s, y->s);
  return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int sv_push(strvec *s, char *x) {
  if (s->n == s->cap) {
    size_t nc = s->cap ? 2 * s->cap : 64;
    char **nv = realloc(s->v, nc * sizeof *nv);
    if (!nv) return MBSR_ENOMEM;
    s->v = nv;
    s->cap = nc;
  }
  s->v[s->n++] = x;
  return 0;
}

static char *trim_dup(const char *b, size_t n) {
  while (n && isspace((unsigned char)*b)) b++, n--;
  while (n && isspace((unsigned char)b[n - 1])) n--;
  char *r = malloc(n + 1);
  if (!r) return NULL;
  memcpy(r, b, n);
  r[n] = 0;
  return r;
}

void mbsr_csv_free(mbsr_csv *t) {
  if (!t) return;
  for (int i = 0; i < t->ncols; i++) free(t->names[i]);
  for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++) free(t->cells[i]);
  free(t->names);
  free(t->cells);
  free(t->line);
  free(t->path);
  free(t);
}

/* The whole file into a NUL-terminated buffer (at most CSV_MAX_BYTES; binary data refused). */
static int read_all(const char *path, char **out, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      return mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
    }
    len += fread(buf + len, 1, cap - len - 1, f);
    if (len < cap - 1) break;
    if (len > (size_t)CSV_MAX_BYTES) {
      free(buf);
      fclose(f);
      return mbsr_error(MBSR_ERANGE, "%s: larger than %ld MiB: not a table mbsr reads", path, CSV_MAX_BYTES >> 20);
    }
    cap *= 2;
    char *nb = realloc(buf, cap);
    if (!nb) free(buf);
    buf = nb;
  }
  int ioerr = ferror(f);
  fclose(f);
  if (ioerr) {
    free(buf);
    return mbsr_error(MBSR_EIO, "%s: read error", path);
  }
  buf[len] = 0;
  if (memchr(buf, 0, len)) {
    free(buf);
    return mbsr_error(MBSR_EFORMAT, "%s: binary data (NUL byte), not a CSV file", path);
  }
  *out = buf, *out_len = len;
  return 0;
}

/* The state of splitting a text into records: fields appended to `cells`, per record its field
 * count and first line. */
typedef struct {
  const char *path, *buf;
  size_t len, pos, rec_start;
  int line, rec_line;
  char *tmp;            /* the field being read */
  strvec cells;
  int *rline, *rcount;
  size_t nrec, rcap;
} csv_lexer;

static int too_long(const csv_lexer *L, int at_line, const char *hint) {
  return mbsr_error(MBSR_ERANGE, "%s:%d: record longer than %ld bytes%s", L->path, at_line, CSV_MAX_RECORD, hint);
}

/* A quoted field ("" is a quote; it may span lines) into L->tmp; then only spaces up to the next
 * separator. */
static int quoted_field(csv_lexer *L, size_t *tn) {
  const char *buf = L->buf;
  const int start_line = L->line;
  L->pos++;
  for (;;) {
    if (L->pos >= L->len) return mbsr_error(MBSR_EFORMAT, "%s:%d: unterminated quoted field", L->path, start_line);
    if (L->pos - L->rec_start > (size_t)CSV_MAX_RECORD) return too_long(L, start_line, " (unbalanced quote?)");
    if (buf[L->pos] == '"') {
      if (L->pos + 1 < L->len && buf[L->pos + 1] == '"') {
        L->tmp[(*tn)++] = '"';
        L->pos += 2;
        continue;
      }
      L->pos++;
      break;
    }
    if (buf[L->pos] == '\n') L->line++;
    L->tmp[(*tn)++] = buf[L->pos++];
  }
  for (; L->pos < L->len && buf[L->pos] != ',' && buf[L->pos] != '\n'; L->pos++)
    if (!isspace((unsigned char)buf[L->pos])) return mbsr_error(MBSR_EFORMAT, "%s:%d: text after a closing quote", L->path, L->line);
  return 0;
}

/* One field (trimmed) appended to the cells; *more: a separator followed; *blank cleared when the
 * field is not empty. */
static int read_field(csv_lexer *L, size_t nf, int *more, int *blank) {
  size_t tn = 0;
  int rc = 0;
  *more = 0;
  if (nf >= CSV_MAX_COLS) return mbsr_error(MBSR_ERANGE, "%s:%d: more than %d fields in a record", L->path, L->rec_line, CSV_MAX_COLS);
  if (L->cells.n >= (size_t)CSV_MAX_CELLS)
    return mbsr_error(MBSR_ERANGE, "%s:%d: more than %ld fields in the file", L->path, L->rec_line, CSV_MAX_CELLS);
  if (L->pos - L->rec_start > (size_t)CSV_MAX_RECORD) return too_long(L, L->rec_line, "");
  while (L->pos < L->len && (L->buf[L->pos] == ' ' || L->buf[L->pos] == '\t')) L->pos++;
  if (L->pos < L->len && L->buf[L->pos] == '"') {
    if ((rc = quoted_field(L, &tn))) return rc;
    *blank = 0;
  } else {
    while (L->pos < L->len && L->buf[L->pos] != ',' && L->buf[L->pos] != '\n') L->tmp[tn++] = L->buf[L->pos++];
    if (L->pos - L->rec_start > (size_t)CSV_MAX_RECORD) return too_long(L, L->rec_line, "");
  }
  char *fv = trim_dup(L->tmp, tn);
  if (!fv || sv_push(&L->cells, fv)) {
    free(fv);
    return mbsr_error(MBSR_ENOMEM, "%s: out of memory", L->path);
  }
  if (fv[0]) *blank = 0;
  if (L->pos < L->len && L->buf[L->pos] == ',') {
    *blank = 0;
    L->pos++;
    *more = 1;
  } else if (L->pos < L->len) {
    L->pos++, L->line++; /* '\n' */
  }
  return 0;
}

/* One record (a blank line is skipped). */
static int read_record(csv_lexer *L) {
  L->rec_line = L->line;
  L->rec_start = L->pos;
  size_t nf = 0;
  int blank = 1, more = 1, rc = 0;
  while (more && !rc) {
    rc = read_field(L, nf, &more, &blank);
    if (!rc) nf++;
  }
  if (rc) return rc;
  if (blank && nf == 1) { /* skip blank line */
    free(L->cells.v[--L->cells.n]);
    return 0;
  }
  if (L->nrec == L->rcap) {
    L->rcap = L->rcap ? 2 * L->rcap : 256;
    int *a = realloc(L->rline, L->rcap * sizeof(int)), *b = a ? realloc(L->rcount, L->rcap * sizeof(int)) : NULL;
    if (a) L->rline = a;
    if (b) L->rcount = b;
    if (!a || !b) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", L->path);
  }
  L->rline[L->nrec] = L->rec_line;
  L->rcount[L->nrec] = (int)nf;
  L->nrec++;
  return 0;
}

/* A column name that appears twice in the header: found by sorting. */
static int check_duplicate_names(const mbsr_csv *t) {
  const int nc = t->ncols;
  stridx *ix = malloc(sizeof *ix * (size_t)(nc > 0 ? nc : 1));
  if (!ix) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", t->path);
  for (int c = 0; c < nc; c++) ix[c] = (stridx){t->names[c], c};
  qsort(ix, (size_t)nc, sizeof *ix, cmp_stridx);
  int dup = -1; /* the duplicate whose second occurrence comes first */
  for (int c = 1; c < nc; c++)
    if (ix[c].s[0] && !strcmp(ix[c].s, ix[c - 1].s) && (dup < 0 || ix[c].i < dup)) dup = ix[c].i;
  free(ix);
  return dup >= 0 ? mbsr_error(MBSR_EFORMAT, "%s: column name '%s' appears twice in the header", t->path, t->names[dup]) : 0;
}

/* The records -> the table (the first record is the header; every record has its field count). */
static int build_table(csv_lexer *L, mbsr_csv **out) {
  if (L->nrec == 0) return mbsr_error(MBSR_EFORMAT, "%s: empty file (a header row is needed)", L->path);
  for (size_t r = 1; r < L->nrec; r++)
    if (L->rcount[r] != L->rcount[0])
      return mbsr_error(MBSR_EFORMAT, "%s:%d: %d fields, but the header has %d", L->path, L->rline[r], L->rcount[r], L->rcount[0]);
  const int nc = L->rcount[0];
  const size_t ncell = L->cells.n - (size_t)nc, nrec = L->nrec;
  mbsr_csv *t = calloc(1, sizeof *t);
  if (t) {
    t->path = strdup(L->path);
    t->names = malloc(sizeof(char *) * (size_t)nc);
    t->cells = malloc(sizeof(char *) * (ncell ? ncell : 1));
    t->line = malloc(sizeof(int) * (nrec > 1 ? nrec - 1 : 1));
  }
  if (!t || !t->path || !t->names || !t->cells || !t->line) {
    mbsr_csv_free(t); /* ncols = nrows = 0: frees the arrays only */
    return mbsr_error(MBSR_ENOMEM, "%s: out of memory", L->path);
  }
  /* ownership of the strings moves to t */
  memcpy(t->names, L->cells.v, sizeof(char *) * (size_t)nc);
  memcpy(t->cells, L->cells.v + nc, sizeof(char *) * ncell);
  for (size_t r = 1; r < nrec; r++) t->line[r - 1] = L->rline[r];
  t->ncols = nc;
  t->nrows = (int)(nrec - 1);
  L->cells.n = 0;
  int rc = check_duplicate_names(t);
  if (rc) {
    mbsr_csv_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int mbsr_csv_read(const char *path, mbsr_csv **out) {
  *out = NULL;
  char *buf = NULL;
  size_t len = 0;
  int rc = read_all(path, &buf, &len);
  if (rc) return rc;
  csv_lexer L = {.path = path, .buf = buf, .len = len, .line = 1};
  L.tmp = malloc(len + 1);
  if (!L.tmp) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  while (!rc && L.pos < L.len) rc = read_record(&L);
  free(L.tmp);
  if (!rc) rc = build_table(&L, out);
  free(buf);
  for (size_t i = 0; i < L.cells.n; i++) free(L.cells.v[i]);
  free(L.cells.v);
  free(L.rline);
  free(L.rcount);
  return rc;
}

int mbsr_csv_col(const mbsr_csv *t, const char *name) {
  for (int c = 0; c < t->ncols; c++)
    if (!strcmp(t->names[c], name)) return c;
  char list[512] = "";
  size_t used = 0;
  for (int c = 0; c < t->ncols && used + 4 < sizeof list; c++)
    used += snprintf(list + used, sizeof list - used, "%s'%s'", c ? ", " : "", t->names[c]);
  return mbsr_error(MBSR_EINVAL, "%s: no column '%s' (columns: %s)", t->path, name, list);
}

int mbsr_csv_numeric(const mbsr_csv *t, int col, double *out) {
  if (col < 0 || col >= t->ncols) return mbsr_error(MBSR_EINVAL, "%s: column index %d out of range", t->path, col);
  for (int r = 0; r < t->nrows; r++) {
    const char *s = t->cells[(size_t)r * t->ncols + col];
    char *end;
    errno = 0;
    double v = s[0] ? strtod(s, &end) : NAN;
    if (!s[0] || *end || end == s)
      return mbsr_error(MBSR_EFORMAT, "%s:%d: column '%s': '%s' is not a number", t->path, t->line[r], t->names[col],
                        s);
    if (!isfinite(v))
      return mbsr_error(MBSR_ENONFINITE, "%s:%d: column '%s': '%s' is not a finite number", t->path, t->line[r],
                        t->names[col], s);
    out[r] = v;
  }
  return MBSR_OK;
}

/* Sorting (label, row) pairs makes equal labels neighbours; each label's first row orders the groups. */
int mbsr_csv_groups(const mbsr_csv *t, int col, int *g, int *k, const char ***labels) {
  if (col < 0 || col >= t->ncols) return mbsr_error(MBSR_EINVAL, "%s: column index %d out of range", t->path, col);
  int n = t->nrows;
  size_t m = n > 0 ? (size_t)n : 1;
  const char **lab = malloc(sizeof(char *) * m);
  stridx *ix = malloc(sizeof *ix * m);
  int *rank = malloc(sizeof(int) * m);  /* row -> sorted label index, for a label's first row; else -1 */
  int *group = malloc(sizeof(int) * m); /* sorted label index -> group (order of first appearance) */
  int rc = MBSR_OK;
  if (!lab || !ix || !rank || !group) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", t->path);
  for (int r = 0; !rc && r < n; r++) {
    ix[r] = (stridx){t->cells[(size_t)r * t->ncols + col], r};
    rank[r] = -1;
    if (!ix[r].s[0])
      rc = mbsr_error(MBSR_EFORMAT, "%s:%d: column '%s': empty group label", t->path, t->line[r], t->names[col]);
  }
  int nk = 0, ng = 0;
  if (!rc) {
    qsort(ix, (size_t)n, sizeof *ix, cmp_stridx);
    for (int r = 0; r < n; r++) /* within a label the rows are ascending: its first row leads */
      if (r == 0 || strcmp(ix[r].s, ix[r - 1].s)) rank[ix[r].i] = nk++;
    for (int r = 0; r < n; r++) /* rows in file order: each first appearance opens the next group */
      if (rank[r] >= 0) {
        group[rank[r]] = ng;
        lab[ng++] = t->cells[(size_t)r * t->ncols + col];
      }
    for (int r = 0, j = -1; r < n; r++) {
      if (r == 0 || strcmp(ix[r].s, ix[r - 1].s)) j++;
      g[ix[r].i] = group[j];
    }
  }
  free(ix);
  free(rank);
  free(group);
  if (rc) {
    free(lab);
    return rc;
  }
  *k = ng;
  if (labels) *labels = lab;
  else free(lab);
  return MBSR_OK;
}
