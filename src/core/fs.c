/* Atomic output files (temporary name + fsync + rename), appended log lines, small filesystem
 * helpers, and the write-failure hook (MBSR_FAULT_WRITE) that lets tests and CI simulate a full
 * disk without privileges: every output mbsr writes passes one of its checkpoints. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbsr/core.h"

/* ---- fault injection: MBSR_FAULT_WRITE="KIND[/NAME]:N[@RANK][,...]" (see core.h) ---- */
enum { FK_FILE, FK_H5, FK_LOG, FK_ANY, FK_N };
static const char *const fault_kinds[FK_N] = {"file", "h5", "log", "any"};
#define MAX_FAULT_RULES 8
typedef struct {
  int kind;
  char name[128]; /* "" = any output; else the output's file name must be this (or end with "/" this) */
  long long n;    /* the n-th matching write fails, and every later one */
  int rank;       /* -1: every rank */
  long long seen; /* matching writes so far */
} fault_rule;
static struct {
  pthread_mutex_t mu;
  int loaded, nrules;
  fault_rule rules[MAX_FAULT_RULES];
  long long count[FK_N];
} g_fault = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {{0}}, {0}};

static int kind_index(const char *kind) {
  for (int k = 0; k < FK_N; k++)
    if (!strcmp(kind, fault_kinds[k])) return k;
  return -1;
}

static void fault_load(void) {
  g_fault.nrules = 0;
  memset(g_fault.count, 0, sizeof g_fault.count);
  const char *env = getenv("MBSR_FAULT_WRITE");
  g_fault.loaded = 1;
  if (!env || !env[0]) return;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", env);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    fault_rule r = {FK_ANY, "", 0, -1, 0};
    char *colon = strrchr(tok, ':'), *end = NULL;
    if (colon) {
      *colon = 0;
      char *slash = strchr(tok, '/');
      if (slash) *slash = 0, snprintf(r.name, sizeof r.name, "%s", slash + 1);
      r.kind = kind_index(tok);
      r.n = strtoll(colon + 1, &end, 10);
      if (*end == '@') r.rank = (int)strtol(end + 1, &end, 10);
    }
    if (!colon || r.kind < 0 || r.n < 1 || *end || g_fault.nrules >= MAX_FAULT_RULES) {
      /* a mistyped spec must not silently test nothing */
      fprintf(stderr, "mbsr: MBSR_FAULT_WRITE='%s': expected KIND[/NAME]:N[@RANK][,...] with KIND file|h5|log|any, N >= 1\n", env);
      abort();
    }
    g_fault.rules[g_fault.nrules++] = r;
  }
}

void mbsr_fault_reset(void) {
  pthread_mutex_lock(&g_fault.mu);
  fault_load();
  pthread_mutex_unlock(&g_fault.mu);
}

long long mbsr_fault_count(const char *kind) {
  int k = kind_index(kind);
  pthread_mutex_lock(&g_fault.mu);
  long long n = k >= 0 ? g_fault.count[k] : 0;
  pthread_mutex_unlock(&g_fault.mu);
  return n;
}

static int name_matches(const char *name, const char *path) {
  if (!name[0]) return 1;
  if (!path) return 0;
  size_t n = strlen(name), p = strlen(path);
  return p >= n && !strcmp(path + p - n, name) && (p == n || path[p - n - 1] == '/');
}

int mbsr_fault_write(const char *kind, const char *path) {
  int k = kind_index(kind);
  if (k < 0 || k == FK_ANY) return 0;
  pthread_mutex_lock(&g_fault.mu);
  if (!g_fault.loaded) fault_load();
  int fail = 0;
  if (g_fault.nrules) {
    g_fault.count[k]++, g_fault.count[FK_ANY]++;
    for (int i = 0; i < g_fault.nrules; i++) {
      fault_rule *r = &g_fault.rules[i];
      if ((r->kind != k && r->kind != FK_ANY) || !name_matches(r->name, path)) continue;
      if (r->rank >= 0 && r->rank != mbsr_log_rank()) continue;
      if (++r->seen >= r->n) fail = 1;
    }
  }
  pthread_mutex_unlock(&g_fault.mu);
  if (fail) errno = ENOSPC;
  return fail ? -1 : 0;
}

int mbsr_pathf(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= n) return mbsr_error(MBSR_ERANGE, "path too long (more than %zu bytes): %s...", n ? n - 1 : 0, n ? buf : "");
  return MBSR_OK;
}

int mbsr_tmp_path(const char *final_path, char *tmp, size_t n) {
  static atomic_int counter;
  const char *slash = strrchr(final_path, '/');
  int dirlen = slash ? (int)(slash - final_path + 1) : 0;
  const char *base = slash ? slash + 1 : final_path;
  int k = atomic_fetch_add(&counter, 1);
  int w = snprintf(tmp, n, "%.*s.tmp-%ld-%d-%s", dirlen, final_path, (long)getpid(), k, base);
  if (w < 0 || (size_t)w >= n) return mbsr_error(MBSR_ERANGE, "%s: path too long", final_path);
  return MBSR_OK;
}

/* fsync the temporary (a full disk or a failing server often reports here, not at write time:
 * delayed allocation, NFS), then rename. */
static int commit(const char *tmp, const char *final_path) {
  int fd = open(tmp, O_RDONLY);
  if (fd >= 0) {
    int bad = fsync(fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP;
    int e = errno;
    close(fd);
    if (bad) {
      unlink(tmp);
      return mbsr_error(MBSR_EIO, "%s: write failed: %s (temporary removed)", final_path, strerror(e));
    }
  }
  if (rename(tmp, final_path) != 0) {
    int e = errno;
    unlink(tmp);
    return mbsr_error(MBSR_EIO, "%s: cannot rename from temporary %s: %s", final_path, tmp, strerror(e));
  }
  return MBSR_OK;
}

int mbsr_commit_file(const char *tmp, const char *final_path) {
  /* the fault hook: as if the data written to the temporary did not fit (reported at fsync) */
  if (mbsr_fault_write("file", final_path)) {
    int e = errno;
    unlink(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed: %s (temporary removed)", final_path, strerror(e));
  }
  return commit(tmp, final_path);
}

void mbsr_abandon_file(const char *tmp) {
  if (tmp && tmp[0]) unlink(tmp);
}

int mbsr_write_text_atomic(const char *path, const char *text) {
  char tmp[4200];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  if (rc) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write: %s", path, strerror(errno));
  size_t n = strlen(text);
  errno = 0;
  int bad = mbsr_fault_write("file", path) != 0 || fwrite(text, 1, n, f) != n || fflush(f) != 0;
  int e = errno;
  bad |= fclose(f) != 0;
  if (bad) {
    e = e ? e : errno ? errno : EIO;
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed: %s (temporary removed)", path, strerror(e));
  }
  return commit(tmp, path);
}

int mbsr_append_line(FILE *f, const char *path, const char *line) {
  errno = 0;
  size_t n = strlen(line);
  int bad = mbsr_fault_write("log", path) != 0 || fwrite(line, 1, n, f) != n || (n && line[n - 1] != '\n' && fputc('\n', f) == EOF) ||
            fflush(f) != 0;
  if (bad) {
    int e = errno ? errno : EIO;
    clearerr(f);
    return mbsr_error(MBSR_EIO, "%s: appending a line failed: %s", path, strerror(e));
  }
  return MBSR_OK;
}

int mbsr_mkdir_p(const char *dir) {
  char buf[4096];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof buf) return mbsr_error(MBSR_EINVAL, "bad directory name '%s'", dir);
  memcpy(buf, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return mbsr_error(MBSR_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
      buf[i] = c;
    }
  }
  if (!mbsr_is_dir(dir)) return mbsr_error(MBSR_EIO, "%s: not a directory", dir);
  return MBSR_OK;
}

int mbsr_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int mbsr_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
