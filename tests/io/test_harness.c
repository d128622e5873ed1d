/* The test harness's exit status (tests/support, issue 9): a program whose every test skipped
 * visibly (../shared/data absent) exits 77, which CTest shows as "Skipped" (SKIP_RETURN_CODE);
 * it used to exit 0 and CTest reported it as Passed. A program where only some tests skipped
 * exits 0 (and prints the SKIPPED lines tests/run.sh lists); a failure wins over skips.
 * The cases run this program again (/proc/self/exe) with MBSR_HARNESS_MODE set, and one real
 * program (io_test_realdata) without ../shared. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr_test.h"

static void skip_one(void) { mbsr_test_skip("pretend ../shared/data is absent"); }
static void skip_twice(void) {
  mbsr_test_skip("first reason");
  mbsr_test_skip("second reason");
}
static void pass_one(void) { CU_ASSERT(1 + 1 == 2); }
static void fail_one(void) { CU_ASSERT(1 + 1 == 3); }

static int run_mode(const char *mode) {
  static const mbsr_test_case all_skip[] = {{"a", skip_one}, {"b", skip_twice}, {NULL, NULL}};
  static const mbsr_test_case partial[] = {{"a", skip_one}, {"b", pass_one}, {NULL, NULL}};
  static const mbsr_test_case fail_skip[] = {{"a", skip_one}, {"b", fail_one}, {NULL, NULL}};
  static const mbsr_test_case skip_and_fail[] = {{"a", skip_one}, {"b", skip_twice}, {"c", fail_one}, {NULL, NULL}};
  if (!strcmp(mode, "all_skip")) return mbsr_test_main("harness_all_skip", all_skip);
  if (!strcmp(mode, "partial")) return mbsr_test_main("harness_partial", partial);
  if (!strcmp(mode, "fail_skip")) return mbsr_test_main("harness_fail_skip", fail_skip);
  if (!strcmp(mode, "skip_and_fail")) return mbsr_test_main("harness_skip_and_fail", skip_and_fail);
  return 3;
}

static int self(const char *mode, const char *log) {
  char exe[4096];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  CU_ASSERT_FATAL(k > 0);
  exe[k] = 0;
  return mbsr_test_sh("MBSR_HARNESS_MODE=%s %s >%s 2>&1", mode, exe, log);
}

static void test_exit_status(void) {
  char log[4096];
  snprintf(log, sizeof log, "%s/harness.log", mbsr_test_tmpdir());
  MT_ASSERT_INT_EQ(self("all_skip", log), MBSR_TEST_SKIP);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -c '^SKIPPED: ' %s | grep -qx 3", log), 0);
  MT_ASSERT_INT_EQ(self("partial", log), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q '^SKIPPED: a: pretend' %s", log), 0);
  MT_ASSERT_INT_EQ(self("fail_skip", log), 1);
  MT_ASSERT_INT_EQ(self("skip_and_fail", log), 1);
}

/* A real program without ../shared: every test skips -> 77 */
static void test_realdata_without_shared(void) {
  char bin[4096], log[4096];
  const char *cli = mbsr_test_bin(); /* <build>/bin/mbsr; the tests are in <build>/tests */
  const char *slash = strrchr(cli, '/');
  if (!slash) {
    mbsr_test_skip("MBSR_BIN is not a path");
    return;
  }
  snprintf(bin, sizeof bin, "%.*s/../tests/io_test_realdata", (int)(slash - cli), cli);
  if (access(bin, X_OK) != 0) {
    mbsr_test_skip("io_test_realdata is not built");
    return;
  }
  snprintf(log, sizeof log, "%s/realdata.log", mbsr_test_tmpdir());
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_SHARED_DIR=/nonexistent-shared %s >%s 2>&1", bin, log), MBSR_TEST_SKIP);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q '^SKIPPED: .*../shared/data is absent' %s", log), 0);
}

int main(void) {
  const char *mode = getenv("MBSR_HARNESS_MODE");
  if (mode) return run_mode(mode);
  static const mbsr_test_case cases[] = {{"exit_status", test_exit_status},
                                         {"realdata_without_shared", test_realdata_without_shared},
                                         {NULL, NULL}};
  return mbsr_test_main("io_harness", cases);
}
