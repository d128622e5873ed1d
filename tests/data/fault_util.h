/* Test helper (header-only) for the failure and integrity tests of prep, train, checkpoints and
 * the CLI: temporaries left in a directory, counting log lines, flipping a bit of a stored chunk. */
#ifndef MBSR_TEST_FAULT_UTIL_H
#define MBSR_TEST_FAULT_UTIL_H
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

/* Temporaries (".tmp-*", mbsr_tmp_path) directly in d. */
static inline int count_tmp(const char *d) {
  DIR *h = opendir(d);
  int n = 0;
  struct dirent *e;
  while (h && (e = readdir(h)))
    if (!strncmp(e->d_name, ".tmp-", 5)) n++;
  if (h) closedir(h);
  return n;
}

/* Lines of file matching the basic regular expression pat (grep -c); -1 when grep fails to run. */
static inline int grep_count(const char *file, const char *pat) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "grep -c -- '%s' '%s' 2>/dev/null", pat, file);
  FILE *p = popen(cmd, "r");
  int n = -1;
  if (p && fscanf(p, "%d", &n) != 1) n = -1;
  if (p) pclose(p);
  return n;
}

/* File offset and stored size of chunk `index` of dataset dset, and its filter count (any pointer
 * but addr may be NULL); -1 when the dataset is absent or not chunked. */
static inline int chunk_of(const char *file, const char *dset, hsize_t index, haddr_t *addr, hsize_t *size, int *nfilters) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = f < 0 ? -1 : H5Dopen2(f, dset, H5P_DEFAULT);
  int rc = -1;
  if (d >= 0) {
    hid_t pl = H5Dget_create_plist(d), fs = H5Dget_space(d);
    if (nfilters) *nfilters = H5Pget_nfilters(pl);
    hsize_t off[8], sz = 0;
    unsigned mask;
    rc = H5Dget_chunk_info(d, fs, index, off, &mask, addr, &sz) < 0 ? -1 : 0;
    if (size) *size = sz;
    H5Sclose(fs), H5Pclose(pl), H5Dclose(d);
  }
  if (f >= 0) H5Fclose(f);
  return rc;
}

/* XOR the byte at off of file with mask; -1 on failure. */
static inline int flip_byte(const char *file, long off, int mask) {
  FILE *f = fopen(file, "r+b");
  if (!f) return -1;
  int c = fseek(f, off, SEEK_SET) == 0 ? fgetc(f) : EOF;
  int ok = c != EOF && fseek(f, off, SEEK_SET) == 0 && fputc(c ^ mask, f) != EOF;
  return fclose(f) == 0 && ok ? 0 : -1;
}
#endif
