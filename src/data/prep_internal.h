/* Internal helpers of src/data (not public API). */
#ifndef MBSR_PREP_INTERNAL_H
#define MBSR_PREP_INTERNAL_H
#include <hdf5.h>

#include "mbsr/data.h"

int mbsr__prep_to_base(const mbsr_volume *v, double base_mm, const char *name, mbsr_volume **out);

/* HDF5 helpers (h5util.c): every return code checked; errors name the file and object. */
void mbsr__h5_quiet(void);
int mbsr__h5_attr_int(hid_t obj, const char *name, int64_t v);
int mbsr__h5_attr_ints(hid_t obj, const char *name, const int *v, int n);
int mbsr__h5_attr_double(hid_t obj, const char *name, const double *v, int n);
int mbsr__h5_attr_str(hid_t obj, const char *name, const char *s);
int mbsr__h5_read_attr_double(hid_t obj, const char *name, double *v);
int mbsr__h5_read_attr_int(hid_t obj, const char *name, int64_t *v);
/* exactly n doubles (MBSR_EFORMAT otherwise) / a fixed-length string into buf */
int mbsr__h5_read_attr_doubles(hid_t obj, const char *name, double *v, int n);
int mbsr__h5_read_attr_str(hid_t obj, const char *name, char *buf, size_t n);

/* ---- integrity of patch files (see data.h): CRC-32 (zlib's, the ISO-HDLC polynomial) ----
 * Of one patch row: its p^3 input values, then its p^3 target values (float32, little-endian as
 * stored), then its subject index and its centre (int32). */
uint32_t mbsr__patch_crc(const float *in, const float *target, size_t p3, int32_t subject, const int32_t center[3]);
/* Of n bytes (the small datasets' "crc32" attribute). */
uint32_t mbsr__crc32(const void *buf, size_t n);
#endif
