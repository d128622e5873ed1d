/* Provenance sidecars (private to src/cli): every volume mbsr writes for a user (convert, upsample,
 * apply) gets OUT.json beside OUT.nii(.gz), written with the volume as a set. */
#ifndef MBSR_CLI_SIDECAR_H
#define MBSR_CLI_SIDECAR_H

#include <jansson.h>

#include "mbsr/volume.h"

/* Keep the command line as typed (main calls this before the command parses and permutes argv). */
void mbsr__cli_save_cmdline(int argc, char **argv);
/* "mbsr <command> <args...>", arguments with shell metacharacters single-quoted; "" if not saved. */
const char *mbsr__cli_cmdline(void);
/* OUT.nii(.gz) -> OUT.json (MBSR_ERANGE when it does not fit in n). */
int mbsr__cli_sidecar_path(const char *out, char *buf, size_t n);
/* The provenance every sidecar carries (BIDS-derivatives style): Description, Sources (in, made
 * absolute), GeneratedBy (mbsr, its version, the command line), DateTime (UTC), the input volume
 * (format, dims, voxel size, the volume index of a 4-D file) and the output grid of out (dims,
 * voxel size, affine, sform/qform codes, volumes). The caller adds "Parameters". */
json_t *mbsr__cli_provenance(const char *description, const char *in, const mbsr_volume *in_v, const mbsr_volume *out,
                             int64_t nvol);
/* OUT (n volumes), its sidecar (json text) and, when extra_path != NULL, one more volume as a set:
 * the sidecar and the extra volume go to temporaries first, then OUT (atomic), then the temporaries
 * are renamed; a failure leaves none of the new files. */
int mbsr__cli_write_set(const char *final, mbsr_volume *const *vols, int64_t n, const char *json, const char *extra_path,
                        const mbsr_volume *extra);
/* mbsr__cli_write_set for a JSON document: dumped indented (doc stays the caller's). */
int mbsr__cli_write_with_sidecar(const char *final, mbsr_volume *const *vols, int64_t n, const json_t *doc);

#endif
