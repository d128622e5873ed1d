/* mbsr report: statistics, Table 1, figures and README of an experiment's finished cells. */
#include <getopt.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/exp.h"

static void usage(void) {
  printf("usage: mbsr report EXPERIMENT.yaml [--scale S] [--results DIR] [--no-figures] [--quiet] [--threads N]\n"
         "Aggregates DIR/<scale>/<experiment>/cells/*: per cell and method, mean +- sd over the independent\n"
         "brains (units of one brain averaged first); with 3 or more brains paired t-tests against cubic with\n"
         "95 %% confidence intervals, Holm-adjusted across the cells, and Welch's ANOVA (where the experiment\n"
         "asks for it); fewer brains: descriptive only. table.md/table.csv/table.tex (LaTeX, booktabs)/stats.csv,\n"
         "figures as PNG, PDF and SVG (gnuplot) and README.md in DIR/<scale>/<experiment>/.\n"
         "  --scale S      a scale of the experiment file: demo (default), paper, real, ...\n"
         "  --results DIR  results root (default: results)\n"
         "  --no-figures   tables and statistics only\n"
         "  --quiet        no info lines on stderr (warnings and errors stay)\n"
         "  --threads N    OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_report(int argc, char **argv) {
  static const struct option longopts[] = {{"scale", required_argument, 0, 's'}, {"results", required_argument, 0, 'r'},
                                           {"no-figures", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'},
                                           MBSR_CLI_COMMON_OPTS,                {0, 0, 0, 0}};
  const char *scale = "demo";
  mbsr_report_opts o = {.results = "results", .figures = 1, .command = NULL};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 's': scale = optarg; break;
      case 'r': o.results = optarg; break;
      case 'n': o.figures = 0; break;
      case 'h': usage(); return 0;
      default:
        if (mbsr_cli_common("report", c, optarg)) return 2;
    }
  }
  if (optind != argc - 1) return mbsr_cli_usage_error("report", "give one EXPERIMENT.yaml");
  static mbsr_experiment e;
  if (mbsr_exp_load(argv[optind], scale, &e)) return mbsr_cli_fail("report");
  char cmd[1024];
  int l = snprintf(cmd, sizeof cmd, "mbsr");
  for (int i = 0; i < argc && l < (int)sizeof cmd - 1; i++) l += snprintf(cmd + l, sizeof cmd - l, " %s", argv[i]);
  o.command = cmd;
  if (mbsr_report_run(&e, &o)) return mbsr_cli_fail("report");
  return 0;
}
