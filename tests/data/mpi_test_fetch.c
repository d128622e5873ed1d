/* mbsr fetch on 2 ranks (mpiexec -n 2): items are split round-robin (item i on rank i % 2), rank 0
 * writes ONE manifest, a failure on rank 1 is recorded without a hang and counted on every rank,
 * and a re-run skips what is complete. The fixture server (127.0.0.1 only) runs under rank 0. */
#include <mpi.h>

#include "fetch_fixture_server.h"

static int g_rank, g_size;
static char g_tmp[4096];

static void opts_for(mbsr_fetch_opts *o, const char *out, const char *base) {
  mbsr_fetch_opts_default(o);
  o->out_dir = out;
  o->mirror = base;
  o->n = 5;
  o->seed = 11;
  o->templates[0] = 100;
  o->n_templates = 1;
  o->http.retries = 1;
  o->http.backoff = 0.02;
  o->http.read_timeout = 5;
}

/* Start the server on rank 0 and share its base URL. */
static int start(fx_server *s, const char *tag, const char *const *faults, char base[128]) {
  int ok = 1;
  if (g_rank == 0) {
    ok = fx_server_start(s, g_tmp, tag, faults) == 0;
    snprintf(base, 128, "%s", ok ? s->base : "");
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Bcast(base, 128, MPI_CHAR, 0, MPI_COMM_WORLD);
  return ok;
}

static void check_split(const char *out, int nexpect) {
  if (g_rank != 0) return;
  char mp[4300];
  snprintf(mp, sizeof mp, "%s/manifest.tsv", out);
  mbsr_manifest m;
  MT_ASSERT_OK(mbsr_manifest_read(mp, &m));
  MT_ASSERT_INT_EQ(m.n, nexpect);
  for (int i = 0; i < m.n; i++) {
    char want[32];
    snprintf(want, sizeof want, "rank %d:", i % g_size);
    if (strncmp(m.rows[i].message, want, strlen(want)))
      fprintf(stderr, "  row %d (%s): message '%s' does not start with '%s'\n", i, m.rows[i].id, m.rows[i].message, want);
    CU_ASSERT(!strncmp(m.rows[i].message, want, strlen(want)));
  }
  mbsr_manifest_free(&m);
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
}

static void test_round_robin_one_manifest(void) {
  fx_server s;
  char base[128], out[4300];
  CU_ASSERT_FATAL(start(&s, "mpi_rr", NULL, base));
  snprintf(out, sizeof out, "%s/rr", g_tmp);
  mbsr_fetch_opts o;
  opts_for(&o, out, base);
  mbsr_fetch_summary sum;
  MT_ASSERT_OK(mbsr_fetch_run(&o, MPI_COMM_WORLD, &sum));
  MT_ASSERT_INT_EQ(sum.items, 6);
  MT_ASSERT_INT_EQ(sum.failed, 0);
  check_split(out, 6);
  /* every rank downloaded its own share: 3 archives + template split 3/3 over the two ranks */
  if (g_rank == 0) MT_ASSERT_INT_EQ(fx_count(s.log, "well_known_file_download/"), 5);
  /* re-run: all verified and skipped, on both ranks' shares */
  MT_ASSERT_OK(mbsr_fetch_run(&o, MPI_COMM_WORLD, &sum));
  MT_ASSERT_INT_EQ(sum.skipped, 6);
  MT_ASSERT_INT_EQ(sum.failed, 0);
  if (g_rank == 0) MT_ASSERT_INT_EQ(fx_count(s.log, "well_known_file_download/"), 5);
  check_split(out, 6);
  if (g_rank == 0) fx_server_stop(&s);
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_failure_on_rank1(void) {
  /* item 5 (the template) belongs to rank 1 and fails permanently */
  const char *faults[] = {"average_template_100=500", NULL};
  fx_server s;
  char base[128], out[4300];
  CU_ASSERT_FATAL(start(&s, "mpi_fail", faults, base));
  snprintf(out, sizeof out, "%s/fail", g_tmp);
  mbsr_fetch_opts o;
  opts_for(&o, out, base);
  mbsr_fetch_summary sum;
  double t0 = mbsr_now();
  MT_ASSERT_OK(mbsr_fetch_run(&o, MPI_COMM_WORLD, &sum));
  MT_ASSERT_INT_EQ(sum.items, 6);
  MT_ASSERT_INT_EQ(sum.failed, 1); /* known on every rank */
  CU_ASSERT(mbsr_now() - t0 < 30);
  if (g_rank == 0) {
    char msg[512];
    CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_100", msg, sizeof msg), "failed");
    CU_ASSERT(!strncmp(msg, "rank 1: download:", 17) && strstr(msg, "HTTP 500"));
    MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
    fx_server_stop(&s);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  CU_ASSERT_FATAL(start(&s, "mpi_fail2", NULL, base));
  opts_for(&o, out, base);
  MT_ASSERT_OK(mbsr_fetch_run(&o, MPI_COMM_WORLD, &sum));
  MT_ASSERT_INT_EQ(sum.failed, 0);
  MT_ASSERT_INT_EQ(sum.skipped, 5);
  check_split(out, 6);
  if (g_rank == 0) fx_server_stop(&s);
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_plan_failure_agreed(void) {
  /* the listing fails on rank 0: every rank returns the error, nobody waits forever */
  const char *faults[] = {"mouse_connectivity_injection_structure=500", NULL};
  fx_server s;
  char base[128], out[4300];
  CU_ASSERT_FATAL(start(&s, "mpi_plan", faults, base));
  snprintf(out, sizeof out, "%s/plan", g_tmp);
  mbsr_fetch_opts o;
  opts_for(&o, out, base);
  o.http.retries = 0;
  mbsr_fetch_summary sum;
  int rc = mbsr_fetch_run(&o, MPI_COMM_WORLD, &sum);
  CU_ASSERT(rc < 0);
  if (g_rank == 0) {
    CU_ASSERT(strstr(mbsr_last_error(), "listing experiments") != NULL);
    fx_server_stop(&s);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
  fx_no_proxy();
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  mbsr_log_set_rank(g_rank, g_size);
  if (g_rank == 0) snprintf(g_tmp, sizeof g_tmp, "%s", mbsr_test_tmpdir());
  MPI_Bcast(g_tmp, sizeof g_tmp, MPI_CHAR, 0, MPI_COMM_WORLD);
  static const mbsr_test_case cases[] = {{"round-robin split, one manifest, re-run", test_round_robin_one_manifest},
                                         {"failure on rank 1 recorded, no hang", test_failure_on_rank1},
                                         {"plan failure agreed by all ranks", test_plan_failure_agreed},
                                         {NULL, NULL}};
  int rc = mbsr_test_main("fetch_mpi", cases);
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
