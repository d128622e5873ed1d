/* libFuzzer harness: model checkpoints through mbsr_checkpoint_load (src/model/checkpoint.c), sized
 * for one 8^3 patch, then mbsr_checkpoint_load_into the model it made. The inputs are edits of
 * valid checkpoints (h5edit.h): resnet, gan and an inference-only export made by make_corpus.sh.
 * Every HDF5 object the reader opened must be closed when it returns, success or not. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "h5edit.h"
#include "mbsr/model.h"

/* KNOWN ISSUE (reported, src/model/checkpoint.c is not tests/fuzz's to fix): the loader builds the
 * model from the file's channels/blocks (up to 4096/1000) before it compares the datasets with it,
 * so a small file can make it allocate gigabytes. Inputs asking for more than ~64 M parameters are
 * skipped here so that the bounded CI run stays meaningful; remove this when the loader checks. */
static int config_too_big(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 0;
  const char *names[4] = {"channels", "blocks", "disc_channels", "disc_blocks"};
  double v[4] = {64, 10, 64, 10};
  for (int i = 0; i < 4; i++) {
    if (H5Aexists(f, names[i]) <= 0) continue;
    hid_t a = H5Aopen(f, names[i], H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    long long x[64] = {0};
    if (sp >= 0 && H5Sget_simple_extent_npoints(sp) >= 1 && H5Sget_simple_extent_npoints(sp) <= 64 &&
        H5Aread(a, H5T_NATIVE_LLONG, x) >= 0)
      v[i] = (double)x[0];
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
  }
  H5Fclose(f);
  double p = 27.0 * v[0] * v[0] * (2 * v[1] + 2) + 27.0 * v[2] * v[2] * (2 * v[3] + 2);
  return p > 64e6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (h5edit_make(data, size, path, sizeof path)) return 0;
  if (config_too_big(path)) return 0;
  mbsr_model *m = NULL;
  static mbsr_ckpt_meta meta;
  if (mbsr_checkpoint_load(path, 1, 8, 8, 8, &m, &meta) == 0) {
    (void)mbsr_checkpoint_load_into(m, path, &meta);
    mbsr_model_free(m);
  }
  h5edit_assert_closed("fuzz_checkpoint");
  return 0;
}
