/* io module internals shared by the format readers (not a public header). */
#ifndef MBSR_IO_INTERNAL_H
#define MBSR_IO_INTERNAL_H

#include "mbsr/volume.h"

/* NIfTI datatype codes (nifti1.h values), so that readers need not include nifti headers. */
enum {
  MBSR__DT_UINT8 = 2, MBSR__DT_INT16 = 4, MBSR__DT_INT32 = 8, MBSR__DT_FLOAT32 = 16, MBSR__DT_FLOAT64 = 64,
  MBSR__DT_INT8 = 256, MBSR__DT_UINT16 = 512, MBSR__DT_UINT32 = 768, MBSR__DT_INT64 = 1024, MBSR__DT_UINT64 = 1280
};

/* Append one interpretation note for the current read (see mbsr_volume_read_notes). */
void mbsr__note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mbsr__notes_clear(void);
/* Convert n samples of NIfTI datatype dt at src (native byte order) to float, y = x*slope + inter;
 * records the range of the converted values. Returns 0 or MBSR_EUNSUPPORTED. */
int mbsr__convert(float *dst, const void *src, int64_t n, int dt, double slope, double inter, double *mn, double *mx);

#endif
