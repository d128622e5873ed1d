/* Shipped models: `mbsr models --add` exports an inference-only checkpoint (no Adam moments) with its
 * manifest entry; `mbsr models` lists it; `mbsr apply --model NAME` finds it, verifies its sha256,
 * derives the target grid from its pair and refuses a tampered file or an unknown name. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mbsr/data.h"
#include "mbsr/model.h"
#include "mbsr_test.h"

static void test_add_list_apply(void) {
  const char *d = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char ck[4200], md[4200], in[4200], out[4200];
  snprintf(ck, sizeof ck, "%s/trained.h5", d);
  snprintf(md, sizeof md, "%s/models", d);
  snprintf(in, sizeof in, "%s/lr.nii.gz", d);
  snprintf(out, sizeof out, "%s/sr.nii.gz", d);
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.channels = 8, c.blocks = 2, c.global_residual = 1;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, 4, 9, 9, 9, &m));
  mbsr_model_init(m, 3);
  mbsr_sr_contract k;
  mbsr_sr_contract_default(&k);
  for (int a = 0; a < 3; a++) k.lr_vox_mm[a] = 0.2, k.hr_vox_mm[a] = 0.1;
  k.patch = 9;
  snprintf(k.training, sizeof k.training, "{\"data\": \"x.h5\", \"pair\": \"200-100\"}");
  mbsr_model_set_contract(m, &k);
  MT_ASSERT_OK(mbsr_checkpoint_save(m, ck, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' models --add af-test --from '%s' --dir '%s' --description 'a test' --cv '+1.0 %%' 2>/dev/null",
                                bin, ck, md),
                   0);
  /* inference-only: smaller than the training checkpoint (no Adam m, v) */
  struct stat a, b;
  char shipped[4300];
  snprintf(shipped, sizeof shipped, "%s/af-test.h5", md);
  CU_ASSERT_FATAL(stat(ck, &a) == 0 && stat(shipped, &b) == 0);
  printf("\n  training checkpoint %lld bytes, shipped %lld bytes\n", (long long)a.st_size, (long long)b.st_size);
  CU_ASSERT(b.st_size < a.st_size / 2);
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_MODELS='%s' '%s' models | grep -q '^af-test  *200->100  *0.2 -> 0.1  *a test'", md, bin), 0);
  /* the same weights and contract come back */
  mbsr_model *r = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(shipped, 4, 9, 9, 9, &r, NULL));
  CU_ASSERT(memcmp(mbsr_model_params(r), mbsr_model_params(m), sizeof(float) * mbsr_model_num_params(m)) == 0);
  MT_ASSERT_NEAR(mbsr_model_get_contract(r)->lr_vox_mm[2], 0.2, 1e-12);
  CU_ASSERT(strstr(mbsr_model_get_contract(r)->training, "200-100") != NULL);
  mbsr_model_free(r);
  /* apply by name: a 200 um input -> the 100 um grid (factor 2 from the model's pair) */
  double vox[3] = {0.2, 0.2, 0.2};
  mbsr_volume *v = mbsr_volume_new(12, 10, 8, vox, NULL);
  for (int64_t i = 0; i < mbsr_volume_nvox(v); i++) v->data[i] = (float)(i % 17) * 10.0f;
  MT_ASSERT_OK(mbsr_volume_write(in, v));
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_MODELS='%s' '%s' apply --model af-test '%s' '%s' --quiet", md, bin, in, out), 0);
  mbsr_volume *sr = NULL;
  MT_ASSERT_OK(mbsr_volume_read(out, NULL, &sr));
  MT_ASSERT_INT_EQ(sr->nx, 24);
  MT_ASSERT_NEAR(sr->vox[0], 0.1, 1e-6);
  char js[4300];
  snprintf(js, sizeof js, "%s/sr.json", d);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q '\"Name\": \"af-test\"' '%s'", js), 0);
  /* a tampered model file and an unknown name are refused, naming the file / the shipped models */
  MT_ASSERT_INT_EQ(mbsr_test_sh("printf 'x' >> '%s'", shipped), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_MODELS='%s' '%s' apply --model af-test '%s' '%s' --quiet 2>&1 | grep -q 'sha256 .* does not match'", md,
                                bin, in, out),
                   0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("MBSR_MODELS='%s' '%s' apply --model af-nope '%s' '%s' 2>&1 | grep -q \"no model named 'af-nope' (shipped models: af-test\"",
                                md, bin, in, out),
                   0);
  mbsr_volume_free(sr);
  mbsr_volume_free(v);
  mbsr_model_free(m);
}

int main(void) {
  const mbsr_test_case cases[] = {{"add_list_apply", test_add_list_apply}, {NULL, NULL}};
  return mbsr_test_main("models", cases);
}
