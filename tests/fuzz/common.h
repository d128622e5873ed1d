/* Shared by the libFuzzer harnesses of tests/fuzz (built by -DMBSR_FUZZ=ON, run by run.sh).
 * Every mbsr reader takes a path: the input is written to a file in a private scratch directory
 * ($TMPDIR/mbsr-fuzz-XXXXXX, made once per process) and the reader is called on it. */
#ifndef MBSR_FUZZ_COMMON_H
#define MBSR_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Separates a header from its data file in the inputs of the detached-format harnesses. */
#define FUZZ_DATA_MARK "\n@@DATA@@\n"

/* One-time set-up: quiet logging, the scratch directory. Returns the directory. */
const char *fuzz_dir(void);
/* Write n bytes to <fuzz_dir>/<name>; gz != 0 compresses them (gzip, level 1) first. The full
 * path is stored in path (pn bytes). Returns 0, or -1 if the file could not be written. */
int fuzz_write(const char *name, const uint8_t *data, size_t n, int gz, char *path, size_t pn);
/* Split data at the first FUZZ_DATA_MARK: head = data[0..*head_n), tail after the mark
 * (*tail = NULL, *tail_n = 0 when there is no mark). */
void fuzz_split(const uint8_t *data, size_t n, size_t *head_n, const uint8_t **tail, size_t *tail_n);
/* Write a header [FUZZ_DATA_MARK data] input: with the mark, the head goes to <detached> and the
 * tail to <data_name> (the name the seeds' headers refer to); without it, all of it to <attached>.
 * The header's path into path. 0, or -1. */
int fuzz_write_split(const uint8_t *data, size_t size, const char *attached, const char *detached,
                     const char *data_name, char *path, size_t pn);
/* mbsr_volume_read(path, opts); on success every voxel is touched (ASan catches a short buffer)
 * and the promises of read-time validation are checked (finite affine, voxel sizes > 0): a broken
 * promise aborts. The volume is freed. */
void fuzz_read_volume(const char *path, const void *opts);

#endif
