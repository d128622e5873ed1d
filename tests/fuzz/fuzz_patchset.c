/* libFuzzer harness: `mbsr prep` patch files through mbsr_patchset_open (src/data/patchset.c) for
 * the pair the template holds (200-100), split train, then its contract, subjects and the first
 * patches (a few, of a sane edge). The inputs are edits of a valid patch file (h5edit.h). Every
 * HDF5 object must be closed after mbsr_patchset_close (or a failed open). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "h5edit.h"
#include "mbsr/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  if (h5edit_make(data, size, path, sizeof path)) return 0;
  mbsr_patchset *ps = NULL;
  if (mbsr_patchset_open(path, "200-100", "train", &ps) == 0) {
    mbsr_sr_contract k;
    (void)mbsr_patchset_contract(ps, &k);
    const char *const *names = NULL;
    int ns = mbsr_patchset_subjects(ps, &names);
    for (int i = 0; i < ns; i++)
      if (!names[i]) abort();
    int64_t n = mbsr_patchset_count(ps);
    const int32_t *subj = mbsr_patchset_subject_of(ps);
    for (int64_t i = 0; i < n; i++)
      if (subj[i] < 0 || subj[i] >= ns) abort();
    int p = mbsr_patchset_patch(ps);
    if (n > 0 && p > 0 && p <= 64) {
      int take = n < 4 ? (int)n : 4;
      size_t p3 = (size_t)p * p * p;
      float *in = malloc(sizeof(float) * p3 * take), *tg = malloc(sizeof(float) * p3 * take);
      int64_t idx[4] = {0, n - 1, n / 2, 1 % n};
      if (in && tg) (void)mbsr_patchset_read(ps, idx, take, in, tg);
      free(in);
      free(tg);
    }
    mbsr_patchset_close(ps);
  }
  h5edit_assert_closed("fuzz_patchset");
  return 0;
}
