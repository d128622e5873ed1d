/* mbsr normalize IN OUT [--percentiles LO,HI]: intensities to [0,1] by min/max (the paper's) or by
 * robust percentiles (numpy 'linear' definition), values outside clipped. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr normalize IN OUT [--percentiles LO,HI]\n"
          "  x' = (x - lo) / (hi - lo), clipped to [0,1]. Default lo, hi = min, max (the paper's normalisation);\n"
          "  --percentiles 0.5,99.5 uses those percentiles of all voxels instead (numpy.percentile 'linear').\n"
          "  Prints lo and hi (to undo: x = x' (hi - lo) + lo).\n");
}

int mbsr_cmd_normalize(int argc, char **argv) {
  static const struct option opts[] = {{"percentiles", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  double plo = 0, phi = 100;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'p': {
        char *end;
        plo = strtod(optarg, &end);
        if (end == optarg || *end != ',') return mbsr_cli_usage_error("normalize", "--percentiles wants LO,HI, got '%s'", optarg);
        const char *s = end + 1;
        phi = strtod(s, &end);
        if (end == s || *end) return mbsr_cli_usage_error("normalize", "--percentiles wants LO,HI, got '%s'", optarg);
        if (!(plo >= 0 && phi <= 100 && plo < phi))
          return mbsr_cli_usage_error("normalize", "--percentiles: need 0 <= LO < HI <= 100, got '%s'", optarg);
        break;
      }
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("normalize", "unknown option");
    }
  }
  if (argc - optind != 2) return mbsr_cli_usage_error("normalize", "give IN and OUT");
  const char *in = argv[optind], *out = argv[optind + 1];
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("normalize");
  mbsr_volume *v = NULL;
  double lo = 0, hi = 0;
  int rc = mbsr_volume_read(in, NULL, &v);
  if (!rc) rc = mbsr_volume_check_finite(v, in);
  if (!rc && (rc = mbsr_normalize(v, plo, phi, &lo, &hi))) mbsr_error_prefix(rc, "%s: ", in);
  if (!rc) rc = mbsr_volume_write(final, v);
  if (!rc)
    mbsr_info("%s -> %s: lo %.6g (p%g) hi %.6g (p%g) -> [0,1]", in, final, lo, plo, hi, phi);
  mbsr_volume_free(v);
  return rc ? mbsr_cli_fail("normalize") : 0;
}
