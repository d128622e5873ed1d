/* Experiment files: typed values, defaults, unknown keys and bad values as errors with file:line,
 * the resolved parameters written back (defaults included) and re-readable, the shipped files. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/exp.h"
#include "mbsr_test.h"

static const char *write_tmp(const char *name, const char *text) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", mbsr_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
  return path;
}

static const char *GOOD =
    "experiment: t1\n"
    "title: \"typed\"\n"
    "scales:\n"
    "  paper:\n"
    "    train: {epochs: 1000}\n"
    "  demo:\n"
    "    data: {base_um: 50, n_train: 3, n_test: 2}\n"
    "    model: {channels: 8, global_residual: yes}\n"
    "    train: {lr: 2.5e-4, seed: 18446744073709551615}\n"
    "    matrix:\n"
    "      arch: [resnet, ccnn]\n"
    "      train_pair: [200-100, 400-200]\n"
    "      test_pair: [400-200]\n"
    "      samples: 64\n"
    "      finetune: [false, true]\n";

static void test_typed_values_and_cells(void) {
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(write_tmp("good.yaml", GOOD), "demo", &e));
  CU_ASSERT_STRING_EQUAL(e.name, "t1");
  MT_ASSERT_INT_EQ(e.s.channels, 8);
  MT_ASSERT_INT_EQ(e.s.global_residual, 1);
  MT_ASSERT_NEAR(e.s.lr, 2.5e-4, 1e-18);
  CU_ASSERT(e.s.seed == 18446744073709551615ULL);
  MT_ASSERT_INT_EQ(e.s.blocks, 10);  /* default */
  MT_ASSERT_INT_EQ(e.s.patch, 21);   /* default */
  MT_ASSERT_INT_EQ(e.s.epochs, 1000); /* default (the paper scale's 1000 is not this scale's) */
  MT_ASSERT_INT_EQ(e.n_cells, 2 * 2 * 1 * 1 * 2);
  CU_ASSERT_STRING_EQUAL(e.cells[0].name, "c00_resnet_200-100_on400-200_n64");
  CU_ASSERT_STRING_EQUAL(e.cells[1].name, "c01_resnet_200-100_on400-200_n64_ft");
  MT_ASSERT_INT_EQ(e.cells[7].train_lr_um, 400);
  CU_ASSERT_STRING_EQUAL(e.cells[7].arch, "ccnn");
  MT_ASSERT_INT_EQ(e.cells[7].test_hr_um, 200);
  MT_ASSERT_INT_EQ(e.cells[7].samples, 64);
}

static void test_params_written_and_reread(void) {
  static mbsr_experiment e, f;
  MT_ASSERT_OK(mbsr_exp_load(write_tmp("good2.yaml", GOOD), "demo", &e));
  char p[4096];
  snprintf(p, sizeof p, "%s/params.yaml", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_exp_write_params(&e, p));
  FILE *fp = fopen(p, "r");
  CU_ASSERT_FATAL(fp != NULL);
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  buf[n] = 0;
  fclose(fp);
  /* defaults are written out */
  CU_ASSERT(strstr(buf, "      blocks: 10") != NULL);
  CU_ASSERT(strstr(buf, "      patience: 100") != NULL);
  CU_ASSERT(strstr(buf, "      train_pair: [200-100, 400-200]") != NULL);
  /* and the file is a valid experiment file giving the same resolved parameters and cells */
  MT_ASSERT_OK(mbsr_exp_load(p, "demo", &f));
  CU_ASSERT(memcmp(&e.s, &f.s, sizeof e.s) == 0);
  MT_ASSERT_INT_EQ(f.n_cells, e.n_cells);
  for (int i = 0; i < e.n_cells; i++) CU_ASSERT_STRING_EQUAL(f.cells[i].name, e.cells[i].name);
}

static void expect_error(const char *yaml, const char *needle) {
  static mbsr_experiment e;
  const char *p = write_tmp("bad.yaml", yaml);
  int rc = mbsr_exp_load(p, "demo", &e);
  CU_ASSERT(rc != 0);
  if (!strstr(mbsr_last_error(), needle)) fprintf(stderr, "  message '%s' lacks '%s'\n", mbsr_last_error(), needle);
  CU_ASSERT(strstr(mbsr_last_error(), needle) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "bad.yaml") != NULL);
}

static void test_errors_name_file_and_line(void) {
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    train:\n      epochz: 3\n", "bad.yaml:6: unknown key 'epochz' in scales.demo.train");
  expect_error("experiment: x\ncolour: red\nscales:\n  paper: {}\n  demo: {}\n", "bad.yaml:2: unknown key 'colour'");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    modle: {channels: 3}\n", "bad.yaml:5: unknown section 'modle'");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    model: {channels: many}\n", "bad.yaml:5: model.channels: 'many' is not an integer");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    train: {lr: -1}\n", "train.lr: -1 out of range");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    matrix: {arch: [resnet, vgg]}\n", "'vgg' is not resnet | ccnn | gan");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    matrix: {train_pair: [100-200]}\n", "'100-200' is not LR-HR");
  expect_error("experiment: x\nscales:\n  paper: {}\n", "no scale 'demo' (this file has: paper)");
  expect_error("experiment: x\nscales:\n  Demo: {}\n", "scale name 'Demo': use lower-case letters");
  expect_error("experiment: x\nscales:\n  demo: {data: {cv: kfold}}\n", "data.cv: 'kfold' is not none | loso");
  expect_error("experiment: x\nscales:\n  demo: {data: {norm_pct: [99, 1]}}\n", "needs lo < hi");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo: {model: {global_residual: maybe}}\n", "is not true/false");
  expect_error("experiment: x\nscales: [\n", "YAML syntax error");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    data: {base_um: 30}\n    matrix: {train_pair: [200-100]}\n", "not a multiple of data.base_um");
}

static void test_shipped_experiment_files(void) {
  const char *names[] = {"table1", "networks", "resolution", "transfer", "human"};
  const char *src = getenv("MBSR_SOURCE_DIR");
  CU_ASSERT_FATAL(src != NULL);
  for (int i = 0; i < 5; i++)
    for (int s = 0; s < 2; s++) {
      char p[4096];
      snprintf(p, sizeof p, "%s/experiments/%s.yaml", src, names[i]);
      static mbsr_experiment e;
      int rc = mbsr_exp_load(p, s ? "paper" : "demo", &e);
      if (rc) fprintf(stderr, "  %s: %s\n", p, mbsr_last_error());
      MT_ASSERT_INT_EQ(rc, 0);
      CU_ASSERT(e.n_cells >= 1);
      CU_ASSERT_STRING_EQUAL(e.name, names[i]);
    }
}

int main(void) {
  static const mbsr_test_case cases[] = {{"typed_values_and_cells", test_typed_values_and_cells},
                                         {"params_written_and_reread", test_params_written_and_reread},
                                         {"errors_name_file_and_line", test_errors_name_file_and_line},
                                         {"shipped_experiment_files", test_shipped_experiment_files},
                                         {NULL, NULL}};
  return mbsr_test_main("exp_expfile", cases);
}
