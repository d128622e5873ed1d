/* mbsr fetch: download Allen Mouse Brain Connectivity Atlas (AMBCA) volumes.
 *
 * Layers (src/data/):
 *   fetch_json.c  the RMA answers read through Jansson (mbsr_json = json_t)
 *   http.c        libcurl downloads: timeouts, bounded retries with backoff, resume (Range) from a
 *                 .part file, size + SHA-256 checks (OpenSSL libcrypto), atomic rename; local
 *                 paths / file:// (a directory mirror) go through the same code path
 *   manifest.c    the manifest TSV (read, write atomically)
 *   fetch.c       listing + seeded selection, per-item work (download, unzip, find the red
 *                 auto-fluorescence channel, convert to NIfTI), the MPI driver
 *
 * Library code never exits; errors are negative mbsr_err codes with one message (core.h). */
#ifndef MBSR_FETCH_H
#define MBSR_FETCH_H

#include <mpi.h>
#include <stdint.h>

#include "mbsr/core.h"

/* ---------------------------------------------------------------- JSON (narrow, robust) */
typedef enum { MBSR_JSON_NULL, MBSR_JSON_BOOL, MBSR_JSON_NUMBER, MBSR_JSON_STRING, MBSR_JSON_ARRAY, MBSR_JSON_OBJECT } mbsr_json_type;
typedef struct mbsr_json mbsr_json;
/* Parse text[0..len) (UTF-8; nesting depth <= 64). Returns 0 or MBSR_EFORMAT naming the byte offset. */
int mbsr_json_parse(const char *text, size_t len, mbsr_json **out);
void mbsr_json_free(mbsr_json *j);
mbsr_json_type mbsr_json_kind(const mbsr_json *j);
const mbsr_json *mbsr_json_get(const mbsr_json *obj, const char *key); /* NULL if absent or not an object */
size_t mbsr_json_len(const mbsr_json *arr);                             /* 0 if not an array/object */
const mbsr_json *mbsr_json_at(const mbsr_json *arr, size_t i);
const char *mbsr_json_str(const mbsr_json *j); /* string value, or NULL */
int mbsr_json_bool(const mbsr_json *j, int dflt);
/* Integer value of a number (exact for 64-bit ids) or of a decimal string; 0 or MBSR_EINVAL. */
int mbsr_json_int64(const mbsr_json *j, int64_t *out);

/* ---------------------------------------------------------------- HTTP */
typedef struct {
  double connect_timeout; /* seconds to establish a connection */
  double read_timeout;    /* seconds: abort a transfer that moves < 1 byte/s for this long */
  int retries;            /* attempts after the first one (bounded) */
  double backoff;         /* delay before the first retry (s); doubled each retry, capped at 60 s */
} mbsr_http_opts;
void mbsr_http_opts_default(mbsr_http_opts *o); /* 10 s, 30 s, 4 retries, 1 s */

typedef struct {
  int64_t bytes;          /* size of the final file */
  char sha256[65];        /* lowercase hex of the final file */
  int attempts;           /* requests made */
  int resumed;            /* 1 if some attempt continued a partial file with a Range request */
  int64_t transferred;    /* bytes received over the network in this call */
  double seconds;         /* wall time of this call */
  long http_status;       /* last HTTP status (0 for local copies) */
} mbsr_http_result;

/* GET a small document (<= 256 MiB) into memory with retries; *body is NUL-terminated, free() it.
 * url: http(s)://..., file://..., or a local path. */
int mbsr_http_get(const char *url, const mbsr_http_opts *o, char **body, size_t *len);
/* Download url to final_path: data goes to final_path + ".part" (resumed with a Range request if
 * present), the size is checked against Content-Length / Content-Range, the SHA-256 against
 * expect_sha256 (NULL or "" = no expectation; the computed one is returned), then the file is
 * renamed into place. On failure no file exists under final_path; the .part is kept when a later
 * call can resume it (network errors) and removed when its content is wrong (checksum). The
 * server's validator (strong ETag, else Last-Modified) is kept in final_path + ".validator.part"
 * and sent as If-Range on a resume, so a file that changed on the server restarts from byte 0. */
int mbsr_http_download(const char *url, const char *final_path, const char *expect_sha256, const mbsr_http_opts *o,
                       mbsr_http_result *res);
/* SHA-256 of a file as lowercase hex (OpenSSL EVP); *bytes (may be NULL) gets its size. */
int mbsr_sha256_file(const char *path, char hex[65], int64_t *bytes);

/* ---------------------------------------------------------------- manifest (TSV) */
/* Columns: id kind url file bytes sha256 output status message
 * file = the downloaded file and output = the product (the NIfTI for experiments, the NRRD itself
 * for reference volumes), both relative to the output directory; bytes/sha256 are of file;
 * status = ok | failed. */
#define MBSR_MANIFEST_HEADER "id\tkind\turl\tfile\tbytes\tsha256\toutput\tstatus\tmessage"
typedef struct {
  char id[64];     /* experiment id, or e.g. "average_template_25" */
  char kind[16];   /* "experiment" | "template" | "annotation" */
  char url[1024];
  char file[256];
  int64_t bytes;
  char sha256[65];
  char output[256];
  char status[16]; /* "ok" | "failed" | "pending" */
  char message[512];
} mbsr_manifest_row;
typedef struct {
  mbsr_manifest_row *rows;
  int n, cap;
} mbsr_manifest;
/* Missing file -> empty manifest (0). A malformed line -> MBSR_EFORMAT naming path and line. */
int mbsr_manifest_read(const char *path, mbsr_manifest *m);
/* Atomic (temporary + rename). Tabs/newlines in fields are replaced by spaces. */
int mbsr_manifest_write(const char *path, const mbsr_manifest *m);
mbsr_manifest_row *mbsr_manifest_find(const mbsr_manifest *m, const char *id);
int mbsr_manifest_put(mbsr_manifest *m, const mbsr_manifest_row *r); /* insert or replace by id */
void mbsr_manifest_free(mbsr_manifest *m);

/* ---------------------------------------------------------------- fetch */
#define MBSR_ALLEN_API "http://api.brain-map.org"
#define MBSR_ALLEN_DOWNLOAD "http://download.alleninstitute.org"
#define MBSR_AF_SUFFIX "_af25.nii.gz"

typedef struct {
  const char *out_dir;
  int n;                 /* experiments to select (0 = reference volumes only) */
  uint64_t seed;
  int wildtype_only;     /* 1: --select wildtype (default), 0: --select any */
  const char *api;       /* base for RMA queries; NULL = mirror or MBSR_ALLEN_API */
  const char *mirror;    /* base URL or local directory for every request; NULL = none */
  int templates[8], n_templates; /* average_template_<r>.nrrd resolutions (um) */
  int annotations;       /* also ccf_2017 annotation_<r>.nrrd for the same resolutions (25 if none) */
  mbsr_http_opts http;
  int quiet;
} mbsr_fetch_opts;
void mbsr_fetch_opts_default(mbsr_fetch_opts *o);

typedef struct {
  int items, failed, skipped; /* over all ranks (on every rank) */
  int64_t bytes;              /* bytes transferred over all ranks */
} mbsr_fetch_summary;

/* The whole command: list, select, download/convert round-robin over the ranks of comm, gather
 * statuses, rank 0 writes <out>/manifest.tsv after every round. Returns 0 when the run itself
 * worked (even if items failed: see sum->failed), a negative code when it could not run (listing
 * failed, bad output directory); the same value on every rank. */
int mbsr_fetch_run(const mbsr_fetch_opts *o, MPI_Comm comm, mbsr_fetch_summary *sum);

/* Building blocks, public for tests. */
/* RMA list query URL for the selection rule (base = api base without trailing slash). */
int mbsr_fetch_list_url(const char *base, int wildtype_only, char *url, size_t n);
int mbsr_fetch_wkf_url(const char *base, int64_t experiment_id, char *url, size_t n);
/* Parse an RMA list answer: ids of the rows (excluding rows with a non-empty transgenic line when
 * wildtype_only), sorted ascending, duplicates removed. *ids is malloc'd. */
int mbsr_fetch_parse_list(const char *json, size_t len, int wildtype_only, int64_t **ids, int *n);
/* The selection rule: ids sorted ascending, Fisher-Yates shuffle with mbsr_rng(seed), first n
 * (in shuffled order). Prefix-stable: the first k of a larger n are the selection for k. */
int mbsr_fetch_select(const int64_t *ids, int nids, int n, uint64_t seed, int64_t *out);
/* Map a URL onto a mirror: a base URL replaces scheme+host; a directory gets the URL's path (and
 * "?query" kept literally, as `wget -x -nH` stores it) appended. */
int mbsr_fetch_mirror_url(const char *mirror, const char *url, char *out, size_t n);
/* Find the auto-fluorescence (red) channel among ZIP entry names (NULL-terminated list); returns
 * the index, or MBSR_EFORMAT with a message listing what was found. */
int mbsr_fetch_find_red(const char *const *names, int n);
/* Unpack zip_path into a scratch directory next to it, detect the red channel, convert it to NIfTI
 * at out_nii (atomic). On failure nothing exists at out_nii; MBSR_ECHECKSUM means the ZIP itself
 * is damaged (unreadable, CRC error), MBSR_EFORMAT that its content is not what was expected. */
int mbsr_fetch_convert_archive(const char *zip_path, const char *out_nii, char *used, size_t used_n);

#endif
