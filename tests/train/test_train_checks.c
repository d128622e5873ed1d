/* `mbsr train` end to end (mpirun -n 2) where it used to accept what it should refuse, and under
 * failed writes:
 *  - a patch file whose input and target shapes differ ((N,10,10,10) vs (N,21,21,21)) is refused with
 *    one line naming the file and both datasets; nothing is trained;
 *  - --resume with --channels/--blocks/--arch/--global-residual contradicting the checkpoint is
 *    refused naming the checkpoint and both values; left out, the checkpoint's network continues
 *    (and config.json says so);
 *  - MBSR_FAULT_WRITE on rank 0 (the writer) failing config.json, a checkpoint (last.h5 / best.h5)
 *    or a train.jsonl line: both ranks end (no hang: every run under `timeout`), one line per rank
 *    naming the file, no temporary left; --resume with the fault gone completes, bitwise equal to an
 *    uninterrupted run, with one log line per epoch. */
#include <hdf5.h>
#include <stdlib.h>

#include "../data/fault_util.h"
#include "train_common.h"

static char dir[1024];
#define MPIRUN "timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2"
#define ARGS "--pair 200-100 --batch 8 --epochs 3 --patience 0 --ckpt-every 5 --threads 1 --seed 3 --quiet"
#define NET "--channels 4 --blocks 1 --global-residual"

static int made = 0;
static void make_data(void) {
  if (made) return;
  char in[1100];
  snprintf(in, sizeof in, "%s/in", dir);
  CU_ASSERT_FATAL(gen_cohort(in, 4, 36, 0.05, 0, 0) == 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s prep --out %s/p.h5 --inputs %s --pairs 200-100 --patch 9 --patches-per-volume 30 "
                                "--split 50,25,25 --quiet",
                                mbsr_test_bin(), dir, in),
                   0);
  made = 1;
}

static void test_shape_mismatch_refused(void) {
  make_data();
  char f[1200], log[1200];
  snprintf(f, sizeof f, "%s/mismatch.h5", dir);
  snprintf(log, sizeof log, "%s/mismatch.log", dir);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cp %s/p.h5 %s", dir, f), 0);
  /* input (N,10,10,10), target (N,21,21,21) */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t h = H5Fopen(f, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(h >= 0);
  hid_t d = H5Dopen2(h, "/pairs/200-100/train/input", H5P_DEFAULT), s = H5Dget_space(d);
  hsize_t dims[4];
  H5Sget_simple_extent_dims(s, dims, NULL);
  H5Sclose(s), H5Dclose(d);
  const char *names[2] = {"/pairs/200-100/train/input", "/pairs/200-100/train/target"};
  const hsize_t edge[2] = {10, 21};
  for (int k = 0; k < 2; k++) {
    CU_ASSERT(H5Ldelete(h, names[k], H5P_DEFAULT) >= 0);
    hsize_t nd[4] = {dims[0], edge[k], edge[k], edge[k]};
    hid_t sp = H5Screate_simple(4, nd, NULL);
    hid_t ds = H5Dcreate2(h, names[k], H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    float *z = calloc(nd[0] * nd[1] * nd[2] * nd[3], sizeof *z);
    CU_ASSERT(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z) >= 0);
    free(z);
    H5Dclose(ds), H5Sclose(sp);
  }
  H5Fclose(h);
  int rc = mbsr_test_sh(MPIRUN " %s train --data %s --out %s/mm " NET " " ARGS " > %s 2>&1", mbsr_test_bin(), f, dir, log);
  mbsr_test_sh("grep 'mbsr:' %s | head -2 >&2", log);
  CU_ASSERT(rc != 0 && rc != 124); /* refused, not hung */
  MT_ASSERT_INT_EQ(grep_count(log, "train: .*mismatch.h5: /pairs/200-100/train/target is (.*,21,21,21) but /pairs/200-100/train/input is (.*,10,10,10)"), 1); /* one line: rank 0 prints the agreed error */
  char ck[1300];
  snprintf(ck, sizeof ck, "%s/mm/last.h5", dir);
  CU_ASSERT(!mbsr_file_exists(ck));
}

static void test_resume_contradictions_refused(void) {
  make_data();
  const char *bin = mbsr_test_bin();
  char log[1200], ck[1200];
  snprintf(log, sizeof log, "%s/res.log", dir);
  snprintf(ck, sizeof ck, "%s/res/last.h5", dir);
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/res " NET " --max-steps 5 " ARGS, bin, dir, dir), 0);
  CU_ASSERT_FATAL(mbsr_file_exists(ck));
  struct {
    const char *opts, *want;
  } bad[] = {{"--channels 8 --blocks 1 --global-residual", "channels 8 vs its 4"},
             {"--channels 4 --blocks 2", "blocks 2 vs its 1"},
             {"--arch ccnn", "arch ccnn vs its resnet"},
             {"--channels 6 --blocks 3", "channels 6 vs its 4, blocks 3 vs its 1"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/res --resume %s " ARGS " > %s 2>&1", bin, dir, dir, bad[i].opts, log);
    mbsr_test_sh("grep -m1 'mbsr:' %s >&2", log);
    CU_ASSERT(rc != 0 && rc != 124);
    char pat[2048];
    snprintf(pat, sizeof pat, "resuming from %s/res/last.h5: the options contradict the checkpoint: %s", dir, bad[i].want);
    MT_ASSERT_INT_EQ(grep_count(log, pat), 1); /* one line: rank 0 prints the agreed error */
  }
  /* a global-residual request against a checkpoint without it */
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/res2 --channels 4 --blocks 1 --max-steps 5 " ARGS, bin, dir, dir), 0);
  int rc = mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/res2 --resume --global-residual " ARGS " > %s 2>&1", bin, dir, dir, log);
  CU_ASSERT(rc != 0 && rc != 124);
  MT_ASSERT_INT_EQ(grep_count(log, "global residual on vs its off"), 1);
  /* the options left out (or matching): the checkpoint's network continues */
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/res --resume --max-steps 10 " ARGS, bin, dir, dir), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/res --resume --blocks 1 " ARGS, bin, dir, dir), 0);
  char cfg[1300];
  snprintf(cfg, sizeof cfg, "%s/res/config.json", dir);
  MT_ASSERT_INT_EQ(grep_count(cfg, "\"channels\": 4,"), 1);
  mbsr_ckpt_meta m;
  size_t n;
  float *p = ckpt_params(ck, &n, &m);
  CU_ASSERT(p != NULL);
  MT_ASSERT_INT_EQ(m.epoch, 3);
  free(p);
}

/* No temporaries anywhere under d. */
static int tmp_left(const char *d) { return mbsr_test_sh("find '%s' -name '.tmp-*' | grep -q .", d) == 0; }

static void test_write_faults_resume(void) {
  make_data();
  const char *bin = mbsr_test_bin();
  char u[1200];
  snprintf(u, sizeof u, "%s/u/last.h5", dir);
  MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s/u " NET " " ARGS, bin, dir, dir), 0);
  size_t nu = 0;
  mbsr_ckpt_meta mu;
  float *pu = ckpt_params(u, &nu, &mu);
  CU_ASSERT_FATAL(pu != NULL);
  struct {
    const char *spec, *file; /* the fault, the file the error must name */
  } cases[] = {{"file:1@0", "config.json"},  /* the first atomic file */
               {"h5:1@0", "last.h5"},        /* the first checkpoint (mid-epoch, step 5) */
               {"h5:2@0", "best.h5"},        /* the second: epoch 1's best.h5 */
               {"file:4@0", "last.h5"},      /* the commit of epoch 1's last.h5 */
               {"log:2@0", "train.jsonl"}};  /* epoch 2's log line */
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char out[1200], log[1300], last[1300];
    snprintf(out, sizeof out, "%s/f%zu", dir, i);
    snprintf(log, sizeof log, "%s/f%zu.log", dir, i);
    snprintf(last, sizeof last, "%s/last.h5", out);
    double t0 = mbsr_now();
    int rc = mbsr_test_sh("MBSR_FAULT_WRITE=%s " MPIRUN " %s train --data %s/p.h5 --out %s " NET " " ARGS " > %s 2>&1", cases[i].spec, bin,
                          dir, out, log);
    fprintf(stderr, "  MBSR_FAULT_WRITE=%s: exit %d after %.1f s\n", cases[i].spec, rc, mbsr_now() - t0);
    mbsr_test_sh("grep 'mbsr:' %s >&2", log);
    CU_ASSERT(rc != 0 && rc != 124);
    char pat[1400];
    snprintf(pat, sizeof pat, "mbsr: train: .*%s/%s.*No space left on device", out, cases[i].file);
    MT_ASSERT_INT_EQ(grep_count(log, pat), 1);  /* one line: rank 0 prints the agreed error */
    MT_ASSERT_INT_EQ(grep_count(log, "mbsr:"), 1); /* and nothing else */
    MT_ASSERT_INT_EQ(grep_count(log, "Segmentation\\|signal\\|Sanitizer\\|runtime error"), 0);
    CU_ASSERT(!tmp_left(out));
    /* space freed: --resume completes, as if nothing had happened */
    MT_ASSERT_INT_EQ(mbsr_test_sh(MPIRUN " %s train --data %s/p.h5 --out %s --resume " NET " " ARGS, bin, dir, out), 0);
    size_t nk = 0;
    mbsr_ckpt_meta mk;
    float *pk = ckpt_params(last, &nk, &mk);
    CU_ASSERT_FATAL(pk != NULL);
    MT_ASSERT_INT_EQ(mk.step, mu.step);
    MT_ASSERT_INT_EQ(nk, nu);
    CU_ASSERT(memcmp(pk, pu, nk * sizeof *pk) == 0);
    free(pk);
    char jl[1300];
    snprintf(jl, sizeof jl, "%s/train.jsonl", out);
    MT_ASSERT_INT_EQ(grep_count(jl, "\"epoch\""), 3);
    MT_ASSERT_INT_EQ(grep_count(jl, "\"epoch\":2,"), 1);
    CU_ASSERT(!tmp_left(out));
  }
  free(pu);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s", mbsr_test_tmpdir());
  static const mbsr_test_case cases[] = {{"train_refuses_input_target_shape_mismatch", test_shape_mismatch_refused},
                                         {"train_resume_refuses_contradicting_options", test_resume_contradictions_refused},
                                         {"train_write_faults_then_resume", test_write_faults_resume},
                                         {NULL, NULL}};
  return mbsr_test_main("train_checks", cases);
}
