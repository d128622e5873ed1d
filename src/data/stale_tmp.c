/* Removing the temporaries of killed runs: mbsr_tmp_path() names them ".tmp-<pid>-<n>-<base>";
 * one whose writer process no longer exists can never be completed. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/data.h"

int mbsr_clean_stale_tmp(const char *dir, const char *base) {
  DIR *d = opendir(dir && dir[0] ? dir : ".");
  if (!d) return 0;
  struct dirent *e;
  int n = 0;
  char p[4352];
  while ((e = readdir(d))) {
    long pid;
    int k, off = 0;
    if (sscanf(e->d_name, ".tmp-%ld-%d-%n", &pid, &k, &off) != 2 || off == 0) continue;
    if (base && strcmp(e->d_name + off, base)) continue;
    if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue; /* its writer may still be alive */
    snprintf(p, sizeof p, "%s/%s", dir && dir[0] ? dir : ".", e->d_name);
    if (unlink(p) == 0) n++;
  }
  closedir(d);
  return n;
}
