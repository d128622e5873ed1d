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

/* A header declaring a network its bytes cannot hold is refused by the loader before it allocates
 * (check_declared_size in src/model/checkpoint.c; it was a finding of this harness). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (h5edit_make(data, size, path, sizeof path)) return 0;
  mbsr_model *m = NULL;
  static mbsr_ckpt_meta meta;
  if (mbsr_checkpoint_load(path, 1, 8, 8, 8, &m, &meta) == 0) {
    (void)mbsr_checkpoint_load_into(m, path, &meta);
    mbsr_model_free(m);
  }
  h5edit_assert_closed("fuzz_checkpoint");
  return 0;
}
