/* Shared CUnit runner and helpers (see mbsr_test.h). */
#include "mbsr_test.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbsr/core.h"

static int g_skips = 0;         /* SKIPPED lines printed */
static int g_skipped_tests = 0; /* tests that printed at least one */
static CU_pTest g_last_skipped = NULL;

const char *mbsr_test_data_dir(void) {
  static char buf[4096];
  static int done = 0;
  static const char *res = NULL;
  if (!done) {
    done = 1;
    const char *s = getenv("MBSR_SHARED_DIR");
    if (s) {
      snprintf(buf, sizeof buf, "%s/data", s);
      if (mbsr_is_dir(buf)) res = buf;
    }
  }
  return res;
}

const char *mbsr_test_data(const char *rel, char *buf, size_t n) {
  const char *d = mbsr_test_data_dir();
  if (!d) {
    mbsr_test_skip("../shared/data is absent");
    return NULL;
  }
  snprintf(buf, n, "%s/%s", d, rel);
  return buf;
}

const char *mbsr_test_fixture(const char *rel, char *buf, size_t n) {
  const char *f = getenv("MBSR_FIXTURES");
  snprintf(buf, n, "%s/%s", f ? f : "tests/fixtures", rel);
  return buf;
}

const char *mbsr_test_tmpdir(void) {
  static char buf[4096];
  if (!buf[0]) {
    const char *t = getenv("MBSR_TEST_TMP");
    char exe[1024] = "test";
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) exe[k] = 0;
    const char *base = strrchr(exe, '/');
    snprintf(buf, sizeof buf, "%s/%s-%ld", t ? t : "/tmp/mbsr-test", base ? base + 1 : exe, (long)getpid());
    if (mbsr_mkdir_p(buf) != 0) fprintf(stderr, "cannot create %s: %s\n", buf, mbsr_last_error());
  }
  return buf;
}

const char *mbsr_test_bin(void) {
  const char *b = getenv("MBSR_BIN");
  return b ? b : "mbsr";
}

int mbsr_test_sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fflush(stderr);
  int st = system(cmd);
  if (st == -1) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *mbsr_test_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *b = NULL;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) != NULL) {
    if (fread(b, 1, (size_t)n, f) == (size_t)n) b[n] = 0;
    else free(b), b = NULL;
  }
  fclose(f);
  return b;
}

void mbsr_test_skip(const char *why) {
  CU_pTest t = CU_get_current_test();
  printf("\nSKIPPED: %s: %s\n", t ? t->pName : "?", why);
  fflush(stdout);
  g_skips++;
  if (!t || t != g_last_skipped) g_skipped_tests++;
  g_last_skipped = t;
}

int mbsr_test_main(const char *suite, const mbsr_test_case *cases) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 1;
  CU_pSuite s = CU_add_suite(suite, NULL, NULL);
  if (!s) return 1;
  int n = 0;
  for (const mbsr_test_case *c = cases; c->name; c++, n++)
    if (!CU_add_test(s, c->name, c->fn)) return 1;
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (g_skips) printf("%s: %d of %d test(s) skipped visibly (see SKIPPED lines)\n", suite, g_skipped_tests, n);
  int failed = ran != (unsigned)n || fails;
  int all_skipped = n > 0 && g_skipped_tests >= n;
  /* Under MPI every rank returns the same status: a failure on any rank is a failure, "all
   * skipped" only if so on every rank (callers return it as it is). */
  int mpi_up = 0, mpi_down = 0;
  MPI_Initialized(&mpi_up);
  if (mpi_up) MPI_Finalized(&mpi_down);
  if (mpi_up && !mpi_down) {
    int f = failed, sk = all_skipped;
    MPI_Allreduce(&f, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&sk, &all_skipped, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  }
  if (failed) return 1;
  /* every test skipped (e.g. ../shared/data absent): 77, which CTest reports as "Skipped"
   * (SKIP_RETURN_CODE in tests/CMakeLists.txt). Only some skipped: 0, the program passed what it
   * could run, and tests/run.sh lists the SKIPPED lines. */
  return all_skipped ? MBSR_TEST_SKIP : 0;
}
