/* libFuzzer harness: NRRD through mbsr_volume_read. Input = header [FUZZ_DATA_MARK data]: without
 * the mark the whole input is an attached .nrrd; with it the head is a detached header (in.nhdr)
 * and the tail its data file "in.data" (the seeds say `data file: in.data`). */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "mbsr/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (fuzz_write_split(data, size, "in.nrrd", "in.nhdr", "in.data", path, sizeof path)) abort();
  fuzz_read_volume(path, NULL);
  return 0;
}
