/* Readers for tests/fixtures/image/ (written by tests/fixtures/gen_image.py): *.raw arrays
 * (magic "MBSRRAW1", int64 nx, ny, nz, float32 little-endian data, x fastest) and values.txt
 * ("name value" lines). Shared by the image module's tests (resample, metrics, mask). */
#ifndef MBSR_IMAGE_FIXTURE_H
#define MBSR_IMAGE_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/image.h"
#include "mbsr_test.h"

/* Reads tests/fixtures/image/<name>; returns a malloc'd array (NULL + CUnit failure if missing). */
static inline float *fx_read_raw(const char *name, int64_t n[3]) {
  char rel[256], path[4096];
  snprintf(rel, sizeof rel, "image/%s", name);
  mbsr_test_fixture(rel, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "  fixture %s missing\n", path);
    CU_FAIL("fixture missing");
    return NULL;
  }
  char magic[8];
  int64_t d[3];
  float *a = NULL;
  if (fread(magic, 1, 8, f) == 8 && !memcmp(magic, "MBSRRAW1", 8) && fread(d, sizeof(int64_t), 3, f) == 3 &&
      d[0] > 0 && d[1] > 0 && d[2] > 0 && d[0] * d[1] * d[2] < (1 << 26)) {
    size_t cnt = (size_t)(d[0] * d[1] * d[2]);
    a = malloc(cnt * sizeof(float));
    if (a && fread(a, sizeof(float), cnt, f) != cnt) {
      free(a);
      a = NULL;
    }
  }
  fclose(f);
  if (!a) {
    fprintf(stderr, "  fixture %s unreadable\n", path);
    CU_FAIL("fixture unreadable");
    return NULL;
  }
  memcpy(n, d, sizeof d);
  return a;
}

/* A volume holding a fixture array (affine: vox and origin as given, axis-aligned). */
static inline mbsr_volume *fx_volume(const char *name, const double vox[3], const double origin[3]) {
  int64_t n[3];
  float *a = fx_read_raw(name, n);
  if (!a) return NULL;
  double A[4][4] = {{vox[0], 0, 0, origin[0]}, {0, vox[1], 0, origin[1]}, {0, 0, vox[2], origin[2]}, {0, 0, 0, 1}};
  mbsr_volume *v = mbsr_volume_new(n[0], n[1], n[2], NULL, A);
  if (v) memcpy(v->data, a, (size_t)(n[0] * n[1] * n[2]) * sizeof(float));
  free(a);
  return v;
}

/* Value of `key` in the "name value" file tests/fixtures/<rel> (NAN + CUnit failure when absent). */
static inline double fx_value_in(const char *rel, const char *key) {
  char path[4096], line[512], k[256];
  double v;
  mbsr_test_fixture(rel, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (f) {
    while (fgets(line, sizeof line, f))
      if (line[0] != '#' && sscanf(line, "%255s %lf", k, &v) == 2 && !strcmp(k, key)) {
        fclose(f);
        return v;
      }
    fclose(f);
  }
  fprintf(stderr, "  value %s missing from %s\n", key, path);
  CU_FAIL("fixture value missing");
  return NAN;
}

/* Largest |a[r][c] - value of "<prefix>RC">| over the first 3 rows of an affine, against the "name value"
 * file tests/fixtures/<rel> (keys such as "f114_affine03"). */
static inline double fx_affine_diff(const double a[4][4], const char *rel, const char *prefix) {
  double d = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) {
      char key[128];
      snprintf(key, sizeof key, "%s%d%d", prefix, r, c);
      d = fmax(d, fabs(a[r][c] - fx_value_in(rel, key)));
    }
  return d;
}

/* Value of `key` in image/values.txt. */
static inline double fx_value(const char *key) { return fx_value_in("image/values.txt", key); }

/* The volume tests/fixtures/<dir>/<name> (NIfTI, NRRD, ...; a CUnit failure when it cannot be read). */
static inline mbsr_volume *fx_volume_file(const char *dir, const char *name) {
  char rel[256], path[4096];
  snprintf(rel, sizeof rel, "%s/%s", dir, name);
  mbsr_test_fixture(rel, path, sizeof path);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_volume_read(path, NULL, &v));
  return v;
}

static inline double fx_max_abs_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= m)) m = d; /* NaN propagates as the max */
  }
  return m;
}

#endif
