#!/usr/bin/env bash
# The test command (README quick start; .ci/run calls it). Installs missing Debian packages,
# configures and builds as needed, then runs every CTest test (CUnit suites; MPI ones on 2 ranks).
#   bash tests/run.sh              all tests, normal build
#   bash tests/run.sh -R io_       only tests matching a regex (any ctest arguments)
#   MBSR_SANITIZE=1 bash tests/run.sh   the same suite under ASan/UBSan (build-asan/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/deps.sh" test
dir=$(bash "$root/scripts/build.sh" | tail -n 1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ "${MBSR_SANITIZE:-0}" = 1 ]; then
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cd "$dir"
rc=0
ctest --output-on-failure -j 2 "$@" || rc=$?
# ctest hides the output of passing and skipped tests: show the visible skips (e.g. ../shared/data
# absent). A program whose every test skipped exits 77 and ctest lists it as "Skipped" (not a
# failure: ctest's status stays 0); one that skipped only some tests passes. Both kinds are listed.
if grep -q '^SKIPPED: ' Testing/Temporary/LastTest.log 2>/dev/null; then
  echo "Skipped test cases (whole programs skipped are also in ctest's \"did not run\" list):"
  grep '^SKIPPED: ' Testing/Temporary/LastTest.log | sort | uniq -c | sed 's/^/  /'
fi
exit $rc
