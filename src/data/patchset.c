/* The batch reader: patches of one (pair, split) of a `mbsr prep` file. Every rank opens the file
 * itself with the default (sec2) driver, read-only, and reads exactly the patches of its share of
 * a batch (one hyperslab per patch, in the order asked for): no collectives, so ranks with
 * different shares never wait for each other here. */
#include <stdlib.h>
#include <string.h>

#include "prep_internal.h"

struct mbsr_patchset {
  hid_t file, din, dtg, fs, ms;
  int64_t n;
  int p;
  double cubic_mse;
  char path[1024];
};

int mbsr_patchset_open(const char *path, const char *pair, const char *split, mbsr_patchset **out) {
  *out = NULL;
  mbsr__h5_quiet();
  mbsr_patchset *ps = calloc(1, sizeof *ps);
  if (!ps) return mbsr_error(MBSR_ENOMEM, "out of memory");
  ps->file = ps->din = ps->dtg = ps->fs = ps->ms = -1;
  snprintf(ps->path, sizeof ps->path, "%s", path);
  int rc = MBSR_OK;
  char g[256];
  snprintf(g, sizeof g, "/pairs/%s/%s", pair, split);
  hid_t grp = -1;
  ps->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (ps->file < 0) {
    rc = mbsr_error(MBSR_EIO, "%s: cannot open as HDF5", path);
    goto done;
  }
  grp = H5Gopen2(ps->file, g, H5P_DEFAULT);
  if (grp < 0) {
    rc = mbsr_error(MBSR_EFORMAT, "%s: no group %s (is the pair '%s' in the file?)", path, g, pair);
    goto done;
  }
  ps->din = H5Dopen2(grp, "input", H5P_DEFAULT);
  ps->dtg = H5Dopen2(grp, "target", H5P_DEFAULT);
  if (ps->din < 0 || ps->dtg < 0) {
    rc = mbsr_error(MBSR_EFORMAT, "%s: %s/input or target missing", path, g);
    goto done;
  }
  ps->fs = H5Dget_space(ps->din);
  hsize_t dims[4];
  if (H5Sget_simple_extent_ndims(ps->fs) != 4 || H5Sget_simple_extent_dims(ps->fs, dims, NULL) < 0 || dims[1] != dims[2] ||
      dims[1] != dims[3]) {
    rc = mbsr_error(MBSR_EFORMAT, "%s: %s/input is not [N,p,p,p]", path, g);
    goto done;
  }
  ps->n = (int64_t)dims[0];
  ps->p = (int)dims[1];
  if (mbsr__h5_read_attr_double(grp, "cubic_mse", &ps->cubic_mse)) ps->cubic_mse = -1;
  hsize_t m = dims[1] * dims[2] * dims[3];
  ps->ms = H5Screate_simple(1, &m, NULL);
done:
  if (grp >= 0) H5Gclose(grp);
  if (rc) mbsr_patchset_close(ps);
  else *out = ps;
  return rc;
}

void mbsr_patchset_close(mbsr_patchset *ps) {
  if (!ps) return;
  if (ps->ms >= 0) H5Sclose(ps->ms);
  if (ps->fs >= 0) H5Sclose(ps->fs);
  if (ps->din >= 0) H5Dclose(ps->din);
  if (ps->dtg >= 0) H5Dclose(ps->dtg);
  if (ps->file >= 0) H5Fclose(ps->file);
  free(ps);
}

int64_t mbsr_patchset_count(const mbsr_patchset *ps) { return ps->n; }
int mbsr_patchset_patch(const mbsr_patchset *ps) { return ps->p; }
double mbsr_patchset_cubic_mse(const mbsr_patchset *ps) { return ps->cubic_mse; }

int mbsr_patchset_read(mbsr_patchset *ps, const int64_t *idx, int n, float *in, float *target) {
  const size_t p3 = (size_t)ps->p * ps->p * ps->p;
  for (int k = 0; k < n; k++) {
    if (idx[k] < 0 || idx[k] >= ps->n)
      return mbsr_error(MBSR_ERANGE, "%s: patch index %lld out of range [0,%lld)", ps->path, (long long)idx[k], (long long)ps->n);
    hsize_t start[4] = {(hsize_t)idx[k], 0, 0, 0}, count[4] = {1, (hsize_t)ps->p, (hsize_t)ps->p, (hsize_t)ps->p};
    if (H5Sselect_hyperslab(ps->fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(ps->din, H5T_NATIVE_FLOAT, ps->ms, ps->fs, H5P_DEFAULT, in + k * p3) < 0 ||
        H5Dread(ps->dtg, H5T_NATIVE_FLOAT, ps->ms, ps->fs, H5P_DEFAULT, target + k * p3) < 0)
      return mbsr_error(MBSR_EIO, "%s: reading patch %lld failed", ps->path, (long long)idx[k]);
  }
  return MBSR_OK;
}
