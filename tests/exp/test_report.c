/* report: statistics of `mbsr report` equal R's t.test(paired = TRUE) and oneway.test(var.equal =
 * FALSE) on the same numbers (fixtures from tests/fixtures/gen_report_stats.R); tables written;
 * every figure comes as PNG, PDF and SVG, and table.tex is well-formed LaTeX with one row per cell
 * of table.csv (compiled when pdflatex is there). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/exp.h"
#include "mbsr/stats.h"
#include "mbsr/volume.h"
#include "mbsr_test.h"

static const char *YAML =
    "experiment: rstats\n"
    "title: \"report statistics against R\"\n"
    "report: {anova: true, table1: true}\n"
    "scales:\n"
    "  paper: {}\n"
    "  demo:\n"
    "    matrix: {arch: [ccnn, resnet, gan], train_pair: [200-100], samples: [1000]}\n";

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void test_stats_vs_r(void) {
  char yaml[4096], res[4096], fx[4096], p[8192];
  snprintf(yaml, sizeof yaml, "%s/rstats.yaml", mbsr_test_tmpdir());
  snprintf(res, sizeof res, "%s/results", mbsr_test_tmpdir());
  write_file(yaml, YAML);
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(yaml, "demo", &e));
  MT_ASSERT_INT_EQ(e.n_cells, 3);
  /* split the fixture's rows into the cells' metrics.csv + done markers */
  mbsr_csv *in = NULL;
  MT_ASSERT_OK(mbsr_csv_read(mbsr_test_fixture("report/input.csv", fx, sizeof fx), &in));
  int ccell = mbsr_csv_col(in, "cell");
  for (int c = 0; c < e.n_cells; c++) {
    snprintf(p, sizeof p, "%s/demo/rstats/cells/%s", res, e.cells[c].name);
    MT_ASSERT_OK(mbsr_mkdir_p(p));
    snprintf(p, sizeof p, "%s/demo/rstats/cells/%s/metrics.csv", res, e.cells[c].name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int j = 0; j < in->ncols; j++) fprintf(f, "%s%s", j ? "," : "", in->names[j]);
    fputc('\n', f);
    int rows = 0;
    for (int i = 0; i < in->nrows; i++) {
      if (strcmp(in->cells[i * in->ncols + ccell], e.cells[c].name)) continue;
      for (int j = 0; j < in->ncols; j++) fprintf(f, "%s%s", j ? "," : "", in->cells[i * in->ncols + j]);
      fputc('\n', f);
      rows++;
    }
    fclose(f);
    MT_ASSERT_INT_EQ(rows, 21);
    snprintf(p, sizeof p, "%s/demo/rstats/cells/%s/done", res, e.cells[c].name);
    write_file(p, "done\n");
  }
  mbsr_csv_free(in);
  mbsr_report_opts o = {.results = res, .figures = 0, .command = "test"};
  MT_ASSERT_OK(mbsr_report_run(&e, &o));
  /* compare stats.csv with R */
  mbsr_csv *got = NULL, *want = NULL;
  snprintf(p, sizeof p, "%s/demo/rstats/stats.csv", res);
  MT_ASSERT_OK(mbsr_csv_read(p, &got));
  MT_ASSERT_OK(mbsr_csv_read(mbsr_test_fixture("report/expected.csv", fx, sizeof fx), &want));
  MT_ASSERT_INT_EQ(got->nrows, want->nrows);
  int gt = mbsr_csv_col(got, "test"), gc = mbsr_csv_col(got, "cell"), gm = mbsr_csv_col(got, "metric"),
      gs = mbsr_csv_col(got, "statistic"), g1 = mbsr_csv_col(got, "df1"), g2 = mbsr_csv_col(got, "df2"),
      gp = mbsr_csv_col(got, "p");
  int wt = mbsr_csv_col(want, "test"), wc = mbsr_csv_col(want, "cell"), wm = mbsr_csv_col(want, "metric"),
      ws = mbsr_csv_col(want, "statistic"), w1 = mbsr_csv_col(want, "df1"), w2 = mbsr_csv_col(want, "df2"),
      wp = mbsr_csv_col(want, "p");
  int matched = 0;
  for (int i = 0; i < want->nrows; i++) {
    const char **W = (const char **)want->cells + i * want->ncols;
    for (int k = 0; k < got->nrows; k++) {
      const char **G = (const char **)got->cells + k * got->ncols;
      if (strcmp(W[wt], G[gt]) || strcmp(W[wc], G[gc]) || strcmp(W[wm], G[gm])) continue;
      matched++;
      MT_ASSERT_REL(atof(G[gs]), atof(W[ws]), 1e-10, 1e-12);
      MT_ASSERT_REL(atof(G[g1]), atof(W[w1]), 1e-10, 1e-12);
      if (!strcmp(W[wt], "welch_anova")) MT_ASSERT_REL(atof(G[g2]), atof(W[w2]), 1e-10, 1e-12);
      MT_ASSERT_REL(atof(G[gp]), atof(W[wp]), 1e-8, 1e-300);
    }
  }
  MT_ASSERT_INT_EQ(matched, want->nrows);
  mbsr_csv_free(got);
  mbsr_csv_free(want);
  /* tables exist and name the paper's column */
  snprintf(p, sizeof p, "%s/demo/rstats/table.md", res);
  FILE *f = fopen(p, "r");
  CU_ASSERT_FATAL(f != NULL);
  char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  CU_ASSERT(strstr(buf, "Improvement over cubic interpolation in RMSE, %") != NULL);
  CU_ASSERT(strstr(buf, "Welch") != NULL);
  snprintf(p, sizeof p, "%s/demo/rstats/table.csv", res);
  CU_ASSERT(mbsr_file_exists(p));
  snprintf(p, sizeof p, "%s/demo/rstats/README.md", res);
  CU_ASSERT(mbsr_file_exists(p));
}

static void test_unfinished_cells_left_out(void) {
  char yaml[4096], res[4096], p[8192];
  snprintf(yaml, sizeof yaml, "%s/empty.yaml", mbsr_test_tmpdir());
  snprintf(res, sizeof res, "%s/results-empty", mbsr_test_tmpdir());
  write_file(yaml, YAML);
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(yaml, "demo", &e));
  /* a metrics file without its done marker does not count */
  snprintf(p, sizeof p, "%s/demo/rstats/cells/%s", res, e.cells[0].name);
  MT_ASSERT_OK(mbsr_mkdir_p(p));
  snprintf(p, sizeof p, "%s/demo/rstats/cells/%s/metrics.csv", res, e.cells[0].name);
  write_file(p, "cell,subject,method,rmse,ssim,psnr,kc,res_um,n_vox\n");
  mbsr_report_opts o = {.results = res, .figures = 0, .command = "test"};
  int rc = mbsr_report_run(&e, &o);
  CU_ASSERT(rc != 0);
  CU_ASSERT(strstr(mbsr_last_error(), "no finished cell") != NULL);
}

/* ---------------------------------------------------------------- figures and table.tex */
static const char *YAML_FIG =
    "experiment: figs\n"
    "title: \"figure files (a test)\"\n"
    "report: {anova: false, table1: true}\n"
    "scales:\n"
    "  paper: {}\n"
    "  demo:\n"
    "    matrix: {arch: [resnet], train_pair: [400-200], samples: [100, 400]}\n";

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* A smooth test volume (a blob with stripes) on a grid of 0.1 mm voxels; noise_seed > 0 perturbs it. */
static mbsr_volume *test_volume(int64_t nx, int64_t ny, int64_t nz, int noise_seed) {
  const double vox[3] = {0.1, 0.1, 0.1};
  mbsr_volume *v = mbsr_volume_new(nx, ny, nz, vox, NULL);
  CU_ASSERT_FATAL(v != NULL);
  unsigned s = (unsigned)noise_seed * 2654435761u + 1;
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++) {
        double x = (i - nx / 2.0) / nx, y = (j - ny / 2.0) / ny, z = (k - nz / 2.0) / nz, r = x * x + y * y + z * z;
        s = s * 1103515245u + 12345u;
        double noise = noise_seed ? 0.02 * ((s >> 16) % 1000 / 1000.0 - 0.5) : 0;
        v->data[i + nx * (j + ny * k)] = (float)(r < 0.16 ? 100 + 40 * sin(20 * x) + 100 * noise : 5);
      }
  return v;
}

/* metrics.csv of cell c: 4 brains, the same cubic in every cell, the networks better with more samples. */
static void write_fig_metrics(const char *path, const char *cell, int c) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fprintf(f, "cell,fold,subject,brain,method,rmse,ssim,psnr,kc,res_um,n_vox\n");
  for (int b = 0; b < 4; b++) {
    double cub = 0.10 + 0.01 * b, net = cub * (0.9 - 0.05 * c - 0.01 * b);
    fprintf(f, "%s,-,s%d,s%d,cubic,%.6f,%.3f,19,0.8,490,100\n", cell, b, b, cub, 0.80 + 0.002 * b);
    fprintf(f, "%s,-,s%d,s%d,resnet,%.6f,%.3f,21,0.9,450,100\n", cell, b, b, net, 0.85 + 0.01 * c + 0.003 * b * b);
    fprintf(f, "%s,-,s%d,s%d,hr,0,1,inf,1,400,100\n", cell, b, b);
  }
  fclose(f);
}

/* Two cells that share their cubic: metrics.csv, done markers, and the volumes of the montage. */
static void write_fig_cells(const mbsr_experiment *e, const char *res) {
  char p[8192];
  for (int c = 0; c < e->n_cells; c++) {
    snprintf(p, sizeof p, "%s/demo/figs/cells/%s", res, e->cells[c].name);
    MT_ASSERT_OK(mbsr_mkdir_p(p));
    snprintf(p, sizeof p, "%s/demo/figs/cells/%s/metrics.csv", res, e->cells[c].name);
    write_fig_metrics(p, e->cells[c].name, c);
    snprintf(p, sizeof p, "%s/demo/figs/cells/%s/done", res, e->cells[c].name);
    write_file(p, "done\n");
    const char *what[5] = {"lr", "cubic", "sr", "hr", "mask"};
    for (int w = 0; w < 5; w++) {
      mbsr_volume *v = w == 0 ? test_volume(12, 14, 10, 1) : test_volume(24, 28, 20, w == 3 ? 0 : w + 2 + c);
      snprintf(p, sizeof p, "%s/demo/figs/cells/%s/vol_%s.nii.gz", res, e->cells[c].name, what[w]);
      MT_ASSERT_OK(mbsr_volume_write(p, v));
      mbsr_volume_free(v);
    }
  }
}

/* The p columns of a table.tex row (10th and 14th): "---", "$<0.001$" or 3 significant digits. */
static void check_p_cells(const char *row) {
  const char *f = row;
  for (int col = 0; col < 14; col++) {
    char cell[64];
    int n = (int)strcspn(f, "&\n");
    snprintf(cell, sizeof cell, "%.*s", n < 63 ? n : 63, f);
    char *a = cell, *z = cell + strlen(cell);
    while (*a == ' ') a++;
    while (z > a && z[-1] == ' ') *--z = 0;
    if (col == 9 || col == 13) {
      char again[64];
      snprintf(again, sizeof again, "%#.3g", atof(a));
      CU_ASSERT(!strcmp(a, "---") || !strcmp(a, "$<0.001$") || (atof(a) >= 0.001 && !strcmp(a, again)));
    }
    f += n + (f[n] == '&');
  }
}

/* table.tex: \begin and \end pair up, the column count of the tabular is every row's, one row per
 * row of table.csv. */
static void check_table_tex(const char *dir) {
  char p[8192];
  snprintf(p, sizeof p, "%s/table.tex", dir);
  char *t = mbsr_test_slurp(p);
  CU_ASSERT_FATAL(t != NULL);
  MT_ASSERT_INT_EQ(count(t, "\\begin{"), count(t, "\\end{"));
  MT_ASSERT_INT_EQ(count(t, "\\begin{table}"), 1);
  MT_ASSERT_INT_EQ(count(t, "\\begin{tabular}"), 1);
  MT_ASSERT_INT_EQ(count(t, "\\toprule"), 1);
  MT_ASSERT_INT_EQ(count(t, "\\bottomrule"), 1);
  const char *spec = strstr(t, "\\begin{tabular}{") + strlen("\\begin{tabular}{");
  int ncols = (int)strcspn(spec, "}");
  const char *mid = strstr(t, "\\midrule"), *bot = strstr(t, "\\bottomrule");
  CU_ASSERT_FATAL(mid && bot && mid < bot);
  int rows = 0;
  for (const char *l = strchr(mid, '\n') + 1; l < bot; l = strchr(l, '\n') + 1) {
    int amp = 0;
    for (const char *c = l; *c != '\n'; c++) amp += *c == '&' && c[-1] != '\\';
    MT_ASSERT_INT_EQ(amp, ncols - 1);
    check_p_cells(l);
    CU_ASSERT(strstr(l, "\\\\") != NULL && strstr(l, "\\\\") < strchr(l, '\n'));
    rows++;
  }
  mbsr_csv *csv = NULL;
  snprintf(p, sizeof p, "%s/table.csv", dir);
  MT_ASSERT_OK(mbsr_csv_read(p, &csv));
  MT_ASSERT_INT_EQ(rows, csv->nrows);
  mbsr_csv_free(csv);
  free(t);
  if (mbsr_test_sh("command -v pdflatex >/dev/null 2>&1") != 0) return; /* not required */
  snprintf(p, sizeof p, "%s/doc.tex", dir);
  write_file(p, "\\documentclass{article}\\usepackage[margin=1cm,landscape]{geometry}\\usepackage{booktabs}"
                "\\begin{document}\\input{table.tex}\\end{document}\n");
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && pdflatex -interaction=nonstopmode -halt-on-error doc.tex >/dev/null 2>&1", dir), 0);
}

static void test_figures_and_tex(void) {
  char yaml[4096], res[4096], dir[4600], p[8192];
  snprintf(yaml, sizeof yaml, "%s/figs.yaml", mbsr_test_tmpdir());
  snprintf(res, sizeof res, "%s/results-figs", mbsr_test_tmpdir());
  snprintf(dir, sizeof dir, "%s/demo/figs", res);
  write_file(yaml, YAML_FIG);
  static mbsr_experiment e;
  MT_ASSERT_OK(mbsr_exp_load(yaml, "demo", &e));
  MT_ASSERT_INT_EQ(e.n_cells, 2);
  write_fig_cells(&e, res);
  mbsr_report_opts o = {.results = res, .figures = 1, .command = "test"};
  MT_ASSERT_OK(mbsr_report_run(&e, &o));
  check_table_tex(dir);
  snprintf(p, sizeof p, "%s/README.md", dir);
  char *rd = mbsr_test_slurp(p);
  CU_ASSERT_FATAL(rd != NULL);
  CU_ASSERT(strstr(rd, "table.tex") != NULL);
  if (mbsr_test_sh("command -v gnuplot >/dev/null 2>&1") != 0) {
    fprintf(stderr, "  (no gnuplot: figure files not checked)\n");
    free(rd);
    return;
  }
  static const char *figs[5] = {"fig_paired_rmse", "fig_paired_ssim", "fig_improvement", "fig_montage", "fig_decorr"};
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "%s.pdf", figs[i]);
    CU_ASSERT(strstr(rd, p) != NULL);
    const char *ext[3] = {"png", "pdf", "svg"}, *magic[3] = {"\x89PNG", "%PDF", "<?xml"};
    for (int x = 0; x < 3; x++) {
      snprintf(p, sizeof p, "%s/%s.%s", dir, figs[i], ext[x]);
      char *b = mbsr_test_slurp(p);
      CU_ASSERT(b != NULL);
      if (!b) fprintf(stderr, "  missing %s\n", p);
      if (b) CU_ASSERT(!strncmp(b, magic[x], strlen(magic[x])));
      if (b && x == 2) CU_ASSERT(strstr(b, "</svg>") != NULL && strstr(b, "image-rendering") != NULL); /* pixels stay square */
      free(b);
    }
  }
  /* the paired plot draws the cubic of the two cells once: 3 columns (cubic, n=100, n=400) */
  snprintf(p, sizeof p, "%s/fig_src/fig_paired_rmse.png.gp", dir);
  char *gp = mbsr_test_slurp(p);
  CU_ASSERT_FATAL(gp != NULL);
  MT_ASSERT_INT_EQ(count(gp, "\"cubic\""), 1);
  CU_ASSERT(strstr(gp, "\"resnet n=400\"") != NULL);
  free(gp), free(rd);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"stats_vs_r", test_stats_vs_r},
                                         {"unfinished_cells_left_out", test_unfinished_cells_left_out},
                                         {"figures_and_tex", test_figures_and_tex},
                                         {NULL, NULL}};
  return mbsr_test_main("exp_report", cases);
}
