/* Test helper (header-only) for the failure tests of prep, train, checkpoints and the CLI:
 * temporaries left in a directory, and counting log lines. */
#ifndef MBSR_TEST_FAULT_UTIL_H
#define MBSR_TEST_FAULT_UTIL_H
#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* Temporaries (".tmp-*", mbsr_tmp_path) directly in d. */
static inline int count_tmp(const char *d) {
  DIR *h = opendir(d);
  int n = 0;
  struct dirent *e;
  while (h && (e = readdir(h)))
    if (!strncmp(e->d_name, ".tmp-", 5)) n++;
  if (h) closedir(h);
  return n;
}

/* Lines of file matching the basic regular expression pat (grep -c); -1 when grep fails to run. */
static inline int grep_count(const char *file, const char *pat) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "grep -c -- '%s' '%s' 2>/dev/null", pat, file);
  FILE *p = popen(cmd, "r");
  int n = -1;
  if (p && fscanf(p, "%d", &n) != 1) n = -1;
  if (p) pclose(p);
  return n;
}
#endif
