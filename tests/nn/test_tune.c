/* The measured conv algorithm choice (src/nn/tune.c): a tuning file of this CPU model decides what auto
 * runs for the shapes it lists (the nearest voxel count within 4x), the fixed rule decides the rest; a
 * measurement records the fastest algorithm it timed and auto uses it at once; the saved file reads
 * back; a file of another CPU is ignored. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "mbsr_test.h"

static char g_file[4096];

static int have_winograd(void) {
  return strncmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "avx", 3) == 0;
}

/* The crafted file (written by main before anything reads the table): 64 -> 64 at 8 x 11^3 forward
 * wino2x2x2, input gradient direct, weight gradient wino2x2x3; 64 -> 1 forward direct-narrow. */
static void test_file_decides(void) {
  if (!have_winograd()) {
    mbsr_test_skip("no AVX2 or AVX-512: no Winograd kernels, nothing to choose");
    return;
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(mbsr_conv_tune_source());
  CU_ASSERT_STRING_EQUAL(mbsr_conv_tune_source(), g_file);
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 8, 11, 11, 11, 64, 64, 1);
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 0), MBSR_CONV_WINO222);
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 1), MBSR_CONV_DIRECT);
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 2), MBSR_CONV_WINO223);
  mbsr_conv3d_dims_init(&s, 4, 11, 11, 11, 64, 64, 1); /* half the voxels: the nearest entry still */
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 0), MBSR_CONV_WINO222);
  mbsr_conv3d_dims_init(&s, 1, 13, 13, 13, 64, 64, 1); /* 4.8x fewer voxels: the fixed rule (3x3x3) */
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 0), MBSR_CONV_WINO333);
  mbsr_conv3d_dims_init(&s, 8, 11, 11, 11, 64, 1, 1); /* the direct kernels' narrow blocking */
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 0), MBSR_CONV_DIRECT_NARROW);
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 1), MBSR_CONV_DIRECT); /* (no entry: the rule) */
  mbsr_conv3d_dims_init(&s, 8, 11, 11, 11, 32, 64, 1); /* channels not in the file: the rule */
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 1), MBSR_CONV_WINO333);
  MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, 2), MBSR_CONV_WINO333);
}

/* A measurement: best[] is the fastest of what was timed, auto runs it, and the saved file reads back
 * (the table keeps the crafted entries and adds this shape). */
static void test_measure_and_save(void) {
  if (!have_winograd()) {
    mbsr_test_skip("no AVX2 or AVX-512: no Winograd kernels, nothing to choose");
    return;
  }
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 2, 10, 9, 11, 48, 48, 1);
  double ms[3][MBSR_CONV_NALGO];
  mbsr_conv_algo best[3];
  MT_ASSERT_OK(mbsr_conv_tune_shape(&s, 1, 2, ms, best));
  for (int p = 0; p < 3; p++) {
    double mn = INFINITY;
    int timed = 0;
    for (int a = 0; a < MBSR_CONV_NALGO; a++)
      if (!isnan(ms[p][a])) mn = fmin(mn, ms[p][a]), timed++;
    printf("\n  pass %d: direct %.3f, 2x2x2 %.3f, 2x2x3 %.3f, 2x3x3 %.3f, 3x3x3 %.3f, direct-narrow %.3f ms -> %s", p,
           ms[p][0], ms[p][1], ms[p][2], ms[p][3], ms[p][4], ms[p][5], mbsr_conv_algo_name(best[p]));
    /* 48 channels: both direct blockings (narrow: blocks of 32 or 8) and every tile apply with AVX2 and
     * AVX-512 */
    MT_ASSERT_INT_EQ(timed, 6);
    CU_ASSERT(ms[p][best[p]] == mn);
    MT_ASSERT_INT_EQ(mbsr_conv3d_algo(&s, p), best[p]);
  }
  char out[4200];
  snprintf(out, sizeof out, "%s/saved.tsv", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_conv_tune_save(out));
  char *txt = mbsr_test_slurp(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(txt);
  char cpu[600];
  snprintf(cpu, sizeof cpu, "# cpu\t%s\n", mbsr_cpu_model());
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, cpu));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\t0\t64\t64\t10648\twino2x2x2\t"));
  char line[128];
  for (int p = 0; p < 3; p++) {
    snprintf(line, sizeof line, "\t%d\t48\t48\t1980\t%s\t", p, mbsr_conv_algo_name(best[p]));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, line));
  }
  free(txt);
}

/* The CLI in fresh processes: this CPU's saved file is used (the per-layer line shows the recorded
 * forward choice), another CPU's file and MBSR_TUNE_FILE=none are not. */
static void test_cli_other_cpu(void) {
  if (!have_winograd()) {
    mbsr_test_skip("no AVX2 or AVX-512: no Winograd kernels, nothing to choose");
    return;
  }
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  MT_ASSERT_INT_EQ(mbsr_test_sh("sed 's/^# cpu\t.*/# cpu\tSome Other CPU/' '%s' > '%s/other.tsv'", g_file, t), 0);
  const char *run = "OMP_NUM_THREADS=1 '%s' bench --arch resnet --batch 8 --size 11 --repeats 1 --warmup 0 --threads 1 "
                    "2>&1 | grep -q '%s'";
  char cmd[8192], env[4400];
  snprintf(env, sizeof env, "MBSR_TUNE_FILE='%s' ", g_file);
  snprintf(cmd, sizeof cmd, run, bin, "block0.conv1.*wino2x2x2/direct/wino2x2x3");
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s%s", env, cmd), 0);
  snprintf(env, sizeof env, "MBSR_TUNE_FILE='%s/other.tsv' ", t);
  snprintf(cmd, sizeof cmd, run, bin, "conv tuning file: none");
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s%s", env, cmd), 0);
  snprintf(cmd, sizeof cmd, run, bin, "block0.conv1.*wino3x3x3/wino3x3x3/wino3x3x3");
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s%s", env, cmd), 0);
  snprintf(cmd, sizeof cmd, run, bin, "conv tuning file: none");
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_TUNE_FILE=none %s", cmd), 0);
}

int main(void) {
  /* the crafted file, before the first choice reads the table (once per process) */
  snprintf(g_file, sizeof g_file, "%s/tune-%d.tsv", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  FILE *f = fopen(g_file, "w");
  if (!f) return 1;
  fprintf(f, "# mbsr conv tuning 1\n# cpu\t%s\n# threads\t2\n", mbsr_cpu_model());
  fprintf(f, "isa\tpass\tcin\tcout\tvoxels\talgo\tms_direct\tms_wino2x2x2\tms_wino2x2x3\tms_wino2x3x3\tms_wino3x3x3\n");
  const char *isa = strncmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "avx512", 6) ? "avx2" : "avx512";
  fprintf(f, "%s\t0\t64\t64\t10648\twino2x2x2\t1\t1\t1\t1\t1\n", isa);
  fprintf(f, "%s\t1\t64\t64\t10648\tdirect\t1\t1\t1\t1\t1\n", isa);
  fprintf(f, "%s\t2\t64\t64\t10648\twino2x2x3\t1\t1\t1\t1\t1\n", isa);
  fprintf(f, "%s\t0\t64\t1\t10648\tdirect-narrow\t1\t1\t1\t1\t1\n", isa);
  fclose(f);
  setenv("MBSR_TUNE_FILE", g_file, 1);
  const mbsr_test_case cases[] = {
      {"tuning_file_decides_auto", test_file_decides},
      {"measure_choose_save", test_measure_and_save},
      {"cli_other_cpu_and_none", test_cli_other_cpu},
      {NULL, NULL},
  };
  int rc = mbsr_test_main("tune", cases);
  remove(g_file);
  return rc;
}
