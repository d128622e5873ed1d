/* Full disks and failed writes through the CLI, for every command that writes: prep (1 and 2 ranks
 * under mpiexec), apply (the volume and its JSON sidecar), sweep (data, checkpoints, metrics.csv,
 * done markers), report (tables, README). Failures are injected with MBSR_FAULT_WRITE (core.h: no
 * privileges needed); as root, prep also meets a real full tmpfs. Each failing run must end (every
 * command under `timeout`: 124 = a hang), print ONE error line per rank naming the file (and the
 * rank), leave no temporary (.tmp-*) and no partial output, and the same command must complete once
 * the fault is gone ("space freed"), with the results of an undisturbed run. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/model.h"
#include "mbsr_test.h"
#include "../data/fault_util.h"

#define TMO "timeout 120 "
#define MPI2 "mpiexec --allow-run-as-root --oversubscribe --bind-to none -n 2 "
#define MPI1 "mpiexec --allow-run-as-root --oversubscribe --bind-to none -n 1 "

static char dir[1024];

static int tmp_left(const char *d) { return mbsr_test_sh("find '%s' -name '.tmp-*' 2>/dev/null | grep -q .", d) == 0; }
static int same(const char *a, const char *b) { return mbsr_test_sh("cmp -s '%s' '%s'", a, b) == 0; }

/* A failing run's log: `lines` error lines in all, each naming `name`; "No space left on device". */
static void check_failure(int rc, const char *log, const char *name, int lines) {
  char pat[2048];
  CU_ASSERT(rc != 0 && rc != 124 && rc < 128); /* an error exit: neither a hang nor a crash */
  snprintf(pat, sizeof pat, "mbsr: .*%s.*No space left on device", name);
  MT_ASSERT_INT_EQ(grep_count(log, pat), lines);
  MT_ASSERT_INT_EQ(grep_count(log, "mbsr:"), lines); /* nothing else */
  MT_ASSERT_INT_EQ(grep_count(log, "Segmentation\\|signal\\|Sanitizer\\|runtime error"), 0);
  mbsr_test_sh("grep 'mbsr:' '%s' | sed 's/^/    /' >&2", log);
}

/* ---- prep ---- */
static char cohort[1200];
static void make_cohort(void) {
  if (cohort[0]) return;
  snprintf(cohort, sizeof cohort, "%s/cohort", dir);
  MT_ASSERT_INT_EQ(mbsr_test_sh(TMO "%s phantom --out %s --n 4 --dims 40,38,36 > /dev/null", mbsr_test_bin(), cohort), 0);
}
#define PREP_ARGS "--pairs 200-100 --patch 9 --patches-per-volume 100 --split 50,25,25 --quiet"

static void test_prep(void) {
  make_cohort();
  const char *bin = mbsr_test_bin();
  char ref[1200];
  snprintf(ref, sizeof ref, "%s/prep", dir);
  MT_ASSERT_OK(mbsr_mkdir_p(ref));
  snprintf(ref, sizeof ref, "%s/prep/ref.h5", dir);
  MT_ASSERT_INT_EQ(mbsr_test_sh(TMO MPI2 "%s prep --out %s --inputs %s " PREP_ARGS, bin, ref, cohort), 0);
  /* ranks x where (tests/data/mpi_test_prep_faults.c covers every combination in-process) */
  const struct {
    const char *mpi, *spec, *rank;
    int lines;
    int ranks;
  } cases[] = {{MPI2, "h5/p.h5:1@1", "rank 1: ", 1, 2},  /* /subject_split; rank 0 prints the agreed error once */
               {MPI2, "h5/p.h5:20@0", "rank 0: ", 1, 2}, /* the flush (the 20th write of a 1-pair file) */
               {MPI1, "h5/p.h5:8", "rank 0: ", 1, 1}};   /* a patch write */
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char d[1200], out[1300], log[1300];
    snprintf(d, sizeof d, "%s/prep/c%zu", dir, i);
    snprintf(out, sizeof out, "%s/p.h5", d);
    snprintf(log, sizeof log, "%s.log", d);
    MT_ASSERT_OK(mbsr_mkdir_p(d));
    double t0 = mbsr_now();
    int rc = mbsr_test_sh("MBSR_FAULT_WRITE=%s " TMO "%s %s prep --out %s --inputs %s " PREP_ARGS " > %s 2>&1", cases[i].spec,
                          cases[i].mpi, bin, out, cohort, log);
    fprintf(stderr, "  prep, %d rank(s), MBSR_FAULT_WRITE=%s: exit %d after %.1f s\n", cases[i].ranks, cases[i].spec, rc, mbsr_now() - t0);
    check_failure(rc, log, "p.h5", cases[i].lines);
    MT_ASSERT_INT_EQ(grep_count(log, cases[i].rank), cases[i].lines);
    CU_ASSERT(!tmp_left(d));
    CU_ASSERT(!mbsr_file_exists(out));
    /* the fault gone: the same command completes, the same file as an undisturbed run */
    MT_ASSERT_INT_EQ(mbsr_test_sh(TMO "%s %s prep --out %s --inputs %s " PREP_ARGS, cases[i].mpi, bin, out, cohort), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("h5diff -c '%s' '%s'", ref, out), 0);
  }
}

/* A real full disk: a 600 KiB tmpfs (the file needs ~1.2 MB). Root only. */
static void test_prep_full_tmpfs(void) {
  if (geteuid() != 0) {
    mbsr_test_skip("not root: no tmpfs mount (the MBSR_FAULT_WRITE tests cover the logic)");
    return;
  }
  make_cohort();
  char mnt[1200], out[1300], log[1300], ref[1200];
  snprintf(mnt, sizeof mnt, "%s/full", dir);
  snprintf(out, sizeof out, "%s/p.h5", mnt);
  snprintf(log, sizeof log, "%s/full.log", dir);
  snprintf(ref, sizeof ref, "%s/prep/ref.h5", dir);
  MT_ASSERT_OK(mbsr_mkdir_p(mnt));
  if (mbsr_test_sh("mount -t tmpfs -o size=600k mbsr-test '%s' 2>/dev/null", mnt) != 0) {
    mbsr_test_skip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)");
    return;
  }
  const char *mpis[2] = {MPI1, MPI2};
  for (int k = 0; k < 2; k++) {
    double t0 = mbsr_now();
    int rc = mbsr_test_sh(TMO "%s %s prep --out %s --inputs %s " PREP_ARGS " > %s 2>&1", mpis[k], mbsr_test_bin(), out, cohort, log);
    fprintf(stderr, "  prep on a full tmpfs, %d rank(s): exit %d after %.1f s\n", k + 1, rc, mbsr_now() - t0);
    CU_ASSERT(rc != 0 && rc != 124 && rc < 128);
    MT_ASSERT_INT_EQ(grep_count(log, "mbsr: prep: rank .: .*p.h5: .*\\(No space left on device\\|the filesystem is full\\); nothing written"), 1);
    MT_ASSERT_INT_EQ(grep_count(log, "Segmentation\\|signal\\|Sanitizer\\|runtime error"), 0);
    mbsr_test_sh("grep 'mbsr:' '%s' | sed 's/^/    /' >&2", log);
    CU_ASSERT(!tmp_left(mnt));
    CU_ASSERT(!mbsr_file_exists(out));
    MT_ASSERT_INT_EQ(mbsr_test_sh("test -z \"$(ls -A '%s')\"", mnt), 0); /* the disk is empty again */
  }
  /* space freed: completes */
  MT_ASSERT_INT_EQ(mbsr_test_sh("mount -o remount,size=16m '%s'", mnt), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh(TMO MPI2 "%s prep --out %s --inputs %s " PREP_ARGS, mbsr_test_bin(), out, cohort), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("h5diff -c '%s' '%s'", ref, out), 0);
  mbsr_test_sh("umount '%s'", mnt);
}

/* ---- apply ---- */
static void test_apply(void) {
  const char *bin = mbsr_test_bin();
  char d[1200], ck[1300], in[1300], out[1300], side[1300], log[1300], ref[1300], refside[1300];
  snprintf(d, sizeof d, "%s/apply", dir);
  MT_ASSERT_OK(mbsr_mkdir_p(d));
  snprintf(ck, sizeof ck, "%s/model.h5", d);
  snprintf(in, sizeof in, "%s/lr.nii.gz", d);
  snprintf(out, sizeof out, "%s/out.nii.gz", d);
  snprintf(side, sizeof side, "%s/out.json", d);
  snprintf(ref, sizeof ref, "%s/ref.nii.gz", d);
  snprintf(refside, sizeof refside, "%s/ref.json", d);
  snprintf(log, sizeof log, "%s/apply.log", dir);
  /* a small network whose contract is the pair 0.2 -> 0.1 mm, and an LR volume at 0.2 mm */
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 4, c.blocks = 1, c.global_residual = 1;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, 1, 9, 9, 9, &m));
  mbsr_model_init(m, 3);
  mbsr_sr_contract k;
  mbsr_sr_contract_default(&k);
  for (int a = 0; a < 3; a++) k.lr_vox_mm[a] = 0.2, k.hr_vox_mm[a] = 0.1;
  k.patch = 9;
  mbsr_model_set_contract(m, &k);
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, NULL));
  mbsr_model_free(m);
  double vox[3] = {0.2, 0.2, 0.2};
  mbsr_volume *v = mbsr_volume_new(14, 12, 10, vox, NULL);
  for (int64_t i = 0; i < mbsr_volume_nvox(v); i++) v->data[i] = (float)((i * 7919) % 101);
  MT_ASSERT_OK(mbsr_volume_write(in, v));
  mbsr_volume_free(v);
  MT_ASSERT_INT_EQ(mbsr_test_sh(TMO "%s apply --model %s --in %s --out %s --quiet", bin, ck, in, ref), 0);
  const char *specs[3] = {"file/out.nii.gz:1", "file/out.json:1", "any:1"};
  for (int i = 0; i < 3; i++) {
    int rc = mbsr_test_sh("MBSR_FAULT_WRITE=%s " TMO "%s apply --model %s --in %s --out %s --quiet > %s 2>&1", specs[i], bin, ck, in, out,
                          log);
    fprintf(stderr, "  apply, MBSR_FAULT_WRITE=%s: exit %d\n", specs[i], rc);
    check_failure(rc, log, i == 1 ? "out.json" : "out.nii.gz", 1);
    CU_ASSERT(!tmp_left(d));
    CU_ASSERT(!mbsr_file_exists(side));
    CU_ASSERT(!mbsr_file_exists(out)); /* the pair or nothing: no volume without its sidecar */
    /* the fault gone: completes, the same volume */
    MT_ASSERT_INT_EQ(mbsr_test_sh(TMO "%s apply --model %s --in %s --out %s --quiet", bin, ck, in, out), 0);
    CU_ASSERT(same(out, ref));
    CU_ASSERT(mbsr_file_exists(side));
    unlink(out), unlink(side);
  }
}

/* ---- sweep and report ---- */
static const char *YAML =
    "experiment: tiny\n"
    "title: \"tiny sweep\"\n"
    "report: {anova: false, table1: true}\n"
    "scales:\n"
    "  paper: {}\n"
    "  demo:\n"
    "    data: {cohort: phantom, dir: %s/phantom, base_um: 100, n_train: 3, n_test: 2}\n"
    "    phantom: {n: 5, seed: 7, dims: [40, 48, 32]}\n"
    "    model: {channels: 4, blocks: 1, global_residual: true}\n"
    "    train: {patch: 9, batch: 4, epochs: 1, patience: 0, val_fraction: 0.3, seed: 3}\n"
    "    eval: {decorr: false, save_volumes: true}\n"
    "    matrix: {arch: [resnet], train_pair: [200-100], samples: [16]}\n";
static char yaml[1200];
#define CELL "demo/tiny/cells/c00_resnet_200-100_n16"

static void make_reference_sweep(void) {
  if (yaml[0]) return;
  snprintf(yaml, sizeof yaml, "%s/tiny.yaml", dir);
  FILE *f = fopen(yaml, "w");
  CU_ASSERT_FATAL(f != NULL);
  fprintf(f, YAML, dir);
  fclose(f);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && OMP_NUM_THREADS=1 " TMO "'%s' sweep '%s' --results A > a.log 2>&1", dir, mbsr_test_bin(), yaml), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && " TMO "'%s' report '%s' --results A > ar.log 2>&1", dir, mbsr_test_bin(), yaml), 0);
}

static void test_sweep(void) {
  make_reference_sweep();
  const char *bin = mbsr_test_bin();
  const struct {
    const char *spec, *name;
  } cases[] = {{"file/metrics.csv:1", "metrics.csv"}, {"file/done:1", "done"}, {"h5/best.h5:1", "best.h5"},
               {"log/train.jsonl:1", "train.jsonl"},  {"h5:2", ".h5"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char res[64], log[1300], p[1400], q[1400];
    snprintf(res, sizeof res, "S%zu", i);
    snprintf(log, sizeof log, "%s/%s.log", dir, res);
    int rc = mbsr_test_sh("cd '%s' && MBSR_FAULT_WRITE=%s OMP_NUM_THREADS=1 " TMO "'%s' sweep '%s' --results %s > %s 2>&1", dir,
                          cases[i].spec, bin, yaml, res, log);
    fprintf(stderr, "  sweep, MBSR_FAULT_WRITE=%s: exit %d\n", cases[i].spec, rc);
    check_failure(rc, log, cases[i].name, 1);
    snprintf(p, sizeof p, "%s/%s", dir, res);
    CU_ASSERT(!tmp_left(p));
    snprintf(p, sizeof p, "%s/%s/" CELL "/done", dir, res);
    CU_ASSERT(!mbsr_file_exists(p)); /* the cell does not count as finished */
    /* the fault gone: the sweep completes with the undisturbed run's metrics */
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && OMP_NUM_THREADS=1 " TMO "'%s' sweep '%s' --results %s > %s.2 2>&1", dir, bin, yaml, res, log), 0);
    CU_ASSERT(mbsr_file_exists(p));
    snprintf(p, sizeof p, "%s/%s/" CELL "/metrics.csv", dir, res);
    snprintf(q, sizeof q, "%s/A/" CELL "/metrics.csv", dir);
    CU_ASSERT(same(p, q));
    snprintf(p, sizeof p, "%s/%s", dir, res);
    CU_ASSERT(!tmp_left(p));
  }
}

static void test_report(void) {
  make_reference_sweep();
  const char *bin = mbsr_test_bin();
  const char *cases[3] = {"stats.csv", "table.md", "README.md"};
  for (int i = 0; i < 3; i++) {
    char log[1300], p[1400], q[1400];
    snprintf(log, sizeof log, "%s/R%d.log", dir, i);
    /* a copy of the finished sweep without the report's outputs */
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && rm -rf R && cp -a A R && rm -f R/demo/tiny/*.md R/demo/tiny/*.csv R/demo/tiny/*.png", dir), 0);
    int rc = mbsr_test_sh("cd '%s' && MBSR_FAULT_WRITE=file/%s:1 " TMO "'%s' report '%s' --results R > %s 2>&1", dir, cases[i], bin, yaml, log);
    fprintf(stderr, "  report, MBSR_FAULT_WRITE=file/%s:1: exit %d\n", cases[i], rc);
    check_failure(rc, log, cases[i], 1);
    snprintf(p, sizeof p, "%s/R", dir);
    CU_ASSERT(!tmp_left(p));
    snprintf(p, sizeof p, "%s/R/demo/tiny/README.md", dir);
    CU_ASSERT(!mbsr_file_exists(p)); /* no README over an incomplete report */
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && " TMO "'%s' report '%s' --results R > %s.2 2>&1", dir, bin, yaml, log), 0);
    CU_ASSERT(mbsr_file_exists(p));
    snprintf(p, sizeof p, "%s/R/demo/tiny/table.csv", dir);
    snprintf(q, sizeof q, "%s/A/demo/tiny/table.csv", dir);
    CU_ASSERT(same(p, q));
  }
}

int main(void) {
  snprintf(dir, sizeof dir, "%s", mbsr_test_tmpdir());
  static const mbsr_test_case cases[] = {{"prep_write_faults_1_and_2_ranks", test_prep},
                                         {"prep_full_tmpfs_root_only", test_prep_full_tmpfs},
                                         {"apply_write_faults", test_apply},
                                         {"sweep_write_faults", test_sweep},
                                         {"report_write_faults", test_report},
                                         {NULL, NULL}};
  return mbsr_test_main("exp_faults", cases);
}
