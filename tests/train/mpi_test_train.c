/* mbsr_train_run under MPI (2 ranks): 2-rank training equals 1-rank training with the same global
 * batch and seed (1e-5 relative after 20 steps), an interrupted + resumed run ends bitwise equal
 * to an uninterrupted one, a failing rank stops every rank with a message naming it, a NaN/Inf
 * loss stops the run and keeps the last good checkpoint. */
#include <mpi.h>
#include <stdlib.h>

#include "mbsr/data.h"
#include "train_common.h"

static int rank, nranks;
static char dir[1024], data[1200];

static void path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void test_2_ranks_equal_1_rank(void) {
  char a[1200], b[1200], fa[1300], fb[1300];
  path(a, sizeof a, "eq2");
  path(b, sizeof b, "eq1");
  mbsr_train_config c;
  mbsr_train_summary s2, s1;
  tiny_cfg(&c, data, a);
  c.max_steps = 20;
  MT_ASSERT_OK(mbsr_train_run(&c, MPI_COMM_WORLD, &s2));
  MT_ASSERT_INT_EQ(s2.steps, 20);
  CU_ASSERT(s2.epochs >= 1); /* at least one validation ran in parallel */
  if (rank == 0) {
    tiny_cfg(&c, data, b);
    c.max_steps = 20;
    MT_ASSERT_OK(mbsr_train_run(&c, MPI_COMM_SELF, &s1));
    MT_ASSERT_INT_EQ(s1.steps, 20);
    MT_ASSERT_INT_EQ(s1.epochs, s2.epochs);
    snprintf(fa, sizeof fa, "%s/last.h5", a);
    snprintf(fb, sizeof fb, "%s/last.h5", b);
    size_t na = 0, nb = 0;
    mbsr_ckpt_meta ma, mb;
    float *pa = ckpt_params(fa, &na, &ma), *pb = ckpt_params(fb, &nb, &mb);
    CU_ASSERT_FATAL(pa && pb);
    MT_ASSERT_INT_EQ(na, nb);
    MT_ASSERT_INT_EQ(ma.step, 20);
    double rd = rel_diff(pa, pb, na);
    fprintf(stderr, "  2 ranks vs 1 rank after 20 steps: max rel weight diff %.3g; val %.9g vs %.9g\n", rd, s2.last_val, s1.last_val);
    CU_ASSERT(rd <= 1e-5);
    /* the weights did move: the comparison is not between two initialisations */
    mbsr_model *m0 = NULL;
    MT_ASSERT_OK(mbsr_model_create(&c.model, 4, 9, 9, 9, &m0));
    mbsr_model_init(m0, c.seed);
    CU_ASSERT(rel_diff(mbsr_model_params(m0), pb, nb) > 1e-3);
    mbsr_model_free(m0);
    MT_ASSERT_REL(s2.last_val, s1.last_val, 1e-5, 1e-12);
    free(pa), free(pb);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_resume_bitwise(void) {
  char u[1200], r[1200], fu[1300], fr[1300];
  path(u, sizeof u, "uninterrupted");
  path(r, sizeof r, "resumed");
  mbsr_train_config c;
  mbsr_train_summary s;
  tiny_cfg(&c, data, u);
  c.max_steps = 27; /* ends inside an epoch */
  MT_ASSERT_OK(mbsr_train_run(&c, MPI_COMM_WORLD, &s));
  MT_ASSERT_INT_EQ(s.steps, 27);
  tiny_cfg(&c, data, r);
  c.max_steps = 13; /* interrupted inside the second epoch, between two periodic checkpoints */
  MT_ASSERT_OK(mbsr_train_run(&c, MPI_COMM_WORLD, &s));
  MT_ASSERT_INT_EQ(s.steps, 13);
  c.max_steps = 27;
  c.resume = 1;
  MT_ASSERT_OK(mbsr_train_run(&c, MPI_COMM_WORLD, &s));
  MT_ASSERT_INT_EQ(s.steps, 27);
  if (rank == 0) {
    snprintf(fu, sizeof fu, "%s/last.h5", u);
    snprintf(fr, sizeof fr, "%s/last.h5", r);
    size_t nu = 0, nr = 0;
    mbsr_ckpt_meta mu, mr;
    float *pu = ckpt_params(fu, &nu, &mu), *pr = ckpt_params(fr, &nr, &mr);
    CU_ASSERT_FATAL(pu && pr);
    MT_ASSERT_INT_EQ(nu, nr);
    CU_ASSERT(memcmp(pu, pr, nu * sizeof *pu) == 0); /* bitwise */
    MT_ASSERT_INT_EQ(mu.step, mr.step);
    MT_ASSERT_INT_EQ(mu.epoch, mr.epoch);
    CU_ASSERT(mu.best_val == mr.best_val);
    /* the JSON-lines logs agree on every loss (timings aside) */
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd %s && for d in uninterrupted resumed; do sed 's/\"patches_per_s.*//' $d/train.jsonl > $d.losses; done && "
                                  "cmp uninterrupted.losses resumed.losses && test $(wc -l < resumed.losses) -ge 2",
                                  dir),
                     0);
    free(pu), free(pr);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_failing_rank_stops_all(void) {
  char o[1200];
  path(o, sizeof o, "fail");
  mbsr_train_config c;
  tiny_cfg(&c, data, o);
  c.max_steps = 20;
  c.inject_fail_rank = 1 % nranks;
  c.inject_fail_step = 6;
  double t0 = mbsr_now();
  int rc = mbsr_train_run(&c, MPI_COMM_WORLD, NULL);
  CU_ASSERT(rc < 0);
  char want[32];
  snprintf(want, sizeof want, "rank %d", 1 % nranks);
  CU_ASSERT(strstr(mbsr_last_error(), want) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "injected failure at step 6") != NULL);
  if (rank == 0) fprintf(stderr, "  rank %d: failure message: %s (%.2f s)\n", rank, mbsr_last_error(), mbsr_now() - t0);
  /* the last complete checkpoint (step 4) stays; no temporary is left */
  if (rank == 0) {
    char f[1300];
    snprintf(f, sizeof f, "%s/last.h5", o);
    size_t n;
    mbsr_ckpt_meta m;
    float *p = ckpt_params(f, &n, &m);
    CU_ASSERT(p != NULL);
    if (p) MT_ASSERT_INT_EQ(m.step, 4);
    free(p);
    MT_ASSERT_INT_EQ(mbsr_test_sh("! ls -a %s | grep -q '^.tmp-'", o), 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_weight_checksum_mismatch(void) {
  if (nranks < 2) {
    CU_PASS("needs 2 ranks");
    return;
  }
  char o[1200];
  path(o, sizeof o, "diverge");
  mbsr_train_config c;
  tiny_cfg(&c, data, o);
  c.max_steps = 20;
  c.checksum_every = 4;
  c.inject_diverge_rank = 1;
  c.inject_diverge_step = 5; /* caught at the check after step 8 */
  int rc = mbsr_train_run(&c, MPI_COMM_WORLD, NULL);
  MT_ASSERT_INT_EQ(rc, MBSR_EMISMATCH);
  CU_ASSERT(strstr(mbsr_last_error(), "weights differ between ranks at step 8") != NULL);
  if (rank == 0) fprintf(stderr, "  checksum: %s\n", mbsr_last_error());
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_nonfinite_loss_stops(void) {
  char o[1200];
  path(o, sizeof o, "nan");
  mbsr_train_config c;
  tiny_cfg(&c, data, o);
  c.max_steps = 60;
  c.ckpt_every = 1;   /* a checkpoint after every good step */
  c.adam.lr = 1e30f; /* diverges within a few steps */
  c.model.global_residual = 0;
  int rc = mbsr_train_run(&c, MPI_COMM_WORLD, NULL);
  MT_ASSERT_INT_EQ(rc, MBSR_ENONFINITE);
  CU_ASSERT(strstr(mbsr_last_error(), "NaN") != NULL || strstr(mbsr_last_error(), "nan") != NULL ||
            strstr(mbsr_last_error(), "inf") != NULL);
  if (rank == 0) {
    fprintf(stderr, "  non-finite: %s\n", mbsr_last_error());
    /* the last checkpoint written before the blow-up is complete and finite */
    char f[1300];
    snprintf(f, sizeof f, "%s/last.h5", o);
    size_t n = 0;
    mbsr_ckpt_meta m;
    float *p = ckpt_params(f, &n, &m);
    CU_ASSERT(p != NULL);
    int finite = 1;
    for (size_t i = 0; p && i < n; i++) finite &= isfinite(p[i]) != 0;
    CU_ASSERT(finite);
    if (p) fprintf(stderr, "  last good checkpoint: step %lld\n", (long long)m.step);
    free(p);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  mbsr_log_set_rank(rank, nranks);
  if (rank == 0) snprintf(dir, sizeof dir, "%s", mbsr_test_tmpdir());
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  char in[1100];
  snprintf(in, sizeof in, "%s/in", dir);
  snprintf(data, sizeof data, "%s/patches.h5", dir);
  int g = 0;
  if (rank == 0) g = gen_cohort(in, 4, 40, 0.05, 0, 0);
  MPI_Bcast(&g, 1, MPI_INT, 0, MPI_COMM_WORLD);
  mbsr_prep_config pc;
  mbsr_prep_config_default(&pc);
  pc.out = data, pc.inputs = in, pc.patch = 9, pc.patches_per_volume = 40, pc.progress = 0;
  pc.split[0] = 50, pc.split[1] = 25, pc.split[2] = 25;
  mbsr_prep_parse_pairs(&pc, "200-100");
  if (g || mbsr_prep_run(&pc, MPI_COMM_WORLD, NULL)) {
    fprintf(stderr, "cannot make the test data: %s\n", mbsr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  static const mbsr_test_case cases[] = {{"train_2_ranks_equal_1_rank_20_steps", test_2_ranks_equal_1_rank},
                                         {"train_resume_bitwise", test_resume_bitwise},
                                         {"train_failing_rank_stops_all", test_failing_rank_stops_all},
                                         {"train_weight_checksum_mismatch", test_weight_checksum_mismatch},
                                         {"train_nonfinite_loss_stops", test_nonfinite_loss_stops},
                                         {NULL, NULL}};
  int st = mbsr_test_main("train_mpi", cases); /* the same on every rank (mbsr_test_main agrees) */
  MPI_Finalize();
  return st;
}
