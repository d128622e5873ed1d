/* The tile plans `mbsr apply` would use (mbsr_apply_plan_for) for the paper's ResNet (64 channels x 10
 * blocks, global residual) on a volume of NI x NJ x NK voxels, for batches 1 and 8 and a range of --max-mb
 * budgets: tile edge, tile count, bytes the inference network allocates, and voxels computed per output
 * voxel (the exact tiling recomputes a 2R = 44-voxel overlap). Nothing is run; see apply_mem.sh for
 * measurements. Build against a build tree B (e.g. build):
 *   gcc -O1 -fopenmp experiments/bench/apply_plan.c -Iinclude -IB/generated -LB -Wl,--start-group -lmbsr \
 *     -lmbsr_model -lmbsr_nn -lmbsr_image -lmbsr_io -lmbsr_core -Wl,--end-group -lgsl -lgslcblas -lz -lpng \
 *     -ltiff -lnifti2 -lznz -lteem -lblis -lfftw3f -lm -o /tmp/apply_plan
 *   /tmp/apply_plan [NI NJ NK]      (default 264 160 228: the Allen template at 100 um up-sampled x2) */
#include <stdio.h>
#include <stdlib.h>

#include "mbsr/model.h"

int main(int argc, char **argv) {
  int64_t n[3] = {264, 160, 228};
  if (argc == 4)
    for (int a = 0; a < 3; a++) n[a] = atoll(argv[a + 1]);
  mbsr_model_config c;
  mbsr_model_config_default(&c, MBSR_ARCH_RESNET);
  c.global_residual = 1;
  mbsr_model *m;
  if (mbsr_model_create(&c, 1, 21, 21, 21, &m)) return 1;
  const int batches[] = {1, 8};
  const double mbs[] = {512, 900, 1024, 2048, 4096, 8192, 16384};
  printf("| batch | --max-mb | tile edge | tiles | MiB allocated | voxels computed / output |\n|---:|---:|---:|---:|---:|---:|\n");
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < (int)(sizeof mbs / sizeof *mbs); i++) {
      mbsr_apply_opts o;
      mbsr_apply_opts_default(&o);
      o.batch = batches[b];
      o.max_mb = mbs[i];
      mbsr_apply_plan p;
      if (mbsr_apply_plan_for(m, n, &o, &p)) {
        printf("| %d | %.0f | - | - | - | does not fit |\n", o.batch, o.max_mb);
        continue;
      }
      const double tiles = (double)p.count[0] * p.count[1] * p.count[2];
      printf("| %d | %.0f | %dx%dx%d | %dx%dx%d = %.0f | %.0f | %.2f |\n", o.batch, o.max_mb, p.tile[0], p.tile[1], p.tile[2],
             p.count[0], p.count[1], p.count[2], tiles, p.bytes / 1048576.0,
             tiles * p.tile[0] * p.tile[1] * p.tile[2] / ((double)n[0] * n[1] * n[2]));
    }
  mbsr_model_free(m);
  return 0;
}
