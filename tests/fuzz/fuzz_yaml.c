/* libFuzzer harness: experiment files (YAML) through mbsr_exp_load, scale "demo"; a loaded
 * experiment also has its parameters written back (mbsr_exp_write_params), which must read again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mbsr/exp.h"

/* mbsr_exp_write_params escapes quotes, backslashes and control characters (it was a finding of
 * this harness), so every loaded experiment must read back. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mbsr_experiment e; /* large: not on the stack */
  char path[4200], out[4200];
  if (fuzz_write("in.yaml", data, size, 0, path, sizeof path)) abort();
  if (mbsr_exp_load(path, "demo", &e) == 0) {
    snprintf(out, sizeof out, "%s/params.yaml", fuzz_dir());
    if (mbsr_exp_write_params(&e, out) == 0 && mbsr_exp_load(out, "demo", &e) != 0) abort(); /* must re-read */
  }
  return 0;
}
