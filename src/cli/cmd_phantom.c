/* mbsr phantom: write the deterministic SYNTHETIC AF-like mouse-brain cohort. */
#include <getopt.h>
#include <stdlib.h>

#include "mbsr/cli.h"
#include "mbsr/exp.h"

static void usage(void) {
  printf("usage: mbsr phantom --out DIR [--n 12] [--seed 1] [--vox 0.05] [--dims NX,NY,NZ] [--quiet] [--threads N]\n"
         "Writes a deterministic SYNTHETIC cohort of distinct AF-like mouse-brain volumes (NOT real data):\n"
         "DIR/phantom-XX_af<um>um.nii.gz, DIR/phantom-XX_mask<um>um.nii.gz, DIR/SYNTHETIC-COHORT.txt.\n"
         "  --out DIR      output directory (created)\n"
         "  --n N          number of subjects (default 12)\n"
         "  --seed S       cohort seed (default 1): same seed, same bytes\n"
         "  --vox MM       isotropic voxel size in mm (default 0.05)\n"
         "  --dims NX,NY,NZ  grid (i left->right, j posterior->anterior, k inferior->superior);\n"
         "                 default = field of view 8.5 x 10.0 x 6.5 mm / vox; the brain scales to the grid\n"
         "  --quiet        no info lines on stderr (warnings and errors stay)\n"
         "  --threads N    OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_phantom(int argc, char **argv) {
  static const struct option longopts[] = {{"out", required_argument, 0, 'o'}, {"n", required_argument, 0, 'n'},
                                           {"seed", required_argument, 0, 's'}, {"vox", required_argument, 0, 'v'},
                                           {"dims", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
                                           MBSR_CLI_COMMON_OPTS,                {0, 0, 0, 0}};
  mbsr_phantom_opts o;
  mbsr_phantom_opts_default(&o);
  const char *out = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
      case 'o': out = optarg; break;
      case 'n':
        o.n = (int)strtol(optarg, &end, 10);
        if (*end || o.n < 1) return mbsr_cli_usage_error("phantom", "--n: bad value '%s'", optarg);
        break;
      case 's':
        o.seed = strtoull(optarg, &end, 10);
        if (*end) return mbsr_cli_usage_error("phantom", "--seed: bad value '%s'", optarg);
        break;
      case 'v':
        o.vox_mm = strtod(optarg, &end);
        if (*end || !(o.vox_mm > 0)) return mbsr_cli_usage_error("phantom", "--vox: bad value '%s'", optarg);
        break;
      case 'd':
        if (mbsr_cli_parse_int3(optarg, o.dims)) return mbsr_cli_usage_error("phantom", "--dims: %s", mbsr_last_error());
        break;
      case 'h': usage(); return 0;
      default:
        if (mbsr_cli_common("phantom", c, optarg)) return 2;
    }
  }
  if (optind < argc) return mbsr_cli_usage_error("phantom", "unexpected argument '%s'", argv[optind]);
  if (!out) return mbsr_cli_usage_error("phantom", "--out DIR is required");
  if (mbsr_phantom_cohort(&o, out)) return mbsr_cli_fail("phantom");
  return 0;
}
