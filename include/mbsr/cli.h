/* mbsr command line: one file per subcommand in src/cli/cmd_<name>.c defining
 * int mbsr_cmd_<name>(int argc, char **argv)   (argv[0] is the subcommand name).
 * Commands return the process exit status; they print errors through mbsr_cli_fail(). */
#ifndef MBSR_CLI_H
#define MBSR_CLI_H

#include "mbsr/core.h"

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
