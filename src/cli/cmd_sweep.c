/* mbsr sweep: run the cells of an experiment (prep, train, apply, evaluate). [MPI] */
#include <getopt.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/exp.h"

static void usage(void) {
  printf("usage: mbsr sweep EXPERIMENT.yaml [--scale S] [--cell K] [--list] [--results DIR] [--data-dir DIR]\n"
         "                  [--threads N] [--force] [--quiet]\n"
         "Runs every cell of the experiment's matrix (or cell K, e.g. one Slurm array task): prep the patches it\n"
         "needs (reused), train (or reuse a finished checkpoint), apply to every test subject, evaluate the network\n"
         "and cubic interpolation (RMSE, SSIM, PSNR in the brain mask on [0,1] intensities; effective resolution).\n"
         "Results: DIR/<scale>/<experiment>/cells/<cell>/metrics.csv + done marker; finished cells are skipped.\n"
         "  --scale S      a scale of the experiment file: demo (default: minutes on 2 cores), paper (the\n"
         "                 paper's numbers), real (the real-data study), ...\n"
         "  --cell K       run only cell K (0-based; see --list)\n"
         "  --list         print the cells and their count, run nothing\n"
         "  --results DIR  results root (default: results)\n"
         "  --data-dir DIR cohort volumes instead of the file's data.dir (e.g. ../shared/data: uses DIR/af;\n"
         "                 was --data, deprecated)\n"
         "  --threads N    OpenMP threads per rank (default: OMP_NUM_THREADS or every core)\n"
         "  --force        recompute finished cells\n"
         "  --quiet        no progress or info lines on stderr (warnings and errors stay)\n");
}

int mbsr_cmd_sweep(int argc, char **argv) {
  static const struct option longopts[] = {{"scale", required_argument, 0, 's'}, {"cell", required_argument, 0, 'c'},
                                           {"list", no_argument, 0, 'l'},        {"results", required_argument, 0, 'r'},
                                           {"data-dir", required_argument, 0, 'd'},  {"threads", required_argument, 0, 't'},
                                           {"force", no_argument, 0, 'f'},       {"help", no_argument, 0, 'h'},
                                           {"quiet", no_argument, 0, MBSR_CLI_OPT_QUIET}, {0, 0, 0, 0}};
  const char *scale = "demo";
  mbsr_sweep_opts o = {.results = "results", .data = NULL, .cell = -1, .threads = 0, .force = 0};
  int list = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
      case 's': scale = optarg; break;
      case 'c':
        o.cell = (int)strtol(optarg, &end, 10);
        if (*end || o.cell < 0) return mbsr_cli_usage_error("sweep", "--cell: bad value '%s'", optarg);
        break;
      case 'l': list = 1; break;
      case 'r': o.results = optarg; break;
      case 'd': o.data = optarg; break;
      case 't':
        if (mbsr_cli_int("sweep", "--threads", optarg, 1, 4096, &o.threads)) return 2;
        break;
      case MBSR_CLI_OPT_QUIET: mbsr_cli_common("sweep", c, optarg); break;
      case 'f': o.force = 1; break;
      case 'h': usage(); return 0;
      default: return mbsr_cli_usage_error("sweep", "unknown option");
    }
  }
  if (optind != argc - 1) return mbsr_cli_usage_error("sweep", "give one EXPERIMENT.yaml");
  static mbsr_experiment e;
  if (mbsr_exp_load(argv[optind], scale, &e)) return mbsr_cli_fail("sweep");
  if (list) {
    if (mbsr_log_rank() == 0) {
      printf("cells: %d  (%s, %s scale)\n", e.n_cells, e.name, e.scale_name);
      for (int i = 0; i < e.n_cells; i++)
        printf("%d %s%s\n", i, e.cells[i].name, mbsr_sweep_cell_done(&e, o.results, i) ? " (done)" : "");
    }
    return 0;
  }
  if (o.threads > 0) omp_set_num_threads(o.threads); /* the caller sets the thread count (the library does not) */
  if (mbsr_sweep_run(&e, &o)) return mbsr_cli_fail("sweep");
  return 0;
}
