/* mbsr normalize IN OUT [--norm-percentiles LO,HI]: intensities to [0,1] by min/max (the paper's) or by
 * robust percentiles (numpy 'linear' definition), values outside clipped. */
#include <getopt.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr normalize IN OUT [--norm-percentiles LO,HI] [--volume N] [--quiet] [--threads N]\n"
          "       (or --in IN --out OUT)\n"
          "  x' = (x - lo) / (hi - lo), clipped to [0,1]. Default lo, hi = min, max (the paper's normalisation);\n"
          "  --norm-percentiles 0.5,99.5 uses those percentiles of all voxels instead (numpy.percentile\n"
          "  'linear'; was --percentiles, deprecated). Logs lo and hi on stderr (to undo: x = x' (hi - lo) + lo).\n"
          "  --volume N      of a 4-D IN, the volume to use (0-based; required when IN has several)\n"
          "  --in IN --out OUT  the same as the positionals IN OUT\n"
          "  --quiet         no info lines on stderr (warnings and errors stay)\n"
          "  --threads N     OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_normalize(int argc, char **argv) {
  static const struct option opts[] = {{"norm-percentiles", required_argument, 0, 'p'}, {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'},              {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_VOLUME_OPT, MBSR_CLI_COMMON_OPTS,                            {0, 0, 0, 0}};
  const char *in = NULL, *out = NULL;
  double plo = 0, phi = 100;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'p':
        if (mbsr_cli_percentiles("normalize", "--norm-percentiles", optarg, &plo, &phi)) return 2;
        break;
      case 'i': in = optarg; break;
      case 'o': out = optarg; break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("normalize", c, optarg)) return 2;
    }
  }
  if (mbsr_cli_in_out("normalize", argc, argv, optind, &in, &out)) return 2;
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("normalize");
  mbsr_volume *v = NULL;
  double lo = 0, hi = 0;
  mbsr_read_opts ro = {0};
  int rc = mbsr_volume_read(in, mbsr_cli_volume(&ro), &v);
  if (!rc) rc = mbsr_volume_check_finite(v, in);
  if (!rc && (rc = mbsr_normalize(v, plo, phi, &lo, &hi))) mbsr_error_prefix(rc, "%s: ", in);
  if (!rc) rc = mbsr_volume_write(final, v);
  if (!rc)
    mbsr_info("%s -> %s: lo %.6g (p%g) hi %.6g (p%g) -> [0,1]", in, final, lo, plo, hi, phi);
  mbsr_volume_free(v);
  return rc ? mbsr_cli_fail("normalize") : 0;
}
