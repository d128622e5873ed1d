/* libFuzzer harness: one (multi-page) TIFF file through mbsr_volume_read with a voxel size and an
 * orientation, as `--tiff-vox 0.04,0.04,0.05 --tiff-orient RIA` give them. */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "mbsr/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (fuzz_write("in.tif", data, size, 0, path, sizeof path)) abort();
  mbsr_read_opts o = {.tiff_vox = {0.04, 0.04, 0.05}, .tiff_orient = "RIA"};
  fuzz_read_volume(path, &o);
  return 0;
}
