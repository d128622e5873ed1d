/* mbsr mask IN OUT [--threshold T | --labels]: a brain mask (1/0) on IN's grid. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr mask IN OUT [--threshold T | --labels]\n"
          "  default       voxels > T (T = Otsu's threshold, 256 bins, when --threshold is not given), then the\n"
          "                largest 6-connected component, then hole filling (background not 6-connected to the\n"
          "                array border becomes brain)\n"
          "  --labels      IN is a label volume (e.g. the Allen annotation): mask = label != 0\n");
}

int mbsr_cmd_mask(int argc, char **argv) {
  static const struct option opts[] = {{"threshold", required_argument, 0, 't'},
                                       {"labels", no_argument, 0, 'l'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  double thr = -1;
  int labels = 0, have_thr = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 't': {
        char *end;
        thr = strtod(optarg, &end);
        if (end == optarg || *end) return mbsr_cli_usage_error("mask", "--threshold wants a number, got '%s'", optarg);
        if (thr < 0) /* the library reads a negative threshold as "use Otsu" */
          return mbsr_cli_usage_error("mask", "--threshold must be >= 0 (omit it for Otsu), got '%s'", optarg);
        have_thr = 1;
        break;
      }
      case 'l': labels = 1; break;
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("mask", "unknown option");
    }
  }
  if (argc - optind != 2) return mbsr_cli_usage_error("mask", "give IN and OUT");
  if (labels && have_thr) return mbsr_cli_usage_error("mask", "--threshold and --labels exclude each other");
  const char *in = argv[optind], *out = argv[optind + 1];
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("mask");
  mbsr_volume *v = NULL, *m = NULL;
  int rc = mbsr_volume_read(in, NULL, &v);
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
