/* Prep a patch file unless it exists: the prep step shared by the AF groups and the MRI cells.
 * Concurrent array tasks serialise on OUT.lock (rank 0 holds it); the file is written atomically by
 * mbsr_prep_run, so an existing file is a finished one. */
#include <mpi.h>

#include "exp_internal.h"

int mbsr__prep_or_reuse(const mbsr_prep_config *pc, const char *manifest, const char *what) {
  char lk[2600];
  int rc = mbsr_pathf(lk, sizeof lk, "%s.lock", pc->out), fd = -1, exists = 0;
  if (!rc && mbsr__rank0()) {
    fd = mbsr__lock_file(lk);
    if (fd < 0) rc = fd;
    else exists = mbsr_file_exists(pc->out);
    if (!rc && !exists && manifest) rc = mbsr_write_text_atomic(pc->inputs, manifest);
  }
  MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
  rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  if (!rc && exists) {
    if (mbsr__rank0()) mbsr_info("sweep: reusing %s", pc->out);
  } else if (!rc) {
    if (mbsr__rank0() && what) mbsr_info("%s", what);
    mbsr_prep_summary sum;
    rc = mbsr_prep_run(pc, MPI_COMM_WORLD, &sum);
    if (!rc && sum.n_failed) rc = mbsr_error(MBSR_EINVAL, "prep: %d input(s) failed (see %s /failed)", sum.n_failed, pc->out);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  return mbsr_mpi_agree(MPI_COMM_WORLD, rc);
}
