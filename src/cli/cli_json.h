/* The CLI's JSON output (Jansson): value helpers and the documents the commands print.
 * Private to src/cli. Every document is printed as ONE line on stdout (JSON Lines friendly). */
#ifndef MBSR_CLI_JSON_H
#define MBSR_CLI_JSON_H

#include <jansson.h>

#include "mbsr/decorr.h"
#include "mbsr/image.h"
#include "mbsr/stats.h"
#include "mbsr/volume.h"

/* A JSON string of s: text that is not valid UTF-8 (a path is bytes) has each bad byte replaced by
 * U+FFFD; NULL gives null. Never returns NULL. */
json_t *mbsr__cli_json_str(const char *s);
/* A number; NaN and +-Inf (not JSON) become null. */
json_t *mbsr__cli_json_num(double x);
/* An array of n numbers. */
json_t *mbsr__cli_json_nums(const double *x, int n);

/* Print doc as one line on stdout with `digits` significant digits for reals; with out != NULL
 * also write it to the file out (atomically). Takes the reference of doc (decref'd here, also on
 * error). Returns 0 or an error code with a message naming out. */
int mbsr__cli_json_emit(json_t *doc, int digits, const char *out);
/* Write doc (indented) to the file out only, atomically (commands whose stdout is a human table);
 * doc stays the caller's. */
int mbsr__cli_json_save(const json_t *doc, int digits, const char *out);

/* ---- the documents ---- */
/* mbsr info: the report of volume v read from path in read_ms; text on stdout, or the JSON document. */
void mbsr__cli_info_text(const char *path, const mbsr_volume *v, int finite, double read_ms);
json_t *mbsr__cli_info_json(const char *path, const mbsr_volume *v, int finite, double read_ms);
/* mbsr metrics: files, grid, metrics and the time taken. */
json_t *mbsr__cli_metrics_json(const char *test, const char *ref, const char *mask, const mbsr_volume *r,
                               const mbsr_metrics *m, double seconds);
/* mbsr decorr: the analysis options, the summary and each analysed slice (with curves: its d0). */
json_t *mbsr__cli_decorr_json(const char *path, const mbsr_volume *v, const mbsr_decorr_opts *o,
                              const mbsr_decorr_summary *s, int curves);
/* mbsr stats: the test, its columns and result. */
json_t *mbsr__cli_stats_json(const char *path, const char *col_a, const char *col_b, const mbsr_csv_test_result *r);

#endif
