/* Provenance sidecars beside the volumes mbsr writes for a user, and the command line they record
 * (see cli_sidecar.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_json.h"
#include "cli_sidecar.h"
#include "mbsr/cli.h"

static char *g_cmdline;

/* s needs quoting for a POSIX shell unless every byte is one of these. */
static int plain(const char *s) { return s[0] && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./,:=+-@%") == strlen(s); }

void mbsr__cli_save_cmdline(int argc, char **argv) {
  size_t n = 8;
  for (int i = 0; i < argc; i++) n += 4 * strlen(argv[i]) + 3; /* every ' may become '\'' */
  free(g_cmdline);
  g_cmdline = malloc(n);
  if (!g_cmdline) return;
  size_t k = (size_t)snprintf(g_cmdline, n, "mbsr");
  for (int i = 1; i < argc; i++) {
    g_cmdline[k++] = ' ';
    if (plain(argv[i])) {
      k += (size_t)snprintf(g_cmdline + k, n - k, "%s", argv[i]);
      continue;
    }
    g_cmdline[k++] = '\'';
    for (const char *p = argv[i]; *p; p++) {
      if (*p == '\'') k += (size_t)snprintf(g_cmdline + k, n - k, "'\\''");
      else g_cmdline[k++] = *p;
    }
    g_cmdline[k++] = '\'';
  }
  g_cmdline[k] = 0;
}

const char *mbsr__cli_cmdline(void) { return g_cmdline ? g_cmdline : ""; }

int mbsr__cli_sidecar_path(const char *out, char *buf, size_t n) {
  size_t l = strlen(out);
  if (l > 7 && !strcmp(out + l - 7, ".nii.gz")) l -= 7;
  else if (l > 4 && !strcmp(out + l - 4, ".nii")) l -= 4;
  return mbsr_pathf(buf, n, "%.*s.json", (int)l, out);
}

static json_t *grid_json(const mbsr_volume *v, int64_t nvol) {
  json_t *g = json_object(), *aff = json_array();
  for (int r = 0; r < 4; r++) json_array_append_new(aff, mbsr__cli_json_nums(v->affine[r], 4));
  json_object_set_new(g, "Dims", json_pack("[I,I,I]", (json_int_t)v->nx, (json_int_t)v->ny, (json_int_t)v->nz));
  json_object_set_new(g, "VoxelSizeMm", mbsr__cli_json_nums(v->vox, 3));
  json_object_set_new(g, "Affine", aff);
  json_object_set_new(g, "SformCode", json_integer(v->meta.sform_code));
  json_object_set_new(g, "QformCode", json_integer(v->meta.qform_code));
  json_object_set_new(g, "Volumes", json_integer((json_int_t)nvol));
  return g;
}

json_t *mbsr__cli_provenance(const char *description, const char *in, const mbsr_volume *in_v, const mbsr_volume *out,
                             int64_t nvol) {
  char abs_in[4096], when[32];
  if (!realpath(in, abs_in)) snprintf(abs_in, sizeof abs_in, "%s", in);
  time_t now = time(NULL);
  struct tm tm;
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
  json_t *o = json_object(), *gen = json_object(), *src = json_object();
  json_object_set_new(o, "Description", mbsr__cli_json_str(description));
  json_object_set_new(o, "Sources", json_pack("[o]", mbsr__cli_json_str(abs_in)));
  json_object_set_new(gen, "Name", json_string("mbsr"));
  json_object_set_new(gen, "Version", json_string(MBSR_VERSION));
  json_object_set_new(gen, "CommandLine", mbsr__cli_json_str(mbsr__cli_cmdline()));
  json_object_set_new(o, "GeneratedBy", json_pack("[o]", gen));
  json_object_set_new(o, "DateTime", json_string(when));
  json_object_set_new(src, "Path", mbsr__cli_json_str(in));
  json_object_set_new(src, "Format", mbsr__cli_json_str(in_v->src_format));
  json_object_set_new(src, "Dtype", json_string(mbsr_dtype_name(in_v->src_dtype)));
  json_object_set_new(src, "Dims", json_pack("[I,I,I]", (json_int_t)in_v->nx, (json_int_t)in_v->ny, (json_int_t)in_v->nz));
  json_object_set_new(src, "VoxelSizeMm", mbsr__cli_json_nums(in_v->vox, 3));
  json_object_set_new(src, "Volumes", json_integer((json_int_t)in_v->meta.nvol));
  if (nvol == 1) json_object_set_new(src, "Volume", json_integer((json_int_t)in_v->meta.vol_index));
  json_object_set_new(o, "Input", src);
  json_object_set_new(o, "Output", grid_json(out, nvol));
  return o;
}

int mbsr__cli_write_set(const char *final, mbsr_volume *const *vols, int64_t n, const char *json, const char *extra_path,
                        const mbsr_volume *extra) {
  char side[4200], tmp[4400], xtmp[4400] = "";
  int rc = mbsr__cli_sidecar_path(final, side, sizeof side);
  if (!rc) rc = mbsr_tmp_path(side, tmp, sizeof tmp);
  FILE *f = rc ? NULL : fopen(tmp, "w");
  if (!rc && !f) rc = mbsr_error(MBSR_EIO, "%s: cannot write its sidecar %s: %s", final, side, strerror(errno));
  if (f) {
    int bad = fputs(json, f) < 0 || fputc('\n', f) == EOF;
    if (fclose(f) != 0 || bad) rc = mbsr_error(MBSR_EIO, "%s: write failed", side);
  }
  if (!rc && extra_path && !(rc = mbsr_tmp_path(extra_path, xtmp, sizeof xtmp)) && (rc = mbsr_volume_write(xtmp, extra)))
    mbsr_error_prefix(rc, "%s: ", extra_path);
  if (!rc) rc = mbsr_volume_write_series(final, vols, n);
  int out_written = !rc;
  if (!rc && extra_path) rc = mbsr_commit_file(xtmp, extra_path);
  if (!rc && (rc = mbsr_commit_file(tmp, side)) && extra_path) unlink(extra_path);
  if (rc && out_written) unlink(final);
  if (rc) {
    mbsr_abandon_file(tmp);
    if (xtmp[0]) mbsr_abandon_file(xtmp);
  }
  return rc;
}

int mbsr__cli_write_with_sidecar(const char *final, mbsr_volume *const *vols, int64_t n, const json_t *doc) {
  char *txt = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  if (!txt) return mbsr_error(MBSR_ENOMEM, "%s: out of memory (sidecar)", final);
  int rc = mbsr__cli_write_set(final, vols, n, txt, NULL, NULL);
  free(txt);
  return rc;
}
