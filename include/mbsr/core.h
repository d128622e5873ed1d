/* mbsr core: error codes and messages, rank-aware logging, aligned allocation, RNG,
 * timing and progress lines, atomic output files.
 *
 * Error convention (nifti_clib / libuv style): library functions never exit. They return 0 or a
 * negative mbsr_err code and record ONE line naming the file or value at fault with
 * mbsr_error(); callers that add context use mbsr_error_prefix(). Only the CLI exits. */
#ifndef MBSR_CORE_H
#define MBSR_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mbsr/version.h"

/* One table generates the enum and mbsr_strerror(). */
#define MBSR_ERRNO_MAP(X)                                              \
  X(EIO, -1, "input/output error")                                    \
  X(EFORMAT, -2, "corrupt or unrecognised file format")               \
  X(ENOMEM, -3, "out of memory")                                      \
  X(EINVAL, -4, "invalid argument")                                   \
  X(ERANGE, -5, "value out of range")                                 \
  X(EUNSUPPORTED, -6, "unsupported feature or data type")             \
  X(EMISMATCH, -7, "mismatched shapes, grids or architectures")       \
  X(ENONFINITE, -8, "NaN or Inf value")                               \
  X(ENET, -9, "network error")                                        \
  X(ECHECKSUM, -10, "checksum or size mismatch")                      \
  X(EMPI, -11, "MPI error")                                           \
  X(EHDF5, -12, "HDF5 error")                                         \
  X(ETRUNC, -13, "truncated file")                                    \
  X(EPEER, -14, "another rank failed")                                \
  X(EINTERRUPTED, -15, "interrupted")

typedef enum {
  MBSR_OK = 0,
#define X(name, val, msg) MBSR_##name = val,
  MBSR_ERRNO_MAP(X)
#undef X
} mbsr_err;

const char *mbsr_strerror(int code);
/* Record the error message (printf format) for this thread; returns code, so that
 * `return mbsr_error(MBSR_EFORMAT, "%s: bad magic", path);` is the idiom. */
int mbsr_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context ("reading X: ") to the current message; returns code. */
int mbsr_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last recorded message (never NULL; "" when none). */
const char *mbsr_last_error(void);
void mbsr_error_clear(void);

/* ---- logging: rank-aware; info lines only on rank 0, warnings/errors on every rank ---- */
void mbsr_log_set_rank(int rank, int nranks);
int mbsr_log_rank(void);
void mbsr_log_set_quiet(int quiet);
void mbsr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mbsr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "[rank R] mbsr: <msg>" (or "mbsr: <msg>" when not under MPI) to stderr. */
void mbsr_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memory: 64-byte aligned, zeroed; free with mbsr_free ---- */
void *mbsr_alloc(size_t bytes);
void mbsr_free(void *p);
/* Checked a*b*c*... in size_t (returns 0 and sets *out on success, MBSR_ERANGE on overflow). */
int mbsr_mul_size(size_t *out, int n, ...);

/* ---- RNG: GSL's mt19937 underneath (deterministic for a seed, portable) ---- */
typedef struct mbsr_rng mbsr_rng;
mbsr_rng *mbsr_rng_new(uint64_t seed);
void mbsr_rng_free(mbsr_rng *r);
double mbsr_rng_uniform(mbsr_rng *r);            /* [0,1) */
uint64_t mbsr_rng_uint(mbsr_rng *r, uint64_t n); /* [0,n) */
double mbsr_rng_normal(mbsr_rng *r, double sigma);
/* Stable 64-bit mix of a seed and a stream index (SplitMix64 finaliser), for derived seeds. */
uint64_t mbsr_seed_mix(uint64_t seed, uint64_t stream);

/* ---- time and progress ---- */
double mbsr_now(void); /* monotonic seconds */
typedef struct {
  char label[64];
  double t0, last_print;
  int64_t total;
  double min_interval; /* seconds between lines (0 = every call) */
} mbsr_progress;
void mbsr_progress_init(mbsr_progress *p, const char *label, int64_t total);
/* Prints (rank 0) "label: done/total (xx%) rate unit/s ETA hh:mm:ss <extra>". */
void mbsr_progress_update(mbsr_progress *p, int64_t done, const char *unit, const char *extra);
void mbsr_format_duration(double seconds, char *buf, size_t n);

/* ---- atomic outputs: write to a temporary name in the same directory, rename when complete ---- */
/* "dir/base.ext" -> "dir/.base.ext.tmp-<pid>-<n>" is NOT used, because libraries pick compression
 * from the extension: the temporary keeps the full final suffix: "dir/.tmp-<pid>-<n>-base.ext". */
int mbsr_tmp_path(const char *final_path, char *tmp, size_t n);
/* fsync + rename(tmp, final). On failure removes tmp. */
int mbsr_commit_file(const char *tmp, const char *final_path);
void mbsr_abandon_file(const char *tmp); /* unlink, ignoring errors */
/* Write a text file atomically (temporary name, fsync, rename); errors name the file. */
int mbsr_write_text_atomic(const char *path, const char *text);
/* Append one line (a newline is added when missing) to a log opened for appending, flushed;
 * MBSR_EIO naming path when it does not fit. A partial line may remain: readers of such logs keep
 * complete lines only. */
int mbsr_append_line(FILE *f, const char *path, const char *line);
int mbsr_mkdir_p(const char *dir);
/* snprintf for paths: MBSR_ERANGE naming the (cut) path when it does not fit in n bytes, never a
 * silently truncated path. */
int mbsr_pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mbsr_file_exists(const char *path);
int mbsr_is_dir(const char *path);

/* ---- fault injection for full disks and failed writes (tests, CI; no privileges needed) ----
 * MBSR_FAULT_WRITE="RULE[,RULE...]", RULE = KIND[/NAME]:N[@RANK]: the N-th write of KIND (1-based,
 * counted per process) and every later one fail with ENOSPC, as on a disk that stays full.
 *   KIND  file (an atomic output: mbsr_write_text_atomic, mbsr_commit_file: NIfTI volumes, JSON, CSV,
 *         Markdown, PNG, checkpoints, markers), h5 (the data of an HDF5 file mbsr writes: a checkpoint
 *         image; a collective write round or the final flush of a patch file), log (a line appended
 *         with mbsr_append_line: train.jsonl), any (all kinds counted together).
 *   NAME  only writes to outputs of that file name count ("file/metrics.csv:1", "h5/best.h5:2").
 *   RANK  only on that MPI rank (mbsr_log_rank()).
 * Unset: no effect. A malformed value aborts the process (a test must not silently test nothing).
 * Writers call mbsr_fault_write(kind, final_path) where their write happens: 0 = go on, -1 (errno =
 * ENOSPC) = fail as if the write had failed; collective writers call it after the collective. */
int mbsr_fault_write(const char *kind, const char *path);
void mbsr_fault_reset(void); /* re-read MBSR_FAULT_WRITE and zero the counters (tests) */
/* Writes of kind counted since the last reset (counted only while MBSR_FAULT_WRITE is set: a rule
 * that never fires, e.g. "h5:1000000000", counts the write points of a run). */
long long mbsr_fault_count(const char *kind);

#endif
