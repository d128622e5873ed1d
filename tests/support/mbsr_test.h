/* CUnit helpers shared by every test program: a runner whose exit status reflects failures,
 * assertion macros that print both operands, visible skips, paths to fixtures and ../shared. */
#ifndef MBSR_TEST_H
#define MBSR_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>

typedef struct {
  const char *name;
  void (*fn)(void);
} mbsr_test_case;

/* Run one suite of tests (array ends with {NULL, NULL}); returns the process exit status:
 * 1 when a test failed (or did not run), MBSR_TEST_SKIP (77, CTest's SKIP_RETURN_CODE) when
 * every test skipped visibly (mbsr_test_skip, e.g. ../shared/data absent), else 0 (also when
 * only some tests skipped: their SKIPPED lines are in the log and tests/run.sh lists them).
 * Under MPI the caller handles MPI_Init/Finalize (and returns the same status on every rank). */
#define MBSR_TEST_SKIP 77
int mbsr_test_main(const char *suite, const mbsr_test_case *cases);

/* ../shared/data (from $MBSR_SHARED_DIR), or NULL when absent. */
const char *mbsr_test_data_dir(void);
/* Path of a file under ../shared/data into buf; returns NULL (and prints a visible SKIP line)
 * when ../shared is absent. */
const char *mbsr_test_data(const char *rel, char *buf, size_t n);
/* tests/fixtures/<rel> */
const char *mbsr_test_fixture(const char *rel, char *buf, size_t n);
/* A fresh scratch directory for this test program: build/test-tmp/<prog>-<pid>. */
const char *mbsr_test_tmpdir(void);
/* Path of the built mbsr CLI. */
const char *mbsr_test_bin(void);
/* Run a shell command; returns its exit status (or -1). Output goes to the test log. */
int mbsr_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The whole file as a NUL-terminated string (malloc'd; NULL when it cannot be read). */
char *mbsr_test_slurp(const char *path);
void mbsr_test_skip(const char *why); /* prints "SKIPPED: <test>: why" visibly */

#define MBSR_SKIP_IF_NO_DATA()                                       \
  do {                                                               \
    if (!mbsr_test_data_dir()) {                                     \
      mbsr_test_skip("../shared/data is absent");                    \
      return;                                                        \
    }                                                                \
  } while (0)

#define MT_ASSERT_INT_EQ(a, b)                                                                     \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (_a != _b) fprintf(stderr, "  %s:%d: %s = %lld, expected %s = %lld\n", __FILE__, __LINE__, #a, _a, #b, _b); \
    CU_ASSERT(_a == _b);                                                                           \
  } while (0)

#define MT_ASSERT_NEAR(a, b, tol)                                                                  \
  do {                                                                                             \
    double _a = (double)(a), _b = (double)(b), _t = (double)(tol);                                 \
    int _ok = fabs(_a - _b) <= _t;                                                                 \
    if (!_ok) fprintf(stderr, "  %s:%d: %s = %.10g, %s = %.10g, |diff| %.3g > %.3g\n", __FILE__, __LINE__, #a, _a, #b, _b, fabs(_a - _b), _t); \
    CU_ASSERT(_ok);                                                                                \
  } while (0)

/* |a-b| <= tol * max(|b|, floor) */
#define MT_ASSERT_REL(a, b, tol, floor_)                                                           \
  do {                                                                                             \
    double _a = (double)(a), _b = (double)(b), _t = (double)(tol) * fmax(fabs(_b), (double)(floor_)); \
    int _ok = fabs(_a - _b) <= _t;                                                                 \
    if (!_ok) fprintf(stderr, "  %s:%d: %s = %.12g, %s = %.12g, rel diff %.3g > %.3g\n", __FILE__, __LINE__, #a, _a, #b, _b, fabs(_a - _b) / fmax(fabs(_b), (double)(floor_)), (double)(tol)); \
    CU_ASSERT(_ok);                                                                                \
  } while (0)

#define MT_ASSERT_OK(expr)                                                                         \
  do {                                                                                             \
    int _rc = (expr);                                                                              \
    if (_rc != 0) fprintf(stderr, "  %s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, _rc, mbsr_last_error()); \
    CU_ASSERT_FATAL(_rc == 0);                                                                     \
  } while (0)

#endif
