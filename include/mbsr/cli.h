/* mbsr command line: one file per subcommand in src/cli/cmd_<name>.c defining
 * int mbsr_cmd_<name>(int argc, char **argv)   (argv[0] is the subcommand name).
 * Commands return the process exit status; they print errors through mbsr_cli_fail(). */
#ifndef MBSR_CLI_H
#define MBSR_CLI_H

#include "mbsr/core.h"
#include "mbsr/volume.h"

#define MBSR_COMMANDS(X)                                                                  \
  X(info, 0, "print dims, voxel size, affine, type and value range of a volume")         \
  X(convert, 0, "convert a volume (NIfTI, NRRD, TIFF stack) to NIfTI")                   \
  X(downsample, 0, "block-average down-sampling by an integer factor")                   \
  X(upsample, 0, "Keys cubic / B-spline / linear up-sampling onto a grid")               \
  X(normalize, 0, "intensity normalisation to [0,1]")                                     \
  X(mask, 0, "brain mask by threshold + hole filling, or from labels")                   \
  X(metrics, 0, "RMSE, PSNR, 3-D SSIM of TEST against REF (JSON)")                       \
  X(decorr, 0, "effective resolution by decorrelation analysis (JSON)")                  \
  X(stats, 0, "paired t-test, Welch ANOVA, Pearson correlation on CSV columns")          \
  X(bench, 1, "time the networks (and the PyTorch peer), or MPI scaling")                \
  X(apply, 0, "super-resolve a volume with a shipped model or a trained checkpoint")      \
  X(models, 0, "list the shipped models (name, pair, training data, cross-validated RMSE)") \
  X(fetch, 1, "download AMBCA volumes (MPI: ranks take items round-robin)")              \
  X(prep, 1, "volumes -> LR/HR patch pairs in one parallel HDF5 file (MPI)")             \
  X(train, 1, "data-parallel training with a gradient all-reduce (MPI)")                 \
  X(phantom, 0, "generate the synthetic AF-like mouse-brain cohort")                     \
  X(sweep, 1, "run the cells of an experiment (train, apply, evaluate)")                 \
  X(report, 0, "aggregate an experiment: statistics, Table 1, figures, README")

#define X(name, mpi, help) int mbsr_cmd_##name(int argc, char **argv);
MBSR_COMMANDS(X)
#undef X

/* ---- one vocabulary (docs/user/cli.md) ----
 * Flags renamed for one vocabulary keep their old spelling for one release: main() rewrites an old
 * spelling in argv to the new one before the command parses it, with a one-line warning on stderr
 * (rank 0) naming the new flag; the commands' parsers know only the new spellings. */
typedef struct {
  const char *cmd, *old_flag, *new_flag;
} mbsr_cli_rename;
/* The table (terminated by a row of NULLs). */
const mbsr_cli_rename *mbsr_cli_renames(void);
/* Rewrite argv[1..argc-1] of command `cmd` (argv[0] = the command) in place, as described above;
 * stops at "--". Returns 0, or MBSR_ENOMEM (a "--flag=value" rewrite allocates). */
int mbsr_cli_rewrite_renamed(const char *cmd, int argc, char **argv);

/* Options every command that computes shares: --quiet (no info or progress lines on stderr;
 * warnings and errors stay) and --threads N (OpenMP threads; the default is OMP_NUM_THREADS or
 * every core). Put MBSR_CLI_COMMON_OPTS in a getopt_long table and hand the returned codes to
 * mbsr_cli_common(), which returns 0 or the usage-error exit status 2. */
enum { MBSR_CLI_OPT_QUIET = 0x1000, MBSR_CLI_OPT_THREADS, MBSR_CLI_OPT_JSON, MBSR_CLI_OPT_VOLUME };
#define MBSR_CLI_COMMON_OPTS                                                 \
  {"quiet", no_argument, 0, MBSR_CLI_OPT_QUIET}, {"threads", required_argument, 0, MBSR_CLI_OPT_THREADS}
int mbsr_cli_common(const char *cmd, int opt, const char *arg);
/* The threads given by --threads (0 when not given). */
int mbsr_cli_threads(void);
/* --volume N (0-based) of the commands that read a volume to process: which 3-D volume of a 4-D
 * file (without it, a file with several volumes is refused; see mbsr_read_opts). Put
 * MBSR_CLI_VOLUME_OPT in the getopt_long table; mbsr_cli_common parses it; mbsr_cli_volume copies
 * it into ro (which it returns). */
#define MBSR_CLI_VOLUME_OPT {"volume", required_argument, 0, MBSR_CLI_OPT_VOLUME}
mbsr_read_opts *mbsr_cli_volume(mbsr_read_opts *ro);

/* Numbers of option values: the whole string must parse and lie in [lo, hi]; otherwise a usage
 * error "mbsr <cmd>: <flag> wants ..., got '<s>'" is printed and 2 returned (else 0). */
int mbsr_cli_long(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out);
int mbsr_cli_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out);
int mbsr_cli_double(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
/* "LO,HI" percentiles with 0 <= LO < HI <= 100. */
int mbsr_cli_percentiles(const char *cmd, const char *flag, const char *s, double *lo, double *hi);

/* IN and OUT of a volume command: positional IN OUT, or --in IN / --out OUT (either, mixed).
 * *in and *out hold what the options gave (NULL if not); the positionals fill the rest. Returns 0
 * or prints a usage error and returns 2. */
int mbsr_cli_in_out(const char *cmd, int argc, char **argv, int optind_, const char **in, const char **out);

/* Print "mbsr <cmd>: <last error>" (rank-aware) and return the exit status 1. */
int mbsr_cli_fail(const char *cmd);
/* Print a usage error "mbsr <cmd>: <msg>" + "see: mbsr <cmd> --help"; returns exit status 2. */
int mbsr_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* MPI for commands that use it (initialised by main for commands flagged mpi=1). */
int mbsr_cli_mpi_active(void);
/* Parse "2" or "2,2,1" into f[3]; returns 0 or MBSR_EINVAL. */
int mbsr_cli_parse_int3(const char *s, int f[3]);
int mbsr_cli_parse_double3(const char *s, double v[3]);

#endif
