/* mbsr nn: layer kernels as forward/backward pairs (llm.c style), each with a naive reference twin.
 *
 * Layout: activations are channels-last (N, D, H, W, C), C innermost, kept so through the whole
 * network. Conv weights are [kd][kh][kw][cin][cout]; bias [cout].
 * Backward functions ACCUMULATE (+=) into every gradient they write (dinp, dweight, dbias);
 * a NULL gradient pointer means "not needed" (frozen layer, or the network input).
 * Kernels do no I/O and no allocation: workspaces are sized once and passed in. */
#ifndef MBSR_NN_H
#define MBSR_NN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MBSR_PREC_FP32 = 0, MBSR_PREC_BF16 = 2 } mbsr_precision;

typedef struct {
  int n, d, h, w;     /* input batch and spatial size */
  int cin, cout;
  int stride;         /* 1 or 2; padding 1 ("same" for stride 1, PyTorch padding=1 for stride 2) */
  int od, oh, ow;     /* output spatial size: (x - 1) / stride + 1 */
  mbsr_precision prec;
} mbsr_conv3d_dims;

void mbsr_conv3d_dims_init(mbsr_conv3d_dims *s, int n, int d, int h, int w, int cin, int cout, int stride);
/* Floats of workspace the fast kernels need for these dims with nthreads threads. */
size_t mbsr_conv3d_workspace_floats(const mbsr_conv3d_dims *s, int nthreads);
/* Floats of workspace the FORWARD calls alone need (mbsr_conv3d_forward, _forward_fused), for the
 * precision in s, any thread count and kernel family; <= mbsr_conv3d_workspace_floats. */
size_t mbsr_conv3d_forward_workspace_floats(const mbsr_conv3d_dims *s);

/* out (N,OD,OH,OW,COUT) = conv(inp (N,D,H,W,CIN), weight) + bias. Overwrites out. */
void mbsr_conv3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                         const mbsr_conv3d_dims *s, float *ws);
/* dinp += dL/dinp, dweight += dL/dW, dbias += dL/db (each may be NULL). */
void mbsr_conv3d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const mbsr_conv3d_dims *s, float *ws);
/* Fused forms (the plain calls above are these with NULL / 0), saving the element-wise passes around a
 * conv: out = relu?(conv(inp) + bias + residual), residual (N,OD,OH,OW,COUT) or NULL (may alias out). */
void mbsr_conv3d_forward_fused(float *out, const float *inp, const float *weight, const float *bias,
                               const float *residual, int relu, const mbsr_conv3d_dims *s, float *ws);
/* dinp = (dinp_base + dL/dinp) * (relu_out > 0): the input gradient is WRITTEN, starting from dinp_base
 * (NULL: zero, no memset needed; == dinp: accumulate like mbsr_conv3d_backward; another tensor, e.g. the
 * skip gradient of a residual block: no memcpy needed), then masked by relu_out (N,D,H,W,CIN), the output
 * of the ReLU that produced this conv's input (NULL: no mask). dweight and dbias accumulate as usual. */
void mbsr_conv3d_backward_fused(float *dinp, const float *dinp_base, const float *relu_out, float *dweight,
                                float *dbias, const float *dout, const float *inp, const float *weight,
                                const mbsr_conv3d_dims *s, float *ws);
/* Naive reference twins (no workspace). */
void mbsr_conv3d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                             const mbsr_conv3d_dims *s);
void mbsr_conv3d_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const mbsr_conv3d_dims *s);
/* The algorithm of one pass of a conv: the direct kernels, or Winograd F(MD x MH x MW, 3x3x3) (tile
 * sizes along D, H, W; src/nn/winograd.c). Winograd runs for stride-1 fp32 convs whose channel counts are
 * multiples of the vector width (16 with AVX-512, 8 with AVX2) on CPUs with AVX2 or AVX-512. Which
 * algorithm each pass uses (auto, the default): the one measured fastest on this CPU model for the
 * nearest shape in the tuning file (`mbsr bench --tune`, src/nn/tune.c), else a fixed rule per shape
 * (winograd.c); never timing done in the run itself, so every process and rank reading the same file
 * agrees. The direct kernels come in two blockings (register blocks of the widest output-channel block
 * and fewer positions, or half as many channels and twice the positions: which one keeps a CPU's FMA
 * units busier depends on its caches and load ports, so the tuning file records it per CPU model too).
 * MBSR_CONV_ALGO=direct keeps every conv direct (=direct-narrow: the narrow blocking);
 * =wino222|wino223|wino233|wino333 forces that
 * tile wherever Winograd applies; =winograd the rule without the tuning file. */
typedef enum {
  MBSR_CONV_DIRECT = 0,
  MBSR_CONV_WINO222 = 1,
  MBSR_CONV_WINO223 = 2,
  MBSR_CONV_WINO233 = 3,
  MBSR_CONV_WINO333 = 4,
  MBSR_CONV_DIRECT_NARROW = 5 /* the direct kernels with output-channel blocks of half the widest */
} mbsr_conv_algo;
#define MBSR_CONV_NALGO 6 /* the values of mbsr_conv_algo */
/* The algorithm pass `pass` (0 forward, 1 input gradient, 2 weight gradient) of a conv with dims s runs
 * now (CPU, s->prec, MBSR_CONV_KERNEL, MBSR_CONV_ALGO). */
mbsr_conv_algo mbsr_conv3d_algo(const mbsr_conv3d_dims *s, int pass);
const char *mbsr_conv_algo_name(mbsr_conv_algo a); /* "direct", "wino2x2x3", ... */
/* The buffers to time one conv of dims s (benchmarks, tuning): input, output, output gradient, weights
 * and bias filled with a fixed pseudo-random pattern in [0, 1), the gradients zero, and a workspace of
 * ws_floats (0: what s needs at the current thread count); ni, no, nw floats of input, output and
 * weights. mbsr_conv_bufs_free takes a zeroed or allocated struct. */
typedef struct {
  mbsr_conv3d_dims s;
  size_t ni, no, nw;
  float *x, *y, *g, *w, *b, *dx, *dw, *db, *ws;
} mbsr_conv_bufs;
int mbsr_conv_bufs_alloc(mbsr_conv_bufs *c, const mbsr_conv3d_dims *s, size_t ws_floats);
void mbsr_conv_bufs_free(mbsr_conv_bufs *c);
/* Measured choice (src/nn/tune.c): time every applicable algorithm of the forward, input gradient
 * (need_dx) and weight gradient passes of conv s (one warm-up, best of reps), ms[pass][algo] (NAN: not
 * applicable), best[pass] the fastest; it goes into this process's table (used at once by auto).
 * mbsr_conv_tune_save writes the table (path NULL: MBSR_TUNE_FILE, else $XDG_CACHE_HOME/mbsr/ or
 * ~/.cache/mbsr/conv-tune.tsv) atomically; mbsr_conv_tune_source: the file the table came from or went
 * to, NULL when auto uses the fixed rule only. */
int mbsr_conv_tune_shape(const mbsr_conv3d_dims *s, int need_dx, int reps, double ms[3][MBSR_CONV_NALGO], mbsr_conv_algo best[3]);
int mbsr_conv_tune_save(const char *path);
const char *mbsr_conv_tune_source(void);
/* Which kernel family the fast path uses on this CPU ("avx512-fp32-direct", "avx512bf16-direct", "portable", ...). */
const char *mbsr_conv3d_kernel_name(mbsr_precision p);
/* 1 if a kernel for precision p runs on this CPU (fp32: always; bf16: AVX512_BF16).
 * Layers too narrow to profit (cin < 8 or cout < 16) run fp32 even in bf16 mode; the weight gradient is
 * always fp32. */
int mbsr_conv3d_precision_available(mbsr_precision p);
int mbsr_cpu_has_avx512(void);
int mbsr_cpu_has_avx512bf16(void); /* AVX512_BF16 (vdpbf16ps) */
/* This CPU for benchmark records: the cpuid brand string, family/model/stepping and the L2 per core
 * (e.g. "AMD EPYC (family 0x1a model 0x2 stepping 1), L2 1024 KiB"). */
const char *mbsr_cpu_model(void);
/* FMA peak of this CPU measured now (GFLOP/s, fp32, nthreads threads; < 1: all), spending about
 * `seconds`, at the vector width of the conv kernel family in use (MBSR_CONV_KERNEL=avx2 on an AVX-512
 * CPU: the 256-bit peak); 0 if the CPU has neither AVX-512 nor AVX2+FMA. For benchmarks' "% of peak". */
double mbsr_cpu_fma_peak_gflops(int nthreads, double seconds);

/* ---- the other layers (src/nn/layers.c); n = number of elements. Backward ACCUMULATES. ---- */
typedef struct mbsr_rng mbsr_rng; /* from mbsr/core.h */
void mbsr_relu_forward(float *out, const float *inp, size_t n); /* out may alias inp */
/* dinp += dout * (out > 0), out = the forward output */
void mbsr_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
void mbsr_relu_backward_inplace(float *d, const float *out, size_t n); /* d *= (out > 0) */
void mbsr_lrelu_forward(float *out, const float *inp, size_t n, float slope);
void mbsr_lrelu_backward(float *dinp, const float *dout, const float *out, size_t n, float slope);
void mbsr_lrelu_backward_inplace(float *d, const float *out, size_t n, float slope);
void mbsr_residual_forward(float *out, const float *a, const float *b, size_t n); /* out = a + b */
void mbsr_residual_backward(float *da, float *db, const float *dout, size_t n);   /* da, db += dout */
/* Global average pooling: out (N,C) = mean over S positions of inp (N,S,C). */
void mbsr_gap_forward(float *out, const float *inp, int nb, size_t s, int c);
void mbsr_gap_backward(float *dinp, const float *dout, int nb, size_t s, int c);
/* Dense: out (N,COUT) = inp (N,CIN) @ weight (CIN,COUT) + bias. */
void mbsr_dense_forward(float *out, const float *inp, const float *weight, const float *bias, int nb, int cin,
                        int cout);
void mbsr_dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int nb, int cin, int cout);
void mbsr_sigmoid_forward(float *out, const float *inp, size_t n);
void mbsr_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
/* Losses return scale * sum over elements; backward adds d(loss)/d(pred). MSE 'mean' over V voxels
 * and a batch normalised by `norm`: scale = 1 / (V * norm). */
double mbsr_mse_forward(const float *pred, const float *target, size_t n, double scale);
void mbsr_mse_backward(float *dpred, const float *pred, const float *target, size_t n, double scale);
/* Binary cross-entropy on logits x with targets y in [0,1]: max(x,0) - x y + log(1 + exp(-|x|)). */
double mbsr_bce_logits_forward(const float *logit, const float *target, size_t n, double scale);
void mbsr_bce_logits_backward(float *dlogit, const float *logit, const float *target, size_t n, double scale);
/* PyTorch Adam on n values; t = the step number after increment (1, 2, ...). */
void mbsr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float eps, int64_t t);
/* Glorot (Xavier) uniform U(-a,a), a = sqrt(6/(fan_in+fan_out)); conv fans are 27*cin, 27*cout. */
void mbsr_glorot_uniform(float *w, size_t n, double fan_in, double fan_out, mbsr_rng *rng);
int mbsr_all_finite(const float *x, size_t n); /* 1 if no NaN/Inf */

#endif
