/* The fetch manifest: one TSV row per item (header MBSR_MANIFEST_HEADER), written atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/fetch.h"

void mbsr_manifest_free(mbsr_manifest *m) {
  free(m->rows);
  memset(m, 0, sizeof *m);
}

mbsr_manifest_row *mbsr_manifest_find(const mbsr_manifest *m, const char *id) {
  for (int i = 0; i < m->n; i++)
    if (!strcmp(m->rows[i].id, id)) return &m->rows[i];
  return NULL;
}

int mbsr_manifest_put(mbsr_manifest *m, const mbsr_manifest_row *r) {
  mbsr_manifest_row *old = mbsr_manifest_find(m, r->id);
  if (old) {
    if (old != r) *old = *r;
    return 0;
  }
  if (m->n == m->cap) {
    int nc = m->cap ? 2 * m->cap : 64;
    mbsr_manifest_row *nr = realloc(m->rows, (size_t)nc * sizeof *nr);
    if (!nr) return mbsr_error(MBSR_ENOMEM, "manifest: out of memory");
    m->rows = nr;
    m->cap = nc;
  }
  m->rows[m->n++] = *r;
  return 0;
}

static void copy_field(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

int mbsr_manifest_read(const char *path, mbsr_manifest *m) {
  memset(m, 0, sizeof *m);
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 0;
    return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno));
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t k;
  int lineno = 0, rc = 0;
  while ((k = getline(&line, &cap, f)) >= 0) {
    lineno++;
    while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
    if (k == 0 || line[0] == '#') continue;
    if (lineno == 1 && !strncmp(line, "id\t", 3)) continue; /* header */
    char *fields[9] = {0};
    int nf = 0;
    char *p = line;
    while (nf < 9) {
      fields[nf++] = p;
      char *t = strchr(p, '\t');
      if (!t) break;
      *t = 0;
      p = t + 1;
    }
    if (nf < 8) {
      rc = mbsr_error(MBSR_EFORMAT, "%s: line %d: %d fields, expected 9 (%s)", path, lineno, nf, MBSR_MANIFEST_HEADER);
      break;
    }
    mbsr_manifest_row r;
    memset(&r, 0, sizeof r);
    copy_field(r.id, sizeof r.id, fields[0]);
    copy_field(r.kind, sizeof r.kind, fields[1]);
    copy_field(r.url, sizeof r.url, fields[2]);
    copy_field(r.file, sizeof r.file, fields[3]);
    r.bytes = fields[4][0] ? strtoll(fields[4], NULL, 10) : -1;
    copy_field(r.sha256, sizeof r.sha256, fields[5]);
    copy_field(r.output, sizeof r.output, fields[6]);
    copy_field(r.status, sizeof r.status, fields[7]);
    copy_field(r.message, sizeof r.message, nf > 8 ? fields[8] : "");
    if (!r.id[0]) {
      rc = mbsr_error(MBSR_EFORMAT, "%s: line %d: empty id", path, lineno);
      break;
    }
    if ((rc = mbsr_manifest_put(m, &r))) break;
  }
  free(line);
  fclose(f);
  if (rc) mbsr_manifest_free(m);
  return rc;
}

static void put_clean(FILE *f, const char *s) {
  for (; *s; s++) fputc((*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s, f);
}

int mbsr_manifest_write(const char *path, const mbsr_manifest *m) {
  char tmp[4200];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  if (rc) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  fprintf(f, "%s\n", MBSR_MANIFEST_HEADER);
  for (int i = 0; i < m->n; i++) {
    const mbsr_manifest_row *r = &m->rows[i];
    const char *cols[] = {r->id, r->kind, r->url, r->file};
    for (int c = 0; c < 4; c++) { put_clean(f, cols[c]); fputc('\t', f); }
    if (r->bytes >= 0) fprintf(f, "%lld", (long long)r->bytes);
    fputc('\t', f);
    put_clean(f, r->sha256); fputc('\t', f);
    put_clean(f, r->output); fputc('\t', f);
    put_clean(f, r->status); fputc('\t', f);
    put_clean(f, r->message); fputc('\n', f);
  }
  if (fclose(f) != 0) {
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write error", tmp);
  }
  return mbsr_commit_file(tmp, path);
}
