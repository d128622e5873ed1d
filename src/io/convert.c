/* Sample-type conversion to float32 with optional linear scaling, shared by every reader. */
#include <math.h>
#include <string.h>

#include "io_internal.h"

const char *mbsr_dtype_name(int dt) {
  switch (dt) {
    case MBSR__DT_UINT8: return "uint8";
    case MBSR__DT_INT8: return "int8";
    case MBSR__DT_INT16: return "int16";
    case MBSR__DT_UINT16: return "uint16";
    case MBSR__DT_INT32: return "int32";
    case MBSR__DT_UINT32: return "uint32";
    case MBSR__DT_INT64: return "int64";
    case MBSR__DT_UINT64: return "uint64";
    case MBSR__DT_FLOAT32: return "float32";
    case MBSR__DT_FLOAT64: return "float64";
    case 32: return "complex64";
    case 128: return "rgb24";
    case 1536: return "float128";
    case 1792: return "complex128";
    case 2048: return "complex256";
    case 2304: return "rgba32";
  }
  return "unknown";
}

/* One loop per type; the compiler vectorises each. Values are scaled in double then rounded
 * to float once (int32/int64 beyond 2^24 lose precision as float32 must). */
#define CONVERT_LOOP(T)                                                   \
  do {                                                                    \
    const T *s = (const T *)src;                                          \
    if (scale) {                                                          \
      for (int64_t i = 0; i < n; i++) dst[i] = (float)((double)s[i] * slope + inter); \
    } else {                                                              \
      for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];               \
    }                                                                     \
  } while (0)

int mbsr__convert(float *dst, const void *src, int64_t n, int dt, double slope, double inter, double *mn, double *mx) {
  int scale = !(slope == 1.0 && inter == 0.0);
  switch (dt) {
    case MBSR__DT_UINT8: CONVERT_LOOP(uint8_t); break;
    case MBSR__DT_INT8: CONVERT_LOOP(int8_t); break;
    case MBSR__DT_INT16: CONVERT_LOOP(int16_t); break;
    case MBSR__DT_UINT16: CONVERT_LOOP(uint16_t); break;
    case MBSR__DT_INT32: CONVERT_LOOP(int32_t); break;
    case MBSR__DT_UINT32: CONVERT_LOOP(uint32_t); break;
    case MBSR__DT_INT64: CONVERT_LOOP(int64_t); break;
    case MBSR__DT_UINT64: CONVERT_LOOP(uint64_t); break;
    case MBSR__DT_FLOAT32:
      if (scale) CONVERT_LOOP(float);
      else if ((const void *)dst != src) memcpy(dst, src, (size_t)n * sizeof(float));
      break;
    case MBSR__DT_FLOAT64: CONVERT_LOOP(double); break;
    default: return mbsr_error(MBSR_EUNSUPPORTED, "unsupported data type %s (code %d)", mbsr_dtype_name(dt), dt);
  }
  if (mn || mx) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
      float x = dst[i];
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
    }
    if (mn) *mn = lo;
    if (mx) *mx = hi;
  }
  return MBSR_OK;
}
