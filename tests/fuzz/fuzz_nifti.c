/* libFuzzer harness: NIfTI-1/2 single files through mbsr_volume_read. The first byte picks the
 * container (bit 0: 0 = the rest as a raw .nii, 1 = the rest gzip-compressed into a .nii.gz;
 * fuzz_nifti_gz feeds raw gzip bytes) and bit 1 the allow_bad_geometry override. */
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "mbsr/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char path[4200];
  int gz = data[0] & 1;
  if (fuzz_write(gz ? "in.nii.gz" : "in.nii", data + 1, size - 1, gz, path, sizeof path)) abort();
  mbsr_read_opts o = {.allow_bad_geometry = data[0] & 2 ? 1 : 0};
  fuzz_read_volume(path, &o);
  return 0;
}
