/* mbsr stats ttest|welch|corr FILE.csv ...: statistics on CSV columns, JSON on stdout. */
#include <getopt.h>
#include <string.h>

#include "cli_json.h"
#include "mbsr/cli.h"
#include "mbsr/stats.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr stats ttest FILE.csv --a COL --b COL     paired t-test of a - b (two-sided)\n"
          "                                                    with the 95 %% confidence interval of the mean difference\n"
          "       mbsr stats welch FILE.csv --value COL --group COL  Welch one-way ANOVA (unequal variances)\n"
          "       mbsr stats corr  FILE.csv --x COL --y COL     Pearson correlation, t-based p-value\n"
          "options: --out FILE.json  also write the JSON to FILE (atomically)\n"
          "         --json           accepted for symmetry with info and models: the output is always JSON\n"
          "         --quiet          no info lines on stderr (warnings and errors stay)\n"
          "The CSV needs a header row; fields separated by ',' (double quotes allowed).\n"
          "Matches R t.test(a, b, paired=TRUE), oneway.test(value ~ group, var.equal=FALSE), cor.test(x, y).\n"
          "Output: one JSON object (one line) on stdout; numbers with 17 significant digits.\n");
}

int mbsr_cmd_stats(int argc, char **argv) {
  static const struct option opts[] = {{"a", required_argument, 0, 'a'},     {"b", required_argument, 0, 'b'},
                                       {"value", required_argument, 0, 'v'}, {"group", required_argument, 0, 'g'},
                                       {"x", required_argument, 0, 'x'},     {"y", required_argument, 0, 'y'},
                                       {"out", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
                                       {"json", no_argument, 0, 'j'},        {"quiet", no_argument, 0, MBSR_CLI_OPT_QUIET},
                                       {0, 0, 0, 0}};
  const char *ca = NULL, *cb = NULL, *out = NULL;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'a': case 'v': case 'x': ca = optarg; break;
      case 'b': case 'g': case 'y': cb = optarg; break;
      case 'o': out = optarg; break;
      case 'j': break;
      case MBSR_CLI_OPT_QUIET: mbsr_cli_common("stats", c, optarg); break;
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("stats", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 2) return mbsr_cli_usage_error("stats", "give a test (ttest|welch|corr) and one CSV file");
  const char *test = argv[optind], *path = argv[optind + 1];
  mbsr_csv_test_kind kind;
  if (mbsr_csv_test_parse(test, &kind)) return mbsr_cli_usage_error("stats", "%s", mbsr_last_error());
  static const char *names[3][2] = {{"--a", "--b"}, {"--value", "--group"}, {"--x", "--y"}};
  if (!ca || !cb) return mbsr_cli_usage_error("stats", "%s needs %s COL and %s COL", test, names[kind][0], names[kind][1]);
  mbsr_csv_test_result r;
  int rc = mbsr_csv_test(path, kind, ca, cb, &r);
  if (!rc) rc = mbsr__cli_json_emit(mbsr__cli_stats_json(path, ca, cb, &r), 17, out);
  mbsr_csv_test_result_free(&r);
  return rc ? mbsr_cli_fail("stats") : 0;
}
