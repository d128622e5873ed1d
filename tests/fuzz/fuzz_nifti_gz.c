/* libFuzzer harness: the input as the bytes of a .nii.gz (corrupt, truncated or concatenated gzip
 * streams, non-gzip bytes under a .gz name) through mbsr_volume_read. */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "mbsr/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (fuzz_write("in.nii.gz", data, size, 0, path, sizeof path)) abort();
  fuzz_read_volume(path, NULL);
  return 0;
}
