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
    if (!nv) return -1;
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

/* Splits the whole text into records; fields appended to `cells`, per-record field count and line. */
int mbsr_csv_read(const char *path, mbsr_csv **out) {
  *out = NULL;
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

  strvec cells = {0};
  int *rline = NULL, *rcount = NULL;
  size_t nrec = 0, rcap = 0;
  int rc = MBSR_OK, line = 1;
  size_t pos = 0;
  char *tmp = malloc(len + 1);
  if (!tmp) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  while (rc == MBSR_OK && pos < len) {
    int rec_line = line;
    size_t nf = 0, rec_start = pos;
    int blank = 1;
    for (;;) { /* one field */
      size_t tn = 0;
      if (nf >= CSV_MAX_COLS) {
        rc = mbsr_error(MBSR_ERANGE, "%s:%d: more than %d fields in a record", path, rec_line, CSV_MAX_COLS);
        break;
      }
      if (cells.n >= (size_t)CSV_MAX_CELLS) {
        rc = mbsr_error(MBSR_ERANGE, "%s:%d: more than %ld fields in the file", path, rec_line, CSV_MAX_CELLS);
        break;
      }
      if (pos - rec_start > (size_t)CSV_MAX_RECORD) {
        rc = mbsr_error(MBSR_ERANGE, "%s:%d: record longer than %ld bytes", path, rec_line, CSV_MAX_RECORD);
        break;
      }
      while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t')) pos++;
      if (pos < len && buf[pos] == '"') {
        int start_line = line;
        pos++;
        for (;;) {
          if (pos >= len) {
            rc = mbsr_error(MBSR_EFORMAT, "%s:%d: unterminated quoted field", path, start_line);
            break;
          }
          if (pos - rec_start > (size_t)CSV_MAX_RECORD) {
            rc = mbsr_error(MBSR_ERANGE, "%s:%d: record longer than %ld bytes (unbalanced quote?)", path, start_line,
                            CSV_MAX_RECORD);
            break;
          }
          if (buf[pos] == '"') {
            if (pos + 1 < len && buf[pos + 1] == '"') {
              tmp[tn++] = '"';
              pos += 2;
              continue;
            }
            pos++;
            break;
          }
          if (buf[pos] == '\n') line++;
          tmp[tn++] = buf[pos++];
        }
        if (rc) break;
        blank = 0;
        while (pos < len && buf[pos] != ',' && buf[pos] != '\n') {
          if (!isspace((unsigned char)buf[pos])) {
            rc = mbsr_error(MBSR_EFORMAT, "%s:%d: text after a closing quote", path, line);
            break;
          }
          pos++;
        }
        if (rc) break;
      } else {
        while (pos < len && buf[pos] != ',' && buf[pos] != '\n') tmp[tn++] = buf[pos++];
        if (pos - rec_start > (size_t)CSV_MAX_RECORD) {
          rc = mbsr_error(MBSR_ERANGE, "%s:%d: record longer than %ld bytes", path, rec_line, CSV_MAX_RECORD);
          break;
        }
      }
      char *fv = trim_dup(tmp, tn);
      if (!fv || sv_push(&cells, fv)) {
        free(fv);
        rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
        break;
      }
      if (fv[0]) blank = 0;
      nf++;
      if (pos < len && buf[pos] == ',') {
        blank = 0;
        pos++;
        continue;
      }
      if (pos < len) pos++, line++; /* '\n' */
      break;
    }
    if (rc) break;
    if (blank && nf == 1) { /* skip blank line */
      free(cells.v[--cells.n]);
      continue;
    }
    if (nrec == rcap) {
      rcap = rcap ? 2 * rcap : 256;
      int *a = realloc(rline, rcap * sizeof(int)), *b = a ? realloc(rcount, rcap * sizeof(int)) : NULL;
      if (a) rline = a;
      if (b) rcount = b;
      if (!a || !b) {
        rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
        break;
      }
    }
    rline[nrec] = rec_line;
    rcount[nrec] = (int)nf;
    nrec++;
  }
  free(tmp);
  free(buf);
  mbsr_csv *t = NULL;
  if (rc == MBSR_OK && nrec == 0) rc = mbsr_error(MBSR_EFORMAT, "%s: empty file (a header row is needed)", path);
  for (size_t r = 1; rc == MBSR_OK && r < nrec; r++)
    if (rcount[r] != rcount[0])
      rc = mbsr_error(MBSR_EFORMAT, "%s:%d: %d fields, but the header has %d", path, rline[r], rcount[r], rcount[0]);
  if (rc == MBSR_OK) {
    int nc = rcount[0];
    size_t ncell = cells.n - (size_t)nc;
    t = calloc(1, sizeof *t);
    if (t) {
      t->path = strdup(path);
      t->names = malloc(sizeof(char *) * (size_t)nc);
      t->cells = malloc(sizeof(char *) * (ncell ? ncell : 1));
      t->line = malloc(sizeof(int) * (nrec > 1 ? nrec - 1 : 1));
    }
    if (!t || !t->path || !t->names || !t->cells || !t->line) {
      rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
      mbsr_csv_free(t); /* ncols = nrows = 0: frees the arrays only */
      t = NULL;
    } else { /* ownership of the strings moves to t */
      memcpy(t->names, cells.v, sizeof(char *) * (size_t)nc);
      memcpy(t->cells, cells.v + nc, sizeof(char *) * ncell);
      for (size_t r = 1; r < nrec; r++) t->line[r - 1] = rline[r];
      t->ncols = nc;
      t->nrows = (int)(nrec - 1);
      cells.n = 0;
      stridx *ix = malloc(sizeof *ix * (size_t)nc);
      if (!ix) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
      for (int c = 0; ix && c < nc; c++) ix[c] = (stridx){t->names[c], c};
      if (ix) qsort(ix, (size_t)nc, sizeof *ix, cmp_stridx);
      int dup = -1; /* the duplicate whose second occurrence comes first */
      for (int c = 1; ix && c < nc; c++)
        if (ix[c].s[0] && !strcmp(ix[c].s, ix[c - 1].s) && (dup < 0 || ix[c].i < dup)) dup = ix[c].i;
      free(ix);
      if (dup >= 0)
        rc = mbsr_error(MBSR_EFORMAT, "%s: column name '%s' appears twice in the header", path, t->names[dup]);
      if (rc) {
        mbsr_csv_free(t);
        t = NULL;
      }
    }
  }
  for (size_t i = 0; i < cells.n; i++) free(cells.v[i]);
  free(cells.v);
  free(rline);
  free(rcount);
  if (rc) return rc;
  *out = t;
  return MBSR_OK;
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
