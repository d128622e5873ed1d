/* mbsr decorr FILE: effective resolution by decorrelation analysis, per slice and summary, as JSON. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/decorr.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr decorr FILE [options]\n"
          "Decorrelation analysis (Descloux et al. 2019; ImDecorr getDcorr) of every non-background 2-D slice\n"
          "of a volume; prints JSON: per-slice kcMax, A0, resolution, and the median/quartiles.\n"
          "  --axis x|y|z|0|1|2  slice along this array axis (default z)\n"
          "  --px MM             pixel size (default: the in-plane voxel size of FILE, mm)\n"
          "  --nr N --ng N       radii per curve (50) and high-pass filters (10)\n"
          "  --apod N            edge apodization width in pixels (20; 0 = none)\n"
          "  --apod-mode matlab|axis  taper of the long side of a non-square slice: resized from the\n"
          "                      short side as apodImRect does (matlab, default) or its own (axis)\n"
          "  --fg-rel F          foreground voxel: value > F * P99(volume) (0.1)\n"
          "  --min-fg F          analyse a slice when >= F of its voxels are foreground (0.25)\n"
          "  --step N            every N-th slice (1)\n"
          "  --curves            include each slice's d0 curve (and radii) in the JSON\n"
          "  --out FILE.json     also write the JSON to FILE (atomically)\n"
          "  --tiff-vox C,R,S --tiff-orient XYZ  geometry of a TIFF stack (as for mbsr info)\n"
          "Resolution = 2 * px / kcMax (kcMax in normalised frequency, 1 = Nyquist).\n");
}

static void jnum(FILE *f, const char *key, double v, const char *sep) {
  if (isfinite(v)) fprintf(f, "\"%s\": %.6g%s", key, v, sep);
  else fprintf(f, "\"%s\": null%s", key, sep);
}

static void jstr(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

int mbsr_cmd_decorr(int argc, char **argv) {
  static const struct option opts[] = {
      {"axis", required_argument, 0, 'a'},  {"px", required_argument, 0, 'p'},      {"nr", required_argument, 0, 'r'},
      {"ng", required_argument, 0, 'g'},    {"apod", required_argument, 0, 'A'},    {"apod-mode", required_argument, 0, 'M'},
      {"fg-rel", required_argument, 0, 'f'}, {"min-fg", required_argument, 0, 'm'}, {"step", required_argument, 0, 's'},
      {"curves", no_argument, 0, 'c'},      {"out", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
      {"tiff-vox", required_argument, 0, 'V'}, {"tiff-orient", required_argument, 0, 'O'},
      {0, 0, 0, 0}};
  mbsr_decorr_opts o;
  mbsr_decorr_opts_default(&o);
  mbsr_read_opts ro;
  memset(&ro, 0, sizeof ro);
  const char *out = NULL;
  int curves = 0, c;
  char *end;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'a':
        if (!strcmp(optarg, "x") || !strcmp(optarg, "0")) o.axis = 0;
        else if (!strcmp(optarg, "y") || !strcmp(optarg, "1")) o.axis = 1;
        else if (!strcmp(optarg, "z") || !strcmp(optarg, "2")) o.axis = 2;
        else return mbsr_cli_usage_error("decorr", "--axis '%s': use x, y or z", optarg);
        break;
      case 'p':
        o.px = strtod(optarg, &end);
        if (*end || !(o.px > 0)) return mbsr_cli_usage_error("decorr", "--px '%s': a positive number", optarg);
        break;
      case 'r': case 'g': case 'A': case 's': {
        long v = strtol(optarg, &end, 10);
        if (*end || v < (c == 'A' ? 0 : 1) || v > 100000)
          return mbsr_cli_usage_error("decorr", "bad integer '%s' for --%s", optarg,
                                      c == 'r' ? "nr" : c == 'g' ? "ng" : c == 'A' ? "apod" : "step");
        if (c == 'r') o.nr = (int)v;
        else if (c == 'g') o.ng = (int)v;
        else if (c == 'A') o.apod_px = (int)v;
        else o.step = (int)v;
        break;
      }
      case 'M':
        if (!strcmp(optarg, "matlab")) o.apod = MBSR_DECORR_APOD_MATLAB;
        else if (!strcmp(optarg, "axis")) o.apod = MBSR_DECORR_APOD_AXIS;
        else return mbsr_cli_usage_error("decorr", "--apod-mode '%s': matlab or axis", optarg);
        break;
      case 'f': case 'm': {
        double v = strtod(optarg, &end);
        if (*end || !(v >= 0 && v <= 1)) return mbsr_cli_usage_error("decorr", "'%s': a number in [0, 1]", optarg);
        if (c == 'f') o.fg_rel = v;
        else o.min_fg = v;
        break;
      }
      case 'V':
        if (mbsr_cli_parse_double3(optarg, ro.tiff_vox)) return mbsr_cli_usage_error("decorr", "%s", mbsr_last_error());
        break;
      case 'O':
        if (strlen(optarg) != 3) return mbsr_cli_usage_error("decorr", "--tiff-orient wants 3 letters, got '%s'", optarg);
        memcpy(ro.tiff_orient, optarg, 4);
        break;
      case 'c': curves = 1; break;
      case 'o': out = optarg; break;
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("decorr", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 1) return mbsr_cli_usage_error("decorr", "give exactly one volume file");
  if (o.apod_px == 0) o.apod = MBSR_DECORR_APOD_NONE;
  o.keep_curves = curves;
  const char *path = argv[optind];
  mbsr_volume *v = NULL;
  int rc = mbsr_volume_read(path, &ro, &v);
  if (rc) return mbsr_cli_fail("decorr");
  mbsr_decorr_summary *s = NULL;
  rc = mbsr_decorr_volume(v, &o, &s);
  if (rc) {
    mbsr_error_prefix(rc, "%s: ", path);
    mbsr_volume_free(v);
    return mbsr_cli_fail("decorr");
  }
  char *text = NULL;
  size_t tlen = 0;
  FILE *js = open_memstream(&text, &tlen);
  if (!js) {
    mbsr_decorr_summary_free(s);
    mbsr_volume_free(v);
    mbsr_error(MBSR_ENOMEM, "out of memory");
    return mbsr_cli_fail("decorr");
  }
  static const char *an = "xyz";
  int64_t dims[3] = {v->nx, v->ny, v->nz};
  fprintf(js, "{\n  \"file\": ");
  jstr(js, path);
  fprintf(js, ",\n  \"dims\": [%lld, %lld, %lld],\n  \"vox_mm\": [%.6g, %.6g, %.6g],\n",
          (long long)dims[0], (long long)dims[1], (long long)dims[2], v->vox[0], v->vox[1], v->vox[2]);
  fprintf(js, "  \"axis\": \"%c\", \"px\": %.6g, \"px_anisotropic\": %s, \"nr\": %d, \"ng\": %d, \"apod\": %d, "
              "\"apod_mode\": \"%s\",\n",
          an[o.axis], s->px, s->px_anisotropic ? "true" : "false", o.nr < 30 ? 30 : o.nr, o.ng < 5 ? 5 : o.ng, o.apod_px,
          o.apod == MBSR_DECORR_APOD_AXIS ? "axis" : o.apod == MBSR_DECORR_APOD_NONE ? "none" : "matlab");
  fprintf(js, "  \"background_rule\": {\"threshold\": %.6g, \"fg_rel_of_p99\": %g, \"min_fg_fraction\": %g, \"step\": %d},\n",
          s->threshold, o.fg_rel, o.min_fg, o.step);
  fprintf(js, "  \"summary\": {\"slices\": %lld, \"used\": %lld, \"no_peak\": %lld, ", (long long)s->nslices,
          (long long)s->nused, (long long)s->n_no_peak);
  jnum(js, "kc_median", s->kc_median, ", ");
  jnum(js, "kc_q1", s->kc_q1, ", ");
  jnum(js, "kc_q3", s->kc_q3, ", ");
  jnum(js, "kc_min", s->kc_min, ", ");
  jnum(js, "kc_max", s->kc_max, ", ");
  jnum(js, "resolution_median", s->res_median, ", ");
  jnum(js, "resolution_q1", s->res_q1, ", ");
  jnum(js, "resolution_q3", s->res_q3, ", ");
  jnum(js, "A0_median", s->A0_median, ", ");
  fprintf(js, "\"seconds\": %.3f},\n  \"slices\": [", s->seconds);
  int first = 1;
  for (int64_t k = 0; k < s->nslices; k++) {
    if (!s->used[k]) continue;
    const mbsr_decorr_result *r = &s->slice[k];
    fprintf(js, "%s\n    {\"index\": %lld, \"fg\": %.4f, ", first ? "" : ",", (long long)k, s->fg_frac[k]);
    jnum(js, "kc_max", r->kc_max, ", ");
    jnum(js, "A0", r->A0, ", ");
    jnum(js, "resolution", r->resolution, "");
    if (curves && s->curves && s->curves[k]) {
      const mbsr_decorr_curves *cv = s->curves[k];
      fprintf(js, ", \"r\": [");
      for (int i = 0; i < cv->nr; i++) fprintf(js, "%s%.6g", i ? ", " : "", cv->r1[i]);
      fprintf(js, "], \"d0\": [");
      for (int i = 0; i < cv->nr; i++) fprintf(js, "%s%.6g", i ? ", " : "", cv->d0[i]);
      fprintf(js, "]");
    }
    fprintf(js, "}");
    first = 0;
  }
  fprintf(js, "\n  ]\n}\n");
  fclose(js);
  mbsr_decorr_summary_free(s);
  mbsr_volume_free(v);
  fputs(text, stdout);
  rc = MBSR_OK;
  if (out) {
    char tmp[4096];
    rc = mbsr_tmp_path(out, tmp, sizeof tmp);
    FILE *f = rc ? NULL : fopen(tmp, "w");
    if (!rc && !f) rc = mbsr_error(MBSR_EIO, "%s: cannot write", out);
    if (f) {
      int bad = fputs(text, f) < 0;
      bad |= fclose(f) != 0;
      if (bad) {
        mbsr_abandon_file(tmp);
        rc = mbsr_error(MBSR_EIO, "%s: write failed", out);
      } else {
        rc = mbsr_commit_file(tmp, out);
      }
    }
  }
  free(text);
  return rc ? mbsr_cli_fail("decorr") : 0;
}
