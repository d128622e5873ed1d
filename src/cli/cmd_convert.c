/* mbsr convert IN OUT: any readable volume -> NIfTI-1 float32 (OUT without extension gets .nii.gz). */
#include <getopt.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr convert IN OUT [--tiff-vox C,R,S] [--tiff-orient XYZ] [--allow-nonfinite] [--allow-bad-geometry]\n"
          "                   [--quiet] [--threads N]     (or --in IN --out OUT)\n"
          "  IN              .nii / .nii.gz, .nrrd / .nhdr, .mhd, a .tif/.tiff stack or a directory of TIFF slices\n"
          "  OUT             .nii or .nii.gz (NIfTI-1 float32, sform = qform = the affine, mm);\n"
          "                  without one of these extensions, .nii.gz is appended\n"
          "  --tiff-vox      TIFF voxel size in mm along columns, rows, slices (one value = isotropic)\n"
          "  --tiff-orient   direction in which TIFF columns, rows, slices increase (RAS letters, e.g. RIA)\n"
          "  --allow-nonfinite  write volumes containing NaN/Inf (refused by default)\n"
          "  --allow-bad-geometry  read an input whose geometry is unusable (non-finite, zero or singular\n"
          "                  sform/qform/pixdim, space directions, spacings, origin, TransformMatrix) with a\n"
          "                  substitute (the next valid NIfTI transform, else diag(voxel sizes) with 1 mm where\n"
          "                  unusable, origin 0) and a warning; refused by default. OUT then has a valid header\n"
          "  --in IN --out OUT  the same as the positionals IN OUT\n"
          "  --quiet         no info lines on stderr (warnings and errors stay)\n"
          "  --threads N     OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_convert(int argc, char **argv) {
  static const struct option opts[] = {{"tiff-vox", required_argument, 0, 'v'},
                                       {"tiff-orient", required_argument, 0, 'o'},
                                       {"allow-nonfinite", no_argument, 0, 'n'},
                                       {"allow-bad-geometry", no_argument, 0, 'g'},
                                       {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'O'},
                                       {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_COMMON_OPTS,
                                       {0, 0, 0, 0}};
  const char *in = NULL, *out = NULL;
  mbsr_read_opts ro;
  memset(&ro, 0, sizeof ro);
  int allow_nonfinite = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'v':
        if (mbsr_cli_parse_double3(optarg, ro.tiff_vox)) return mbsr_cli_usage_error("convert", "%s", mbsr_last_error());
        break;
      case 'o':
        if (strlen(optarg) != 3) return mbsr_cli_usage_error("convert", "--tiff-orient wants 3 letters, got '%s'", optarg);
        memcpy(ro.tiff_orient, optarg, 4);
        break;
      case 'n': allow_nonfinite = 1; break;
      case 'g': ro.allow_bad_geometry = 1; break;
      case 'i': in = optarg; break;
      case 'O': out = optarg; break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("convert", c, optarg)) return 2;
    }
  }
  if (mbsr_cli_in_out("convert", argc, argv, optind, &in, &out)) return 2;
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("convert");
  mbsr_volume *v = NULL;
  double t0 = mbsr_now();
  if (mbsr_volume_read(in, &ro, &v)) return mbsr_cli_fail("convert");
  double t1 = mbsr_now();
  if (!allow_nonfinite && mbsr_volume_check_finite(v, in)) {
    mbsr_volume_free(v);
    return mbsr_cli_fail("convert");
  }
  int rc = mbsr_volume_write(final, v);
  double t2 = mbsr_now();
  if (rc) {
    mbsr_volume_free(v);
    return mbsr_cli_fail("convert");
  }
  mbsr_info("%s -> %s: %lldx%lldx%lld, voxel %.6g x %.6g x %.6g mm (read %.1f ms, write %.1f ms)", in, final,
            (long long)v->nx, (long long)v->ny, (long long)v->nz, v->vox[0], v->vox[1], v->vox[2], (t1 - t0) * 1e3,
            (t2 - t1) * 1e3);
  mbsr_volume_free(v);
  return 0;
}
