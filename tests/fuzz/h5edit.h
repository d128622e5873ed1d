/* Structure-aware inputs for the HDF5 readers (checkpoint, patch file).
 *
 * Mutating the bytes of an HDF5 file mostly exercises libhdf5's own parser (whose crashes on
 * corrupt files are the library's, not mbsr's). Here the input is instead a template choice and a
 * list of edits applied through the HDF5 API to a valid file that mbsr wrote (templates from
 * make_corpus.sh: MBSR_FUZZ_TEMPLATES = their directory, MBSR_FUZZ_TEMPLATE_NAMES = "a.h5,b.h5"):
 * attributes replaced (numeric type and length, strings of any bytes and padding), deleted or
 * added; groups and datasets deleted, replaced (rank 0..5, dims 0..11, float/int/string type,
 * contents from the input), filled with NaN/Inf/huge values or poked. The result is always a
 * well-formed HDF5 file whose CONTENT is hostile: what mbsr's readers must check.
 * MBSR_FUZZ_RAW_HDF5=1 switches to raw bytes (the input is the file) for exploratory runs.
 * Input layout: [template index] then ops [op, attribute index, args...] until the input ends. */
#ifndef MBSR_FUZZ_H5EDIT_H
#define MBSR_FUZZ_H5EDIT_H

#include <stddef.h>
#include <stdint.h>

/* Build the edited file for this input; its path into path. 0, or -1 (input unusable). */
int h5edit_make(const uint8_t *data, size_t size, char *path, size_t pn);
/* After a reader returned (success or not): every HDF5 object it opened must be closed; if not,
 * say how many (naming `who`) and abort. */
void h5edit_assert_closed(const char *who);

#endif
