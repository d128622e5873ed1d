/* TEMPORARY during parallel development: a command whose cmd_<name>.c is not written yet
 * reports so. Deleted before release (every command has its file). */
#include "mbsr/cli.h"
#define X(name, mpi, help)                                                   \
  __attribute__((weak)) int mbsr_cmd_##name(int argc, char **argv) {         \
    (void)argc; (void)argv;                                                  \
    mbsr_error(MBSR_EUNSUPPORTED, "command '%s' is not built yet", #name);   \
    return mbsr_cli_fail(#name);                                             \
  }
MBSR_COMMANDS(X)
#undef X
