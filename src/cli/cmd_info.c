/* mbsr info FILE: dims, voxel size, affine, source format/type, value range (text or JSON). */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr info FILE [--tiff-vox C,R,S] [--tiff-orient XYZ] [--json] [--allow-bad-geometry]\n"
          "  FILE            .nii / .nii.gz (NIfTI-1/2), .nrrd / .nhdr, .mhd, a .tif/.tiff stack or a directory of\n"
          "                  TIFF slices\n"
          "  --tiff-vox      TIFF voxel size in mm along columns, rows, slices (one value = isotropic)\n"
          "  --tiff-orient   direction in which TIFF columns, rows, slices increase, as RAS letters\n"
          "                  (e.g. RIA: columns go Right, rows Inferior, slices Anterior; default RAS)\n"
          "  --json          print one JSON object\n"
          "  --allow-bad-geometry  show a file whose geometry is unusable (refused by default) with the\n"
          "                  substitute `mbsr convert --allow-bad-geometry` would write, and a warning\n");
}

/* Nearest RAS letter of each affine column ("LPS" etc.). */
static void orient_code(const double A[4][4], char code[4]) {
  static const char pos[] = "RAS", neg[] = "LPI";
  for (int a = 0; a < 3; a++) {
    int best = 0;
    for (int r = 1; r < 3; r++)
      if (fabs(A[r][a]) > fabs(A[best][a])) best = r;
    code[a] = A[best][a] >= 0 ? pos[best] : neg[best];
  }
  code[3] = 0;
}

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

int mbsr_cmd_info(int argc, char **argv) {
  static const struct option opts[] = {{"tiff-vox", required_argument, 0, 'v'},
                                       {"tiff-orient", required_argument, 0, 'o'},
                                       {"json", no_argument, 0, 'j'},
                                       {"allow-bad-geometry", no_argument, 0, 'g'},
                                       {"help", no_argument, 0, 'h'},
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
      default: return mbsr_cli_usage_error("info", "unknown option");
    }
  }
  if (argc - optind != 1) return mbsr_cli_usage_error("info", "give exactly one FILE");
  const char *path = argv[optind];
  mbsr_volume *v = NULL;
  double t0 = mbsr_now();
  if (mbsr_volume_read(path, &ro, &v)) return mbsr_cli_fail("info");
  double ms = (mbsr_now() - t0) * 1e3;
  char code[4];
  orient_code(v->affine, code);
  for (int r = 0; r < 4; r++)
    for (int c2 = 0; c2 < 4; c2++) v->affine[r][c2] += 0.0; /* print 0, not -0 */
  int finite = mbsr_volume_check_finite(v, path) == 0;
  const char *notes = mbsr_volume_read_notes();
  if (json) {
    printf("{\"file\": ");
    json_str(path);
    printf(", \"format\": \"%s\", \"dtype\": \"%s\", \"dims\": [%lld, %lld, %lld], \"voxel_mm\": [%.9g, %.9g, %.9g], "
           "\"affine\": [",
           v->src_format, mbsr_dtype_name(v->src_dtype), (long long)v->nx, (long long)v->ny, (long long)v->nz,
           v->vox[0], v->vox[1], v->vox[2]);
    for (int r = 0; r < 4; r++)
      printf("%s[%.9g, %.9g, %.9g, %.9g]", r ? ", " : "", v->affine[r][0], v->affine[r][1], v->affine[r][2],
             v->affine[r][3]);
    printf("], \"orientation\": \"%s\", \"min\": %.9g, \"max\": %.9g, \"finite\": %s, \"read_ms\": %.3f, \"notes\": ",
           code, v->src_min, v->src_max, finite ? "true" : "false", ms);
    json_str(notes);
    printf("}\n");
  } else {
    printf("file:        %s\n", path);
    printf("format:      %s, %s\n", v->src_format, mbsr_dtype_name(v->src_dtype));
    printf("dims:        %lld x %lld x %lld (%lld voxels)\n", (long long)v->nx, (long long)v->ny, (long long)v->nz,
           (long long)mbsr_volume_nvox(v));
    printf("voxel (mm):  %.6g x %.6g x %.6g\n", v->vox[0], v->vox[1], v->vox[2]);
    printf("affine (voxel index -> RAS mm):\n");
    for (int r = 0; r < 4; r++)
      printf("  [%12.6g %12.6g %12.6g %12.6g]\n", v->affine[r][0], v->affine[r][1], v->affine[r][2], v->affine[r][3]);
    printf("orientation: %s (direction in which i, j, k increase)\n", code);
    printf("range:       %.6g .. %.6g%s\n", v->src_min, v->src_max, finite ? "" : "   (contains NaN/Inf)");
    if (notes[0]) printf("notes:       %s\n", notes);
    printf("read time:   %.1f ms\n", ms);
  }
  mbsr_volume_free(v);
  return 0;
}
