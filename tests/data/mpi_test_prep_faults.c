/* prep when writes fail (2 ranks), and what a patch file guarantees to its reader.
 *  - Injected write failures (MBSR_FAULT_WRITE, core.h) at the first, a middle and the last HDF5 write
 *    (the flush), on rank 0 and on rank 1, with 2 ranks and with 1: every rank returns the same error
 *    naming the rank and the file, no HDF5 object stays open (MPI_Finalize would crash on it), no
 *    temporary and no output are left, and the same run without the fault completes.
 *  - A failed --eval-dir volume write (an atomic "file" write inside the per-subject phase) ends
 *    every rank the same way.
 *  - Integrity: a flipped byte in a patch is a checksum error naming the file, group and patch;
 *    a flipped byte in /subjects too; a file without checksums (older mbsr) is still read.
 *  - Shapes checked on open: input (N,10,10,10) vs target (N,21,21,21), a subject list or centre
 *    table of the wrong length: errors naming the file and datasets. */
#include <dirent.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "mbsr/data.h"
#include "mbsr_test.h"
#include "fault_util.h"
#include "prep_gen.h"

static int rank, nranks;
static char dir[1024], in_dir[1100], good[1200];

static void make_cfg(mbsr_prep_config *c, const char *out) {
  mbsr_prep_config_default(c);
  c->out = out;
  c->inputs = in_dir;
  mbsr_prep_parse_pairs(c, "200-100");
  c->patch = 9;
  c->patches_per_volume = 20;
  c->split[0] = 50, c->split[1] = 25, c->split[2] = 25;
  c->seed = 5;
  c->progress = 0;
}

static void set_fault(const char *spec) {
  if (spec) setenv("MBSR_FAULT_WRITE", spec, 1);
  else unsetenv("MBSR_FAULT_WRITE");
  mbsr_fault_reset();
}

/* Every patch of every split readable (checksums verified). */
static int read_all(const char *file) {
  const char *sp[3] = {"train", "val", "test"};
  for (int s = 0; s < 3; s++) {
    mbsr_patchset *ps;
    int rc = mbsr_patchset_open(file, "200-100", sp[s], &ps);
    if (rc) return rc;
    float in[729], tg[729];
    for (int64_t i = 0; !rc && i < mbsr_patchset_count(ps); i++) rc = mbsr_patchset_read(ps, &i, 1, in, tg);
    mbsr_patchset_close(ps);
    if (rc) return rc;
  }
  return 0;
}

/* One failing run on comm (every rank of comm calls this), then the checks. */
static void failing_run(MPI_Comm comm, const char *out, const char *spec, int fail_rank, const char *eval) {
  mbsr_prep_config c;
  make_cfg(&c, out);
  c.eval_dir = eval;
  set_fault(spec);
  double t0 = mbsr_now();
  int rc = mbsr_prep_run(&c, comm, NULL);
  double dt = mbsr_now() - t0;
  set_fault(NULL);
  char want[32];
  snprintf(want, sizeof want, "rank %d: ", fail_rank);
  if (rank == 0) printf("\n  MBSR_FAULT_WRITE=%s -> %d after %.2f s: %s", spec, rc, dt, mbsr_last_error());
  CU_ASSERT(rc < 0);
  CU_ASSERT(strstr(mbsr_last_error(), want) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), out) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "No space left on device") != NULL);
  CU_ASSERT(strchr(mbsr_last_error(), '\n') == NULL);
  /* the same verdict on every rank of comm: the failing rank's message (its code there, MBSR_EPEER elsewhere) */
  char msg0[1200];
  snprintf(msg0, sizeof msg0, "%s", mbsr_last_error());
  MPI_Bcast(msg0, sizeof msg0, MPI_CHAR, 0, comm);
  CU_ASSERT_STRING_EQUAL(mbsr_last_error(), msg0);
  MT_ASSERT_INT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  MPI_Barrier(comm);
  MT_ASSERT_INT_EQ(count_tmp(dir), 0);
  CU_ASSERT(!mbsr_file_exists(out));
}

/* The write points of a run: counted with a rule that never fires. */
static long long h5_writes(MPI_Comm comm, const char *out) {
  mbsr_prep_config c;
  make_cfg(&c, out);
  set_fault("h5:1000000000");
  int rc = mbsr_prep_run(&c, comm, NULL);
  long long n = mbsr_fault_count("h5");
  set_fault(NULL);
  CU_ASSERT(rc == 0);
  unlink(out);
  return n;
}

static void test_faults_2_ranks(void) {
  char out[1200];
  snprintf(out, sizeof out, "%s/f2.h5", dir);
  const long long n = h5_writes(MPI_COMM_WORLD, out);
  if (rank == 0) printf("\n  %lld HDF5 write points per rank", n);
  CU_ASSERT_FATAL(n >= 10);
  const long long at[3] = {1, n / 2, n}; /* the first (/subject_split), a patch write, the flush */
  char spec[64];
  for (int k = 0; k < 3; k++)
    for (int r = 0; r < 2; r++) {
      snprintf(spec, sizeof spec, "h5:%lld@%d", at[k], r);
      failing_run(MPI_COMM_WORLD, out, spec, r, NULL);
    }
  /* space freed: the same run completes, every patch checks out */
  mbsr_prep_config c;
  make_cfg(&c, out);
  MT_ASSERT_OK(mbsr_prep_run(&c, MPI_COMM_WORLD, NULL));
  if (rank == 0) MT_ASSERT_OK(read_all(out));
  MT_ASSERT_INT_EQ(count_tmp(dir), 0);
  if (rank == 0) printf("\n");
}

static void test_faults_1_rank(void) {
  if (rank == 0) {
    char out[1200];
    snprintf(out, sizeof out, "%s/f1.h5", dir);
    const long long n = h5_writes(MPI_COMM_SELF, out);
    const long long at[3] = {1, n / 2, n};
    char spec[64];
    for (int k = 0; k < 3; k++) {
      snprintf(spec, sizeof spec, "h5:%lld", at[k]);
      failing_run(MPI_COMM_SELF, out, spec, 0, NULL);
    }
    mbsr_prep_config c;
    make_cfg(&c, out);
    MT_ASSERT_OK(mbsr_prep_run(&c, MPI_COMM_SELF, NULL));
    MT_ASSERT_OK(read_all(out));
    printf("\n");
  } else {
    CU_PASS("rank 1: the 1-rank runs are rank 0's");
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

/* The test subjects' volumes (--eval-dir) are written while subjects are processed: a failure
 * there (rank 1 processes the last subjects) ends both ranks before the file is created. */
static void test_eval_volume_fault(void) {
  char out[1200], ev[1200];
  snprintf(out, sizeof out, "%s/fe.h5", dir);
  snprintf(ev, sizeof ev, "%s/eval", dir);
  for (int r = 0; r < 2; r++) {
    char spec[32];
    snprintf(spec, sizeof spec, "file:1@%d", r);
    /* which rank holds a test subject depends on the seeded split: fail the first volume of whichever */
    mbsr_prep_config c;
    make_cfg(&c, out);
    c.eval_dir = ev;
    c.eval_all = 1; /* every subject's volumes: both ranks write some */
    set_fault(spec);
    int rc = mbsr_prep_run(&c, MPI_COMM_WORLD, NULL);
    set_fault(NULL);
    char want[32];
    snprintf(want, sizeof want, "rank %d: ", r);
    if (rank == 0) printf("\n  MBSR_FAULT_WRITE=%s (eval volumes) -> %d: %s", spec, rc, mbsr_last_error());
    CU_ASSERT(rc < 0);
    CU_ASSERT(strstr(mbsr_last_error(), want) != NULL);
    CU_ASSERT(strstr(mbsr_last_error(), "No space left on device") != NULL);
    MT_ASSERT_INT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    MPI_Barrier(MPI_COMM_WORLD);
    CU_ASSERT(!mbsr_file_exists(out));
    MT_ASSERT_INT_EQ(count_tmp(dir), 0);
    MT_ASSERT_INT_EQ(count_tmp(ev), 0);
  }
  if (rank == 0) printf("\n");
}

/* ---- integrity and shapes (rank 0, on copies of a good file) ---- */
static void copy_file(const char *from, const char *to) { MT_ASSERT_INT_EQ(mbsr_test_sh("cp '%s' '%s'", from, to), 0); }

static void test_checksums(void) {
  if (rank != 0) {
    CU_PASS("rank 0 checks");
    MPI_Barrier(MPI_COMM_WORLD);
    return;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char f[1300];
  snprintf(f, sizeof f, "%s/flip.h5", dir);
  copy_file(good, f);
  /* one bit of one input value of patch 1 (chunk 0 holds patches 0..3) */
  haddr_t a = HADDR_UNDEF;
  MT_ASSERT_INT_EQ(chunk_of(f, "/pairs/200-100/train/input", 0, &a, NULL, NULL), 0);
  MT_ASSERT_INT_EQ(flip_byte(f, (long)a + 729 * 4 + 40, 0x01), 0);
  mbsr_patchset *ps;
  MT_ASSERT_OK(mbsr_patchset_open(f, "200-100", "train", &ps));
  float in[729], tg[729];
  int64_t i = 0;
  MT_ASSERT_OK(mbsr_patchset_read(ps, &i, 1, in, tg)); /* patch 0 is intact */
  i = 1;
  int rc = mbsr_patchset_read(ps, &i, 1, in, tg);
  printf("\n  flipped input bit -> %s\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(rc, MBSR_ECHECKSUM);
  CU_ASSERT(strstr(mbsr_last_error(), f) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "/pairs/200-100/train") != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "patch 1:") != NULL);
  mbsr_patchset_close(ps);
  /* a target bit, read through the trainer's path: training stops with the message */
  copy_file(good, f);
  MT_ASSERT_INT_EQ(chunk_of(f, "/pairs/200-100/train/target", 0, &a, NULL, NULL), 0);
  MT_ASSERT_INT_EQ(flip_byte(f, (long)a + 4 * 729 * 4 - 8, 0x01), 0); /* the last value of patch 3 */
  MT_ASSERT_OK(mbsr_patchset_open(f, "200-100", "train", &ps));
  int64_t idx[4] = {0, 1, 2, 3};
  float in4[4 * 729], tg4[4 * 729];
  MT_ASSERT_INT_EQ(mbsr_patchset_read(ps, idx, 4, in4, tg4), MBSR_ECHECKSUM);
  CU_ASSERT(strstr(mbsr_last_error(), "patch 3:") != NULL);
  mbsr_patchset_close(ps);
  /* /subjects (its crc32 attribute): refused on open */
  copy_file(good, f);
  MT_ASSERT_INT_EQ(mbsr_test_sh("off=$(grep -abo 'sub2' '%s' | head -1 | cut -d: -f1) && [ -n \"$off\" ] && "
                                "printf 'X' | dd of='%s' bs=1 seek=$((off + 1)) conv=notrunc status=none",
                                f, f),
                   0);
  rc = mbsr_patchset_open(f, "200-100", "train", &ps);
  printf("  flipped subject name -> %s\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(rc, MBSR_ECHECKSUM);
  CU_ASSERT(strstr(mbsr_last_error(), "/subjects") != NULL);
  /* a file without checksums (older mbsr): read as before */
  copy_file(good, f);
  hid_t h = H5Fopen(f, H5F_ACC_RDWR, H5P_DEFAULT);
  const char *sp[3] = {"train", "val", "test"};
  for (int s = 0; s < 3; s++) {
    char nm[64];
    snprintf(nm, sizeof nm, "/pairs/200-100/%s/crc32", sp[s]);
    CU_ASSERT(H5Ldelete(h, nm, H5P_DEFAULT) >= 0);
  }
  H5Fclose(h);
  MT_ASSERT_OK(read_all(f));
  MPI_Barrier(MPI_COMM_WORLD);
}

/* Replace dataset `name` of file by a float32/int32 dataset of the given shape (zeros). */
static void replace(const char *file, const char *name, int nd, const hsize_t *dims, hid_t type) {
  hid_t h = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(h >= 0);
  CU_ASSERT(H5Ldelete(h, name, H5P_DEFAULT) >= 0);
  hid_t sp = H5Screate_simple(nd, dims, NULL);
  hid_t d = H5Dcreate2(h, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CU_ASSERT(d >= 0);
  size_t n = 1;
  for (int k = 0; k < nd; k++) n *= dims[k];
  void *z = calloc(n, 4);
  CU_ASSERT(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, z) >= 0);
  free(z);
  H5Dclose(d), H5Sclose(sp), H5Fclose(h);
}

static void test_shapes(void) {
  if (rank != 0) {
    CU_PASS("rank 0 checks");
    MPI_Barrier(MPI_COMM_WORLD);
    return;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  mbsr_patchset *ps;
  MT_ASSERT_OK(mbsr_patchset_open(good, "200-100", "train", &ps));
  const hsize_t N = (hsize_t)mbsr_patchset_count(ps);
  mbsr_patchset_close(ps);
  char f[1300];
  snprintf(f, sizeof f, "%s/shape.h5", dir);
  /* input (N,10,10,10), target (N,21,21,21): the file */
  copy_file(good, f);
  hsize_t d10[4] = {N, 10, 10, 10}, d21[4] = {N, 21, 21, 21};
  replace(f, "/pairs/200-100/train/input", 4, d10, H5T_NATIVE_FLOAT);
  replace(f, "/pairs/200-100/train/target", 4, d21, H5T_NATIVE_FLOAT);
  int rc = mbsr_patchset_open(f, "200-100", "train", &ps);
  printf("\n  input/target shapes -> %s\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(rc, MBSR_EMISMATCH);
  CU_ASSERT(strstr(mbsr_last_error(), f) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "/pairs/200-100/train/target is (") != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), ",21,21,21)") != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "/pairs/200-100/train/input is (") != NULL);
  /* (tests/train/test_train_checks.c: `mbsr train` on such a file fails with this message) */
  /* subject: one entry short */
  copy_file(good, f);
  hsize_t dn[1] = {N - 1};
  replace(f, "/pairs/200-100/val/subject", 1, dn, H5T_NATIVE_INT32);
  rc = mbsr_patchset_open(f, "200-100", "val", &ps);
  printf("  subject length -> %s\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(rc, MBSR_EMISMATCH);
  CU_ASSERT(strstr(mbsr_last_error(), "/pairs/200-100/val/subject is (") != NULL);
  /* center: (N,2) */
  copy_file(good, f);
  MT_ASSERT_OK(mbsr_patchset_open(f, "200-100", "test", &ps));
  hsize_t dc[2] = {(hsize_t)mbsr_patchset_count(ps), 2};
  mbsr_patchset_close(ps);
  replace(f, "/pairs/200-100/test/center", 2, dc, H5T_NATIVE_INT32);
  rc = mbsr_patchset_open(f, "200-100", "test", &ps);
  printf("  center shape -> %s\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(rc, MBSR_EMISMATCH);
  CU_ASSERT(strstr(mbsr_last_error(), "/pairs/200-100/test/center is (") != NULL);
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  mbsr_log_set_rank(rank, nranks);
  mbsr_log_set_quiet(1);
  if (rank == 0) snprintf(dir, sizeof dir, "%s", mbsr_test_tmpdir());
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  snprintf(in_dir, sizeof in_dir, "%s/in", dir);
  snprintf(good, sizeof good, "%s/good.h5", dir);
  int g = 0;
  if (rank == 0) g = gen_cohort(in_dir, 4, 36, 0.05, 0, 0);
  MPI_Bcast(&g, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (g) {
    fprintf(stderr, "cannot generate the test cohort\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  mbsr_prep_config c;
  make_cfg(&c, good);
  if (mbsr_prep_run(&c, MPI_COMM_WORLD, NULL)) {
    fprintf(stderr, "cannot make the reference patch file: %s\n", mbsr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  static const mbsr_test_case cases[] = {{"prep_write_faults_2_ranks", test_faults_2_ranks},
                                         {"prep_write_faults_1_rank", test_faults_1_rank},
                                         {"prep_eval_volume_fault", test_eval_volume_fault},
                                         {"patch_file_checksums", test_checksums},
                                         {"patch_file_shapes_checked", test_shapes},
                                         {NULL, NULL}};
  int st = mbsr_test_main("data_prep_faults_mpi", cases); /* the same on every rank (mbsr_test_main agrees) */
  MPI_Finalize();
  return st;
}
