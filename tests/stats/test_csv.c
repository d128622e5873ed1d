/* CSV reader bounds and linear time (issue 9): a header of 100,000 columns took 40 s before
 * failing (every pair of names compared); group labels were matched the same way. Now: bounded
 * fields per record, record length and total fields, each an error naming file:line, found as
 * soon as it is seen; duplicates and groups found by sorting. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/stats.h"
#include "mbsr_test.h"

static const char *tmp(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", mbsr_test_tmpdir(), name);
  return buf;
}

static double read_timed(const char *path, int *rc, mbsr_csv **t) {
  double t0 = mbsr_now();
  *t = NULL;
  *rc = mbsr_csv_read(path, t);
  double s = mbsr_now() - t0;
  printf("\n    %s: %.3f s: %s", strrchr(path, '/') + 1, s, *rc ? mbsr_last_error() : "ok");
  return s;
}

/* a header of ncols names ("c0,c1,..."), optionally one data row */
static void write_wide(const char *path, int ncols, const char *dup, int data_row) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  for (int c = 0; c < ncols; c++) fprintf(f, "%sc%d", c ? "," : "", c);
  if (dup) fprintf(f, ",%s", dup);
  fputc('\n', f);
  if (data_row) {
    for (int c = 0; c < ncols + (dup != NULL); c++) fprintf(f, "%s%d", c ? "," : "", c);
    fputc('\n', f);
  }
  fclose(f);
}

static void test_wide_header(void) {
  char p[4096];
  mbsr_csv *t;
  int rc;
  write_wide(tmp("wide_100k.csv", p, sizeof p), 100000, NULL, 0);
  double s = read_timed(p, &rc, &t);
  MT_ASSERT_INT_EQ(rc, MBSR_ERANGE);
  CU_ASSERT(s < 2.0);
  CU_ASSERT(strstr(mbsr_last_error(), "wide_100k.csv:1: more than 4096 fields") != NULL);
  /* the limit itself is accepted */
  write_wide(tmp("wide_4096.csv", p, sizeof p), 4096, NULL, 1);
  s = read_timed(p, &rc, &t);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(s < 2.0);
  if (t) {
    MT_ASSERT_INT_EQ(t->ncols, 4096);
    MT_ASSERT_INT_EQ(t->nrows, 1);
    CU_ASSERT_STRING_EQUAL(t->names[4095], "c4095");
  }
  mbsr_csv_free(t);
  write_wide(tmp("wide_4097.csv", p, sizeof p), 4097, NULL, 1);
  read_timed(p, &rc, &t);
  MT_ASSERT_INT_EQ(rc, MBSR_ERANGE);
  /* a duplicate name among many: found, and the first repeated one is named */
  write_wide(tmp("dup.csv", p, sizeof p), 4000, "c17", 1);
  read_timed(p, &rc, &t);
  MT_ASSERT_INT_EQ(rc, MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "column name 'c17' appears twice") != NULL);
  FILE *f = fopen(tmp("dup2.csv", p, sizeof p), "w");
  fputs("x,b,a,b,a,y\n1,2,3,4,5,6\n", f);
  fclose(f);
  read_timed(p, &rc, &t);
  CU_ASSERT(strstr(mbsr_last_error(), "column name 'b' appears twice") != NULL);
  /* empty names may repeat (unnamed columns), as before */
  f = fopen(tmp("empty_names.csv", p, sizeof p), "w");
  fputs("a,,\n1,2,3\n", f);
  fclose(f);
  read_timed(p, &rc, &t);
  MT_ASSERT_INT_EQ(rc, 0);
  mbsr_csv_free(t);
}

static void test_long_records(void) {
  char p[4096];
  mbsr_csv *t;
  int rc;
  /* one field of 2 MiB */
  FILE *f = fopen(tmp("long_field.csv", p, sizeof p), "w");
  fputs("a,b\n1,", f);
  for (int i = 0; i < (2 << 20); i++) fputc('9', f);
  fputs("\n", f);
  fclose(f);
  double s = read_timed(p, &rc, &t);
  MT_ASSERT_INT_EQ(rc, MBSR_ERANGE);
  CU_ASSERT(s < 2.0);
  CU_ASSERT(strstr(mbsr_last_error(), "long_field.csv:2: record longer than") != NULL);
  /* an unbalanced quote swallowing the rest of a long file */
  f = fopen(tmp("open_quote.csv", p, sizeof p), "w");
  fputs("a,b\n\"1,2\n", f);
  for (int i = 0; i < 200000; i++) fputs("3,4\n", f);
  fclose(f);
  s = read_timed(p, &rc, &t);
  CU_ASSERT(rc < 0);
  CU_ASSERT(s < 2.0);
  CU_ASSERT(strstr(mbsr_last_error(), "open_quote.csv:2:") != NULL);
}

static void test_groups_linear(void) {
  char p[4096];
  mbsr_csv *t;
  int rc;
  /* first-appearance order with repeats */
  FILE *f = fopen(tmp("groups.csv", p, sizeof p), "w");
  fputs("g,v\nc,1\na,2\nc,3\nb,4\na,5\n", f);
  fclose(f);
  read_timed(p, &rc, &t);
  CU_ASSERT_FATAL(rc == 0);
  int g[5], k = 0;
  const char **lab = NULL;
  MT_ASSERT_OK(mbsr_csv_groups(t, 0, g, &k, &lab));
  MT_ASSERT_INT_EQ(k, 3);
  int want[5] = {0, 1, 0, 2, 1};
  for (int r = 0; r < 5; r++) MT_ASSERT_INT_EQ(g[r], want[r]);
  CU_ASSERT_STRING_EQUAL(lab[0], "c");
  CU_ASSERT_STRING_EQUAL(lab[1], "a");
  CU_ASSERT_STRING_EQUAL(lab[2], "b");
  free(lab);
  mbsr_csv_free(t);
  /* 200,000 distinct labels (was 2e10 comparisons) */
  enum { N = 200000 };
  f = fopen(tmp("groups_many.csv", p, sizeof p), "w");
  fputs("g,v\n", f);
  for (int r = 0; r < N; r++) fprintf(f, "s%d,%d\n", (r * 7919) % N, r);
  fclose(f);
  read_timed(p, &rc, &t);
  CU_ASSERT_FATAL(rc == 0);
  int *gg = malloc(sizeof(int) * N);
  double t0 = mbsr_now();
  MT_ASSERT_OK(mbsr_csv_groups(t, 0, gg, &k, NULL));
  double s = mbsr_now() - t0;
  printf("\n    groups of %d distinct labels: %.3f s", N, s);
  CU_ASSERT(s < 2.0);
  MT_ASSERT_INT_EQ(k, N);
  int ok = 1;
  for (int r = 0; r < N; r++) ok &= gg[r] == r;
  CU_ASSERT(ok);
  free(gg);
  /* an empty label is still an error naming the line */
  mbsr_csv_free(t);
  f = fopen(tmp("groups_empty.csv", p, sizeof p), "w");
  fputs("g,v\na,1\n,2\n", f);
  fclose(f);
  read_timed(p, &rc, &t);
  CU_ASSERT_FATAL(rc == 0);
  CU_ASSERT(mbsr_csv_groups(t, 0, g, &k, NULL) == MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "groups_empty.csv:3:") != NULL);
  mbsr_csv_free(t);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"wide_header", test_wide_header},
                                         {"long_records", test_long_records},
                                         {"groups_linear", test_groups_linear},
                                         {NULL, NULL}};
  return mbsr_test_main("stats_csv", cases);
}
