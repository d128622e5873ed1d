/* mbsr: the command-line entry point. Dispatches to src/cli/cmd_<name>.c. */
#include <mpi.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_sidecar.h"
#include "mbsr/cli.h"

static int g_mpi = 0;

int mbsr_cli_mpi_active(void) { return g_mpi; }

/* Under MPI every rank returns the same agreed error (mbsr_mpi_agree: "rank R: <R's message>"), so
 * rank 0 prints it once; without MPI the one process prints it. */
int mbsr_cli_fail(const char *cmd) {
  if (!mbsr_cli_mpi_active() || mbsr_log_rank() == 0)
    mbsr_errmsg("%s: %s", cmd, mbsr_last_error()[0] ? mbsr_last_error() : "failed");
  return 1;
}

int mbsr_cli_usage_error(const char *cmd, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (mbsr_log_rank() == 0) fprintf(stderr, "mbsr %s: %s\nsee: mbsr %s --help\n", cmd, buf, cmd);
  return 2;
}

int mbsr_cli_parse_int3(const char *s, int f[3]) {
  char *end;
  for (int a = 0; a < 3; a++) {
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 1000000) return mbsr_error(MBSR_EINVAL, "bad integer list '%s'", s);
    f[a] = (int)v;
    if (*end == 0) {
      if (a == 0) f[1] = f[2] = f[0];
      else if (a != 2) return mbsr_error(MBSR_EINVAL, "'%s': give 1 or 3 values", s);
      return MBSR_OK;
    }
    if (*end != ',' && *end != 'x') return mbsr_error(MBSR_EINVAL, "bad integer list '%s'", s);
    s = end + 1;
  }
  return mbsr_error(MBSR_EINVAL, "'%s': give 1 or 3 values", s);
}

int mbsr_cli_parse_double3(const char *s, double v[3]) {
  char *end;
  for (int a = 0; a < 3; a++) {
    double x = strtod(s, &end);
    if (end == s || !(x > 0) || !isfinite(x)) return mbsr_error(MBSR_EINVAL, "bad number list '%s' (finite numbers > 0)", s);
    v[a] = x;
    if (*end == 0) {
      if (a == 0) v[1] = v[2] = v[0];
      else if (a != 2) return mbsr_error(MBSR_EINVAL, "'%s': give 1 or 3 values", s);
      return MBSR_OK;
    }
    if (*end != ',' && *end != 'x') return mbsr_error(MBSR_EINVAL, "bad number list '%s'", s);
    s = end + 1;
  }
  return mbsr_error(MBSR_EINVAL, "'%s': give 1 or 3 values", s);
}

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  int mpi;
  const char *help;
} command;

static const command commands[] = {
#define X(name, mpi, help) {#name, mbsr_cmd_##name, mpi, help},
    MBSR_COMMANDS(X)
#undef X
};

static void usage(FILE *f) {
  fprintf(f, "mbsr %s: 3-D super-resolution of mouse brain MRI (Liang & Zhang 2023, at cluster scale)\n\n"
             "usage: mbsr <command> [options]   (mbsr <command> --help for each)\n"
             "       mbsr --version | --renamed   (--renamed: the flags renamed for one vocabulary, as TSV\n"
             "                                     command, old, new; an old spelling still works, with a warning)\n"
             "\ncommands:\n",
          MBSR_VERSION);
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-11s %s%s\n", commands[i].name, commands[i].help, commands[i].mpi ? " [MPI]" : "");
}

/* `mbsr <cmd> --help` prints the usage without starting MPI (a login node, help2man, completion). */
static int asks_help(int argc, char **argv) {
  for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("mbsr %s\n", MBSR_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "--renamed")) {
    for (const mbsr_cli_rename *r = mbsr_cli_renames(); r->cmd; r++) printf("%s\t%s\t%s\n", r->cmd, r->old_flag, r->new_flag);
    return 0;
  }
  mbsr__cli_save_cmdline(argc, argv); /* as typed: the sidecars record it */
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    if (strcmp(argv[1], commands[i].name)) continue;
    int rc;
    if (commands[i].mpi && !asks_help(argc, argv)) {
      int provided;
      if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "mbsr %s: MPI_Init failed\n", argv[1]);
        return 1;
      }
      g_mpi = 1;
      int rank, size;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      MPI_Comm_size(MPI_COMM_WORLD, &size);
      mbsr_log_set_rank(rank, size);
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
      rc = mbsr_cli_rewrite_renamed(commands[i].name, argc - 1, argv + 1) ? mbsr_cli_fail(commands[i].name)
                                                                         : commands[i].fn(argc - 1, argv + 1);
      /* A rank that failed alone must not leave the others waiting in a collective:
       * the commands agree on status before collectives; here a last agreement decides
       * between a clean finalize and an abort. */
      int worst = rc;
      if (MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
      MPI_Finalize();
      return worst;
    }
    if (mbsr_cli_rewrite_renamed(commands[i].name, argc - 1, argv + 1)) return mbsr_cli_fail(commands[i].name);
    return commands[i].fn(argc - 1, argv + 1);
  }
  fprintf(stderr, "mbsr: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
