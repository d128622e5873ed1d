/* libFuzzer harness: CSV tables through mbsr_csv_read, then every column as numbers and as group
 * labels (what `mbsr stats` and the report do with them). */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "mbsr/core.h"
#include "mbsr/stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (fuzz_write("in.csv", data, size, 0, path, sizeof path)) abort();
  mbsr_csv *t = NULL;
  if (mbsr_csv_read(path, &t) != 0) return 0;
  size_t n = t->nrows > 0 ? (size_t)t->nrows : 1;
  double *x = malloc(n * sizeof *x);
  int *g = malloc(n * sizeof *g);
  for (int c = 0; c < t->ncols && x && g; c++) {
    if (mbsr_csv_col(t, t->names[c]) < 0) abort(); /* every header name is found */
    (void)mbsr_csv_numeric(t, c, x);
    int k = 0;
    const char **labels = NULL;
    if (mbsr_csv_groups(t, c, g, &k, &labels) == 0) {
      for (int r = 0; r < t->nrows; r++)
        if (g[r] < 0 || g[r] >= k) abort();
      free(labels);
    }
  }
  (void)mbsr_csv_col(t, "no such column");
  free(x);
  free(g);
  mbsr_csv_free(t);
  return 0;
}
