/* mbsr prep: volumes -> LR/HR patch pairs in one parallel HDF5 file (MPI: ranks take volumes). */
#include <getopt.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/data.h"
#include "mbsr/image.h"

static void usage(void) {
  printf(
      "usage: mpirun -n P mbsr prep --out FILE.h5 --inputs DIR|MANIFEST [options]\n"
      "\n"
      "Reads every volume (NIfTI, NRRD, TIFF-stack directories; found in DIR or listed in MANIFEST),\n"
      "brings it to the isotropic base grid (area-weighted), block-averages it to every HR resolution,\n"
      "degrades it to every LR voxel (per axis, with the slice profile: --profile), Keys-upsamples each\n"
      "LR volume onto its HR grid (the network input), maps input and HR target to\n"
      "[0,1] by the intensity contract (lo, hi = percentiles of the input: what `mbsr apply` computes from\n"
      "a user's LR volume), masks the brain and samples patches at seeded random brain locations into ONE\n"
      "HDF5 file (parallel HDF5, collective writes).\n"
      "Subjects are split into train/val/test (seeded, by subject); a failing input is recorded and skipped.\n"
      "\n"
      "  --out FILE.h5              output file (written to a temporary name, renamed when complete)\n"
      "  --inputs DIR|MANIFEST      a directory (annotation/label/mask files skipped) or a manifest:\n"
      "                             one path per line (relative to the manifest), optional TAB subject name\n"
      "  --res BASE:R1,R2,...       e.g. 25:50,100,200,400 -> pairs 50-25,100-50,200-100,400-200 (um)\n"
      "  --pair LR-HR[,LR-HR...]    e.g. 200-100,100-50 (um); default 200-100 (was --pairs, deprecated);\n"
      "                             per-axis LR voxels as LRixLRjxLRk-HR, e.g. 100x100x400-100 (slices 4x thicker\n"
      "                             along array axis k); every LR voxel an integer multiple of the HR voxel\n"
      "  --base UM                  base resolution (default: the finest HR)\n"
      "  --patch N                  patch edge in HR voxels (default 21)\n"
      "  --patches-per-volume N     per subject and pair (default 200)\n"
      "  --split TR,VA,TE           percentages by subject (default 80,10,10)\n"
      "  --test-subjects K          exactly K test subjects\n"
      "  --seed S                   (default 1)\n"
      "  --eval-dir DIR             write the test subjects' volumes of every level (+ HR masks) as NIfTI:\n"
      "                             <subject>_<um>um[_mask].nii.gz, <subject>_<i>x<j>x<k>um.nii.gz for per-axis\n"
      "                             levels, \"_gaussian\" appended to levels degraded with that profile\n"
      "  --tiff-vox X,Y,Z           TIFF-stack voxel size in mm (default 0.04,0.04,0.05: the AF brain)\n"
      "  --tiff-orient CODE         direction of increasing column, row, slice as RAS letters (default RIA: the AF brain)\n"
      "  --norm-percentiles LO,HI   intensity-contract percentiles of the network input (default 0.1,99.9;\n"
      "                             0,100 = min/max, the paper's, collapses saturated data: prep warns;\n"
      "                             was --norm-pct, deprecated)\n"
      "  --mask-threshold T         brain mask threshold on the HR volume normalised by its own\n"
      "                             percentiles (default Otsu; was --mask-thr, deprecated)\n"
      "  --chunk N                  HDF5 chunk = N patches (default 4)\n"
      "  --self-supervised          through-plane pairs from each thick-slice input itself (no --res/--pair/--base):\n"
      "                             target = the input with its slice axis Keys-upsampled to the in-plane spacing,\n"
      "                             input = the target with an in-plane axis degraded to the slice thickness (the\n"
      "                             slice profile) and Keys-upsampled back (half the patches each in-plane axis);\n"
      "                             ONE pair named <i>x<j>x<k>-<in-plane> in um (e.g. 2500x2500x10000-2500); every\n"
      "                             input on the first one's voxel size; `mbsr apply` runs the trained model along\n"
      "                             the slice axis of a user's volume\n"
      "  --slice-axis K             with --self-supervised: the slice array axis 0..2 (default: the largest voxel)\n"
      "  --profile boxcar|gaussian  slice profile of every LR degradation (default boxcar: the block average, the\n"
      "                             paper's; gaussian: FWHM = the LR voxel along each degraded axis); recorded in the\n"
      "                             file and in every model trained on it\n"
      "  --quiet                    no progress or info lines on stderr (warnings and errors stay)\n"
      "  --threads N                OpenMP threads per rank (default: OMP_NUM_THREADS or every core)\n"
      "  --help\n");
}

int mbsr_cmd_prep(int argc, char **argv) {
  mbsr_prep_config c;
  mbsr_prep_config_default(&c);
  int have_pairs = 0;
  static const struct option opts[] = {
      {"out", required_argument, 0, 'o'},        {"inputs", required_argument, 0, 'i'},
      {"res", required_argument, 0, 'r'},        {"pair", required_argument, 0, 'P'},
      {"base", required_argument, 0, 'b'},       {"patch", required_argument, 0, 'p'},
      {"patches-per-volume", required_argument, 0, 'n'}, {"split", required_argument, 0, 's'},
      {"test-subjects", required_argument, 0, 't'}, {"seed", required_argument, 0, 'S'},
      {"eval-dir", required_argument, 0, 'e'},   {"tiff-vox", required_argument, 0, 'v'},
      {"tiff-orient", required_argument, 0, 'O'}, {"norm-percentiles", required_argument, 0, 'N'},
      {"mask-threshold", required_argument, 0, 'm'},   {"chunk", required_argument, 0, 'c'},
      {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
      {"threads", required_argument, 0, MBSR_CLI_OPT_THREADS},
      {"self-supervised", no_argument, 0, 'X'},  {"slice-axis", required_argument, 0, 'K'},
      {"profile", required_argument, 0, 'R'},
      {0, 0, 0, 0}};
  opterr = 0;
  optind = 1;
  int ch;
  char *end;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
      case 'o': c.out = optarg; break;
      case 'i': c.inputs = optarg; break;
      case 'r':
        if (mbsr_prep_parse_res(&c, optarg)) return mbsr_cli_usage_error("prep", "%s", mbsr_last_error());
        have_pairs = 1;
        break;
      case 'P':
        if (mbsr_prep_parse_pairs(&c, optarg)) { /* the library names the flag by its earlier spelling */
          const char *m = mbsr_last_error();
          return mbsr_cli_usage_error("prep", "%s%s", strncmp(m, "--pairs", 7) ? "" : "--pair", strncmp(m, "--pairs", 7) ? m : m + 7);
        }
        have_pairs = 1;
        break;
      case 'b': c.base_um = (int)strtol(optarg, &end, 10); if (*end || c.base_um < 1) return mbsr_cli_usage_error("prep", "bad --base '%s'", optarg); break;
      case 'p': c.patch = (int)strtol(optarg, &end, 10); if (*end || c.patch < 3) return mbsr_cli_usage_error("prep", "bad --patch '%s'", optarg); break;
      case 'n': c.patches_per_volume = (int)strtol(optarg, &end, 10); if (*end || c.patches_per_volume < 1) return mbsr_cli_usage_error("prep", "bad --patches-per-volume '%s'", optarg); break;
      case 's':
        if (sscanf(optarg, "%d,%d,%d", &c.split[0], &c.split[1], &c.split[2]) != 3 || c.split[0] <= 0 || c.split[1] < 0 ||
            c.split[2] < 0 || c.split[0] + c.split[1] + c.split[2] != 100)
          return mbsr_cli_usage_error("prep", "bad --split '%s' (expected TR,VA,TE percentages adding up to 100, TR > 0)", optarg);
        break;
      case 't': c.test_subjects = (int)strtol(optarg, &end, 10); if (*end || c.test_subjects < 0) return mbsr_cli_usage_error("prep", "bad --test-subjects '%s'", optarg); break;
      case 'S': c.seed = strtoull(optarg, &end, 10); if (*end) return mbsr_cli_usage_error("prep", "bad --seed '%s'", optarg); break;
      case 'e': c.eval_dir = optarg; break;
      case 'v': if (mbsr_cli_parse_double3(optarg, c.read_opts.tiff_vox)) return mbsr_cli_usage_error("prep", "bad --tiff-vox '%s'", optarg); break;
      case 'O': snprintf(c.read_opts.tiff_orient, sizeof c.read_opts.tiff_orient, "%s", optarg); break;
      case 'N':
        if (sscanf(optarg, "%lf,%lf", &c.norm_plo, &c.norm_phi) != 2 || c.norm_plo < 0 || c.norm_phi > 100 || c.norm_plo >= c.norm_phi)
          return mbsr_cli_usage_error("prep", "bad --norm-percentiles '%s'", optarg);
        break;
      case 'm': c.mask_thr = strtod(optarg, &end); if (*end) return mbsr_cli_usage_error("prep", "bad --mask-threshold '%s'", optarg); break;
      case 'c': c.chunk_patches = (int)strtol(optarg, &end, 10); if (*end || c.chunk_patches < 1) return mbsr_cli_usage_error("prep", "bad --chunk '%s'", optarg); break;
      case 'X': c.self_supervised = 1; break;
      case 'K': c.slice_axis = (int)strtol(optarg, &end, 10); if (*end || c.slice_axis < 0 || c.slice_axis > 2) return mbsr_cli_usage_error("prep", "bad --slice-axis '%s' (0, 1 or 2)", optarg); break;
      case 'R': if (mbsr_profile_parse(optarg, &c.profile)) return mbsr_cli_usage_error("prep", "--profile: %s", mbsr_last_error()); break;
      case 'q': c.progress = 0; mbsr_log_set_quiet(1); break;
      case MBSR_CLI_OPT_THREADS: if (mbsr_cli_common("prep", ch, optarg)) return 2; break;
      case 'h': if (mbsr_log_rank() == 0) usage(); return 0;
      default: return mbsr_cli_usage_error("prep", "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) return mbsr_cli_usage_error("prep", "unexpected argument '%s'", argv[optind]);
  if (!c.out) return mbsr_cli_usage_error("prep", "--out FILE.h5 is required");
  if (!c.inputs) return mbsr_cli_usage_error("prep", "--inputs DIR|MANIFEST is required");
  if (c.self_supervised && (have_pairs || c.base_um))
    return mbsr_cli_usage_error("prep", "--self-supervised makes its one pair from the inputs' own voxel size: no --res, --pair or --base");
  if (!c.self_supervised && c.slice_axis >= 0) return mbsr_cli_usage_error("prep", "--slice-axis goes with --self-supervised");
  if (c.self_supervised && c.eval_dir) return mbsr_cli_usage_error("prep", "--eval-dir is not written with --self-supervised");
  if (!have_pairs) mbsr_prep_parse_pairs(&c, "200-100");
  mbsr_prep_summary s;
  MPI_Comm comm = MPI_COMM_WORLD;
  int rc = mbsr_prep_run(&c, comm, &s);
  if (rc) return mbsr_cli_fail("prep");
  /* The file is complete; failed inputs make the exit status 3 (partial success). */
  return s.n_failed ? 3 : 0;
}
