/* mbsr decorr FILE: effective resolution by decorrelation analysis, per slice and summary, as JSON. */
#include <getopt.h>
#include <string.h>

#include "cli_json.h"
#include "mbsr/cli.h"
#include "mbsr/decorr.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr decorr FILE [options]\n"
          "Decorrelation analysis (Descloux et al. 2019; ImDecorr getDcorr) of every non-background 2-D slice\n"
          "of a volume; prints JSON (one line): per-slice kcMax, A0, resolution, and the median/quartiles.\n"
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
          "  --json              accepted for symmetry with info and models: the output is always JSON\n"
          "  --tiff-vox C,R,S --tiff-orient XYZ  geometry of a TIFF stack (as for mbsr info)\n"
          "  --volume N        of a 4-D FILE, the volume to analyse (0-based; required when FILE has several)\n"
          "  --quiet             no info lines on stderr (warnings and errors stay)\n"
          "  --threads N         OpenMP threads (default: OMP_NUM_THREADS or every core)\n"
          "Resolution = 2 * px / kcMax (kcMax in normalised frequency, 1 = Nyquist).\n");
}

/* One option into o / ro / *curves / *out; 0 or the usage-error status 2. */
static int option(int c, const char *arg, mbsr_decorr_opts *o, mbsr_read_opts *ro, int *curves, const char **out) {
  static const char *const axes[] = {"x", "y", "z", "0", "1", "2"};
  switch (c) {
    case 'a':
      for (int i = 0; i < 6; i++)
        if (!strcmp(arg, axes[i])) return o->axis = i % 3, 0;
      return mbsr_cli_usage_error("decorr", "--axis '%s': use x, y or z", arg);
    case 'p':
      if (mbsr_cli_double("decorr", "--px", arg, 0, 1e9, &o->px)) return 2;
      return o->px > 0 ? 0 : mbsr_cli_usage_error("decorr", "--px '%s': a positive number", arg);
    case 'r': return mbsr_cli_int("decorr", "--nr", arg, 1, 100000, &o->nr);
    case 'g': return mbsr_cli_int("decorr", "--ng", arg, 1, 100000, &o->ng);
    case 'A': return mbsr_cli_int("decorr", "--apod", arg, 0, 100000, &o->apod_px);
    case 's': return mbsr_cli_int("decorr", "--step", arg, 1, 100000, &o->step);
    case 'M':
      if (!strcmp(arg, "matlab")) o->apod = MBSR_DECORR_APOD_MATLAB;
      else if (!strcmp(arg, "axis")) o->apod = MBSR_DECORR_APOD_AXIS;
      else return mbsr_cli_usage_error("decorr", "--apod-mode '%s': matlab or axis", arg);
      return 0;
    case 'f': return mbsr_cli_double("decorr", "--fg-rel", arg, 0, 1, &o->fg_rel);
    case 'm': return mbsr_cli_double("decorr", "--min-fg", arg, 0, 1, &o->min_fg);
    case 'V': return mbsr_cli_parse_double3(arg, ro->tiff_vox) ? mbsr_cli_usage_error("decorr", "%s", mbsr_last_error()) : 0;
    case 'O':
      if (strlen(arg) != 3) return mbsr_cli_usage_error("decorr", "--tiff-orient wants 3 letters, got '%s'", arg);
      memcpy(ro->tiff_orient, arg, 4);
      return 0;
    case 'c': *curves = 1; return 0;
    case 'o': *out = arg; return 0;
    case 'j': return 0;
    default: return mbsr_cli_common("decorr", c, arg);
  }
}

int mbsr_cmd_decorr(int argc, char **argv) {
  static const struct option opts[] = {
      {"axis", required_argument, 0, 'a'},  {"px", required_argument, 0, 'p'},      {"nr", required_argument, 0, 'r'},
      {"ng", required_argument, 0, 'g'},    {"apod", required_argument, 0, 'A'},    {"apod-mode", required_argument, 0, 'M'},
      {"fg-rel", required_argument, 0, 'f'}, {"min-fg", required_argument, 0, 'm'}, {"step", required_argument, 0, 's'},
      {"curves", no_argument, 0, 'c'},      {"out", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
      {"tiff-vox", required_argument, 0, 'V'}, {"tiff-orient", required_argument, 0, 'O'},
      {"json", no_argument, 0, 'j'},        MBSR_CLI_VOLUME_OPT, MBSR_CLI_COMMON_OPTS,                   {0, 0, 0, 0}};
  mbsr_decorr_opts o;
  mbsr_decorr_opts_default(&o);
  mbsr_read_opts ro;
  memset(&ro, 0, sizeof ro);
  const char *out = NULL;
  int curves = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') return usage(stdout), 0;
    if (c == '?' || c == ':') return mbsr_cli_usage_error("decorr", "unknown or incomplete option '%s'", argv[optind - 1]);
    if (option(c, optarg, &o, &ro, &curves, &out)) return 2;
  }
  if (argc - optind != 1) return mbsr_cli_usage_error("decorr", "give exactly one volume file");
  if (o.apod_px == 0) o.apod = MBSR_DECORR_APOD_NONE;
  o.keep_curves = curves;
  const char *path = argv[optind];
  mbsr_volume *v = NULL;
  mbsr_decorr_summary *s = NULL;
  int rc = mbsr_volume_read(path, mbsr_cli_volume(&ro), &v);
  if (!rc && (rc = mbsr_decorr_volume(v, &o, &s))) mbsr_error_prefix(rc, "%s: ", path);
  if (!rc) rc = mbsr__cli_json_emit(mbsr__cli_decorr_json(path, v, &o, s, curves), 6, out);
  mbsr_decorr_summary_free(s);
  mbsr_volume_free(v);
  return rc ? mbsr_cli_fail("decorr") : 0;
}
