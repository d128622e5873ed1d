/* core: error table, atomic files, size arithmetic, RNG determinism. */
#include <string.h>
#include <unistd.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

static void test_errors(void) {
  CU_ASSERT_STRING_EQUAL(mbsr_strerror(MBSR_EFORMAT), "corrupt or unrecognised file format");
  int rc = mbsr_error(MBSR_EINVAL, "x.nii: bad %s", "thing");
  MT_ASSERT_INT_EQ(rc, MBSR_EINVAL);
  CU_ASSERT_STRING_EQUAL(mbsr_last_error(), "x.nii: bad thing");
  mbsr_error_prefix(rc, "reading: ");
  CU_ASSERT_STRING_EQUAL(mbsr_last_error(), "reading: x.nii: bad thing");
}

static void test_mul_size(void) {
  size_t r = 0;
  MT_ASSERT_INT_EQ(mbsr_mul_size(&r, 3, (size_t)10, (size_t)20, (size_t)30), 0);
  MT_ASSERT_INT_EQ(r, 6000);
  MT_ASSERT_INT_EQ(mbsr_mul_size(&r, 2, SIZE_MAX / 2, (size_t)3), MBSR_ERANGE);
}

static void test_atomic_file(void) {
  char final[4096], tmp[4096];
  snprintf(final, sizeof final, "%s/out.nii.gz", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_tmp_path(final, tmp, sizeof tmp));
  CU_ASSERT(strstr(tmp, ".nii.gz") != NULL);
  CU_ASSERT(strcmp(tmp, final) != 0);
  FILE *f = fopen(tmp, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs("x", f);
  fclose(f);
  CU_ASSERT(!mbsr_file_exists(final));
  MT_ASSERT_OK(mbsr_commit_file(tmp, final));
  CU_ASSERT(mbsr_file_exists(final));
  CU_ASSERT(!mbsr_file_exists(tmp));
}

static void test_rng(void) {
  mbsr_rng *a = mbsr_rng_new(42), *b = mbsr_rng_new(42), *c = mbsr_rng_new(43);
  int same = 1, diff = 0;
  for (int i = 0; i < 100; i++) {
    double x = mbsr_rng_uniform(a), y = mbsr_rng_uniform(b), z = mbsr_rng_uniform(c);
    same &= x == y;
    diff |= x != z;
    CU_ASSERT(x >= 0 && x < 1);
  }
  CU_ASSERT(same);
  CU_ASSERT(diff);
  mbsr_rng_free(a);
  mbsr_rng_free(b);
  mbsr_rng_free(c);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"errors", test_errors},
                                         {"mul_size", test_mul_size},
                                         {"atomic_file", test_atomic_file},
                                         {"rng", test_rng},
                                         {NULL, NULL}};
  return mbsr_test_main("core", cases);
}
