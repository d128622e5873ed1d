/* libFuzzer harness: MetaImage through mbsr_volume_read. Input = header [FUZZ_DATA_MARK data]:
 * with the mark the tail is the data file "in.raw" (the seeds say `ElementDataFile = in.raw`, raw
 * or zlib-compressed); without it the whole input is one .mha (ElementDataFile = LOCAL). */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "mbsr/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (fuzz_write_split(data, size, "in.mha", "in.mhd", "in.raw", path, sizeof path)) abort();
  fuzz_read_volume(path, NULL);
  return 0;
}
