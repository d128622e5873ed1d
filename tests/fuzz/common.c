/* Helpers shared by the fuzz harnesses (see common.h). */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mbsr/core.h"
#include "mbsr/volume.h"

const char *fuzz_dir(void) {
  static char dir[4096];
  if (!dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mbsr-fuzz-XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      abort();
    }
    mbsr_log_set_quiet(1);
  }
  return dir;
}

int fuzz_write(const char *name, const uint8_t *data, size_t n, int gz, char *path, size_t pn) {
  snprintf(path, pn, "%s/%s", fuzz_dir(), name);
  if (gz) {
    gzFile g = gzopen(path, "wb1");
    if (!g) return -1;
    int ok = n == 0 || gzwrite(g, data, (unsigned)n) == (int)n;
    return gzclose(g) == Z_OK && ok ? 0 : -1;
  }
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

void fuzz_split(const uint8_t *data, size_t n, size_t *head_n, const uint8_t **tail, size_t *tail_n) {
  size_t m = strlen(FUZZ_DATA_MARK);
  *head_n = n;
  *tail = NULL;
  *tail_n = 0;
  for (size_t i = 0; i + m <= n; i++)
    if (data[i] == '\n' && !memcmp(data + i, FUZZ_DATA_MARK, m)) {
      *head_n = i;
      *tail = data + i + m;
      *tail_n = n - i - m;
      return;
    }
}

int fuzz_write_split(const uint8_t *data, size_t size, const char *attached, const char *detached,
                     const char *data_name, char *path, size_t pn) {
  size_t hn, tn;
  const uint8_t *tail;
  char dpath[4200];
  fuzz_split(data, size, &hn, &tail, &tn);
  if (!tail) return fuzz_write(attached, data, size, 0, path, pn);
  if (fuzz_write(data_name, tail, tn, 0, dpath, sizeof dpath)) return -1;
  return fuzz_write(detached, data, hn, 0, path, pn);
}

void fuzz_read_volume(const char *path, const void *opts) {
  mbsr_volume *v = NULL;
  if (mbsr_volume_read(path, opts, &v) != 0) return;
  float mn, mx;
  mbsr_volume_minmax(v, &mn, &mx);
  (void)mbsr_volume_check_finite(v, "fuzz");
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!(v->affine[r][c] == v->affine[r][c]) || v->affine[r][c] > 1e300 || v->affine[r][c] < -1e300) abort();
  for (int a = 0; a < 3; a++)
    if (!(v->vox[a] > 0)) abort();
  mbsr_volume_free(v);
}
