/* Status agreement across ranks before a collective (STYLE: "agree on success across ranks"),
 * so that a failure on one rank ends every rank with a message naming it instead of a hang. */
#include <limits.h>
#include <string.h>

#include "mbsr/data.h"

int mbsr_mpi_agree(MPI_Comm comm, int rc) {
  int rank, first = INT_MAX;
  MPI_Comm_rank(comm, &rank);
  int mine = rc ? rank : INT_MAX;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
    return mbsr_error(MBSR_EMPI, "MPI_Allreduce (status agreement) failed");
  if (first == INT_MAX) return MBSR_OK;
  /* The lowest failing rank tells everybody what went wrong (and its code). */
  struct {
    int code;
    char msg[1000];
  } b;
  memset(&b, 0, sizeof b);
  if (rank == first) {
    b.code = rc;
    snprintf(b.msg, sizeof b.msg, "%s", mbsr_last_error()[0] ? mbsr_last_error() : mbsr_strerror(rc));
  }
  if (MPI_Bcast(&b, (int)sizeof b, MPI_BYTE, first, comm) != MPI_SUCCESS)
    return mbsr_error(MBSR_EMPI, "rank %d failed; MPI_Bcast of its message failed too", first);
  int code = rc ? rc : MBSR_EPEER;
  /* Do not stack "rank R:" prefixes when an agreement is nested. */
  if (!strncmp(b.msg, "rank ", 5)) return mbsr_error(code, "%s", b.msg);
  return mbsr_error(code, "rank %d: %s", first, b.msg);
}
