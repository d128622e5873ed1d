/* The orientation code of an affine (mbsr info): the nearest RAS letter of each voxel axis. */
#include <math.h>

#include "mbsr/volume.h"

void mbsr_orient_code(const double A[4][4], char code[4]) {
  static const char pos[] = "RAS", neg[] = "LPI";
  for (int a = 0; a < 3; a++) {
    int best = 0;
    for (int r = 1; r < 3; r++)
      if (fabs(A[r][a]) > fabs(A[best][a])) best = r;
    code[a] = A[best][a] >= 0 ? pos[best] : neg[best];
  }
  code[3] = 0;
}
