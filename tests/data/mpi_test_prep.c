/* prep under MPI (2 ranks): the file content is the same with 1 and 2 ranks (h5dump of both
 * compared), a corrupt input is recorded and the rest processed, the split is by subject, patches
 * come from inside the brain, the test subjects' volumes land in --eval-dir. */
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/data.h"
#include "mbsr_test.h"
#include "prep_gen.h"

static int rank, nranks;
static char dir[1024], in_dir[1100];

static void make_cfg(mbsr_prep_config *c, const char *out) {
  mbsr_prep_config_default(c);
  c->out = out;
  c->inputs = in_dir;
  mbsr_prep_parse_pairs(c, "200-100,100-50");
  c->patch = 9;
  c->patches_per_volume = 30;
  c->split[0] = 50, c->split[1] = 25, c->split[2] = 25;
  c->seed = 7;
  c->progress = 0;
}

static void test_prep_1_vs_2_ranks(void) {
  char f1[1200], f2[1200], ev[1200];
  snprintf(f1, sizeof f1, "%s/p1.h5", dir);
  snprintf(f2, sizeof f2, "%s/p2.h5", dir);
  snprintf(ev, sizeof ev, "%s/eval", dir);
  mbsr_prep_config c;
  mbsr_prep_summary s2, s1;
  make_cfg(&c, f2);
  c.eval_dir = ev;
  MT_ASSERT_OK(mbsr_prep_run(&c, MPI_COMM_WORLD, &s2));
  /* 5 inputs found (4 subjects + the broken one), the broken one recorded, the rest processed */
  MT_ASSERT_INT_EQ(s2.n_subjects, 5);
  MT_ASSERT_INT_EQ(s2.n_failed, 1);
  /* the last subject (zz_broken) belongs to the last rank: the summary names that rank */
  char want[64];
  snprintf(want, sizeof want, "zz_broken (rank %d): ", nranks - 1);
  CU_ASSERT(strstr(s2.failures, want) != NULL);
  MT_ASSERT_INT_EQ(s2.n_split[0] + s2.n_split[1] + s2.n_split[2], 5);
  int64_t tot = 0;
  for (int sp = 0; sp < 3; sp++) tot += s2.n_patches[0][sp];
  MT_ASSERT_INT_EQ(tot, 4 * 30);
  CU_ASSERT(s2.cubic_mse[0][0] > 0 && s2.cubic_mse[0][0] < 0.1);
  CU_ASSERT(s2.cubic_mse[1][0] > 0 && s2.cubic_mse[1][0] < 0.1);
  if (rank == 0) {
    make_cfg(&c, f1);
    int rc = mbsr_prep_run(&c, MPI_COMM_SELF, &s1);
    MT_ASSERT_INT_EQ(rc, 0);
    MT_ASSERT_INT_EQ(s1.n_failed, 1);
    /* identical content: h5dump minus its first line (the file name) */
    MT_ASSERT_INT_EQ(mbsr_test_sh("h5dump %s | tail -n +2 > %s/d1.txt && h5dump %s | tail -n +2 > %s/d2.txt && cmp %s/d1.txt %s/d2.txt",
                                  f1, dir, f2, dir, dir, dir), 0);
    /* ... and bit for bit: h5diff without -d/-p compares every value exactly (h5dump prints floats
     * with 6-7 digits only) */
    MT_ASSERT_INT_EQ(mbsr_test_sh("h5diff -c %s %s", f1, f2), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'zz_broken: .*zz_broken.nii.gz' %s/d2.txt", dir), 0); /* recorded in /failed */
    MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -c < %s/d1.txt) -gt 100000", dir), 0);
    /* no temporary left behind */
    MT_ASSERT_INT_EQ(mbsr_test_sh("! ls -a %s | grep -q '^.tmp-'", dir), 0);
    /* patches: read back through the batch reader; targets are normalised, centres in the brain */
    mbsr_patchset *ps;
    MT_ASSERT_OK(mbsr_patchset_open(f2, "200-100", "train", &ps));
    MT_ASSERT_INT_EQ(mbsr_patchset_patch(ps), 9);
    MT_ASSERT_INT_EQ(mbsr_patchset_count(ps), s2.n_patches[0][0]);
    MT_ASSERT_NEAR(mbsr_patchset_cubic_mse(ps), s2.cubic_mse[0][0], 1e-12);
    float in[2 * 729], tg[2 * 729];
    int64_t idx[2] = {mbsr_patchset_count(ps) - 1, 0};
    MT_ASSERT_OK(mbsr_patchset_read(ps, idx, 2, in, tg));
    float mn = 1e9f, mx = -1e9f;
    for (int i = 0; i < 2 * 729; i++) mn = fminf(mn, tg[i]), mx = fmaxf(mx, tg[i]);
    CU_ASSERT(mn >= 0 && mx <= 1 && mx > 0.3f);
    mbsr_patchset_close(ps);
    /* eval volumes of the test subjects */
    MT_ASSERT_INT_EQ(mbsr_test_sh("ls %s/*_100um.nii.gz %s/*_200um.nii.gz %s/*_50um_mask.nii.gz", ev, ev, ev), 0);
  } else {
    CU_PASS("rank 1 only took part in the 2-rank run");
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_prep_split_by_subject(void) {
  char f2[1200];
  snprintf(f2, sizeof f2, "%s/p2.h5", dir);
  if (rank == 0) {
    /* every subject's patches are in exactly one split */
    hid_t f = H5Fopen(f2, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    int seen[5][3] = {{0}};
    const char *sp[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
      char nm[128];
      snprintf(nm, sizeof nm, "/pairs/100-50/%s/subject", sp[s]);
      hid_t d = H5Dopen2(f, nm, H5P_DEFAULT);
      CU_ASSERT_FATAL(d >= 0);
      hid_t fs = H5Dget_space(d);
      hsize_t n;
      H5Sget_simple_extent_dims(fs, &n, NULL);
      int32_t *b = malloc((n ? n : 1) * sizeof *b);
      if (n) H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
      for (hsize_t i = 0; i < n; i++) {
        CU_ASSERT(b[i] >= 0 && b[i] < 5);
        if (i) CU_ASSERT(b[i] >= b[i - 1]); /* ordered by subject */
        seen[b[i]][s]++;
      }
      free(b);
      H5Sclose(fs);
      H5Dclose(d);
    }
    H5Fclose(f);
    int used = 0;
    for (int s = 0; s < 5; s++) {
      int nsplits = (seen[s][0] > 0) + (seen[s][1] > 0) + (seen[s][2] > 0);
      CU_ASSERT(nsplits <= 1);
      used += nsplits;
    }
    MT_ASSERT_INT_EQ(used, 4); /* the broken subject has no patches */
  } else {
    CU_PASS("rank 1: nothing to check");
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_prep_bad_options_agree(void) {
  /* a missing input directory: every rank fails with the same message, nothing written */
  char f[1200];
  snprintf(f, sizeof f, "%s/none.h5", dir);
  mbsr_prep_config c;
  make_cfg(&c, f);
  c.inputs = "/nonexistent/dir";
  int rc = mbsr_prep_run(&c, MPI_COMM_WORLD, NULL);
  CU_ASSERT(rc < 0);
  CU_ASSERT(strstr(mbsr_last_error(), "rank 0") != NULL);
  CU_ASSERT(!mbsr_file_exists(f));
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  mbsr_log_set_rank(rank, nranks);
  if (rank == 0) snprintf(dir, sizeof dir, "%s", mbsr_test_tmpdir());
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  snprintf(in_dir, sizeof in_dir, "%s/in", dir);
  int g = 0;
  if (rank == 0) g = gen_cohort(in_dir, 4, 40, 0.05, 1, 1);
  MPI_Bcast(&g, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (g) {
    fprintf(stderr, "cannot generate the test cohort\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  static const mbsr_test_case cases[] = {{"prep_1_vs_2_ranks_identical", test_prep_1_vs_2_ranks},
                                         {"prep_split_by_subject", test_prep_split_by_subject},
                                         {"prep_bad_input_dir_all_ranks_fail", test_prep_bad_options_agree},
                                         {NULL, NULL}};
  int st = mbsr_test_main("data_prep_mpi", cases); /* the same on every rank (mbsr_test_main agrees) */
  MPI_Finalize();
  return st;
}
