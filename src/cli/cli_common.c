/* What every command shares: the renamed flags of the one CLI vocabulary (docs/user/cli.md) and
 * their deprecation warnings, --quiet, --threads and --volume, option-value parsing, IN OUT positionals. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"

/* One vocabulary: every row is a flag spelled differently before 0.3 (old) and now (new). */
static const mbsr_cli_rename renames[] = {
    {"upsample", "--method", "--interp"},
    {"normalize", "--percentiles", "--norm-percentiles"},
    {"prep", "--norm-pct", "--norm-percentiles"},
    {"mask", "--threshold", "--mask-threshold"},
    {"prep", "--mask-thr", "--mask-threshold"},
    {"prep", "--pairs", "--pair"},
    {"train", "--data", "--patches"},
    {"sweep", "--data", "--data-dir"},
    {"apply", "--patch", "--tile"},
    {"bench", "--prec", "--precision"},
    {"bench", "--model", "--arch"},
    {"bench", "--json", "--out"},
    {NULL, NULL, NULL}};

const mbsr_cli_rename *mbsr_cli_renames(void) { return renames; }

/* argv[i] is `flag` or `flag=...`: the length of flag, else 0. */
static size_t matches(const char *arg, const char *flag) {
  size_t l = strlen(flag);
  return !strncmp(arg, flag, l) && (arg[l] == 0 || arg[l] == '=') ? l : 0;
}

/* argv[i] = to + what followed `from` in it (its "=value"); the old string is left alone. */
static int respell(char **argv, int i, size_t from_len, const char *to) {
  const char *rest = argv[i] + from_len;
  if (!*rest) {
    argv[i] = (char *)to;
    return MBSR_OK;
  }
  size_t n = strlen(to) + strlen(rest) + 1;
  char *s = malloc(n); /* lives as long as the process: argv does */
  if (!s) return mbsr_error(MBSR_ENOMEM, "out of memory");
  snprintf(s, n, "%s%s", to, rest);
  argv[i] = s;
  return MBSR_OK;
}

int mbsr_cli_rewrite_renamed(const char *cmd, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (strncmp(argv[i], "--", 2)) continue;
    for (const mbsr_cli_rename *r = renames; r->cmd; r++) {
      if (strcmp(r->cmd, cmd)) continue;
      size_t l = matches(argv[i], r->old_flag);
      if (!l) continue;
      if (mbsr_log_rank() == 0)
        fprintf(stderr, "mbsr %s: warning: %s is deprecated, use %s (the old spelling goes in the next release)\n", cmd,
                r->old_flag, r->new_flag);
      if (respell(argv, i, l, r->new_flag)) return MBSR_ENOMEM;
      break;
    }
  }
  return MBSR_OK;
}

static int g_threads = 0;
static long long g_volume = -1; /* --volume N; -1: not given */

int mbsr_cli_threads(void) { return g_threads; }

mbsr_read_opts *mbsr_cli_volume(mbsr_read_opts *ro) {
  ro->volume_given = g_volume >= 0;
  ro->volume = g_volume >= 0 ? g_volume : 0;
  return ro;
}

int mbsr_cli_common(const char *cmd, int opt, const char *arg) {
  if (opt == MBSR_CLI_OPT_QUIET) {
    mbsr_log_set_quiet(1);
    return 0;
  }
  if (opt == MBSR_CLI_OPT_THREADS) {
    if (mbsr_cli_int(cmd, "--threads", arg, 1, 4096, &g_threads)) return 2;
    omp_set_num_threads(g_threads);
    return 0;
  }
  if (opt == MBSR_CLI_OPT_VOLUME) return mbsr_cli_long(cmd, "--volume", arg, 0, (long long)1 << 40, &g_volume) ? 2 : 0;
  return mbsr_cli_usage_error(cmd, "unknown option");
}

int mbsr_cli_long(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi)
    return mbsr_cli_usage_error(cmd, "%s wants an integer in %lld..%lld, got '%s'", flag, lo, hi, s);
  *out = v;
  return 0;
}

int mbsr_cli_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out) {
  long long v = 0;
  if (mbsr_cli_long(cmd, flag, s, lo, hi, &v)) return 2;
  *out = (int)v;
  return 0;
}

int mbsr_cli_double(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !isfinite(v) || v < lo || v > hi)
    return mbsr_cli_usage_error(cmd, "%s wants a number in [%g, %g], got '%s'", flag, lo, hi, s);
  *out = v;
  return 0;
}

int mbsr_cli_percentiles(const char *cmd, const char *flag, const char *s, double *lo, double *hi) {
  char *end;
  double a = strtod(s, &end), b = NAN;
  if (end != s && *end == ',') {
    const char *t = end + 1;
    b = strtod(t, &end);
    if (end == t) b = NAN;
  }
  if (*end || !(a >= 0 && b <= 100 && a < b))
    return mbsr_cli_usage_error(cmd, "%s wants LO,HI with 0 <= LO < HI <= 100, got '%s'", flag, s);
  *lo = a, *hi = b;
  return 0;
}

int mbsr_cli_in_out(const char *cmd, int argc, char **argv, int optind_, const char **in, const char **out) {
  if (!*in && optind_ < argc) *in = argv[optind_++];
  if (!*out && optind_ < argc) *out = argv[optind_++];
  if (optind_ < argc) return mbsr_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind_]);
  if (!*in || !*out) return mbsr_cli_usage_error(cmd, "give IN and OUT (positional, or --in IN --out OUT)");
  return 0;
}
