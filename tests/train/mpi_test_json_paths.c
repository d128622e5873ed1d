/* JSON written by the library for paths with a quote, a backslash, a newline and non-ASCII
 * characters (in the directory and the file name): config.json, the checkpoint's info and config
 * attributes, and the SR contract's training summary (what `mbsr apply` copies into its sidecar as
 * TrainingData) are valid JSON that give the path back byte for byte (Jansson everywhere; the
 * checkpoint's config was printf JSON before issue 11). Runs on 2 ranks (prep and train are
 * collective). */
#include <hdf5.h>
#include <jansson.h>
#include <mpi.h>
#include <omp.h>
#include <stdlib.h>

#include "mbsr/data.h"
#include "train_common.h"

static int rank, nranks;
static char odd[1200], data[1400], out[1400];
static const char *const file_name = "p \"q\" \\ \xc3\xbc\xc3\xa9.h5"; /* p "q" \ üé.h5 */

static json_t *parse(const char *what, const char *txt) {
  json_error_t e;
  json_t *j = json_loads(txt, 0, &e);
  if (!j) fprintf(stderr, "  %s is not valid JSON (%s at %d): %s\n", what, e.text, e.position, txt);
  return j;
}

static const char *str_of(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "(absent)";
}

static void test_config_json(void) {
  if (rank != 0) return;
  char p[1500];
  snprintf(p, sizeof p, "%s/config.json", out);
  json_error_t e;
  json_t *j = json_load_file(p, 0, &e);
  if (!j) fprintf(stderr, "  %s: %s (line %d)\n", p, e.text, e.line);
  CU_ASSERT_FATAL(j != NULL);
  CU_ASSERT_STRING_EQUAL(str_of(j, "data"), data);
  CU_ASSERT_STRING_EQUAL(str_of(j, "pair"), "200-100");
  json_t *tr = json_object_get(json_object_get(j, "contract"), "training");
  CU_ASSERT(json_is_object(tr));
  CU_ASSERT_STRING_EQUAL(str_of(tr, "data"), file_name);
  json_decref(j);
}

/* The string attribute `name` of the HDF5 file (malloc'd). */
static char *h5_attr(const char *path, const char *name) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t a = f < 0 ? -1 : H5Aopen(f, name, H5P_DEFAULT);
  hid_t t = a < 0 ? -1 : H5Aget_type(a);
  char *s = t < 0 ? NULL : calloc(H5Tget_size(t) + 1, 1);
  if (s && H5Aread(a, t, s) < 0) free(s), s = NULL;
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  if (f >= 0) H5Fclose(f);
  return s;
}

static void test_checkpoint_json(void) {
  if (rank != 0) return;
  char ck[1500];
  snprintf(ck, sizeof ck, "%s/last.h5", out);
  mbsr_model *m = NULL;
  mbsr_ckpt_meta meta;
  MT_ASSERT_OK(mbsr_checkpoint_load(ck, 4, 9, 9, 9, &m, &meta));
  if (!m) return;
  json_t *info = parse("the checkpoint's info", meta.info);
  CU_ASSERT_FATAL(info != NULL);
  CU_ASSERT_STRING_EQUAL(str_of(info, "data"), data);
  json_decref(info);
  json_t *tr = parse("the contract's training summary", mbsr_model_get_contract(m)->training);
  CU_ASSERT_FATAL(tr != NULL);
  CU_ASSERT_STRING_EQUAL(str_of(tr, "data"), file_name);
  CU_ASSERT(json_array_size(json_object_get(tr, "train_subjects")) >= 1);
  json_decref(tr);
  mbsr_model_free(m);
  char *cfg = h5_attr(ck, "config");
  CU_ASSERT_FATAL(cfg != NULL);
  json_t *c = parse("the checkpoint's config attribute", cfg);
  CU_ASSERT_FATAL(c != NULL);
  CU_ASSERT_STRING_EQUAL(str_of(c, "arch"), "resnet");
  MT_ASSERT_INT_EQ(json_integer_value(json_object_get(c, "channels")), 4);
  MT_ASSERT_INT_EQ(json_integer_value(json_object_get(c, "global_residual")), 1);
  CU_ASSERT(json_is_number(json_object_get(c, "gan_lambda")));
  json_decref(c);
  free(cfg);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  mbsr_log_set_rank(rank, nranks);
  omp_set_num_threads(1);
  if (rank == 0) snprintf(odd, sizeof odd, "%s/odd \"dir\" \\ new\nline \xc3\xa4\xe2\x82\xac", mbsr_test_tmpdir());
  MPI_Bcast(odd, sizeof odd, MPI_CHAR, 0, MPI_COMM_WORLD);
  char in[1300];
  snprintf(in, sizeof in, "%s/in", odd);
  snprintf(data, sizeof data, "%s/%s", odd, file_name);
  snprintf(out, sizeof out, "%s/run \"1\"", odd);
  int g = 0;
  if (rank == 0) g = gen_cohort(in, 4, 40, 0.05, 0, 0);
  MPI_Bcast(&g, 1, MPI_INT, 0, MPI_COMM_WORLD);
  mbsr_prep_config pc;
  mbsr_prep_config_default(&pc);
  pc.out = data, pc.inputs = in, pc.patch = 9, pc.patches_per_volume = 20, pc.progress = 0;
  pc.split[0] = 50, pc.split[1] = 25, pc.split[2] = 25;
  mbsr_prep_parse_pairs(&pc, "200-100");
  mbsr_train_config c;
  tiny_cfg(&c, data, out);
  c.max_steps = 4;
  if (g || mbsr_prep_run(&pc, MPI_COMM_WORLD, NULL) || mbsr_train_run(&c, MPI_COMM_WORLD, NULL)) {
    fprintf(stderr, "cannot make the test data: %s\n", mbsr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  static const mbsr_test_case cases[] = {{"json_config_odd_paths", test_config_json},
                                         {"json_checkpoint_odd_paths", test_checkpoint_json},
                                         {NULL, NULL}};
  int st = mbsr_test_main("json_paths", cases); /* the same on every rank (mbsr_test_main agrees) */
  MPI_Finalize();
  return st;
}
