/* Atomic output files (temporary name + fsync + rename) and small filesystem helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbsr/core.h"

int mbsr_tmp_path(const char *final_path, char *tmp, size_t n) {
  static atomic_int counter;
  const char *slash = strrchr(final_path, '/');
  int dirlen = slash ? (int)(slash - final_path + 1) : 0;
  const char *base = slash ? slash + 1 : final_path;
  int k = atomic_fetch_add(&counter, 1);
  int w = snprintf(tmp, n, "%.*s.tmp-%ld-%d-%s", dirlen, final_path, (long)getpid(), k, base);
  if (w < 0 || (size_t)w >= n) return mbsr_error(MBSR_ERANGE, "%s: path too long", final_path);
  return MBSR_OK;
}

int mbsr_commit_file(const char *tmp, const char *final_path) {
  int fd = open(tmp, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (rename(tmp, final_path) != 0) {
    int e = errno;
    unlink(tmp);
    return mbsr_error(MBSR_EIO, "%s: cannot rename from temporary %s: %s", final_path, tmp, strerror(e));
  }
  return MBSR_OK;
}

void mbsr_abandon_file(const char *tmp) {
  if (tmp && tmp[0]) unlink(tmp);
}

int mbsr_write_text_atomic(const char *path, const char *text) {
  char tmp[4200];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  if (rc) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write: %s", path, strerror(errno));
  size_t n = strlen(text);
  int bad = fwrite(text, 1, n, f) != n;
  int e = errno;
  bad |= fclose(f) != 0;
  if (bad) {
    e = errno ? errno : e;
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed: %s", path, strerror(e));
  }
  return mbsr_commit_file(tmp, path);
}

int mbsr_mkdir_p(const char *dir) {
  char buf[4096];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof buf) return mbsr_error(MBSR_EINVAL, "bad directory name '%s'", dir);
  memcpy(buf, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return mbsr_error(MBSR_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
      buf[i] = c;
    }
  }
  if (!mbsr_is_dir(dir)) return mbsr_error(MBSR_EIO, "%s: not a directory", dir);
  return MBSR_OK;
}

int mbsr_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int mbsr_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
