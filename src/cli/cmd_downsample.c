/* mbsr downsample IN OUT --factor F|F,F,F [--profile boxcar|gaussian]: block-average down-sampling (the
 * paper's LR simulation), or a Gaussian slice profile sampled at the block centres (mbsr_downsample).
 * Remainder rule: trailing voxels that do not fill a whole block are cropped (n_out = floor(n/f)).
 * Affine: columns x f, origin at the world position of the centre of block 0. */
#include <getopt.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr downsample IN OUT --factor F|F,F,F [--profile boxcar|gaussian] [--volume N] [--quiet]\n"
          "       [--threads N]     (or --in IN --out OUT)\n"
          "  --profile boxcar (default): each output voxel is the mean of the F x F x F (or Fx x Fy x Fz) input\n"
          "  voxels of its block. --profile gaussian: a Gaussian slice profile of FWHM = F input voxels along each\n"
          "  axis with F > 1 (sigma = F / 2.3548), sampled at the block centre b*F + (F-1)/2; taps within\n"
          "  4 sigma + 0.5 voxels of the centre, weights normalised to 1, half-sample mirror beyond the edges\n"
          "  (scipy.ndimage mode 'reflect'; for odd F = gaussian_filter1d(truncate=4) at the block centres).\n"
          "  Both profiles give the same grid:\n"
          "  Trailing voxels that do not fill a whole block are CROPPED: n_out = floor(n_in / F).\n"
          "  The affine's columns are multiplied by F and the origin moves to the centre of block 0,\n"
          "  so every LR voxel centre sits at the centre of its HR block in world space.\n"
          "  IN: any volume mbsr reads; OUT: NIfTI (.nii/.nii.gz; .nii.gz appended otherwise).\n"
          "  --volume N      of a 4-D IN, the volume to down-sample (0-based; required when IN has several)\n"
          "  --in IN --out OUT  the same as the positionals IN OUT\n"
          "  --quiet         no info lines on stderr (warnings and errors stay)\n"
          "  --threads N     OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_downsample(int argc, char **argv) {
  static const struct option opts[] = {{"factor", required_argument, 0, 'f'}, {"in", required_argument, 0, 'i'},
                                       {"profile", required_argument, 0, 'p'},
                                       {"out", required_argument, 0, 'o'},    {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_VOLUME_OPT, MBSR_CLI_COMMON_OPTS, {0, 0, 0, 0}};
  const char *in = NULL, *out = NULL;
  int f[3] = {0, 0, 0}, c;
  mbsr_profile prof = MBSR_PROFILE_BOXCAR;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'f':
        if (mbsr_cli_parse_int3(optarg, f)) return mbsr_cli_usage_error("downsample", "--factor: %s", mbsr_last_error());
        break;
      case 'i': in = optarg; break;
      case 'p':
        if (mbsr_profile_parse(optarg, &prof)) return mbsr_cli_usage_error("downsample", "--profile: %s", mbsr_last_error());
        break;
      case 'o': out = optarg; break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("downsample", c, optarg)) return 2;
    }
  }
  if (mbsr_cli_in_out("downsample", argc, argv, optind, &in, &out)) return 2;
  if (f[0] == 0) return mbsr_cli_usage_error("downsample", "--factor is required");
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("downsample");
  mbsr_volume *v = NULL, *d = NULL;
  if (mbsr_volume_read(in, mbsr_cli_volume(&(mbsr_read_opts){0}), &v)) return mbsr_cli_fail("downsample");
  int rc = mbsr_volume_check_finite(v, in);
  double t0 = mbsr_now();
  if (!rc) rc = mbsr_downsample(v, f, prof, &d);
  double t1 = mbsr_now();
  if (rc) mbsr_error_prefix(rc, "%s: ", in);
  if (!rc) rc = mbsr_volume_write(final, d);
  if (!rc)
    mbsr_info("%s (%lldx%lldx%lld, %.4g x %.4g x %.4g mm) -> %s (%lldx%lldx%lld, %.4g x %.4g x %.4g mm), factor %dx%dx%d, %s profile, "
              "remainder cropped (%lld,%lld,%lld voxels), %.1f ms",
              in, (long long)v->nx, (long long)v->ny, (long long)v->nz, v->vox[0], v->vox[1], v->vox[2], final,
              (long long)d->nx, (long long)d->ny, (long long)d->nz, d->vox[0], d->vox[1], d->vox[2], f[0], f[1], f[2], mbsr_profile_name(prof),
              (long long)(v->nx % f[0]), (long long)(v->ny % f[1]), (long long)(v->nz % f[2]), (t1 - t0) * 1e3);
  mbsr_volume_free(v);
  mbsr_volume_free(d);
  return rc ? mbsr_cli_fail("downsample") : 0;
}
