/* A small CSV reader for numeric tables with a header row (the stats command, the report). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/stats.h"
#include "mbsr/core.h"

typedef struct {
  char **v;
  size_t n, cap;
} strvec;

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
    size_t nf = 0;
    int blank = 1;
    for (;;) { /* one field */
      size_t tn = 0;
      while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t')) pos++;
      if (pos < len && buf[pos] == '"') {
        int start_line = line;
        pos++;
        for (;;) {
          if (pos >= len) {
            rc = mbsr_error(MBSR_EFORMAT, "%s:%d: unterminated quoted field", path, start_line);
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
      for (int c = 0; c < nc && rc == MBSR_OK; c++)
        for (int c2 = 0; c2 < c; c2++)
          if (t->names[c][0] && !strcmp(t->names[c], t->names[c2])) {
            rc = mbsr_error(MBSR_EFORMAT, "%s: column name '%s' appears twice in the header", path, t->names[c]);
            break;
          }
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

int mbsr_csv_groups(const mbsr_csv *t, int col, int *g, int *k, const char ***labels) {
  if (col < 0 || col >= t->ncols) return mbsr_error(MBSR_EINVAL, "%s: column index %d out of range", t->path, col);
  const char **lab = malloc(sizeof(char *) * (t->nrows > 0 ? t->nrows : 1));
  if (!lab) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", t->path);
  int nk = 0;
  for (int r = 0; r < t->nrows; r++) {
    const char *s = t->cells[(size_t)r * t->ncols + col];
    if (!s[0]) {
      free(lab);
      return mbsr_error(MBSR_EFORMAT, "%s:%d: column '%s': empty group label", t->path, t->line[r], t->names[col]);
    }
    int j = 0;
    while (j < nk && strcmp(lab[j], s)) j++;
    if (j == nk) lab[nk++] = s;
    g[r] = j;
  }
  *k = nk;
  if (labels) *labels = lab;
  else free(lab);
  return MBSR_OK;
}
