/* mbsr metrics TEST REF [--mask M] [--data-range L]: RMSE, PSNR and 3-D SSIM of TEST against REF,
 * printed as one JSON object. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr metrics TEST REF [--mask M] [--data-range L]\n"
          "  Prints JSON: rmse, mse, psnr, ssim, n (voxels evaluated), data_range, files.\n"
          "  RMSE/PSNR over all voxels, or the voxels with M > 0.5. PSNR = 20 log10(L) - 10 log10(MSE).\n"
          "  SSIM: 3-D Gaussian window (sigma 1.5, 11 taps), K1 0.01, K2 0.03, population covariance, mean over the\n"
          "  interior 5 voxels away from every border (= scikit-image structural_similarity(gaussian_weights=True,\n"
          "  sigma=1.5, use_sample_covariance=False)); with a mask, over interior voxels inside the mask.\n"
          "  --data-range L   default: max(REF) - min(REF) (use 1 for volumes normalised to [0,1])\n"
          "  TEST, REF and M must share one grid (dims and affine).\n");
}

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void json_num(double x) {
  if (isfinite(x)) printf("%.10g", x);
  else printf("null");
}

int mbsr_cmd_metrics(int argc, char **argv) {
  static const struct option opts[] = {{"mask", required_argument, 0, 'm'},
                                       {"data-range", required_argument, 0, 'r'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *maskp = NULL;
  double L = 0;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'm': maskp = optarg; break;
      case 'r': {
        char *end;
        L = strtod(optarg, &end);
        if (end == optarg || *end || !(L > 0) || !isfinite(L))
          return mbsr_cli_usage_error("metrics", "--data-range wants a positive number, got '%s'", optarg);
        break;
      }
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("metrics", "unknown option");
    }
  }
  if (argc - optind != 2) return mbsr_cli_usage_error("metrics", "give TEST and REF");
  const char *tp = argv[optind], *rp = argv[optind + 1];
  mbsr_volume *t = NULL, *r = NULL, *m = NULL;
  int rc = mbsr_volume_read(tp, NULL, &t);
  if (!rc) rc = mbsr_volume_read(rp, NULL, &r);
  if (!rc && maskp) rc = mbsr_volume_read(maskp, NULL, &m);
  if (!rc) rc = mbsr_volume_check_same_grid(t, tp, r, rp);
  if (!rc && m) rc = mbsr_volume_check_same_grid(m, maskp, r, rp);
  if (!rc) rc = mbsr_volume_check_finite(t, tp);
  if (!rc) rc = mbsr_volume_check_finite(r, rp);
  mbsr_metrics mt;
  double t0 = mbsr_now();
  if (!rc) rc = mbsr_metrics_compute(t, r, m, L, &mt);
  double dt = mbsr_now() - t0;
  if (!rc) {
    printf("{\"files\": {\"test\": ");
    json_str(tp);
    printf(", \"ref\": ");
    json_str(rp);
    printf(", \"mask\": ");
    if (maskp) json_str(maskp);
    else printf("null");
    printf("}, \"dims\": [%lld, %lld, %lld], \"n\": %lld, \"data_range\": ", (long long)r->nx, (long long)r->ny,
           (long long)r->nz, (long long)mt.n);
    json_num(mt.data_range);
    printf(", \"rmse\": ");
    json_num(mt.rmse);
    printf(", \"mse\": ");
    json_num(mt.mse);
    printf(", \"psnr\": ");
    json_num(mt.psnr);
    printf(", \"ssim\": ");
    json_num(mt.ssim);
    printf(", \"seconds\": %.3f}\n", dt);
  }
  mbsr_volume_free(t);
  mbsr_volume_free(r);
  mbsr_volume_free(m);
  return rc ? mbsr_cli_fail("metrics") : 0;
}
