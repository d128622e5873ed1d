/* A real single-node Slurm cluster (slurm/testcluster.sh: munged + slurmctld + slurmd from Debian)
 * runs the demo Table 1 sweep (CI-sized: tests/fixtures/slurm/table1-ci.yaml) as an array job plus
 * the afterok report job submitted by slurm/submit; the test waits for both, checks the table and
 * stops exactly the daemons it started. Skips visibly where Slurm is not installed, when not root,
 * or when another Slurm cluster holds ports 6817/6818. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = calloc(1, (size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
  fclose(f);
  return s;
}

static long read_pid(const char *path) {
  char *s = slurp(path);
  long pid = s ? atol(s) : 0;
  free(s);
  return pid;
}

static void test_slurm_table1_array_and_report(void) {
  const char *src = getenv("MBSR_SOURCE_DIR");
  if (geteuid() != 0) { mbsr_test_skip("not root: cannot run slurmctld/slurmd here"); return; }
  if (access("/usr/sbin/slurmctld", X_OK) || access("/usr/sbin/slurmd", X_OK) || access("/usr/sbin/munged", X_OK)) {
    mbsr_test_skip("Slurm (slurm-wlm, munge) is not installed");
    return;
  }
  CU_ASSERT_FATAL(src != NULL);
  const char *tmp = mbsr_test_tmpdir();
  char base[4096], pids[3][4200];
  snprintf(base, sizeof base, "%s/cluster", tmp);
  int rc = mbsr_test_sh("bash '%s/slurm/testcluster.sh' start '%s' > '%s/env.sh' 2> '%s/cluster.err'", src, base, tmp, tmp);
  if (rc == 3 || rc == 4) {
    mbsr_test_sh("cat '%s/cluster.err'", tmp);
    mbsr_test_skip("Slurm cannot be started here (see the line above)");
    return;
  }
  if (rc != 0) mbsr_test_sh("cat '%s/cluster.err'; tail -20 '%s'/log/*.log", tmp, base);
  MT_ASSERT_INT_EQ(rc, 0);
  if (rc != 0) {
    mbsr_test_sh("bash '%s/slurm/testcluster.sh' stop '%s'", src, base);
    return;
  }
  const char *names[3] = {"munged", "slurmctld", "slurmd"};
  long pid[3];
  for (int i = 0; i < 3; i++) {
    snprintf(pids[i], sizeof pids[i], "%s/run/%s.pid", base, names[i]);
    pid[i] = read_pid(pids[i]);
    CU_ASSERT(pid[i] > 1);
  }

  /* Submit the sweep array + report and wait for both (the report job's state decides). The site's
   * MPI launch is a setting: this test cluster's Open MPI needs srun --mpi=pmix. */
  double t0 = mbsr_now();
  rc = mbsr_test_sh("cd '%s' && . ./env.sh && MBSR_BIN='%s' bash '%s/slurm/submit' "
                    "'%s/tests/fixtures/slurm/table1-ci.yaml' --scale demo --results '%s/results' "
                    "--threads 1 --time 00:20:00 --mpi pmix --wait > '%s/submit.log' 2>&1",
                    tmp, mbsr_test_bin(), src, src, tmp, tmp);
  printf("\nslurm: array + report finished in %.1f s (exit %d)\n", mbsr_now() - t0, rc);
  mbsr_test_sh("cat '%s/submit.log'", tmp);
  if (rc != 0) mbsr_test_sh("tail -n 30 '%s'/results/slurm-logs/*.out", tmp);

  /* Stop exactly the daemons started above, then check they are gone. */
  MT_ASSERT_INT_EQ(mbsr_test_sh("bash '%s/slurm/testcluster.sh' stop '%s'", src, base), 0);
  for (int i = 0; i < 3; i++)
    if (pid[i] > 1) CU_ASSERT(kill((pid_t)pid[i], 0) != 0);

  MT_ASSERT_INT_EQ(rc, 0);
  char path[4400];
  snprintf(path, sizeof path, "%s/submit.log", tmp);
  char *log = slurp(path);
  CU_ASSERT(log && strstr(log, "array ") && strstr(log, "cells 6") && strstr(log, "COMPLETED"));
  free(log);
  snprintf(path, sizeof path, "%s/results/demo/table1/table.md", tmp);
  char *table = slurp(path);
  CU_ASSERT_FATAL(table != NULL);
  CU_ASSERT(strstr(table, "400-200") != NULL);
  CU_ASSERT(strstr(table, "200-100") != NULL);
  CU_ASSERT(strstr(table, "100-50") != NULL);
  free(table);
  snprintf(path, sizeof path, "%s/results/demo/table1/README.md", tmp);
  CU_ASSERT(mbsr_file_exists(path));
  for (int c = 0; c < 6; c++) {
    int found = mbsr_test_sh("ls -d '%s'/results/demo/table1/cells/c0%d_* >/dev/null 2>&1", tmp, c);
    CU_ASSERT(found == 0);
  }
}

int main(void) {
  static const mbsr_test_case cases[] = {{"slurm_table1_array_and_report", test_slurm_table1_array_and_report},
                                         {NULL, NULL}};
  return mbsr_test_main("slurm", cases);
}
