/* mbsr metrics TEST REF [--mask M] [--data-range L] [--sd SD]: RMSE, PSNR and 3-D SSIM of TEST against
 * REF, and with --sd how well a voxel-wise sd tracks |TEST - REF| (mbsr_sd_calibrate), printed as one
 * JSON object. */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "cli_json.h"
#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr metrics TEST REF [--mask M] [--data-range L] [--sd SD] [--out FILE.json] [--json] [--quiet]\n"
          "       [--threads N]\n"
          "  Prints JSON (one line): rmse, mse, psnr, ssim, n (voxels evaluated), data_range, files.\n"
          "  RMSE/PSNR over all voxels, or the voxels with M > 0.5. PSNR = 20 log10(L) - 10 log10(MSE).\n"
          "  SSIM: 3-D Gaussian window (sigma 1.5, 11 taps), K1 0.01, K2 0.03, population covariance, mean over the\n"
          "  interior 5 voxels away from every border (= scikit-image structural_similarity(gaussian_weights=True,\n"
          "  sigma=1.5, use_sample_covariance=False)); with a mask, over interior voxels inside the mask.\n"
          "  --data-range L   default: max(REF) - min(REF) (use 1 for volumes normalised to [0,1])\n"
          "  --sd SD          a voxel-wise standard deviation of TEST (e.g. from an ensemble apply): adds\n"
          "                   sd_err_corr (Pearson r of SD with |TEST - REF| over the voxels, or M's) and sd_deciles\n"
          "                   (voxels ordered by SD, ties by index, ten groups by rank: n, sd_lo, sd_hi, sd_mean,\n"
          "                   err_mean)\n"
          "  --out FILE.json  also write the JSON to FILE (atomically)\n"
          "  --json           accepted for symmetry with info and models: the output is always JSON\n"
          "  --quiet          no info lines on stderr (warnings and errors stay)\n"
          "  --threads N      OpenMP threads (default: OMP_NUM_THREADS or every core)\n"
          "  TEST, REF, M and SD must share one grid (dims and affine).\n");
}

/* The sd calibration into the metrics document: files.sd, sd_err_corr, sd_deciles. */
static void add_calibration(json_t *doc, const char *sdp, const mbsr_sd_calibration *c) {
  json_t *files = json_object_get(doc, "files"), *dec = json_array();
  if (files) json_object_set_new(files, "sd", mbsr__cli_json_str(sdp));
  json_object_set_new(doc, "sd_err_corr", mbsr__cli_json_num(c->corr));
  for (int b = 0; b < MBSR_SD_BINS; b++)
    json_array_append_new(dec, json_pack("{s:I,s:o,s:o,s:o,s:o}", "n", (json_int_t)c->count[b], "sd_lo", mbsr__cli_json_num(c->sd_lo[b]),
                                         "sd_hi", mbsr__cli_json_num(c->sd_hi[b]), "sd_mean", mbsr__cli_json_num(c->sd_mean[b]),
                                         "err_mean", mbsr__cli_json_num(c->err_mean[b])));
  json_object_set_new(doc, "sd_deciles", dec);
}

int mbsr_cmd_metrics(int argc, char **argv) {
  static const struct option opts[] = {{"mask", required_argument, 0, 'm'},
                                       {"data-range", required_argument, 0, 'r'},
                                       {"sd", required_argument, 0, 's'},
                                       {"out", required_argument, 0, 'o'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_COMMON_OPTS,
                                       {0, 0, 0, 0}};
  const char *maskp = NULL, *out = NULL, *sdp = NULL;
  double L = 0;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'm': maskp = optarg; break;
      case 'r':
        if (mbsr_cli_double("metrics", "--data-range", optarg, 0, HUGE_VAL, &L)) return 2;
        if (!(L > 0)) return mbsr_cli_usage_error("metrics", "--data-range wants a positive number, got '%s'", optarg);
        break;
      case 'o': out = optarg; break;
      case 's': sdp = optarg; break;
      case 'j': break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("metrics", c, optarg)) return 2;
    }
  }
  if (argc - optind != 2) return mbsr_cli_usage_error("metrics", "give TEST and REF");
  const char *tp = argv[optind], *rp = argv[optind + 1];
  mbsr_volume *t = NULL, *r = NULL, *m = NULL, *sd = NULL;
  int rc = mbsr_volume_read(tp, NULL, &t);
  if (!rc) rc = mbsr_volume_read(rp, NULL, &r);
  if (!rc && maskp) rc = mbsr_volume_read(maskp, NULL, &m);
  if (!rc) rc = mbsr_volume_check_same_grid(t, tp, r, rp);
  if (!rc && m) rc = mbsr_volume_check_same_grid(m, maskp, r, rp);
  if (!rc && sdp) rc = mbsr_volume_read(sdp, NULL, &sd);
  if (!rc && sd) rc = mbsr_volume_check_same_grid(sd, sdp, r, rp);
  if (!rc) rc = mbsr_volume_check_finite(t, tp);
  if (!rc) rc = mbsr_volume_check_finite(r, rp);
  mbsr_metrics mt;
  double t0 = mbsr_now();
  if (!rc) rc = mbsr_metrics_compute(t, r, m, L, &mt);
  mbsr_sd_calibration cal;
  if (!rc && sd && (rc = mbsr_sd_calibrate(t, r, sd, m, &cal))) mbsr_error_prefix(rc, "%s: ", sdp);
  if (!rc) {
    json_t *doc = mbsr__cli_metrics_json(tp, rp, maskp, r, &mt, mbsr_now() - t0);
    if (sd) add_calibration(doc, sdp, &cal);
    rc = mbsr__cli_json_emit(doc, 10, out);
  }
  mbsr_volume_free(t);
  mbsr_volume_free(r);
  mbsr_volume_free(m);
  mbsr_volume_free(sd);
  return rc ? mbsr_cli_fail("metrics") : 0;
}
