/* Internal to src/nn: the 3-D Winograd convolution (winograd.c drives, winograd_avx512.c and
 * winograd_avx2.c instantiate winograd_tmpl.h). */
#ifndef MBSR_WINOGRAD_H
#define MBSR_WINOGRAD_H

#include <stddef.h>

#include "conv3d_kernels.h"
#include "mbsr/nn.h"

/* Tile variants F(MD x MH x MW, 3x3x3), the tile size per axis (D, H, W). */
typedef enum { MBSR__W222 = 0, MBSR__W223 = 1, MBSR__W233 = 2, MBSR__W333 = 3, MBSR__WV_N = 4 } mbsr__wvar;

/* Channel counts above this run the direct kernels (the model allows up to 4096). */
#define WZERO_MAX 4096

/* The transforms of one tile (winograd_tmpl.h); a tile's transformed block is [e][c], NE*C floats.
 * in_tile reads the tile at x in a zero-padded copy of the input (sz, sy floats between planes, rows). */
typedef struct {
  void (*in_tile)(float *V, const float *x, long sz, long sy, int C);
  void (*out_tile)(float *out, const float *M, int H, int W, int C, int nz, int ny, int nx, const float *bias,
                   const mbsr__epi *ep, long eoff);
  void (*g_tile)(float *Z, const float *g, int H, int W, int C, int nz, int ny, int nx, float *db);
} mbsr__wino_tf;

/* One vector ISA's kernels. */
typedef struct {
  const char *name;
  int vl;    /* floats per vector: channel counts must be multiples of it */
  int cbmax; /* vectors of output channels per register block: M may overwrite V when cout <= vl*cbmax */
  mbsr__wino_tf tf[MBSR__WV_N];
  void (*gemm_fwd)(float *M, long mt, const float *V, long vt, const float *U, int ne, int nt, int cin, int cout,
                   int halves);
  void (*gemm_dw)(float *P, const float *V, long vt, const float *Z, long zt, int ne, int nt, int cin, int cout);
} mbsr__wino_isa;

extern const mbsr__wino_isa mbsr__wino_avx512;
extern const mbsr__wino_isa mbsr__wino_avx2;

/* The tile variant pass `pass` (0 forward, 1 input gradient, 2 weight gradient) of s runs with this ISA
 * (NULL: none), or -1 for the direct kernels. Depends only on s, the ISA, MBSR_CONV_ALGO (or
 * mbsr__conv3d_force_algo) and, under auto, the tuning file of this CPU model (tune.c): never on timing
 * done in this run, so every process and rank that reads the same file picks the same. */
int mbsr__wino_pick(const mbsr_conv3d_dims *s, int pass, const mbsr__wino_isa *isa);
/* Whether the direct kernels run pass `pass` of s with the narrow blocking (mbsr__conv_row.narrow):
 * MBSR_CONV_ALGO=direct-narrow, or under auto the tuning file's choice for this CPU (isa: the family's
 * Winograd table, for its name). */
int mbsr__conv_narrow(const mbsr_conv3d_dims *s, int pass, const mbsr__wino_isa *isa);
/* Workspace floats of the Winograd forward (any variant, any ISA of this CPU, any thread count) and of
 * the Winograd backward (input and weight gradient). */
size_t mbsr__wino_forward_ws(const mbsr_conv3d_dims *s);
size_t mbsr__wino_backward_ws(const mbsr_conv3d_dims *s);
/* out (N,D,H,W,COUT) = epilogue(conv(inp, weight)): ep's init/res/mask/relu as in conv3d_kernels.h. */
void mbsr__wino_forward(float *out, const float *inp, const float *weight, const float *bias, const mbsr__epi *ep,
                        const mbsr_conv3d_dims *s, int var, const mbsr__wino_isa *isa, float *ws);
/* The input gradient (var_dx >= 0; dinp = mask(init + conv^T dout) per dx_ep) and the weight and bias
 * gradients (var_dw >= 0; +=) of a stride-1 conv; a part whose variant is < 0 is left alone. */
void mbsr__wino_backward(float *dinp, const mbsr__epi *dx_ep, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const mbsr_conv3d_dims *s, int var_dx, int var_dw,
                         const mbsr__wino_isa *isa, float *ws);
/* Tests and benchmarks: "auto", "direct", "winograd", "wino222", ... as MBSR_CONV_ALGO; -1 for an unknown
 * name. Workspaces are sized for the setting at sizing time: size them after forcing. */
int mbsr__conv3d_force_algo(const char *name);
/* The raw setting (for saving and restoring around a forced measurement, src/nn/tune.c). */
int mbsr__conv3d_algo_setting(void);
void mbsr__conv3d_algo_restore(int setting);
/* The measured choice of tune.c for a shape and pass under auto: an mbsr_conv_algo, or -3 when there is
 * no entry (the fixed rule decides). */
int mbsr__tune_lookup(const mbsr_conv3d_dims *s, int pass, const char *isa);

#endif
