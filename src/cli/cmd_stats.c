/* mbsr stats ttest|welch|corr FILE.csv ...: statistics on CSV columns, JSON on stdout. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/stats.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr stats ttest FILE.csv --a COL --b COL     paired t-test of a - b (two-sided)\n"
          "                                                    with the 95 %% confidence interval of the mean difference\n"
          "       mbsr stats welch FILE.csv --value COL --group COL  Welch one-way ANOVA (unequal variances)\n"
          "       mbsr stats corr  FILE.csv --x COL --y COL     Pearson correlation, t-based p-value\n"
          "options: --out FILE.json  also write the JSON to FILE (atomically)\n"
          "The CSV needs a header row; fields separated by ',' (double quotes allowed).\n"
          "Matches R t.test(a, b, paired=TRUE), oneway.test(value ~ group, var.equal=FALSE), cor.test(x, y).\n"
          "Output: one JSON object on stdout.\n");
}

static void jnum(FILE *f, const char *key, double v, int comma) {
  if (isfinite(v)) fprintf(f, "\"%s\": %.17g%s", key, v, comma ? ", " : "");
  else fprintf(f, "\"%s\": null%s", key, comma ? ", " : "");
}

static void jstr(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static int emit(const char *text, const char *out) {
  fputs(text, stdout);
  if (!out) return MBSR_OK;
  char tmp[4096];
  int rc = mbsr_tmp_path(out, tmp, sizeof tmp);
  if (rc) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write", out);
  int bad = fputs(text, f) < 0;
  bad |= fclose(f) != 0;
  if (bad) {
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed", out);
  }
  return mbsr_commit_file(tmp, out);
}

int mbsr_cmd_stats(int argc, char **argv) {
  static const struct option opts[] = {{"a", required_argument, 0, 'a'},     {"b", required_argument, 0, 'b'},
                                       {"value", required_argument, 0, 'v'}, {"group", required_argument, 0, 'g'},
                                       {"x", required_argument, 0, 'x'},     {"y", required_argument, 0, 'y'},
                                       {"out", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
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
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("stats", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 2) return mbsr_cli_usage_error("stats", "give a test (ttest|welch|corr) and one CSV file");
  const char *test = argv[optind], *path = argv[optind + 1];
  int kind = !strcmp(test, "ttest") ? 0 : !strcmp(test, "welch") ? 1 : !strcmp(test, "corr") ? 2 : -1;
  if (kind < 0) return mbsr_cli_usage_error("stats", "unknown test '%s' (ttest|welch|corr)", test);
  static const char *names[3][2] = {{"--a", "--b"}, {"--value", "--group"}, {"--x", "--y"}};
  if (!ca || !cb) return mbsr_cli_usage_error("stats", "%s needs %s COL and %s COL", test, names[kind][0], names[kind][1]);

  mbsr_csv *t = NULL;
  double *va = NULL, *vb = NULL;
  int *grp = NULL;
  const char **labels = NULL;
  char *text = NULL;
  size_t tlen = 0;
  FILE *js = open_memstream(&text, &tlen);
  int rc = js ? mbsr_csv_read(path, &t) : mbsr_error(MBSR_ENOMEM, "out of memory");
  int ia = -1, ib = -1;
  if (!rc && (ia = mbsr_csv_col(t, ca)) < 0) rc = ia;
  if (!rc && (ib = mbsr_csv_col(t, cb)) < 0) rc = ib;
  if (!rc) {
    va = malloc(sizeof(double) * (t->nrows + 1));
    vb = malloc(sizeof(double) * (t->nrows + 1));
    grp = malloc(sizeof(int) * (t->nrows + 1));
    if (!va || !vb || !grp) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  if (!rc) rc = mbsr_csv_numeric(t, ia, va);
  if (!rc) rc = kind == 1 ? mbsr_csv_groups(t, ib, grp, &(int){0}, &labels) : mbsr_csv_numeric(t, ib, vb);
  if (!rc) {
    fprintf(js, "{\"test\": \"%s\", \"file\": ", test);
    jstr(js, path);
    fprintf(js, ", \"%s\": ", names[kind][0] + 2);
    jstr(js, ca);
    fprintf(js, ", \"%s\": ", names[kind][1] + 2);
    jstr(js, cb);
    fprintf(js, ", ");
    int n = t->nrows;
    if (kind == 0) {
      mbsr_ttest r;
      rc = mbsr_ttest_paired(va, vb, n, &r);
      if (!rc) {
        double m, s;
        fprintf(js, "\"n\": %d, ", r.n);
        mbsr_mean_sd(va, n, &m, &s);
        jnum(js, "mean_a", m, 1);
        jnum(js, "sd_a", s, 1);
        mbsr_mean_sd(vb, n, &m, &s);
        jnum(js, "mean_b", m, 1);
        jnum(js, "sd_b", s, 1);
        jnum(js, "mean_diff", r.mean_diff, 1);
        jnum(js, "sd_diff", r.sd_diff, 1);
        fprintf(js, "\"conf_level\": %.15g, ", r.conf_level); /* 0.95, not 0.94999999999999996 */
        jnum(js, "ci_lo", r.ci_lo, 1);
        jnum(js, "ci_hi", r.ci_hi, 1);
        jnum(js, "t", r.t, 1);
        jnum(js, "df", r.df, 1);
        jnum(js, "p", r.p, 0);
      }
    } else if (kind == 1) {
      mbsr_welch r;
      rc = mbsr_welch_anova(va, grp, n, &r);
      if (!rc) {
        fprintf(js, "\"n\": %d, \"k\": %d, \"groups\": [", r.n, r.k);
        double *tmp = malloc(sizeof(double) * (n + 1));
        for (int j = 0; tmp && j < r.k; j++) {
          int m = 0;
          for (int i = 0; i < n; i++)
            if (grp[i] == j) tmp[m++] = va[i];
          double mean, sd;
          mbsr_mean_sd(tmp, m, &mean, &sd);
          fprintf(js, "%s{\"label\": ", j ? ", " : "");
          jstr(js, labels[j]);
          fprintf(js, ", \"n\": %d, ", m);
          jnum(js, "mean", mean, 1);
          jnum(js, "sd", sd, 0);
          fputc('}', js);
        }
        free(tmp);
        fprintf(js, "], ");
        jnum(js, "F", r.F, 1);
        jnum(js, "df1", r.df1, 1);
        jnum(js, "df2", r.df2, 1);
        jnum(js, "p", r.p, 0);
      }
    } else {
      mbsr_corr r;
      rc = mbsr_pearson(va, vb, n, &r);
      if (!rc) {
        fprintf(js, "\"n\": %d, ", r.n);
        jnum(js, "r", r.r, 1);
        jnum(js, "t", r.t, 1);
        jnum(js, "df", r.df, 1);
        jnum(js, "p", r.p, 0);
      }
    }
    if (rc) mbsr_error_prefix(rc, "%s: ", path);
    fprintf(js, "}\n");
  }
  if (js) fclose(js);
  if (!rc) rc = emit(text, out);
  free(text);
  free(labels);
  free(va);
  free(vb);
  free(grp);
  mbsr_csv_free(t);
  return rc ? mbsr_cli_fail("stats") : 0;
}
