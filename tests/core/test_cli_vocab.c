/* One CLI vocabulary (docs/user/cli.md), end to end through the built CLI:
 *  - every flag renamed for one vocabulary (`mbsr --renamed`) still works under its old spelling,
 *    with one deprecation line on stderr naming the new flag, and gives what the new spelling gives;
 *    the new spelling never warns;
 *  - --quiet and --threads on every command that computes; --in/--out on every volume command;
 *    --volume N on every command that reads a volume to process;
 *  - log lines on stderr, machine output (JSON, tables) alone on stdout.
 * Needs MBSR_BIN (set by tests/CMakeLists.txt). */
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

static char g_dir[2048], g_vol[2400];

/* Whole small file into buf ("" when absent). */
static const char *slurp(const char *path, char *buf, size_t n) {
  buf[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return buf;
  size_t k = fread(buf, 1, n - 1, f);
  buf[k] = 0;
  fclose(f);
  return buf;
}

static int count_lines(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* A small phantom volume (and a 4-subject cohort for prep), made once. */
static void setup(void) {
  if (g_vol[0]) return;
  snprintf(g_dir, sizeof g_dir, "%s", mbsr_test_tmpdir());
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' phantom --out '%s/ph' --n 4 --dims 40,40,32 --quiet", mbsr_test_bin(), g_dir), 0);
  snprintf(g_vol, sizeof g_vol, "%s/ph/phantom-00_af50um.nii.gz", g_dir);
  CU_ASSERT_FATAL(mbsr_file_exists(g_vol));
}

/* Run `mbsr ARGS` with stdout and stderr into <dir>/<tag>.out/.err; returns the exit status. */
static int run(const char *tag, const char *args) {
  return mbsr_test_sh("cd '%s' && '%s' %s > '%s.out' 2> '%s.err'", g_dir, mbsr_test_bin(), args, tag, tag);
}

static const char *err_of(const char *tag, char *buf, size_t n) {
  char p[2600];
  snprintf(p, sizeof p, "%s/%s.err", g_dir, tag);
  return slurp(p, buf, n);
}

/* One renamed flag: `fmt` is the command line with {F} where the flag goes; run with the old and the
 * new spelling, both must exit `rc`; the old one warns once (naming the new flag), the new one never.
 * `same` (or NULL): an output file both runs write (%s = "old"/"new"), compared byte for byte (a
 * name starting with '?': only that both exist, e.g. timings). */
typedef struct {
  const char *cmd, *old_flag, *new_flag, *fmt, *same;
  int rc;
  const char *err_has; /* a text stderr must contain under both spellings (or NULL) */
} rename_case;

static const rename_case cases[] = {
    {"upsample", "--method", "--interp", "upsample ph/phantom-00_af50um.nii.gz up_{W}.nii --factor 2 {F} linear", "up_%s.nii", 0, NULL},
    {"normalize", "--percentiles", "--norm-percentiles", "normalize ph/phantom-00_af50um.nii.gz no_{W}.nii {F} 5,95", "no_%s.nii", 0,
     "(p5)"},
    {"mask", "--threshold", "--mask-threshold", "mask ph/phantom-00_af50um.nii.gz ma_{W}.nii {F} 20", "ma_%s.nii", 0, "threshold 20 (given)"},
    {"prep", "--pairs", "--pair", "prep --inputs ph --out pp_{W}.h5 {F} 100-50 --patch 9 --patches-per-volume 4 --split 50,25,25", NULL, 0,
     NULL},
    {"prep", "--norm-pct", "--norm-percentiles",
     "prep --inputs ph --out pn_{W}.h5 {F} 5,95 --pair 100-50 --patch 9 --patches-per-volume 4 --split 50,25,25", NULL, 0, NULL},
    {"prep", "--mask-thr", "--mask-threshold",
     "prep --inputs ph --out pm_{W}.h5 {F} 0.3 --pair 100-50 --patch 9 --patches-per-volume 4 --split 50,25,25", NULL, 0, NULL},
    {"train", "--data", "--patches", "train --pair 100-50 --arch ccnn --dry-run --threads 1 {F} pp_new.h5", NULL, 0, "plan (nothing written)"},
    {"sweep", "--data", "--data-dir", "sweep {S}/experiments/table1.yaml --list --results res {F} ph", NULL, 0, NULL},
    {"apply", "--patch", "--tile", "apply --model none.h5 in.nii out.nii {F} 2", NULL, 2, "--tile wants an integer in 3..4096"},
    {"bench", "--prec", "--precision", "bench --arch ccnn --batch 1 --repeats 1 --warmup 0 --size 9 --no-layers --threads 1 {F} fp32",
     NULL, 0, NULL},
    {"bench", "--model", "--arch", "bench {F} ccnn --batch 1 --repeats 1 --warmup 0 --size 9 --no-layers --threads 1", NULL, 0, NULL},
    {"bench", "--json", "--out", "bench --arch ccnn --batch 1 --repeats 1 --warmup 0 --size 9 --no-layers --threads 1 {F} be_{W}.json",
     "?be_%s.json", 0, NULL},
};
#define NCASES (sizeof cases / sizeof *cases)

/* The command line of case c: {F} = flag, {W} = "old"/"new" (file names), {S} = the source tree. */
static void cmdline(const rename_case *c, const char *flag, const char *which, char *buf, size_t n) {
  const char *src = getenv("MBSR_SOURCE_DIR");
  size_t k = 0;
  for (const char *p = c->fmt; *p && k + 1 < n; p++) {
    const char *put = !strncmp(p, "{F}", 3) ? flag : !strncmp(p, "{W}", 3) ? which : !strncmp(p, "{S}", 3) ? (src ? src : ".") : NULL;
    if (put) {
      k += (size_t)snprintf(buf + k, n - k, "%s", put);
      p += 2;
    } else
      buf[k++] = *p;
  }
  buf[k < n ? k : n - 1] = 0;
}

/* Every row of `mbsr --renamed` has a case here, and every case is a row. */
static void test_table_covered(void) {
  setup();
  char p[2600], buf[8192];
  MT_ASSERT_INT_EQ(run("renamed", "--renamed"), 0);
  snprintf(p, sizeof p, "%s/renamed.out", g_dir);
  slurp(p, buf, sizeof buf);
  int rows = count_lines(buf, "\n");
  MT_ASSERT_INT_EQ(rows, (int)NCASES);
  for (size_t i = 0; i < NCASES; i++) {
    char row[256];
    snprintf(row, sizeof row, "%s\t%s\t%s\n", cases[i].cmd, cases[i].old_flag, cases[i].new_flag);
    if (!strstr(buf, row)) fprintf(stderr, "  not in `mbsr --renamed`: %s", row);
    CU_ASSERT(strstr(buf, row) != NULL);
  }
}

static void test_old_spellings_warn_and_work(void) {
  setup();
  for (size_t i = 0; i < NCASES; i++) {
    const rename_case *c = &cases[i];
    char line[4096], tag[64], err[16384], want[256];
    for (int k = 0; k < 2; k++) {
      const char *which = k ? "new" : "old";
      cmdline(c, k ? c->new_flag : c->old_flag, which, line, sizeof line);
      snprintf(tag, sizeof tag, "r%zu_%s", i, which);
      int rc = run(tag, line);
      err_of(tag, err, sizeof err);
      if (rc != c->rc) fprintf(stderr, "  mbsr %s: exit %d, expected %d\n%s", line, rc, c->rc, err);
      MT_ASSERT_INT_EQ(rc, c->rc);
      snprintf(want, sizeof want, "mbsr %s: warning: %s is deprecated, use %s ", c->cmd, c->old_flag, c->new_flag);
      MT_ASSERT_INT_EQ(count_lines(err, want), k ? 0 : 1);
      MT_ASSERT_INT_EQ(count_lines(err, "deprecated"), k ? 0 : 1);
      if (c->err_has && !strstr(err, c->err_has)) fprintf(stderr, "  mbsr %s: stderr lacks '%s':\n%s", line, c->err_has, err);
      CU_ASSERT(!c->err_has || strstr(err, c->err_has) != NULL);
    }
    if (c->same) { /* both spellings wrote the same bytes */
      char a[256], b[256];
      const int exists_only = c->same[0] == '?';
      snprintf(a, sizeof a, c->same + exists_only, "old");
      snprintf(b, sizeof b, c->same + exists_only, "new");
      if (exists_only) MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && [ -s '%s' ] && [ -s '%s' ]", g_dir, a, b), 0);
      else MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && cmp '%s' '%s'", g_dir, a, b), 0);
    }
  }
  /* the old prep spellings took effect: the file records them */
  if (mbsr_test_sh("command -v h5dump > /dev/null") == 0) {
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && h5dump -a norm_percentiles pn_old.h5 | grep -q '5, 95'", g_dir), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && h5dump -a mask_threshold pm_old.h5 | grep -q '0.3'", g_dir), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && h5dump -g /pairs/100-50 -H pp_old.h5 > /dev/null", g_dir), 0);
  }
  /* --flag=value is renamed too; a value that looks like an old flag after "--" is left alone */
  MT_ASSERT_INT_EQ(run("eq", "upsample ph/phantom-00_af50um.nii.gz up_eq.nii --factor 2 --method=linear"), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && cmp up_eq.nii up_new.nii", g_dir), 0);
}

/* --quiet and --threads on every command that computes; --in/--out on the volume commands. */
static void test_common_options(void) {
  setup();
  static const char *threads[] = {"info", "convert", "downsample", "upsample", "normalize", "mask", "metrics", "decorr",
                                  "apply", "prep", "train", "phantom", "sweep", "report", "bench"};
  static const char *quiet[] = {"info",  "convert", "downsample", "upsample", "normalize", "mask", "metrics", "decorr", "stats",
                                "apply", "models",  "fetch",      "prep",     "train",     "phantom", "sweep", "report"};
  static const char *inout[] = {"convert", "downsample", "upsample", "normalize", "mask", "apply"};
  static const char *volume[] = {"info", "convert", "downsample", "upsample", "normalize", "mask", "apply", "decorr"};
  char line[512], tag[64], err[8192];
  for (size_t i = 0; i < sizeof threads / sizeof *threads; i++) {
    MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' %s --help | grep -q -- '--threads N'", mbsr_test_bin(), threads[i]), 0);
    snprintf(line, sizeof line, "%s --threads 0 x y", threads[i]);
    snprintf(tag, sizeof tag, "t_%s", threads[i]);
    MT_ASSERT_INT_EQ(run(tag, line), 2); /* parsed, and checked: a usage error naming --threads */
    CU_ASSERT(strstr(err_of(tag, err, sizeof err), "--threads") != NULL);
  }
  for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++)
    MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' %s --help | grep -q -- '--quiet'", mbsr_test_bin(), quiet[i]), 0);
  for (size_t i = 0; i < sizeof inout / sizeof *inout; i++)
    MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' %s --help | grep -q -- '--in IN --out OUT'", mbsr_test_bin(), inout[i]), 0);
  for (size_t i = 0; i < sizeof volume / sizeof *volume; i++) { /* --volume N on every command that reads a volume to process */
    MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' %s --help | grep -q -- '--volume N'", mbsr_test_bin(), volume[i]), 0);
    snprintf(line, sizeof line, "%s --volume x x y", volume[i]);
    snprintf(tag, sizeof tag, "v_%s", volume[i]);
    MT_ASSERT_INT_EQ(run(tag, line), 2); /* parsed, and checked */
    CU_ASSERT(strstr(err_of(tag, err, sizeof err), "--volume") != NULL);
  }
  /* --in/--out give what the positionals give */
  MT_ASSERT_INT_EQ(run("pos", "downsample ph/phantom-00_af50um.nii.gz ds_pos.nii --factor 2"), 0);
  MT_ASSERT_INT_EQ(run("opt", "downsample --factor 2 --out ds_opt.nii --in ph/phantom-00_af50um.nii.gz --threads 1"), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && cmp ds_pos.nii ds_opt.nii", g_dir), 0);
  MT_ASSERT_INT_EQ(run("bad", "downsample ph/phantom-00_af50um.nii.gz --factor 2"), 2); /* no OUT */
}

/* Log lines on stderr; machine output alone on stdout; --quiet leaves stderr empty. */
static void test_streams(void) {
  setup();
  char p[2600], out[8192], err[8192];
  MT_ASSERT_INT_EQ(run("log", "downsample ph/phantom-00_af50um.nii.gz ds_log.nii --factor 2"), 0);
  snprintf(p, sizeof p, "%s/log.out", g_dir);
  MT_ASSERT_INT_EQ(strlen(slurp(p, out, sizeof out)), 0);
  CU_ASSERT(strstr(err_of("log", err, sizeof err), "remainder cropped") != NULL);
  MT_ASSERT_INT_EQ(run("q", "downsample ph/phantom-00_af50um.nii.gz ds_q.nii --factor 2 --quiet"), 0);
  MT_ASSERT_INT_EQ(strlen(err_of("q", err, sizeof err)), 0);
  /* metrics: exactly one JSON line on stdout, nothing on stderr */
  MT_ASSERT_INT_EQ(run("m", "metrics ds_pos.nii ds_q.nii --json"), 0);
  snprintf(p, sizeof p, "%s/m.out", g_dir);
  slurp(p, out, sizeof out);
  CU_ASSERT(out[0] == '{' && strstr(out, "\"rmse\": 0.0") != NULL);
  MT_ASSERT_INT_EQ(count_lines(out, "\n"), 1);
  MT_ASSERT_INT_EQ(strlen(err_of("m", err, sizeof err)), 0);
  /* sweep --list: the table on stdout */
  const char *src = getenv("MBSR_SOURCE_DIR");
  char line[4096];
  snprintf(line, sizeof line, "sweep %s/experiments/table1.yaml --list --results res", src ? src : ".");
  MT_ASSERT_INT_EQ(run("list", line), 0);
  snprintf(p, sizeof p, "%s/list.out", g_dir);
  CU_ASSERT(strncmp(slurp(p, out, sizeof out), "cells: ", 7) == 0);
  /* `mbsr <mpi command> --help` works without starting MPI (and prints on stdout) */
  MT_ASSERT_INT_EQ(mbsr_test_sh("env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM '%s' train --help | grep -q -- '--patches'",
                                mbsr_test_bin()), 0);
}

int main(void) {
  static const mbsr_test_case tc[] = {{"table_covered", test_table_covered},
                                      {"old_spellings_warn_and_work", test_old_spellings_warn_and_work},
                                      {"common_options", test_common_options},
                                      {"streams", test_streams},
                                      {NULL, NULL}};
  return mbsr_test_main("cli_vocab", tc);
}
