/* Small HDF5 helpers for src/data and src/train: attributes with checked return codes; the
 * CRC-32 checksums of patch files. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "prep_internal.h"

void mbsr__h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, int n, const void *v) {
  hsize_t d = (hsize_t)n;
  hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
  if (sp < 0) return mbsr_error(MBSR_EHDF5, "attribute %s: H5Screate failed", name);
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = MBSR_OK;
  if (a < 0) rc = mbsr_error(MBSR_EHDF5, "attribute %s: H5Acreate failed", name);
  else if (H5Awrite(a, mtype, v) < 0) rc = mbsr_error(MBSR_EHDF5, "attribute %s: H5Awrite failed", name);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return rc;
}

int mbsr__h5_attr_int(hid_t obj, const char *name, int64_t v) {
  return attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &v);
}

int mbsr__h5_attr_ints(hid_t obj, const char *name, const int *v, int n) {
  return attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, n, v);
}

int mbsr__h5_attr_double(hid_t obj, const char *name, const double *v, int n) {
  return attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, v);
}

int mbsr__h5_attr_str(hid_t obj, const char *name, const char *s) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(s) + 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  int rc = attr_write(obj, name, t, t, 1, s);
  H5Tclose(t);
  return rc;
}

/* exactly n values of memory type mtype */
static int read_attr_n(hid_t obj, const char *name, hid_t mtype, void *v, int n) {
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return mbsr_error(MBSR_EFORMAT, "attribute %s missing", name);
  hid_t sp = H5Aget_space(a);
  hssize_t k = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
  if (sp >= 0) H5Sclose(sp);
  int rc = k != n ? mbsr_error(MBSR_EFORMAT, "attribute %s has %lld values, expected %d", name, (long long)k, n)
           : H5Aread(a, mtype, v) < 0 ? mbsr_error(MBSR_EHDF5, "attribute %s: H5Aread failed", name)
                                       : 0;
  H5Aclose(a);
  return rc;
}

int mbsr__h5_read_attr_double(hid_t obj, const char *name, double *v) { return read_attr_n(obj, name, H5T_NATIVE_DOUBLE, v, 1); }
int mbsr__h5_read_attr_doubles(hid_t obj, const char *name, double *v, int n) { return read_attr_n(obj, name, H5T_NATIVE_DOUBLE, v, n); }
int mbsr__h5_read_attr_int(hid_t obj, const char *name, int64_t *v) { return read_attr_n(obj, name, H5T_NATIVE_INT64, v, 1); }

int mbsr__h5_read_attr_str(hid_t obj, const char *name, char *buf, size_t n) {
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return mbsr_error(MBSR_EFORMAT, "attribute %s missing", name);
  hid_t ft = H5Aget_type(a);
  int rc = MBSR_OK;
  if (ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0) {
    rc = mbsr_error(MBSR_EFORMAT, "attribute %s is not a fixed-length string", name);
  } else {
    size_t len = H5Tget_size(ft);
    char *tmp = calloc(len + 1, 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, len);
    if (!tmp) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
    else if (H5Aread(a, mt, tmp) < 0) rc = mbsr_error(MBSR_EHDF5, "attribute %s: H5Aread failed", name);
    else snprintf(buf, n, "%s", tmp);
    H5Tclose(mt);
    free(tmp);
  }
  if (ft >= 0) H5Tclose(ft);
  H5Aclose(a);
  return rc;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "patch-file checksums are defined on the little-endian bytes of the values: add byte swapping for this host"
#endif

uint32_t mbsr__crc32(const void *buf, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  const Bytef *b = buf;
  while (n > 0) { /* zlib takes uInt lengths */
    uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, b, k);
    b += k, n -= k;
  }
  return (uint32_t)c;
}

uint32_t mbsr__patch_crc(const float *in, const float *target, size_t p3, int32_t subject, const int32_t center[3]) {
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, (const Bytef *)in, (uInt)(p3 * sizeof(float)));
  c = crc32(c, (const Bytef *)target, (uInt)(p3 * sizeof(float)));
  c = crc32(c, (const Bytef *)&subject, sizeof subject);
  c = crc32(c, (const Bytef *)center, 3 * sizeof(int32_t));
  return (uint32_t)c;
}
