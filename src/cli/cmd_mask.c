/* mbsr mask IN OUT [--mask-threshold T | --labels]: a brain mask (1/0) on IN's grid. */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr mask IN OUT [--mask-threshold T | --labels] [--volume N] [--quiet] [--threads N]\n"
          "       (or --in IN --out OUT)\n"
          "  default       voxels > T (T = Otsu's threshold, 256 bins, when --mask-threshold is not given), then\n"
          "                the largest 6-connected component, then hole filling (background not 6-connected to\n"
          "                the array border becomes brain)\n"
          "  --mask-threshold T  a fixed threshold T >= 0 (was --threshold, deprecated)\n"
          "  --labels      IN is a label volume (e.g. the Allen annotation): mask = label != 0\n"
          "  --volume N      of a 4-D IN, the volume to use (0-based; required when IN has several)\n"
          "  --in IN --out OUT  the same as the positionals IN OUT\n"
          "  --quiet       no info lines on stderr (warnings and errors stay)\n"
          "  --threads N   OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_mask(int argc, char **argv) {
  static const struct option opts[] = {{"mask-threshold", required_argument, 0, 't'},
                                       {"labels", no_argument, 0, 'l'},
                                       {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_VOLUME_OPT, MBSR_CLI_COMMON_OPTS,
                                       {0, 0, 0, 0}};
  const char *in = NULL, *out = NULL;
  double thr = -1;
  int labels = 0, have_thr = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 't': /* >= 0: the library reads a negative threshold as "use Otsu" */
        if (mbsr_cli_double("mask", "--mask-threshold", optarg, 0, HUGE_VAL, &thr)) return 2;
        have_thr = 1;
        break;
      case 'i': in = optarg; break;
      case 'o': out = optarg; break;
      case 'l': labels = 1; break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("mask", c, optarg)) return 2;
    }
  }
  if (mbsr_cli_in_out("mask", argc, argv, optind, &in, &out)) return 2;
  if (labels && have_thr) return mbsr_cli_usage_error("mask", "--mask-threshold and --labels exclude each other");
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("mask");
  mbsr_volume *v = NULL, *m = NULL;
  mbsr_read_opts ro = {0};
  int rc = mbsr_volume_read(in, mbsr_cli_volume(&ro), &v);
  if (!rc) rc = mbsr_volume_check_finite(v, in);
  if (!rc && !labels && !have_thr) thr = mbsr_otsu_threshold(v);
  if (!rc) {
    rc = labels ? mbsr_mask_from_labels(v, &m) : mbsr_mask_threshold(v, thr, &m);
    if (rc) mbsr_error_prefix(rc, "%s: ", in);
  }
  if (!rc) rc = mbsr_volume_write(final, m);
  if (!rc) {
    int64_t n = mbsr_volume_nvox(m), k = 0;
    for (int64_t i = 0; i < n; i++) k += m->data[i] > 0.5f;
    double cc = v->vox[0] * v->vox[1] * v->vox[2];
    if (labels)
      mbsr_info("%s -> %s: labels != 0: %lld of %lld voxels (%.4g mm^3)", in, final, (long long)k, (long long)n, k * cc);
    else
      mbsr_info("%s -> %s: threshold %.6g (%s), largest component + holes filled: %lld of %lld voxels (%.4g mm^3)", in,
                final, thr, have_thr ? "given" : "Otsu", (long long)k, (long long)n, k * cc);
  }
  mbsr_volume_free(v);
  mbsr_volume_free(m);
  return rc ? mbsr_cli_fail("mask") : 0;
}
