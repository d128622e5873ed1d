/* End-to-end through the CLI (mpirun -n 2): a training run whose rank is killed with SIGKILL
 * mid-run is aborted by mpirun (no hang), leaves only complete files under final names, resumes
 * with --resume, finishes, and ends bitwise equal to an uninterrupted run. Also: usage errors. */
#include <mpi.h>
#include <stdlib.h>

#include "train_common.h"

static char dir[1024];
#define MPIRUN "mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2"
#define TRAIN_ARGS "--pair 200-100 --channels 8 --blocks 2 --global-residual --epochs 12 --patience 0 --ckpt-every 5 --threads 1 --seed 3 --quiet"

static void test_sigkill_then_resume(void) {
  const char *bin = mbsr_test_bin();
  char in[1100];
  snprintf(in, sizeof in, "%s/in", dir);
  CU_ASSERT_FATAL(gen_cohort(in, 4, 40, 0.05, 0, 0) == 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s prep --out %s/p.h5 --inputs %s --pairs 200-100 --patch 9 --patches-per-volume 60 "
                                "--split 50,25,25 --quiet", bin, dir, in), 0);
  double t0 = mbsr_now();
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/u " TRAIN_ARGS, bin, dir, dir), 0);
  fprintf(stderr, "  uninterrupted run: %.2f s\n", mbsr_now() - t0);
  /* the killed run: wait for its first checkpoint, then SIGKILL one rank (a child of mpirun, found in /proc without procps) */
  int rc = mbsr_test_sh(
      "cd %s || exit 9; (" MPIRUN " %s train --data p.h5 --out k " TRAIN_ARGS " > k.log 2>&1 & echo $! > k.pid; wait $!; echo $? > k.rc) & "
      "for i in $(seq 1 3000); do [ -f k/last.h5 ] && break; sleep 0.01; done; "
      "[ -f k/last.h5 ] || exit 10; pid=$(cat k.pid); victim=$(for q in /proc/[0-9]*; do [ \"$(cut -d' ' -f4 $q/stat 2>/dev/null)\" = \"$pid\" ] && basename $q; done | head -1); [ -n \"$victim\" ] || exit 11; "
      "kill -9 $victim; echo killed rank pid $victim; "
      "for i in $(seq 1 3000); do [ -f k.rc ] && break; sleep 0.01; done; [ -f k.rc ] || exit 12; "
      "echo mpirun exit status $(cat k.rc); [ $(cat k.rc) -ne 0 ]",
      dir, bin);
  MT_ASSERT_INT_EQ(rc, 0);
  /* a complete checkpoint of an unfinished run stays; no temporary under a final name */
  char f[1300];
  snprintf(f, sizeof f, "%s/k/last.h5", dir);
  size_t nk = 0, nu = 0;
  mbsr_ckpt_meta mk, mu;
  float *pk = ckpt_params(f, &nk, &mk);
  CU_ASSERT_FATAL(pk != NULL);
  fprintf(stderr, "  killed at or after step %lld (of 180)\n", (long long)mk.step);
  CU_ASSERT(mk.step < 180);
  free(pk);
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/k --resume " TRAIN_ARGS, bin, dir, dir), 0);
  pk = ckpt_params(f, &nk, &mk);
  snprintf(f, sizeof f, "%s/u/last.h5", dir);
  float *pu = ckpt_params(f, &nu, &mu);
  CU_ASSERT_FATAL(pk && pu);
  MT_ASSERT_INT_EQ(mk.step, 180);
  MT_ASSERT_INT_EQ(mk.step, mu.step);
  MT_ASSERT_INT_EQ(nk, nu);
  CU_ASSERT(memcmp(pk, pu, nk * sizeof *pk) == 0); /* bitwise equal to the uninterrupted run */
  CU_ASSERT(mk.best_val == mu.best_val);
  MT_ASSERT_INT_EQ(mbsr_test_sh("! ls -a %s/k | grep -q '^.tmp-'", dir), 0); /* no temporaries left */
  /* a resume of a finished run does nothing and succeeds */
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/k --resume " TRAIN_ARGS, bin, dir, dir), 0);
  free(pk), free(pu);
}

static void test_usage_errors(void) {
  const char *bin = mbsr_test_bin();
  /* unknown option, missing required options: usage message, exit status 2 (no mpirun needed) */
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s train --data x.h5 --out d --bogus 2>&1 | grep -q 'unknown option'", bin), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s train --out d; test $? -eq 2", bin), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s prep --inputs d; test $? -eq 2", bin), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s prep --out x.h5 --inputs d --pairs 100-200 2>&1 | grep -q 'is not a positive integer multiple of the HR 200 um'", bin), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s train --help | grep -q -- '--resume'", bin), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s prep --help | grep -q -- '--patches-per-volume'", bin), 0);
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "%s", mbsr_test_tmpdir());
  static const mbsr_test_case cases[] = {{"train_sigkill_then_resume", test_sigkill_then_resume},
                                         {"train_prep_usage_errors", test_usage_errors},
                                         {NULL, NULL}};
  return mbsr_test_main("train_cli", cases);
}
