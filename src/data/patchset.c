/* The batch reader: patches of one (pair, split) of a `mbsr prep` file. Every rank opens the file
 * itself with the default (sec2) driver, read-only, and reads exactly the patches of its share of
 * a batch (one hyperslab per patch, in the order asked for): no collectives, so ranks with
 * different shares never wait for each other here.
 *
 * Checked on open: input and target are [N,p,p,p] with the same shape, subject is [N] with indices
 * into /subjects, center is [N,3], crc32 (when present) is [N]; errors name the file and datasets.
 * Integrity: every patch returned is checked against its row's CRC-32 (input, target, subject,
 * centre), /subjects against its crc32 attribute; files from before the checksums (no crc32) are
 * read without that check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prep_internal.h"

struct mbsr_patchset {
  hid_t file, din, dtg, fs, ms;
  int64_t n;
  int p;
  double cubic_mse;
  int32_t *subject;   /* [n] subject index of each patch */
  int32_t *center;    /* [n][3] patch centres */
  uint32_t *crc;      /* [n] CRC-32 of each row, or NULL (a file from before the checksums) */
  char group[256];    /* "/pairs/<pair>/<split>" */
  int nsubj;
  char **names;       /* [nsubj] the file's /subjects */
  char pair[64];
  char path[1024];
};

/* /subjects (fixed-length strings) into ps->names. */
static int read_names(mbsr_patchset *ps) {
  hid_t ds = H5Dopen2(ps->file, "subjects", H5P_DEFAULT);
  if (ds < 0) return mbsr_error(MBSR_EFORMAT, "%s: no /subjects", ps->path);
  hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  size_t len = H5Tget_size(ft);
  int rc = MBSR_OK;
  char *buf = NULL;
  if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0 || n < 0 || n > 1 << 24 || len < 1 || len > 1 << 16)
    rc = mbsr_error(MBSR_EFORMAT, "%s: /subjects is not a list of fixed-length strings", ps->path);
  if (!rc && n > 0) {
    buf = calloc((size_t)n, len + 1);
    ps->names = calloc((size_t)n, sizeof *ps->names);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, len);
    if (!buf || !ps->names) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
    else if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = mbsr_error(MBSR_EIO, "%s: reading /subjects failed", ps->path);
    H5Tclose(mt);
    int64_t want;
    if (!rc && H5Aexists(ds, "crc32") > 0 && !mbsr__h5_read_attr_int(ds, "crc32", &want) &&
        (uint32_t)want != mbsr__crc32(buf, (size_t)n * len))
      rc = mbsr_error(MBSR_ECHECKSUM, "%s: /subjects: CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt", ps->path,
                      (unsigned)want, (unsigned)mbsr__crc32(buf, (size_t)n * len));
    for (hssize_t i = 0; !rc && i < n; i++) {
      ps->names[i] = strndup(buf + (size_t)i * len, len);
      if (!ps->names[i]) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
      else ps->nsubj = (int)i + 1;
    }
  }
  free(buf);
  H5Tclose(ft), H5Sclose(sp), H5Dclose(ds);
  return rc;
}

/* grp/name, which must be [n] (cols == 1) or [n,cols], read whole into buf. */
static int read_rows(mbsr_patchset *ps, hid_t grp, const char *name, int cols, hid_t mtype, void *buf, int required) {
  if (H5Lexists(grp, name, H5P_DEFAULT) <= 0)
    return required ? mbsr_error(MBSR_EFORMAT, "%s: %s/%s missing", ps->path, ps->group, name) : MBSR_OK;
  hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
  hid_t sp = ds < 0 ? -1 : H5Dget_space(ds);
  int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
  hsize_t d[2] = {0, 0};
  if (nd == 1 || nd == 2) H5Sget_simple_extent_dims(sp, d, NULL);
  int rc = MBSR_OK;
  const int want_nd = cols == 1 ? 1 : 2;
  if (ds < 0 || sp < 0) rc = mbsr_error(MBSR_EFORMAT, "%s: %s/%s unreadable", ps->path, ps->group, name);
  else if (nd != want_nd || d[0] != (hsize_t)ps->n || (cols > 1 && d[1] != (hsize_t)cols)) {
    char want[64], have[64];
    snprintf(want, sizeof want, cols == 1 ? "(%lld)" : "(%lld,%d)", (long long)ps->n, cols);
    if (nd == 1) snprintf(have, sizeof have, "(%llu)", (unsigned long long)d[0]);
    else if (nd == 2) snprintf(have, sizeof have, "(%llu,%llu)", (unsigned long long)d[0], (unsigned long long)d[1]);
    else snprintf(have, sizeof have, "%d-dimensional", nd);
    rc = mbsr_error(MBSR_EMISMATCH, "%s: %s/%s is %s, expected %s (one row per patch of %s/input)", ps->path, ps->group, name, have, want,
                    ps->group);
  } else if (ps->n > 0 && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    rc = mbsr_error(MBSR_EIO, "%s: reading %s/%s failed", ps->path, ps->group, name);
  }
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  return rc;
}

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
  hsize_t dims[4], tdims[4];
  if (H5Sget_simple_extent_ndims(ps->fs) != 4 || H5Sget_simple_extent_dims(ps->fs, dims, NULL) < 0 || dims[1] != dims[2] ||
      dims[1] != dims[3] || dims[1] < 1 || dims[1] > 4096) {
    rc = mbsr_error(MBSR_EFORMAT, "%s: %s/input is not [N,p,p,p]", path, g);
    goto done;
  }
  {
    hid_t ts = H5Dget_space(ps->dtg);
    int tn = ts < 0 ? -1 : H5Sget_simple_extent_ndims(ts);
    if (tn == 4) H5Sget_simple_extent_dims(ts, tdims, NULL);
    if (ts >= 0) H5Sclose(ts);
    if (tn != 4 || memcmp(dims, tdims, sizeof dims)) {
      char have[96] = "?";
      if (tn == 4)
        snprintf(have, sizeof have, "(%llu,%llu,%llu,%llu)", (unsigned long long)tdims[0], (unsigned long long)tdims[1],
                 (unsigned long long)tdims[2], (unsigned long long)tdims[3]);
      else if (tn >= 0)
        snprintf(have, sizeof have, "%d-dimensional", tn);
      rc = mbsr_error(MBSR_EMISMATCH, "%s: %s/target is %s but %s/input is (%llu,%llu,%llu,%llu): input and target patches must have the same shape",
                      path, g, have, g, (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2],
                      (unsigned long long)dims[3]);
      goto done;
    }
  }
  ps->n = (int64_t)dims[0];
  ps->p = (int)dims[1];
  snprintf(ps->group, sizeof ps->group, "%s", g);
  if (mbsr__h5_read_attr_double(grp, "cubic_mse", &ps->cubic_mse)) ps->cubic_mse = -1;
  snprintf(ps->pair, sizeof ps->pair, "%s", pair);
  if ((rc = read_names(ps))) goto done;
  const size_t n1 = (size_t)(ps->n > 0 ? ps->n : 1);
  ps->subject = malloc(sizeof(int32_t) * n1);
  ps->center = malloc(sizeof(int32_t) * 3 * n1);
  if (!ps->subject || !ps->center) {
    rc = mbsr_error(MBSR_ENOMEM, "out of memory");
    goto done;
  }
  /* the per-patch datasets: exactly one row per patch */
  if ((rc = read_rows(ps, grp, "subject", 1, H5T_NATIVE_INT32, ps->subject, 1))) goto done;
  if ((rc = read_rows(ps, grp, "center", 3, H5T_NATIVE_INT32, ps->center, 1))) goto done;
  if (H5Lexists(grp, "crc32", H5P_DEFAULT) > 0) {
    ps->crc = malloc(sizeof(uint32_t) * n1);
    if (!ps->crc) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
    else rc = read_rows(ps, grp, "crc32", 1, H5T_NATIVE_UINT32, ps->crc, 1);
    if (rc) goto done;
  }
  for (int64_t i = 0; !rc && i < ps->n; i++)
    if (ps->subject[i] < 0 || ps->subject[i] >= ps->nsubj)
      rc = mbsr_error(MBSR_EFORMAT, "%s: %s/subject[%lld] = %d is not a subject index (0..%d)", path, g, (long long)i,
                      ps->subject[i], ps->nsubj - 1);
  if (rc) goto done;
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
  for (int i = 0; i < ps->nsubj; i++) free(ps->names[i]);
  free(ps->names);
  free(ps->subject);
  free(ps->center);
  free(ps->crc);
  free(ps);
}

const int32_t *mbsr_patchset_subject_of(const mbsr_patchset *ps) { return ps->subject; }

int mbsr_patchset_subjects(const mbsr_patchset *ps, const char *const **names) {
  *names = (const char *const *)ps->names;
  return ps->nsubj;
}

int mbsr_patchset_contract(const mbsr_patchset *ps, mbsr_sr_contract *k) {
  mbsr_sr_contract_default(k);
  char norm[32] = "", interp[32] = "keys", g[128];
  double pct[2] = {NAN, NAN};
  if (mbsr__h5_read_attr_str(ps->file, "norm", norm, sizeof norm) || strcmp(norm, "percentile") ||
      mbsr__h5_read_attr_doubles(ps->file, "norm_percentiles", pct, 2))
    return mbsr_error(MBSR_EFORMAT, "%s: no intensity contract (norm, norm_percentiles): made by an mbsr prep before the "
                                    "contract; run mbsr prep again", ps->path);
  snprintf(g, sizeof g, "/pairs/%s", ps->pair);
  hid_t grp = H5Gopen2(ps->file, g, H5P_DEFAULT);
  int rc = grp < 0 ? mbsr_error(MBSR_EFORMAT, "%s: no group %s", ps->path, g) : 0;
  if (!rc && (mbsr__h5_read_attr_doubles(grp, "lr_vox_mm", k->lr_vox_mm, 3) || mbsr__h5_read_attr_doubles(grp, "hr_vox_mm", k->hr_vox_mm, 3)))
    rc = mbsr_error(MBSR_EFORMAT, "%s: %s lacks lr_vox_mm / hr_vox_mm", ps->path, g);
  if (!rc) mbsr__h5_read_attr_str(grp, "interp", interp, sizeof interp);
  int64_t tp = 0;
  if (!rc && !mbsr__h5_read_attr_int(grp, "through_plane", &tp)) k->through_plane = tp == 1; /* absent: 0 */
  if (!rc && mbsr_interp_parse(interp, &k->interp)) rc = mbsr_error(MBSR_EFORMAT, "%s: %s: unknown interp '%s'", ps->path, g, interp);
  char prof[32];
  if (!rc && !mbsr__h5_read_attr_str(grp, "profile", prof, sizeof prof) && mbsr_profile_parse(prof, &k->profile)) /* absent: boxcar */
    rc = mbsr_error(MBSR_EFORMAT, "%s: %s: unknown profile '%s'", ps->path, g, prof);
  if (grp >= 0) H5Gclose(grp);
  if (rc) return rc;
  k->norm_plo = pct[0], k->norm_phi = pct[1];
  k->patch = ps->p;
  return MBSR_OK;
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
    if (ps->crc) {
      const uint32_t got = mbsr__patch_crc(in + k * p3, target + k * p3, p3, ps->subject[idx[k]], ps->center + 3 * idx[k]);
      if (got != ps->crc[idx[k]])
        return mbsr_error(MBSR_ECHECKSUM,
                          "%s: %s: patch %lld: CRC-32 mismatch (stored %08x, computed %08x): its input, target, subject or center "
                          "data are corrupt",
                          ps->path, ps->group, (long long)idx[k], (unsigned)ps->crc[idx[k]], (unsigned)got);
    }
  }
  return MBSR_OK;
}
