/* Man pages and bash completion, generated from the CLI (scripts/gen_man.sh, scripts/gen_completion.sh):
 *  - one page per command plus mbsr.1, each rendered by `man -l` without warnings, with its NAME line
 *    (the command table's description) and its options;
 *  - the completion offers every command, and for each command exactly the options its getopt table
 *    accepts (tests/core/check_completion.sh), flag values, the stats tests;
 *  - the build tree holds both (CMake generates them after the CLI) and `cmake --install` puts them in
 *    share/man/man1 and share/bash-completion/completions.
 * Needs MBSR_BIN and MBSR_SOURCE_DIR (set by tests/CMakeLists.txt). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

static const char *src(void) {
  const char *s = getenv("MBSR_SOURCE_DIR");
  if (!s) fprintf(stderr, "  MBSR_SOURCE_DIR is not set (run through ctest)\n");
  return s;
}

/* The build directory: <build>/bin/mbsr -> <build>. */
static void build_dir(char *buf, size_t n) {
  char bin[4096];
  snprintf(bin, sizeof bin, "%s", mbsr_test_bin());
  snprintf(buf, n, "%s", dirname(dirname(bin)));
}

static void test_man_pages(void) {
  if (mbsr_test_sh("command -v help2man > /dev/null && command -v man > /dev/null") != 0) {
    mbsr_test_skip("help2man or man is not installed (Debian: help2man, man-db)");
    return;
  }
  const char *s = src(), *t = mbsr_test_tmpdir();
  CU_ASSERT_FATAL(s != NULL);
  MT_ASSERT_INT_EQ(mbsr_test_sh("bash '%s/scripts/gen_man.sh' '%s' '%s/man1' > /dev/null", s, mbsr_test_bin(), t), 0);
  /* every command of `mbsr --help`, and mbsr itself: rendered, no groff warnings, the NAME line */
  int rc = mbsr_test_sh(
      "cd '%s' && export LC_ALL=C MANWIDTH=100 MANPAGER=cat OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fail=0; "
      "'%s' --help | sed -n '/^commands:/,$p' | sed -n 's/^  \\([a-z][a-z0-9]*\\)  *\\(.*\\)$/\\1\\t\\2/p' > table.tsv; "
      "[ $(wc -l < table.tsv) -ge 18 ] || fail=1; "
      "man -l --warnings man1/mbsr.1 > mbsr.txt 2> mbsr.err && [ ! -s mbsr.err ] && grep -q 'mbsr - 3-D super-resolution' mbsr.txt || "
      "  { echo '  man -l man1/mbsr.1 failed'; cat mbsr.err; fail=1; }; "
      "while IFS=\"$(printf '\\t')\" read -r c d; do "
      "  p=man1/mbsr-$c.1; [ -f $p ] || { echo \"  no $p\"; fail=1; continue; }; "
      "  man -l --warnings $p > $c.txt 2> $c.err || { echo \"  man -l $p failed\"; fail=1; }; "
      "  [ -s $c.err ] && { echo \"  man -l $p warns:\"; cat $c.err; fail=1; }; "
      "  first=$(echo \"${d%% \\[MPI\\]}\" | cut -c1-25); "
      "  tr -s ' \\n' '  ' < $c.txt | grep -qF \"mbsr-$c - $first\" || { echo \"  $p: no NAME line 'mbsr-$c - $first'\"; fail=1; }; "
      "done < table.tsv; "
      "grep -q -- '--mask-threshold' mask.txt && grep -q -- '--interp' upsample.txt && grep -q -- '--patches' train.txt || fail=1; "
      "ls man1/*.1 | wc -l | grep -qx 19 || { echo '  not 19 pages'; fail=1; }; exit $fail",
      t, mbsr_test_bin());
  MT_ASSERT_INT_EQ(rc, 0);
}

static void test_completion(void) {
  const char *s = src(), *t = mbsr_test_tmpdir();
  CU_ASSERT_FATAL(s != NULL);
  MT_ASSERT_INT_EQ(mbsr_test_sh("bash '%s/scripts/gen_completion.sh' '%s' '%s/mbsr.bash' > /dev/null", s, mbsr_test_bin(), t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("bash '%s/tests/core/check_completion.sh' '%s' '%s/mbsr.bash' '%s'", s, mbsr_test_bin(), t, s), 0);
}

/* What CMake made after building the CLI, and what `cmake --install` installs. */
static void test_built_and_installed(void) {
  const char *t = mbsr_test_tmpdir();
  char b[4096], comp[4200], page[4200];
  build_dir(b, sizeof b);
  snprintf(comp, sizeof comp, "%s/share/bash-completion/completions/mbsr", b);
  snprintf(page, sizeof page, "%s/share/man/man1/mbsr-apply.1", b);
  if (!mbsr_file_exists(comp)) {
    mbsr_test_skip("the build tree has no generated completion (built only some targets? `cmake --build` builds mbsr_docs)");
    return;
  }
  /* the build's completion is what the generator makes from this CLI */
  MT_ASSERT_INT_EQ(mbsr_test_sh("bash '%s/scripts/gen_completion.sh' '%s' '%s/fresh.bash' > /dev/null && cmp '%s/fresh.bash' '%s'", src(),
                                mbsr_test_bin(), t, t, comp), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cmake --install '%s' --prefix '%s/prefix' > '%s/install.log' 2>&1", b, t, t), 0);
  char p[4400];
  snprintf(p, sizeof p, "%s/prefix/share/bash-completion/completions/mbsr", t);
  CU_ASSERT(mbsr_file_exists(p));
  if (mbsr_file_exists(page)) { /* help2man was found at configure time */
    MT_ASSERT_INT_EQ(mbsr_test_sh("ls '%s'/prefix/share/man/man1/mbsr*.1 | wc -l | grep -qx 19", t), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("MANPAGER=cat man -l '%s/prefix/share/man/man1/mbsr-train.1' | grep -q -- '--patches'", t), 0);
  }
}

int main(void) {
  static const mbsr_test_case tc[] = {{"man_pages", test_man_pages},
                                      {"completion", test_completion},
                                      {"built_and_installed", test_built_and_installed},
                                      {NULL, NULL}};
  return mbsr_test_main("cli_man", tc);
}
