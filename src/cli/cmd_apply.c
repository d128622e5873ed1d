/* mbsr apply: super-resolve a volume with a trained checkpoint (whole-volume inference by blended
 * overlapping patches; see src/model/apply.c). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr apply --model CKPT --in LR --out SR [--like HR_GRID | --factor F] [options]\n"
          "  --model CKPT     checkpoint written by mbsr train (HDF5; cCNN, ResNet or GAN generator)\n"
          "  --in LR          low-resolution volume (NIfTI, NRRD, ...); NaN/Inf are refused\n"
          "  --out SR         output NIfTI-1 float32 on the target grid (written atomically)\n"
          "  --like HR_GRID   target grid = the dims and affine of this volume (its voxels are not used)\n"
          "  --factor F       target grid = LR up-sampled by F (integer, or Fi,Fj,Fk)\n"
          "                   (neither: the input is already on the target grid)\n"
          "  --interp M       up-sampling onto the target grid: keys (default, cubic), bspline, linear\n"
          "  --patch P        patch edge the network runs on (default 21, the training size)\n"
          "  --overlap K      voxels shared by neighbouring patches (default P/3)\n"
          "  --batch B        patches per forward pass (default 8); memory ~ B x activations\n"
          "  --norm-pct LO,HI intensity normalisation percentiles of the up-sampled input (default 0,100 =\n"
          "                   min/max, the paper's); use what `mbsr prep --norm-pct` used for training\n"
          "  --precision X    fp32 (default); bf16 / bf16x3 where the CPU has them (see mbsr bench --prec)\n"
          "  --quiet          no progress line\n");
}

int mbsr_cmd_apply(int argc, char **argv) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},   {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'},     {"like", required_argument, 0, 'l'},
                                       {"factor", required_argument, 0, 'f'},  {"interp", required_argument, 0, 'I'},
                                       {"patch", required_argument, 0, 'p'},   {"overlap", required_argument, 0, 'k'},
                                       {"batch", required_argument, 0, 'b'},   {"precision", required_argument, 0, 'P'},
                                       {"norm-pct", required_argument, 0, 'N'},
                                       {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *model = NULL, *in = NULL, *out = NULL, *like = NULL;
  int f[3] = {0, 0, 0}, have_factor = 0, c;
  mbsr_apply_opts ao;
  mbsr_apply_opts_default(&ao);
  mbsr_precision prec = MBSR_PREC_FP32;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    char *end;
    switch (c) {
      case 'm': model = optarg; break;
      case 'i': in = optarg; break;
      case 'o': out = optarg; break;
      case 'l': like = optarg; break;
      case 'f':
        if (mbsr_cli_parse_int3(optarg, f)) return mbsr_cli_usage_error("apply", "--factor: %s", mbsr_last_error());
        have_factor = 1;
        break;
      case 'I':
        if (mbsr_interp_parse(optarg, &ao.interp)) return mbsr_cli_usage_error("apply", "--interp: %s", mbsr_last_error());
        break;
      case 'p':
        ao.patch = (int)strtol(optarg, &end, 10);
        if (*end || ao.patch < 3 || ao.patch > 512) return mbsr_cli_usage_error("apply", "--patch wants 3..512, got '%s'", optarg);
        break;
      case 'k':
        ao.overlap = (int)strtol(optarg, &end, 10);
        if (*end || ao.overlap < 0) return mbsr_cli_usage_error("apply", "--overlap wants an integer >= 0, got '%s'", optarg);
        break;
      case 'b':
        ao.batch = (int)strtol(optarg, &end, 10);
        if (*end || ao.batch < 1 || ao.batch > 4096) return mbsr_cli_usage_error("apply", "--batch wants 1..4096, got '%s'", optarg);
        break;
      case 'P':
        if (!strcmp(optarg, "fp32")) prec = MBSR_PREC_FP32;
        else if (!strcmp(optarg, "bf16x3")) prec = MBSR_PREC_BF16X3;
        else if (!strcmp(optarg, "bf16")) prec = MBSR_PREC_BF16;
        else return mbsr_cli_usage_error("apply", "--precision wants fp32, bf16x3 or bf16, got '%s'", optarg);
        break;
      case 'N':
        if (sscanf(optarg, "%lf,%lf", &ao.norm_plo, &ao.norm_phi) != 2 || !(ao.norm_plo >= 0) ||
            !(ao.norm_phi <= 100) || !(ao.norm_plo < ao.norm_phi))
          return mbsr_cli_usage_error("apply", "--norm-pct wants LO,HI with 0 <= LO < HI <= 100, got '%s'", optarg);
        break;
      case 'q': ao.progress = 0; break;
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("apply", "unknown option");
    }
  }
  if (optind < argc) return mbsr_cli_usage_error("apply", "unexpected argument '%s'", argv[optind]);
  if (!model || !in || !out) return mbsr_cli_usage_error("apply", "--model, --in and --out are required");
  if (like && have_factor) return mbsr_cli_usage_error("apply", "give --like or --factor, not both");
  if (ao.overlap >= ao.patch)
    return mbsr_cli_usage_error("apply", "--overlap %d must be smaller than --patch %d", ao.overlap, ao.patch);
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("apply");

  double t0 = mbsr_now();
  mbsr_volume *lr = NULL, *grid = NULL, *sr = NULL;
  mbsr_model *m = NULL;
  int rc = mbsr_volume_read(in, NULL, &lr);
  if (!rc) rc = mbsr_volume_check_finite(lr, in);
  if (!rc && like) rc = mbsr_volume_read(like, NULL, &grid);
  if (!rc) rc = mbsr_checkpoint_load(model, ao.batch, ao.patch, ao.patch, ao.patch, &m, NULL);
  if (!rc && prec != MBSR_PREC_FP32) rc = mbsr_model_set_precision(m, prec);
  double t1 = mbsr_now();
  if (!rc) {
    if (grid) rc = mbsr_apply(m, lr, grid, &ao, &sr);
    else if (have_factor) rc = mbsr_apply_factor(m, lr, f, &ao, &sr);
    else rc = mbsr_apply_upsampled(m, lr, &ao, &sr);
  }
  double t2 = mbsr_now();
  if (!rc) rc = mbsr_volume_write(final, sr);
  if (!rc) {
    char desc[256];
    snprintf(desc, sizeof desc, "%s", mbsr_arch_name(mbsr_model_get_config(m)->arch));
    mbsr_info("apply: %s (%s) %lldx%lldx%lld -> %s %lldx%lldx%lld, voxel %.4g x %.4g x %.4g mm; network %.2f s, "
              "total %.2f s",
              in, desc, (long long)lr->nx, (long long)lr->ny, (long long)lr->nz, final, (long long)sr->nx,
              (long long)sr->ny, (long long)sr->nz, sr->vox[0], sr->vox[1], sr->vox[2], t2 - t1,
              mbsr_now() - t0);
  }
  mbsr_volume_free(lr);
  mbsr_volume_free(grid);
  mbsr_volume_free(sr);
  mbsr_model_free(m);
  return rc ? mbsr_cli_fail("apply") : 0;
}
