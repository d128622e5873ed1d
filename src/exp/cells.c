/* Bookkeeping of a sweep: FNV-1a hashes (cell keys, file names that carry their parameters), the
 * cells' done markers, file locks between concurrent array tasks, brains of subject names. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "exp_internal.h"

int mbsr__rank0(void) { return mbsr_log_rank() == 0; }

uint64_t mbsr__fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
  return h;
}
uint64_t mbsr__fnv_str(uint64_t h, const char *s) { return mbsr__fnv(h, s, strlen(s) + 1); }

uint64_t mbsr__cell_key(const mbsr_experiment *e, int cell) {
  uint64_t h = mbsr__fnv(MBSR__FNV_SEED, &e->s, sizeof e->s);
  return mbsr__fnv(h, &e->cells[cell], sizeof e->cells[cell]);
}

mbsr__cell_state_t mbsr__cell_state(const mbsr_experiment *e, const char *results, int cell) {
  char d[2048], p[2400];
  if (mbsr_exp_dir(e, results, d, sizeof d) || mbsr_pathf(p, sizeof p, "%s/cells/%s/done", d, e->cells[cell].name)) {
    mbsr_error_clear(); /* a path that cannot exist: no marker */
    return MBSR__CELL_OPEN;
  }
  FILE *f = fopen(p, "r");
  if (!f) return MBSR__CELL_OPEN;
  char line[4096], want[64];
  snprintf(want, sizeof want, "params %016llx", (unsigned long long)mbsr__cell_key(e, cell));
  int match = 0, key = 0;
  while (fgets(line, sizeof line, f)) {
    key |= !strncmp(line, "params ", 7);
    match |= !strncmp(line, want, strlen(want));
  }
  fclose(f);
  return match ? MBSR__CELL_DONE : key ? MBSR__CELL_OTHER : MBSR__CELL_NOKEY;
}

int mbsr_sweep_cell_done(const mbsr_experiment *e, const char *results, int cell) {
  return mbsr__cell_state(e, results, cell) == MBSR__CELL_DONE;
}

int mbsr__lock_file(const char *path) {
  int fd = open(path, O_CREAT | O_RDWR, 0644);
  if (fd < 0) return mbsr_error(MBSR_EIO, "%s: cannot open the lock file: %s", path, strerror(errno));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    close(fd);
    return mbsr_error(MBSR_EIO, "%s: cannot lock: %s", path, strerror(err));
  }
  return fd;
}

void mbsr__unlock_file(int fd) {
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
}

void mbsr__brain_of(const char *subject, char *brain, size_t n) {
  size_t l = strlen(subject);
  if (l > 6 && !strncmp(subject + l - 6, "-half", 5) && subject[l - 1] >= 'A' && subject[l - 1] <= 'Z')
    snprintf(brain, n, "%.*s", (int)(l - 6), subject);
  else
    snprintf(brain, n, "%s", subject);
}

char *mbsr__abspath(const char *path) {
  if (path[0] == '/') return strdup(path);
  char *cwd = getcwd(NULL, 0), *out = NULL;
  if (!cwd) return strdup(path); /* as before: a relative path when the working directory is unknown */
  if (asprintf(&out, "%s/%s", cwd, path) < 0) out = NULL;
  free(cwd);
  return out;
}
