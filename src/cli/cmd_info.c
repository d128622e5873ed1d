/* mbsr info FILE: dims, voxel size, affine, source format/type, value range, and the NIfTI header
 * metadata mbsr carries (sform/qform codes, scaling, descrip, intent, units, volumes) (text or JSON). */
#include <getopt.h>
#include <string.h>

#include "cli_json.h"
#include "mbsr/cli.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr info FILE [--volume N] [--tiff-vox C,R,S] [--tiff-orient XYZ] [--json] [--allow-bad-geometry]\n"
          "                 [--quiet] [--threads N]\n"
          "  FILE            .nii / .nii.gz (NIfTI-1/2), .nrrd / .nhdr, .mhd, a .tif/.tiff stack or a directory of\n"
          "                  TIFF slices\n"
          "  --volume N      of a 4-D FILE, the volume whose range is shown (0-based; default 0)\n"
          "  --tiff-vox      TIFF voxel size in mm along columns, rows, slices (one value = isotropic)\n"
          "  --tiff-orient   direction in which TIFF columns, rows, slices increase, as RAS letters\n"
          "                  (e.g. RIA: columns go Right, rows Inferior, slices Anterior; default RAS)\n"
          "  --json          print one JSON object (one line) instead of the text report\n"
          "  --allow-bad-geometry  show a file whose geometry is unusable (refused by default) with the\n"
          "                  substitute `mbsr convert --allow-bad-geometry` would write, and a warning\n"
          "  --quiet         no info lines on stderr (warnings and errors stay)\n"
          "  --threads N     OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_info(int argc, char **argv) {
  static const struct option opts[] = {{"tiff-vox", required_argument, 0, 'v'},
                                       {"tiff-orient", required_argument, 0, 'o'},
                                       {"json", no_argument, 0, 'j'},
                                       {"allow-bad-geometry", no_argument, 0, 'g'},
                                       {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_VOLUME_OPT,
                                       MBSR_CLI_COMMON_OPTS,
                                       {0, 0, 0, 0}};
  mbsr_read_opts ro;
  memset(&ro, 0, sizeof ro);
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'v':
        if (mbsr_cli_parse_double3(optarg, ro.tiff_vox)) return mbsr_cli_usage_error("info", "%s", mbsr_last_error());
        break;
      case 'o':
        if (strlen(optarg) != 3) return mbsr_cli_usage_error("info", "--tiff-orient wants 3 letters, got '%s'", optarg);
        memcpy(ro.tiff_orient, optarg, 4);
        break;
      case 'j': json = 1; break;
      case 'g': ro.allow_bad_geometry = 1; break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("info", c, optarg)) return 2;
    }
  }
  if (argc - optind != 1) return mbsr_cli_usage_error("info", "give exactly one FILE");
  const char *path = argv[optind];
  if (!mbsr_cli_volume(&ro)->volume_given) ro.volume_given = 1; /* volume 0 (the count is shown) */
  mbsr_volume *v = NULL;
  double t0 = mbsr_now();
  if (mbsr_volume_read(path, &ro, &v)) return mbsr_cli_fail("info");
  double ms = (mbsr_now() - t0) * 1e3;
  int finite = mbsr_volume_check_finite(v, path) == 0, rc = 0;
  if (json) rc = mbsr__cli_json_emit(mbsr__cli_info_json(path, v, finite, ms), 9, NULL);
  else mbsr__cli_info_text(path, v, finite, ms);
  mbsr_volume_free(v);
  return rc ? mbsr_cli_fail("info") : 0;
}
