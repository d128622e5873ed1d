/* On the real AF data (../shared/data/af: the CCF template + the STPT individual brain, TIFF),
 * 100 -> 200 um pairs: prep (2 ranks), then a short data-parallel training run of a small ResNet
 * (2 ranks) brings the validation loss below the cubic baseline's. Skips visibly without data.
 * Kept short (< 60 s): 300 patches per subject, 4 epochs of 30 steps. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

#define MPIRUN "mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2"

static double last_num(const char *file, const char *key) {
  FILE *f = fopen(file, "r");
  if (!f) return NAN;
  char line[4096], last[4096] = "";
  while (fgets(line, sizeof line, f)) snprintf(last, sizeof last, "%s", line);
  fclose(f);
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(last, pat);
  return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static void test_real_af_beats_cubic(void) {
  char af[1024];
  if (!mbsr_test_data("af", af, sizeof af)) return;
  const char *dir = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  double t0 = mbsr_now();
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s prep --out %s/af.h5 --inputs %s --pairs 200-100 --patches-per-volume 300 "
                                "--quiet", bin, dir, af), 0);
  double t1 = mbsr_now();
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/af.h5 --out %s/run --channels 8 --blocks 2 --global-residual "
                                "--steps-per-epoch 30 --epochs 4 --threads 1 --quiet", bin, dir, dir), 0);
  char log[1200];
  snprintf(log, sizeof log, "%s/run/train.jsonl", dir);
  double best = last_num(log, "best_val"), cubic = last_num(log, "cubic_val");
  fprintf(stderr, "  real AF 200->100 um: best val MSE %.6g vs cubic baseline %.6g (prep %.1f s, train %.1f s)\n", best, cubic,
          t1 - t0, mbsr_now() - t1);
  CU_ASSERT(cubic > 0);
  CU_ASSERT(best < cubic);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"real_af_prep_train_beats_cubic", test_real_af_beats_cubic}, {NULL, NULL}};
  return mbsr_test_main("train_real", cases);
}
