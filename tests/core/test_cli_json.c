/* The JSON of `mbsr info --json`, `metrics`, `decorr` and `stats` (one Jansson writer, no hand-made
 * escaping) survives odd strings: paths and CSV names with a double quote, a backslash, a newline, a
 * tab and non-ASCII letters, and a path that is not UTF-8 (each bad byte written as U+FFFD). Debian's
 * /usr/bin/python3 reads every document back (json module, strict) and finds the strings equal
 * (tests/core/cli_json_check.py). The odd strings travel in environment variables, so no shell
 * quoting is involved. Needs MBSR_BIN and MBSR_SOURCE_DIR (set by tests/CMakeLists.txt). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

#define PY "/usr/bin/python3"

static char g_check[4096];

static int have_python(void) {
  const char *src = getenv("MBSR_SOURCE_DIR");
  if (!src || mbsr_test_sh(PY " -c 'import json' 2>/dev/null") != 0) {
    mbsr_test_skip(PY " (Debian's python3) or MBSR_SOURCE_DIR is missing");
    return 0;
  }
  snprintf(g_check, sizeof g_check, "%s/tests/core/cli_json_check.py", src);
  return 1;
}

/* mbsr ARGS (which use $P, $M, $CSV... from the environment) > out; then the check of KIND. */
static void run_and_check(const char *kind, const char *args, const char *out) {
  int rc = mbsr_test_sh("'%s' %s > '%s'", mbsr_test_bin(), args, out);
  if (rc) fprintf(stderr, "  mbsr %s: exit %d\n", args, rc);
  MT_ASSERT_INT_EQ(rc, 0);
  rc = mbsr_test_sh(PY " '%s' %s '%s'", g_check, kind, out);
  if (rc) mbsr_test_sh("cat '%s' >&2", out);
  MT_ASSERT_INT_EQ(rc, 0);
}

/* A phantom volume and a mask in directory `dir` (any bytes); their paths into $P and $M. */
static void volume_in(const char *dir) {
  MT_ASSERT_INT_EQ(mkdir(dir, 0755), 0);
  setenv("D", dir, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' phantom --out \"$D\" --n 1 --dims 32,32,24 --quiet", mbsr_test_bin()), 0);
  char p[4096], m[4096];
  snprintf(p, sizeof p, "%s/phantom-00_af50um.nii.gz", dir);
  snprintf(m, sizeof m, "%s/phantom-00_mask50um.nii.gz", dir);
  CU_ASSERT_FATAL(mbsr_file_exists(p) && mbsr_file_exists(m));
  setenv("P", p, 1);
  setenv("M", m, 1);
}

static void test_odd_paths(void) {
  if (!have_python()) return;
  const char *t = mbsr_test_tmpdir();
  char dir[4096], out[4200];
  /* a quote, a backslash, a newline, a tab, non-ASCII (UTF-8) */
  snprintf(dir, sizeof dir, "%s/od\"d \\ dir\nline\t\xc3\xbc\xc3\x9f \xe6\x97\xa5", t);
  volume_in(dir);
  snprintf(out, sizeof out, "%s/info.json", t);
  run_and_check("info", "info --json \"$P\"", out);
  snprintf(out, sizeof out, "%s/metrics.json", t);
  run_and_check("metrics", "metrics \"$P\" \"$P\" --mask \"$M\"", out);
  snprintf(out, sizeof out, "%s/decorr.json", t);
  run_and_check("decorr", "decorr \"$P\" --step 6", out);
  /* --out FILE.json holds the same text as stdout */
  setenv("O", dir, 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' metrics \"$P\" \"$P\" --out \"$O/m.json\" > '%s/m_stdout.json' && cmp \"$O/m.json\" '%s/m_stdout.json'",
                                mbsr_test_bin(), t, t), 0);
}

/* A path that is not UTF-8: mbsr writes U+FFFD for the bad byte (and the JSON stays valid). */
static void test_non_utf8_path(void) {
  if (!have_python()) return;
  const char *t = mbsr_test_tmpdir();
  char dir[4096], out[4200];
  snprintf(dir, sizeof dir, "%s/latin1-\xe9t\xe9-\xff", t);
  volume_in(dir);
  snprintf(out, sizeof out, "%s/info_latin1.json", t);
  run_and_check("info", "info --json \"$P\"", out);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'latin1-\xef\xbf\xbdt\xef\xbf\xbd-\xef\xbf\xbd/' '%s'", out), 0);
}

/* CSV column names and group labels with the same odd characters (CSV-quoted). */
static void test_odd_csv(void) {
  if (!have_python()) return;
  const char *t = mbsr_test_tmpdir();
  char csv[4096];
  snprintf(csv, sizeof csv, "%s/odd \"stats\" \\ \xc3\xa9.csv", t);
  FILE *f = fopen(csv, "w");
  CU_ASSERT_FATAL(f != NULL);
  /* columns: col "a" \ é | b<TAB>x | grp ü ; labels: g "1" \ , 日本 */
  fprintf(f, "\"col \"\"a\"\" \\ \xc3\xa9\",\"b\tx\",\"grp \xc3\xbc\"\n"
             "1.0,2.5,\"g \"\"1\"\" \\\"\n2.0,2.0,\"g \"\"1\"\" \\\"\n3.5,5.0,\xe6\x97\xa5\xe6\x9c\xac\n4.0,4.5,\xe6\x97\xa5\xe6\x9c\xac\n");
  fclose(f);
  setenv("CSV", csv, 1);
  setenv("COLA", "col \"a\" \\ \xc3\xa9", 1);
  setenv("COLB", "b\tx", 1);
  setenv("GROUP", "grp \xc3\xbc", 1);
  setenv("L1", "g \"1\" \\", 1);
  setenv("L2", "\xe6\x97\xa5\xe6\x9c\xac", 1);
  char out[4200];
  snprintf(out, sizeof out, "%s/ttest.json", t);
  run_and_check("ttest", "stats ttest \"$CSV\" --a \"$COLA\" --b \"$COLB\"", out);
  snprintf(out, sizeof out, "%s/welch.json", t);
  run_and_check("welch", "stats welch \"$CSV\" --value \"$COLA\" --group \"$GROUP\"", out);
}

int main(void) {
  static const mbsr_test_case tc[] = {{"odd_paths", test_odd_paths},
                                      {"non_utf8_path", test_non_utf8_path},
                                      {"odd_csv", test_odd_csv},
                                      {NULL, NULL}};
  return mbsr_test_main("cli_json", tc);
}
