/* The input list of `mbsr prep`: a directory scan or a manifest, sorted by subject name
 * (the subject index = position in this sorted list; it fixes patch order and seeds). */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/data.h"

static const char *const exts[] = {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mhd", ".tiff", ".tif", NULL};

static int has_ext(const char *name, const char **which) {
  size_t n = strlen(name);
  for (int i = 0; exts[i]; i++) {
    size_t e = strlen(exts[i]);
    if (n > e && !strcasecmp(name + n - e, exts[i])) {
      if (which) *which = exts[i];
      return 1;
    }
  }
  return 0;
}

static char *subject_name(const char *path) {
  const char *b = strrchr(path, '/');
  size_t len = strlen(path);
  while (b && b[1] == 0 && b > path) { /* trailing slash */
    len = (size_t)(b - path);
    const char *p = b - 1;
    while (p > path && *p != '/') p--;
    b = *p == '/' ? p : NULL;
  }
  const char *s = b ? b + 1 : path;
  size_t n = len - (size_t)(s - path);
  char *name = strndup(s, n);
  const char *e;
  if (name && has_ext(name, &e)) name[strlen(name) - strlen(e)] = 0;
  return name;
}

/* Directory scans skip label/annotation/mask volumes: they are not images. */
static int skip_name(const char *n) {
  if (n[0] == '.') return 1;
  return strcasestr(n, "annotation") || strcasestr(n, "label") || strcasestr(n, "mask");
}

static int dir_has_tiffs(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    found = (n > 4 && !strcasecmp(e->d_name + n - 4, ".tif")) || (n > 5 && !strcasecmp(e->d_name + n - 5, ".tiff"));
  }
  closedir(d);
  return found;
}

static int push(mbsr_input_list *l, int *cap, const char *path, const char *name) {
  if (l->n == *cap) {
    int nc = *cap ? 2 * *cap : 16;
    char **p = realloc(l->paths, (size_t)nc * sizeof *p), **q;
    if (!p) return mbsr_error(MBSR_ENOMEM, "input list: out of memory");
    l->paths = p;
    q = realloc(l->names, (size_t)nc * sizeof *q);
    if (!q) return mbsr_error(MBSR_ENOMEM, "input list: out of memory");
    l->names = q;
    *cap = nc;
  }
  l->paths[l->n] = strdup(path);
  l->names[l->n] = name ? strdup(name) : subject_name(path);
  if (!l->paths[l->n] || !l->names[l->n]) return mbsr_error(MBSR_ENOMEM, "input list: out of memory");
  l->n++;
  return MBSR_OK;
}

static int cmp_idx_names(const void *a, const void *b, void *ctx) {
  char **names = ctx;
  return strcmp(names[*(const int *)a], names[*(const int *)b]);
}

int mbsr_input_list_load(const char *src, mbsr_input_list *out) {
  memset(out, 0, sizeof *out);
  int cap = 0, rc = MBSR_OK;
  char path[16400];
  if (mbsr_is_dir(src) && !dir_has_tiffs(src)) {
    DIR *d = opendir(src);
    if (!d) return mbsr_error(MBSR_EIO, "%s: cannot open directory", src);
    struct dirent *e;
    while (rc == MBSR_OK && (e = readdir(d))) {
      if (skip_name(e->d_name)) continue;
      if ((rc = mbsr_pathf(path, sizeof path, "%s/%s", src, e->d_name))) break;
      if ((mbsr_is_dir(path) && dir_has_tiffs(path)) || (!mbsr_is_dir(path) && has_ext(e->d_name, NULL)))
        rc = push(out, &cap, path, NULL);
    }
    closedir(d);
  } else if (mbsr_is_dir(src)) {
    rc = push(out, &cap, src, NULL); /* the directory itself is one TIFF stack */
  } else {
    const char *e;
    if (has_ext(src, &e) && strcmp(e, ".tif") && strcmp(e, ".tiff")) {
      rc = push(out, &cap, src, NULL); /* a single volume */
    } else {
      FILE *f = fopen(src, "r");
      if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open input directory or manifest", src);
      char *line = NULL, dir[8192];
      size_t lcap = 0;
      const char *sl = strrchr(src, '/');
      rc = mbsr_pathf(dir, sizeof dir, "%.*s", sl ? (int)(sl - src) : 1, sl ? src : ".");
      int lineno = 0;
      while (rc == MBSR_OK && getline(&line, &lcap, f) > 0) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '#' || *p == 0) continue;
        char *save = NULL;
        char *tok = strtok_r(p, "\t\r\n", &save);
        char *name = strtok_r(NULL, "\t\r\n", &save);
        if (!tok) continue;
        if (!strcmp(tok, "path") || !strcmp(tok, "id")) continue; /* a header line */
        rc = tok[0] == '/' ? mbsr_pathf(path, sizeof path, "%s", tok) : mbsr_pathf(path, sizeof path, "%s/%s", dir, tok);
        if (rc) mbsr_error_prefix(rc, "%s:%d: ", src, lineno);
        else rc = push(out, &cap, path, name && *name ? name : NULL);
      }
      free(line);
      fclose(f);
    }
  }
  if (rc == MBSR_OK && out->n == 0) rc = mbsr_error(MBSR_EINVAL, "%s: no input volumes found", src);
  if (rc == MBSR_OK) {
    int *idx = malloc((size_t)out->n * sizeof *idx);
    char **p = malloc((size_t)out->n * sizeof *p), **q = malloc((size_t)out->n * sizeof *q);
    if (!idx || !p || !q) rc = mbsr_error(MBSR_ENOMEM, "input list: out of memory");
    else {
      for (int i = 0; i < out->n; i++) idx[i] = i;
      qsort_r(idx, (size_t)out->n, sizeof *idx, cmp_idx_names, out->names);
      for (int i = 0; i < out->n; i++) p[i] = out->paths[idx[i]], q[i] = out->names[idx[i]];
      memcpy(out->paths, p, (size_t)out->n * sizeof *p);
      memcpy(out->names, q, (size_t)out->n * sizeof *q);
      for (int i = 1; i < out->n && rc == MBSR_OK; i++)
        if (!strcmp(out->names[i], out->names[i - 1]))
          rc = mbsr_error(MBSR_EINVAL, "%s: two inputs share the subject name '%s' (%s, %s)", src, out->names[i],
                          out->paths[i - 1], out->paths[i]);
    }
    free(idx), free(p), free(q);
  }
  if (rc != MBSR_OK) mbsr_input_list_free(out);
  return rc;
}

void mbsr_input_list_free(mbsr_input_list *l) {
  for (int i = 0; i < l->n; i++) free(l->paths[i]), free(l->names[i]);
  free(l->paths), free(l->names);
  memset(l, 0, sizeof *l);
}
