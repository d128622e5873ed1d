/* Installable as HPC sites expect: `cmake --install` into a temporary prefix puts the CLI, the
 * library, the headers, the CMake package, mbsr.pc and share/mbsr in place, and an external program
 * (tests/fixtures/install) builds and runs against it with find_package(mbsr) and with pkg-config. */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

static void test_install_and_consume(void) {
  const char *t = mbsr_test_tmpdir(), *src = getenv("MBSR_SOURCE_DIR");
  char bin[4096], bdir[4096], fx[4096];
  snprintf(bin, sizeof bin, "%s", mbsr_test_bin()); /* <build>/bin/mbsr */
  snprintf(bdir, sizeof bdir, "%s", dirname(dirname(bin)));
  CU_ASSERT_FATAL(src != NULL);
  mbsr_test_fixture("install", fx, sizeof fx);
  double t0 = mbsr_now();
  MT_ASSERT_INT_EQ(mbsr_test_sh("cmake --install '%s' --prefix '%s/prefix' > '%s/install.log' 2>&1", bdir, t, t), 0);
  const char *must[] = {"bin/mbsr", "include/mbsr/model.h", "include/mbsr/version.h", "share/mbsr/experiments/table1.yaml",
                        "share/mbsr/slurm/submit", "share/mbsr/pipelines/real.sh", "share/doc/mbsr/LICENSE"};
  for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
    char p[8192];
    snprintf(p, sizeof p, "%s/prefix/%s", t, must[i]);
    if (!mbsr_file_exists(p)) printf("\n  missing after install: %s\n", must[i]);
    CU_ASSERT(mbsr_file_exists(p));
  }
  MT_ASSERT_INT_EQ(mbsr_test_sh("ls '%s'/prefix/lib*/libmbsr.a '%s'/prefix/lib*/cmake/mbsr/mbsrConfig.cmake '%s'/prefix/lib*/pkgconfig/mbsr.pc "
                                "> /dev/null", t, t, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s/prefix/bin/mbsr' --help | grep -q '^mbsr '", t), 0);
  /* find_package(mbsr) */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cmake -S '%s' -B '%s/cmk' -DCMAKE_PREFIX_PATH='%s/prefix' > '%s/cmk.log' 2>&1 && "
                                "cmake --build '%s/cmk' >> '%s/cmk.log' 2>&1", fx, t, t, t, t, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s/cmk/consumer' | grep -q '4x3x2 at 0.1 mm, first voxel 28.5'", t), 0);
  /* pkg-config */
  MT_ASSERT_INT_EQ(mbsr_test_sh("export PKG_CONFIG_PATH=$(dirname $(find '%s/prefix' -name mbsr.pc | head -n 1)); "
                                "cc -o '%s/pc_consumer' '%s/consumer.c' $(pkg-config --cflags --libs mbsr) > '%s/pc.log' 2>&1", t, t, fx, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s/pc_consumer' | grep -q '4x3x2 at 0.1 mm, first voxel 28.5'", t), 0);
  printf("\n  install + find_package + pkg-config consumers: %.1f s\n", mbsr_now() - t0);
}

/* Off Debian: scripts/deps.sh without dpkg/apt-get on PATH (or with MBSR_NO_DEPS=1) installs nothing,
 * lists what is needed and returns 0; a configure without tests does not need CUnit. */
static void test_off_debian(void) {
  const char *t = mbsr_test_tmpdir(), *src = getenv("MBSR_SOURCE_DIR");
  CU_ASSERT_FATAL(src != NULL);
  MT_ASSERT_INT_EQ(mbsr_test_sh("mkdir -p '%s/nodpkg' && for c in bash id; do ln -sf \"$(command -v $c)\" '%s/nodpkg/'; done", t, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("PATH='%s/nodpkg' bash '%s/scripts/deps.sh' test 2> '%s/deps.log'", t, src, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'not a Debian/Ubuntu system (no dpkg/apt-get): no packages installed' '%s/deps.log'", t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_NO_DEPS=1 bash '%s/scripts/deps.sh' all 2>&1 | grep -q 'MBSR_NO_DEPS=1: no packages installed'", src), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cmake -S '%s' -B '%s/notests' -DMBSR_BUILD_TESTS=OFF > '%s/notests.log' 2>&1", src, t, t), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("! grep -q '^CUNIT_FOUND' '%s/notests/CMakeCache.txt'", t), 0);
}

int main(void) {
  const mbsr_test_case cases[] = {{"install_and_consume", test_install_and_consume}, {"off_debian", test_off_debian}, {NULL, NULL}};
  return mbsr_test_main("install", cases);
}
