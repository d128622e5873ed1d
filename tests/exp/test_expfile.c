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
  MT_ASSERT_INT_EQ(e.cells[7].train_pair.lr_um[2], 400);
  CU_ASSERT_STRING_EQUAL(e.cells[7].arch, "ccnn");
  MT_ASSERT_INT_EQ(e.cells[7].test_pair.hr_um, 200);
  MT_ASSERT_INT_EQ(e.cells[7].samples, 64);
}

/* Per-axis pairs (issue 13): mixed with isotropic ones in one list, named in cells and params.yaml. */
static void test_anisotropic_pairs(void) {
  static mbsr_experiment e, f;
  const char *y = "experiment: an\nscales:\n  demo:\n    data: {base_um: 100, profile: gaussian}\n    matrix:\n"
                  "      train_pair: [200-100, 100x100x400-100]\n      test_pair: [100x100x400-100]\n";
  MT_ASSERT_OK(mbsr_exp_load(write_tmp("aniso.yaml", y), "demo", &e));
  MT_ASSERT_INT_EQ(e.n_cells, 2);
  CU_ASSERT_STRING_EQUAL(e.cells[0].name, "c00_resnet_200-100_on100x100x400-100_n5000");
  CU_ASSERT_STRING_EQUAL(e.cells[1].name, "c01_resnet_100x100x400-100_n5000");
  MT_ASSERT_INT_EQ(e.cells[1].train_pair.lr_um[0], 100);
  MT_ASSERT_INT_EQ(e.cells[1].train_pair.lr_um[2], 400);
  MT_ASSERT_INT_EQ(e.cells[1].train_pair.hr_um, 100);
  CU_ASSERT_STRING_EQUAL(e.s.profile, "gaussian");
  char p[4096];
  snprintf(p, sizeof p, "%s/aniso-params.yaml", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_exp_write_params(&e, p));
  MT_ASSERT_OK(mbsr_exp_load(p, "demo", &f));
  CU_ASSERT_STRING_EQUAL(f.cells[0].name, e.cells[0].name);
  CU_ASSERT(mbsr_res_pair_equal(&f.s.train_pair[1], &e.s.train_pair[1]));
  CU_ASSERT_STRING_EQUAL(f.s.profile, "gaussian");
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

/* Odd strings (quotes, backslashes, a tab, a path with a quote) are escaped in params.yaml and read back. */
static void test_params_odd_strings(void) {
  static mbsr_experiment e, f;
  const char *yaml = "experiment: odd\ntitle: \"a \\\"quoted\\\" \\\\ title\\twith a tab\"\npaper_ref: 'it''s'\n"
                     "scales:\n  demo: {data: {dir: \"data/my \\\"cohort\\\"\"}}\n";
  MT_ASSERT_OK(mbsr_exp_load(write_tmp("odd.yaml", yaml), "demo", &e));
  CU_ASSERT_STRING_EQUAL(e.title, "a \"quoted\" \\ title\twith a tab");
  CU_ASSERT_STRING_EQUAL(e.paper_ref, "it's");
  CU_ASSERT_STRING_EQUAL(e.s.data_dir, "data/my \"cohort\"");
  char p[4096];
  snprintf(p, sizeof p, "%s/odd_params.yaml", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_exp_write_params(&e, p));
  MT_ASSERT_OK(mbsr_exp_load(p, "demo", &f));
  CU_ASSERT_STRING_EQUAL(f.title, e.title);
  CU_ASSERT_STRING_EQUAL(f.paper_ref, e.paper_ref);
  CU_ASSERT(memcmp(&e.s, &f.s, sizeof e.s) == 0);
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
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    matrix: {train_pair: [100-200]}\n",
               "bad.yaml:5: matrix.train_pair: pair 100-200: LR voxel 100 um along axis i is not a positive integer multiple of the HR 200 um");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    matrix: {train_pair: [100x100x250-100]}\n",
               "bad.yaml:5: matrix.train_pair: pair 100x100x250-100: LR voxel 250 um along axis k is not a positive integer multiple");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    matrix: {train_pair: [100x400-100]}\n", "pair '100x400-100': expected LR-HR");
  expect_error("experiment: x\nscales:\n  demo: {data: {profile: sinc}}\n", "data.profile: 'sinc' is not boxcar | gaussian");
  expect_error("experiment: x\nscales:\n  paper: {}\n", "no scale 'demo' (this file has: paper)");
  expect_error("experiment: x\nscales:\n  Demo: {}\n", "scale name 'Demo': use lower-case letters");
  expect_error("experiment: x\nscales:\n  demo: {data: {cv: kfold}}\n", "data.cv: 'kfold' is not none | loso");
  expect_error("experiment: x\nscales:\n  demo: {data: {norm_pct: [99, 1]}}\n", "needs lo < hi");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo: {model: {global_residual: maybe}}\n", "is not true/false");
  expect_error("experiment: x\nscales: [\n", "YAML syntax error");
  expect_error("experiment: x\nscales:\n  paper: {}\n  demo:\n    data: {base_um: 30}\n    matrix: {train_pair: [200-100]}\n", "not a multiple of data.base_um");
}

/* Bounded, linear loading (issue 9): deep nesting, many nodes, big files and several documents are
 * refused quickly with file:line; a key given twice in a mapping is an error (was accepted, the
 * later value silently winning or not). */
static void write_big(const char *name, const char *head, const char *unit, long reps, const char *tail, char *path,
                      size_t n) {
  snprintf(path, n, "%s/%s", mbsr_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(head, f);
  for (long i = 0; i < reps; i++) fputs(unit, f);
  fputs(tail, f);
  fclose(f);
}

static void expect_fast_error(const char *path, const char *needle) {
  static mbsr_experiment e;
  double t0 = mbsr_now();
  int rc = mbsr_exp_load(path, "demo", &e);
  double s = mbsr_now() - t0;
  printf("\n    %s: %.3f s: %s", strrchr(path, '/') + 1, s, mbsr_last_error());
  CU_ASSERT(rc != 0);
  CU_ASSERT(s < 2.0); /* was > 60 s for 100,000 '[' */
  CU_ASSERT(strstr(mbsr_last_error(), path) != NULL);
  if (!strstr(mbsr_last_error(), needle)) fprintf(stderr, "  message lacks '%s'\n", needle);
  CU_ASSERT(strstr(mbsr_last_error(), needle) != NULL);
}

static void test_bounded_loading(void) {
  char p[4096];
  write_big("deep_flow.yaml", "experiment: x\nscales: ", "[", 100000, "\n", p, sizeof p);
  expect_fast_error(p, ":2: nesting deeper than 32 levels");
  write_big("deep_flow_closed.yaml", "experiment: x\nscales: ", "[", 100000, "", p, sizeof p);
  {
    FILE *f = fopen(p, "a");
    for (int i = 0; i < 100000; i++) fputc(']', f);
    fputc('\n', f);
    fclose(f);
  }
  expect_fast_error(p, "nesting deeper");
  write_big("deep_map.yaml", "experiment: x\nscales: ", "{a: ", 50000, "\n", p, sizeof p);
  expect_fast_error(p, "nesting deeper");
  /* a wide flat list: within the event budget, linear, refused by the schema */
  write_big("wide.yaml", "experiment: x\nscales:\n  demo:\n    matrix:\n      samples: [", "1, ", 150000, "1]\n", p,
            sizeof p);
  expect_fast_error(p, "too many items");
  write_big("too_many_events.yaml", "experiment: x\nscales:\n  demo:\n    matrix:\n      samples: [", "1,", 300000,
            "1]\n", p, sizeof p);
  expect_fast_error(p, "YAML events");
  write_big("too_big.yaml", "experiment: x\n", "# padding padding padding padding padding padding padding\n", 20000,
            "scales: {demo: {}}\n", p, sizeof p);
  expect_fast_error(p, "at most");
  write_big("two_docs.yaml", "experiment: x\nscales: {demo: {}}\n", "", 0, "---\nexperiment: y\n", p, sizeof p);
  expect_fast_error(p, ":3: a second YAML document");
}

static void test_duplicate_keys(void) {
  expect_error("experiment: a\nexperiment: b\nscales: {demo: {}}\n", ":2: duplicate key 'experiment' (first at line 1)");
  expect_error("experiment: a\nscales:\n  demo:\n    model: {channels: 8}\n    model: {blocks: 2}\n",
               ":5: duplicate key 'model' (first at line 4)");
  expect_error("experiment: a\nscales:\n  demo:\n    model:\n      channels: 8\n      blocks: 2\n      channels: 16\n",
               ":7: duplicate key 'channels' (first at line 5)");
  expect_error("experiment: a\nscales: {demo: {}, demo: {}}\n", ":2: duplicate key 'demo'");
  expect_error("experiment: a\nreport: {anova: true, anova: false}\nscales: {demo: {}}\n", "duplicate key 'anova'");
  /* the same key in different mappings is fine */
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(write_tmp("dup_ok.yaml", "experiment: a\nscales:\n  demo: {model: {channels: 8}}\n"
                                                      "  paper: {model: {channels: 16}}\n"),
                             "demo", &e));
  MT_ASSERT_INT_EQ(e.s.channels, 8);
}

static void test_shipped_experiment_files(void) {
  const char *names[] = {"table1", "networks", "resolution", "transfer", "human", "anisotropic"};
  const char *src = getenv("MBSR_SOURCE_DIR");
  CU_ASSERT_FATAL(src != NULL);
  for (int i = 0; i < 6; i++)
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
                                         {"anisotropic_pairs", test_anisotropic_pairs},
                                         {"params_odd_strings", test_params_odd_strings},
                                         {"errors_name_file_and_line", test_errors_name_file_and_line},
                                         {"bounded_loading", test_bounded_loading},
                                         {"duplicate_keys", test_duplicate_keys},
                                         {"shipped_experiment_files", test_shipped_experiment_files},
                                         {NULL, NULL}};
  return mbsr_test_main("exp_expfile", cases);
}
