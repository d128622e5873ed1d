/* mbsr convert IN OUT: any readable volume -> NIfTI-1 float32 (OUT without extension gets .nii.gz),
 * every volume of a 4-D file (or the one --volume names), with IN's header metadata (codes, descrip,
 * intent, units: the grid is the same) and a provenance sidecar OUT.json. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli_sidecar.h"
#include "mbsr/cli.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr convert IN OUT [--volume N] [--tiff-vox C,R,S] [--tiff-orient XYZ] [--allow-nonfinite]\n"
          "                   [--allow-bad-geometry] [--quiet] [--threads N]     (or --in IN --out OUT)\n"
          "  IN              .nii / .nii.gz, .nrrd / .nhdr, .mhd, a .tif/.tiff stack or a directory of TIFF slices\n"
          "  OUT             .nii or .nii.gz (NIfTI-1 float32, sform = qform = the affine, with IN's sform/qform\n"
          "                  codes, descrip, intent and units); without one of these extensions, .nii.gz is\n"
          "                  appended. Beside it OUT.json (provenance: version, command line, input, grid)\n"
          "  --volume N      of a 4-D IN, convert only volume N (0-based); default: every volume (4-D OUT)\n"
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
                                       MBSR_CLI_VOLUME_OPT,
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
  mbsr_cli_volume(&ro);
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("convert");
  mbsr_volume **v = NULL;
  int64_t n = 0;
  double t0 = mbsr_now();
  int rc = 0;
  if (ro.volume_given) { /* one volume, as the other commands read it */
    v = calloc(1, sizeof *v);
    rc = v ? mbsr_volume_read(in, &ro, &v[0]) : mbsr_error(MBSR_ENOMEM, "out of memory");
    n = v && !rc;
  } else {
    rc = mbsr_volume_read_series(in, &ro, &v, &n);
  }
  double t1 = mbsr_now();
  for (int64_t t = 0; t < n && !rc && !allow_nonfinite; t++) rc = mbsr_volume_check_finite(v[t], in);
  json_t *doc = NULL;
  if (!rc) {
    doc = mbsr__cli_provenance("Converted to NIfTI-1 float32 by mbsr convert (values and grid unchanged)", in, v[0], v[0], n);
    json_t *par = json_object();
    json_object_set_new(par, "Volume", ro.volume_given ? json_integer((json_int_t)ro.volume) : json_string("all"));
    json_object_set_new(par, "TiffVoxelSizeMm", ro.tiff_vox[0] > 0 ? json_pack("[f,f,f]", ro.tiff_vox[0], ro.tiff_vox[1], ro.tiff_vox[2]) : json_null());
    json_object_set_new(par, "TiffOrient", ro.tiff_orient[0] ? json_string(ro.tiff_orient) : json_null());
    json_object_set_new(par, "AllowNonfinite", json_boolean(allow_nonfinite));
    json_object_set_new(par, "AllowBadGeometry", json_boolean(ro.allow_bad_geometry));
    json_object_set_new(doc, "Parameters", par);
    rc = mbsr__cli_write_with_sidecar(final, v, n, doc);
  }
  json_decref(doc);
  double t2 = mbsr_now();
  char nv[48] = "";
  if (n > 1) snprintf(nv, sizeof nv, " x %lld volumes", (long long)n);
  if (!rc)
    mbsr_info("%s -> %s: %lldx%lldx%lld%s, voxel %.6g x %.6g x %.6g mm (read %.1f ms, write %.1f ms)", in, final,
              (long long)v[0]->nx, (long long)v[0]->ny, (long long)v[0]->nz, nv, v[0]->vox[0], v[0]->vox[1], v[0]->vox[2],
              (t1 - t0) * 1e3, (t2 - t1) * 1e3);
  mbsr_volume_series_free(v, n);
  return rc ? mbsr_cli_fail("convert") : 0;
}
