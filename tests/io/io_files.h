/* Test helper (header-only) for the io tests: whole files in and out (gzip or plain), fixture and
 * scratch paths. Corrupt inputs are made by editing the bytes of the committed fixtures. */
#ifndef MBSR_TEST_IO_FILES_H
#define MBSR_TEST_IO_FILES_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mbsr/volume.h"
#include "mbsr_test.h"

/* tests/fixtures/io/<rel> (a static buffer: use before the next call) */
static inline const char *fx(const char *rel) {
  static char buf[4096];
  char r[512];
  snprintf(r, sizeof r, "io/%s", rel);
  return mbsr_test_fixture(r, buf, sizeof buf);
}

/* <scratch dir>/<name> into buf */
static inline char *tmpfile_path(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", mbsr_test_tmpdir(), name);
  return buf;
}

/* whole (decompressed if gzip) contents of a file; NULL if unreadable */
static inline unsigned char *slurp(const char *path, size_t *len) {
  *len = 0;
  gzFile g = gzopen(path, "rb");
  if (!g) return NULL;
  size_t cap = 1 << 16, n = 0;
  unsigned char *b = malloc(cap);
  int r;
  while (b && (r = gzread(g, b + n, (unsigned)(cap - n))) > 0) {
    n += (size_t)r;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  gzclose(g);
  *len = b ? n : 0;
  return b;
}

/* write n bytes (gzip-compressed when gz) */
static inline void spit(const char *path, const void *p, size_t n, int gz) {
  if (gz) {
    gzFile g = gzopen(path, "wb");
    gzwrite(g, p, (unsigned)n);
    gzclose(g);
  } else {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
  }
}

/* The read must fail with `code` and ONE line naming `path` (containing `word` when given). */
static inline void expect_fail(const char *path, const mbsr_read_opts *o, int code, const char *word) {
  mbsr_volume *v = (mbsr_volume *)0x1;
  mbsr_error_clear();
  int rc = mbsr_volume_read(path, o, &v);
  const char *m = mbsr_last_error();
  printf("\n    %s -> %d: %s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path, rc, m);
  MT_ASSERT_INT_EQ(rc, code);
  CU_ASSERT(rc == 0 || v == NULL);
  if (rc == 0) mbsr_volume_free(v);
  CU_ASSERT(strstr(m, path) != NULL);
  CU_ASSERT(strchr(m, '\n') == NULL);
  if (word && !strstr(m, word)) fprintf(stderr, "  message lacks '%s'\n", word);
  CU_ASSERT(!word || strstr(m, word) != NULL);
}

#endif
