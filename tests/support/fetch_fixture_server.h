/* Test helpers for `mbsr fetch`: start/stop tests/support/http_fixture_server.py on 127.0.0.1
 * (port chosen by the OS, read back from a file), read small files, check an output directory
 * against its manifest. Header-only (static functions) so that test_fetch.c and mpi_test_fetch.c
 * share it without touching the test support library. */
#ifndef MBSR_FETCH_FIXTURE_SERVER_H
#define MBSR_FETCH_FIXTURE_SERVER_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mbsr/fetch.h"
#include "mbsr_test.h"

typedef struct {
  pid_t pid;
  int port;
  char log[4200];
  char base[128]; /* http://127.0.0.1:<port> */
} fx_server;

/* Never talk to a proxy (or anything but 127.0.0.1) from the tests. */
static __attribute__((unused)) void fx_no_proxy(void) {
  const char *vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", NULL};
  for (int i = 0; vars[i]; i++) unsetenv(vars[i]);
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  setenv("NO_PROXY", "127.0.0.1,localhost", 1);
}

/* The committed fixture tree, or $MBSR_FETCH_TEST_ROOT when a test serves a modified copy. */
static const char *fx_server_root(void) {
  static char buf[4096];
  const char *o = getenv("MBSR_FETCH_TEST_ROOT");
  if (o) return o;
  return mbsr_test_fixture("fetch/server", buf, sizeof buf);
}

/* faults: NULL-terminated "PATTERN=KIND[:COUNT]" list (may be NULL). Returns 0 or -1. */
static __attribute__((unused)) int fx_server_start(fx_server *s, const char *dir, const char *tag, const char *const *faults) {
  memset(s, 0, sizeof *s);
  char pf[4200], script[4200];
  snprintf(pf, sizeof pf, "%s/%s.port", dir, tag);
  snprintf(s->log, sizeof s->log, "%s/%s.log", dir, tag);
  unlink(pf);
  unlink(s->log);
  const char *src = getenv("MBSR_SOURCE_DIR");
  snprintf(script, sizeof script, "%s/tests/support/http_fixture_server.py", src ? src : ".");
  const char *argv[64];
  int n = 0;
  argv[n++] = "python3";
  argv[n++] = script;
  argv[n++] = "--root";
  argv[n++] = fx_server_root();
  argv[n++] = "--port-file";
  argv[n++] = pf;
  argv[n++] = "--log";
  argv[n++] = s->log;
  for (int i = 0; faults && faults[i] && n < 60; i++) {
    argv[n++] = "--fault";
    argv[n++] = faults[i];
  }
  argv[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    /* die with the test; never hold the test's stdout/stderr (ctest waits for them to close) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char errf[4300];
    snprintf(errf, sizeof errf, "%s.stderr", s->log);
    int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); }
    if (fd >= 0) dup2(fd, 2);
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  s->pid = pid;
  for (int t = 0; t < 500; t++) { /* up to 10 s */
    FILE *f = fopen(pf, "r");
    if (f) {
      int ok = fscanf(f, "%d", &s->port) == 1;
      fclose(f);
      if (ok && s->port > 0) {
        snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
        return 0;
      }
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) { s->pid = 0; return -1; }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  s->pid = 0;
  return -1;
}

static __attribute__((unused)) void fx_server_stop(fx_server *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
  }
  s->pid = 0;
}

static char *fx_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (b) b[n] = 0;
  fclose(f);
  return b;
}

/* Occurrences of needle in the file (0 if absent). */
static __attribute__((unused)) int fx_count(const char *path, const char *needle) {
  char *b = fx_read(path);
  if (!b) return 0;
  int c = 0;
  for (const char *p = b; (p = strstr(p, needle)); p += strlen(needle)) c++;
  free(b);
  return c;
}

static __attribute__((unused)) int64_t fx_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* The manifest tells the truth and nothing is corrupt under a final name:
 *  - every row "ok": file present with the recorded size and sha256, output present;
 *  - every row "failed": output absent (and file absent for reference volumes);
 *  - every regular file in the tree is manifest.tsv, a *.part, or the file/output of an ok row
 *    (or a verified archive of a failed conversion); no temporaries, no scratch directories.
 * Returns the number of violations (printed). */
static __attribute__((unused)) int fx_walk(const char *root, const char *rel, const mbsr_manifest *m, int *bad) {
  char dir[8400];
  snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char r[4200], full[8400];
    snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
    snprintf(full, sizeof full, "%s/%s", root, r);
    struct stat st;
    if (stat(full, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (!strncmp(e->d_name, ".unzip-", 7)) { fprintf(stderr, "  leftover scratch dir %s\n", r); (*bad)++; }
      fx_walk(root, r, m, bad);
      continue;
    }
    size_t l = strlen(r);
    if (!strcmp(r, "manifest.tsv") || (l > 5 && !strcmp(r + l - 5, ".part"))) continue;
    int known = 0;
    for (int i = 0; i < m->n; i++) {
      const mbsr_manifest_row *w = &m->rows[i];
      if (!strcmp(w->status, "ok") && (!strcmp(w->file, r) || !strcmp(w->output, r))) known = 1;
      if (!strcmp(w->kind, "experiment") && !strcmp(w->file, r) && w->sha256[0]) known = 1; /* verified archive */
    }
    if (!known) { fprintf(stderr, "  file not vouched for by the manifest: %s\n", r); (*bad)++; }
  }
  closedir(d);
  return 0;
}

static __attribute__((unused)) int fx_check_truth(const char *out) {
  char mp[4400];
  snprintf(mp, sizeof mp, "%s/manifest.tsv", out);
  mbsr_manifest m;
  if (mbsr_manifest_read(mp, &m) != 0) { fprintf(stderr, "  manifest unreadable: %s\n", mbsr_last_error()); return 1; }
  int bad = 0;
  if (m.n == 0) { fprintf(stderr, "  empty manifest\n"); bad++; }
  for (int i = 0; i < m.n; i++) {
    const mbsr_manifest_row *w = &m.rows[i];
    char f[8192], o[8192], hex[65];
    snprintf(f, sizeof f, "%s/%s", out, w->file);
    snprintf(o, sizeof o, "%s/%s", out, w->output);
    if (!strcmp(w->status, "ok")) {
      int64_t b = -1;
      if (mbsr_sha256_file(f, hex, &b) != 0 || b != w->bytes || strcmp(hex, w->sha256)) {
        fprintf(stderr, "  %s: ok but file %s does not match (bytes %lld vs %lld)\n", w->id, w->file, (long long)b, (long long)w->bytes);
        bad++;
      }
      if (!mbsr_file_exists(o)) { fprintf(stderr, "  %s: ok but no output %s\n", w->id, w->output); bad++; }
    } else if (!strcmp(w->status, "failed")) {
      if (mbsr_file_exists(o)) { fprintf(stderr, "  %s: failed but output %s exists\n", w->id, w->output); bad++; }
      if (strcmp(w->kind, "experiment") && mbsr_file_exists(f)) { fprintf(stderr, "  %s: failed but %s exists\n", w->id, w->file); bad++; }
      if (!w->message[0]) { fprintf(stderr, "  %s: failed without a message\n", w->id); bad++; }
    } else {
      fprintf(stderr, "  %s: status '%s' after the run\n", w->id, w->status);
      bad++;
    }
  }
  fx_walk(out, "", &m, &bad);
  mbsr_manifest_free(&m);
  return bad;
}

static const char *fx_status(const char *out, const char *id, char *msg, size_t n) {
  static char st[16];
  char mp[4400];
  snprintf(mp, sizeof mp, "%s/manifest.tsv", out);
  mbsr_manifest m;
  st[0] = 0;
  if (msg && n) msg[0] = 0;
  if (mbsr_manifest_read(mp, &m) != 0) return "unreadable";
  const mbsr_manifest_row *r = mbsr_manifest_find(&m, id);
  if (r) {
    snprintf(st, sizeof st, "%s", r->status);
    if (msg) snprintf(msg, n, "%s", r->message);
  } else {
    snprintf(st, sizeof st, "absent");
  }
  mbsr_manifest_free(&m);
  return st;
}

#endif
