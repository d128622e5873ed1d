/* The CLI's JSON output with Jansson (no hand-written escaping): value helpers, the one emitter
 * (one line on stdout, optionally the same text to a file, atomically), and the documents that
 * `mbsr info`, `metrics`, `decorr` and `stats` print. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "mbsr/cli.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one. */
static int utf8_len(const unsigned char *s) {
  if (s[0] < 0x80) return 1;
  int n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogates */
  if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0; /* overlong, > U+10FFFF */
  return n;
}

json_t *mbsr__cli_json_str(const char *s) {
  if (!s) return json_null();
  json_t *j = json_string(s);
  if (j) return j;
  /* not UTF-8: every byte that starts no valid sequence becomes U+FFFD */
  size_t n = strlen(s), k = 0;
  char *b = malloc(3 * n + 1);
  if (!b) return json_null();
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int l = utf8_len(p);
    if (l) {
      memcpy(b + k, p, (size_t)l);
      k += (size_t)l, p += l;
    } else {
      memcpy(b + k, "\xef\xbf\xbd", 3);
      k += 3, p++;
    }
  }
  j = json_stringn(b, k);
  free(b);
  return j ? j : json_null();
}

json_t *mbsr__cli_json_num(double x) { return isfinite(x) ? json_real(x + 0.0) : json_null(); } /* + 0.0: no -0 */

json_t *mbsr__cli_json_nums(const double *x, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, mbsr__cli_json_num(x[i]));
  return a;
}

static json_t *ints3(int64_t a, int64_t b, int64_t c) {
  return json_pack("[I,I,I]", (json_int_t)a, (json_int_t)b, (json_int_t)c);
}

/* text + "\n" written to the file out atomically */
static int save_line(const char *text, const char *out) {
  size_t n = strlen(text);
  char *line = malloc(n + 2);
  if (!line) return mbsr_error(MBSR_ENOMEM, "out of memory");
  memcpy(line, text, n);
  memcpy(line + n, "\n", 2);
  int rc = mbsr_write_text_atomic(out, line);
  free(line);
  return rc;
}

int mbsr__cli_json_emit(json_t *doc, int digits, const char *out) {
  char *text = doc ? json_dumps(doc, JSON_REAL_PRECISION(digits)) : NULL;
  json_decref(doc);
  if (!text) return mbsr_error(MBSR_ENOMEM, "out of memory (JSON output)");
  int rc = MBSR_OK;
  if (puts(text) == EOF || fflush(stdout) == EOF) rc = mbsr_error(MBSR_EIO, "stdout: write failed");
  if (!rc && out) rc = save_line(text, out);
  free(text);
  return rc;
}

int mbsr__cli_json_save(const json_t *doc, int digits, const char *out) {
  char *text = json_dumps(doc, JSON_REAL_PRECISION(digits) | JSON_INDENT(1));
  if (!text) return mbsr_error(MBSR_ENOMEM, "out of memory (JSON output %s)", out);
  int rc = save_line(text, out);
  free(text);
  return rc;
}

/* ---- mbsr info ---- */
/* Name of a NIfTI unit code (nifti1.h NIFTI_UNITS_*). */
static const char *unit_name(int u) {
  switch (u) {
    case 0: return "unknown";
    case 1: return "m";
    case 2: return "mm";
    case 3: return "um";
    case 8: return "s";
    case 16: return "ms";
    case 24: return "us";
    case 32: return "Hz";
    case 40: return "ppm";
    case 48: return "rad/s";
  }
  return "invalid";
}

void mbsr__cli_info_text(const char *path, const mbsr_volume *v, int finite, double read_ms) {
  char code[4];
  mbsr_orient_code(v->affine, code);
  const char *notes = mbsr_volume_read_notes();
  printf("file:        %s\n", path);
  printf("format:      %s, %s\n", v->src_format, mbsr_dtype_name(v->src_dtype));
  printf("dims:        %lld x %lld x %lld (%lld voxels)\n", (long long)v->nx, (long long)v->ny, (long long)v->nz,
         (long long)mbsr_volume_nvox(v));
  printf("voxel (mm):  %.6g x %.6g x %.6g\n", v->vox[0], v->vox[1], v->vox[2]);
  printf("affine (voxel index -> RAS mm):\n");
  for (int r = 0; r < 4; r++)
    printf("  [%12.6g %12.6g %12.6g %12.6g]\n", v->affine[r][0] + 0.0, v->affine[r][1] + 0.0, v->affine[r][2] + 0.0,
           v->affine[r][3] + 0.0);
  printf("orientation: %s (direction in which i, j, k increase)\n", code);
  printf("range:       %.6g .. %.6g%s\n", v->src_min, v->src_max, finite ? "" : "   (contains NaN/Inf)");
  const mbsr_volume_meta *m = &v->meta;
  if (m->nvol > 1) printf("volumes:     %lld (volume %lld shown; --volume N)\n", (long long)m->nvol, (long long)m->vol_index);
  printf("xform codes: sform %d (%s), qform %d (%s)\n", m->sform_code, mbsr_xform_name(m->sform_code), m->qform_code,
         mbsr_xform_name(m->qform_code));
  printf("scaling:     scl_slope %.6g, scl_inter %.6g%s\n", m->scl_slope, m->scl_inter,
         m->scl_slope != 0 && isfinite(m->scl_slope) ? "" : " (slope 0: no scaling)");
  printf("units:       space %s, time %s\n", unit_name(m->xyz_units), unit_name(m->time_units));
  printf("descrip:     \"%s\"\n", m->descrip);
  printf("intent:      code %d, name \"%s\", p %.6g %.6g %.6g\n", m->intent_code, m->intent_name, m->intent_p[0], m->intent_p[1],
         m->intent_p[2]);
  if (notes[0]) printf("notes:       %s\n", notes);
  printf("read time:   %.1f ms\n", read_ms);
}

json_t *mbsr__cli_info_json(const char *path, const mbsr_volume *v, int finite, double read_ms) {
  char code[4];
  mbsr_orient_code(v->affine, code);
  json_t *o = json_object(), *aff = json_array();
  for (int r = 0; r < 4; r++) json_array_append_new(aff, mbsr__cli_json_nums(v->affine[r], 4));
  json_object_set_new(o, "file", mbsr__cli_json_str(path));
  json_object_set_new(o, "format", mbsr__cli_json_str(v->src_format));
  json_object_set_new(o, "dtype", json_string(mbsr_dtype_name(v->src_dtype)));
  json_object_set_new(o, "dims", ints3(v->nx, v->ny, v->nz));
  json_object_set_new(o, "voxel_mm", mbsr__cli_json_nums(v->vox, 3));
  json_object_set_new(o, "affine", aff);
  json_object_set_new(o, "orientation", json_string(code));
  json_object_set_new(o, "min", mbsr__cli_json_num(v->src_min));
  json_object_set_new(o, "max", mbsr__cli_json_num(v->src_max));
  json_object_set_new(o, "finite", json_boolean(finite));
  const mbsr_volume_meta *m = &v->meta;
  json_t *intent = json_object();
  json_object_set_new(o, "volumes", json_integer((json_int_t)m->nvol));
  json_object_set_new(o, "volume", json_integer((json_int_t)m->vol_index));
  json_object_set_new(o, "sform_code", json_integer(m->sform_code));
  json_object_set_new(o, "sform_name", json_string(mbsr_xform_name(m->sform_code)));
  json_object_set_new(o, "qform_code", json_integer(m->qform_code));
  json_object_set_new(o, "qform_name", json_string(mbsr_xform_name(m->qform_code)));
  json_object_set_new(o, "scl_slope", mbsr__cli_json_num(m->scl_slope));
  json_object_set_new(o, "scl_inter", mbsr__cli_json_num(m->scl_inter));
  json_object_set_new(o, "xyz_units", json_string(unit_name(m->xyz_units)));
  json_object_set_new(o, "time_units", json_string(unit_name(m->time_units)));
  json_object_set_new(o, "descrip", mbsr__cli_json_str(m->descrip));
  json_object_set_new(intent, "code", json_integer(m->intent_code));
  json_object_set_new(intent, "name", mbsr__cli_json_str(m->intent_name));
  json_object_set_new(intent, "p", mbsr__cli_json_nums(m->intent_p, 3));
  json_object_set_new(o, "intent", intent);
  json_object_set_new(o, "read_ms", json_real(round(read_ms * 1e3) / 1e3));
  json_object_set_new(o, "notes", mbsr__cli_json_str(mbsr_volume_read_notes()));
  return o;
}

/* ---- mbsr metrics ---- */
json_t *mbsr__cli_metrics_json(const char *test, const char *ref, const char *mask, const mbsr_volume *r,
                               const mbsr_metrics *m, double seconds) {
  json_t *o = json_object(), *files = json_object();
  json_object_set_new(files, "test", mbsr__cli_json_str(test));
  json_object_set_new(files, "ref", mbsr__cli_json_str(ref));
  json_object_set_new(files, "mask", mbsr__cli_json_str(mask));
  json_object_set_new(o, "files", files);
  json_object_set_new(o, "dims", ints3(r->nx, r->ny, r->nz));
  json_object_set_new(o, "n", json_integer((json_int_t)m->n));
  json_object_set_new(o, "data_range", mbsr__cli_json_num(m->data_range));
  json_object_set_new(o, "rmse", mbsr__cli_json_num(m->rmse));
  json_object_set_new(o, "mse", mbsr__cli_json_num(m->mse));
  json_object_set_new(o, "psnr", mbsr__cli_json_num(m->psnr));
  json_object_set_new(o, "ssim", mbsr__cli_json_num(m->ssim));
  json_object_set_new(o, "seconds", json_real(round(seconds * 1e3) / 1e3));
  return o;
}

/* ---- mbsr decorr ---- */
static json_t *decorr_slice(const mbsr_decorr_summary *s, int64_t k, int curves) {
  const mbsr_decorr_result *r = &s->slice[k];
  json_t *o = json_object();
  json_object_set_new(o, "index", json_integer((json_int_t)k));
  json_object_set_new(o, "fg", json_real(round(s->fg_frac[k] * 1e4) / 1e4));
  json_object_set_new(o, "kc_max", mbsr__cli_json_num(r->kc_max));
  json_object_set_new(o, "A0", mbsr__cli_json_num(r->A0));
  json_object_set_new(o, "resolution", mbsr__cli_json_num(r->resolution));
  if (curves && s->curves && s->curves[k]) {
    const mbsr_decorr_curves *cv = s->curves[k];
    json_object_set_new(o, "r", mbsr__cli_json_nums(cv->r1, cv->nr));
    json_object_set_new(o, "d0", mbsr__cli_json_nums(cv->d0, cv->nr));
  }
  return o;
}

json_t *mbsr__cli_decorr_json(const char *path, const mbsr_volume *v, const mbsr_decorr_opts *o,
                              const mbsr_decorr_summary *s, int curves) {
  static const char *axes[3] = {"x", "y", "z"};
  const char *mode = o->apod == MBSR_DECORR_APOD_AXIS ? "axis" : o->apod == MBSR_DECORR_APOD_NONE ? "none" : "matlab";
  json_t *d = json_object(), *bg = json_object(), *sum = json_object(), *sl = json_array();
  json_object_set_new(d, "file", mbsr__cli_json_str(path));
  json_object_set_new(d, "dims", ints3(v->nx, v->ny, v->nz));
  json_object_set_new(d, "vox_mm", mbsr__cli_json_nums(v->vox, 3));
  json_object_set_new(d, "axis", json_string(axes[o->axis]));
  json_object_set_new(d, "px", mbsr__cli_json_num(s->px));
  json_object_set_new(d, "px_anisotropic", json_boolean(s->px_anisotropic));
  json_object_set_new(d, "nr", json_integer(o->nr < 30 ? 30 : o->nr)); /* the raising rules of decorr.h */
  json_object_set_new(d, "ng", json_integer(o->ng < 5 ? 5 : o->ng));
  json_object_set_new(d, "apod", json_integer(o->apod_px));
  json_object_set_new(d, "apod_mode", json_string(mode));
  json_object_set_new(bg, "threshold", mbsr__cli_json_num(s->threshold));
  json_object_set_new(bg, "fg_rel_of_p99", mbsr__cli_json_num(o->fg_rel));
  json_object_set_new(bg, "min_fg_fraction", mbsr__cli_json_num(o->min_fg));
  json_object_set_new(bg, "step", json_integer(o->step));
  json_object_set_new(d, "background_rule", bg);
  json_object_set_new(sum, "slices", json_integer((json_int_t)s->nslices));
  json_object_set_new(sum, "used", json_integer((json_int_t)s->nused));
  json_object_set_new(sum, "no_peak", json_integer((json_int_t)s->n_no_peak));
  const struct {
    const char *key;
    double v;
  } q[] = {{"kc_median", s->kc_median},         {"kc_q1", s->kc_q1},         {"kc_q3", s->kc_q3},
           {"kc_min", s->kc_min},               {"kc_max", s->kc_max},       {"resolution_median", s->res_median},
           {"resolution_q1", s->res_q1},        {"resolution_q3", s->res_q3}, {"A0_median", s->A0_median},
           {"seconds", round(s->seconds * 1e3) / 1e3}};
  for (size_t i = 0; i < sizeof q / sizeof *q; i++) json_object_set_new(sum, q[i].key, mbsr__cli_json_num(q[i].v));
  json_object_set_new(d, "summary", sum);
  for (int64_t k = 0; k < s->nslices; k++)
    if (s->used[k]) json_array_append_new(sl, decorr_slice(s, k, curves));
  json_object_set_new(d, "slices", sl);
  return d;
}

/* ---- mbsr stats ---- */
static void set_nums(json_t *o, const char *const *keys, const double *v, int n) {
  for (int i = 0; i < n; i++) json_object_set_new(o, keys[i], mbsr__cli_json_num(v[i]));
}

json_t *mbsr__cli_stats_json(const char *path, const char *col_a, const char *col_b, const mbsr_csv_test_result *r) {
  static const char *const colkeys[3][2] = {{"a", "b"}, {"value", "group"}, {"x", "y"}}; /* = the flags */
  json_t *o = json_object();
  json_object_set_new(o, "test", json_string(mbsr_csv_test_name(r->kind)));
  json_object_set_new(o, "file", mbsr__cli_json_str(path));
  json_object_set_new(o, colkeys[r->kind][0], mbsr__cli_json_str(col_a));
  json_object_set_new(o, colkeys[r->kind][1], mbsr__cli_json_str(col_b));
  if (r->kind == MBSR_CSV_TTEST) {
    const mbsr_ttest *t = &r->ttest;
    static const char *const k1[] = {"mean_a", "sd_a", "mean_b", "sd_b", "mean_diff", "sd_diff", "conf_level"};
    static const char *const k2[] = {"ci_lo", "ci_hi", "t", "df", "p"};
    const double v1[] = {r->mean_a, r->sd_a, r->mean_b, r->sd_b, t->mean_diff, t->sd_diff, t->conf_level};
    const double v2[] = {t->ci_lo, t->ci_hi, t->t, t->df, t->p};
    json_object_set_new(o, "n", json_integer(t->n));
    set_nums(o, k1, v1, 7);
    set_nums(o, k2, v2, 5);
  } else if (r->kind == MBSR_CSV_WELCH) {
    const mbsr_welch *w = &r->welch;
    json_t *groups = json_array();
    for (int j = 0; j < w->k; j++) {
      const mbsr_csv_group *g = &r->groups[j];
      json_t *go = json_object();
      json_object_set_new(go, "label", mbsr__cli_json_str(g->label));
      json_object_set_new(go, "n", json_integer(g->n));
      json_object_set_new(go, "mean", mbsr__cli_json_num(g->mean));
      json_object_set_new(go, "sd", mbsr__cli_json_num(g->sd));
      json_array_append_new(groups, go);
    }
    static const char *const k[] = {"F", "df1", "df2", "p"};
    const double v[] = {w->F, w->df1, w->df2, w->p};
    json_object_set_new(o, "n", json_integer(w->n));
    json_object_set_new(o, "k", json_integer(w->k));
    json_object_set_new(o, "groups", groups);
    set_nums(o, k, v, 4);
  } else {
    static const char *const k[] = {"r", "t", "df", "p"};
    const double v[] = {r->corr.r, r->corr.t, r->corr.df, r->corr.p};
    json_object_set_new(o, "n", json_integer(r->corr.n));
    set_nums(o, k, v, 4);
  }
  return o;
}
