/* Internal to src/nn: CPU features and kernel entry points shared between the conv3d_*.c files. */
#ifndef MBSR_NN_INTERNAL_H
#define MBSR_NN_INTERNAL_H

#include "mbsr/nn.h"

typedef struct {
  int avx2;       /* AVX2 + FMA, OS-enabled */
  int avx512;     /* AVX-512 F/BW/VL/DQ, OS-enabled */
  int avx512bf16; /* AVX512_BF16 (vdpbf16ps) */
} mbsr__cpu;
const mbsr__cpu *mbsr__cpu_get(void);

#endif
