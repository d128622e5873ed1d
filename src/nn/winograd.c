/* 3-D Winograd convolution (3x3x3, stride 1, padding 1): plans, workspace sizing, the weight transforms
 * (float64), and the OpenMP drivers of the forward-shaped pass (forward; input gradient with the
 * flipped weights) and of the weight gradient. The vector kernels are in winograd_tmpl.h; what is
 * computed, and why, is described there. conv3d.c decides per pass whether a conv runs here
 * (mbsr__wino_pick) and sizes the workspace for it.
 *
 * Tiles: F(MD x MH x MW, 3^3) over the output volume, tiles per axis ceil(D / MD) etc.; tiles are
 * numbered (n, tz, ty, tx) and processed in blocks of T consecutive tiles: every block is transformed,
 * multiplied and inverse-transformed by one thread in its own slot of the workspace (the transformed
 * data of a block stays in that core's L2: T is chosen from the L2 size, see tiles_per_block).
 *
 * Workspace (floats), forward-shaped pass:
 *   [U]      NE*CIN*COUT                  transformed weights [e][ci][co] (input gradient: [e][co][ci])
 *   [xpad]   N*(D+4)*(H+4)*(W+4)*CIN      zero-padded copy of the input (every tile reads it unchecked)
 *   [slots]  S * T*(NE*CIN + NE*COUT)     per-thread V (and M, unless M overwrites V), tile-major
 * backward: [U'] [gpad: dout padded] [xpad] [slots] [partials: G * (NE*CIN*COUT + COUT)]: the weight
 * gradient of G fixed groups of consecutive tiles, each summed block by block in tile order into its own
 * partial and the partials added in group order, so dW is the same from run to run whatever thread ran
 * which group (the weight gradient's T depends on the shape and the L2 size, not on the thread count).
 * S = omp_get_num_procs() (the slots, fixed for the process: the forward workspace does not depend on
 * the thread count; a call uses at most S threads); G = max(8, min(S, 64)), fewer for small layers.
 *
 * Accuracy (float32, max |diff| / max |exact|, paper shapes, inputs in [0, 1] and in [-1, 1];
 * tests/nn/test_winograd.c): F(2,3) per axis ~5e-7, F(3,3) on one axis ~1e-6 to 3e-6, on two ~2e-6 to
 * 6e-6, on all three 3e-6 to 6e-6. Most of the error is the float32 sum in the GEMMs (the transforms
 * make its terms large against the result), so the sums are split where it pays: the weight gradient
 * sums each block of tiles from zero before adding it to its partial (3x less error than one long
 * running sum), and the F(3x3x3) forward-shaped passes sum the two halves of the input channels apart
 * (the input gradient's error 9e-6 -> 6e-6). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn_internal.h"
#include "winograd.h"

static const int wv_m[MBSR__WV_N][3] = {{2, 2, 2}, {2, 2, 3}, {2, 3, 3}, {3, 3, 3}};

/* G (n x 3) of F(2,3) and F(3,3) (Lavin and Gray 2016; F(3,3): points 0, 1, -1, 2, inf). */
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G3[5][3] = {{0.5, 0, 0},
                                {-0.5, -0.5, -0.5},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 6, 1.0 / 3, 2.0 / 3},
                                {0, 0, 1}};
static double gm(int m, int e, int k) { return m == 2 ? G2[e][k] : G3[e][k]; }
/* G of the tile size along D, H, W (rows past n are zero). */
static void gmats(const int m[3], double gd[5][3], double gh[5][3], double gw[5][3]) {
  for (int e = 0; e < 5; e++)
    for (int k = 0; k < 3; k++) {
      gd[e][k] = e < m[0] + 2 ? gm(m[0], e, k) : 0.0;
      gh[e][k] = e < m[1] + 2 ? gm(m[1], e, k) : 0.0;
      gw[e][k] = e < m[2] + 2 ? gm(m[2], e, k) : 0.0;
    }
}

static size_t r16(size_t x) { return (x + 15) & ~(size_t)15; }

/* ---- plans ---- */
typedef struct {
  const mbsr__wino_isa *isa;
  const mbsr__wino_tf *tf;
  int m[3], n[3], ne;
  int D, H, W, td, th, tw;
  int Dp, Hp, Wp; /* the padded copy: tiles * m + 2 per axis */
  long ntiles;
  int cin, cout;  /* of this pass (input gradient: cin = the conv's COUT) */
  int T, alias;
  long vs, ms;    /* floats between the tile blocks of V and of M (or Z): NE*C plus one cache line, so
                   * that blocks 4 KiB apart do not all fall in the same L1 sets */
  size_t slot;    /* floats of one slot */
} wplan;

static int g_slots = 0;
static int wslots(void) {
  int s = __atomic_load_n(&g_slots, __ATOMIC_RELAXED);
  if (!s) {
    s = omp_get_num_procs();
    if (s < 1) s = 1;
    if (s > 1024) s = 1024;
    __atomic_store_n(&g_slots, s, __ATOMIC_RELAXED);
  }
  return s;
}
/* Weight-gradient groups: max(8, min(S, 64)), fewer for a layer of few tiles (at least 64 tiles a group:
 * each group's partial is zeroed and summed whole). Fixed by the shape and the machine, not by the
 * thread count of a call. */
static int wgroups_max(void) {
  int s = wslots();
  return s < 8 ? 8 : s > 64 ? 64 : s;
}
static int wgroups(long ntiles) {
  long g = ntiles / 64;
  if (g < 1) g = 1;
  return g < wgroups_max() ? (int)g : wgroups_max();
}

/* Bytes of L2 per core (the OS's word, else 1 MiB); MBSR_WINO_L2KB overrides (for experiments). */
static long g_l2 = 0;
static long l2_bytes(void) {
  long b = __atomic_load_n(&g_l2, __ATOMIC_RELAXED);
  if (!b) {
    const char *e = getenv("MBSR_WINO_L2KB");
    if (e && atol(e) > 0) b = atol(e) * 1024;
    else {
#ifdef _SC_LEVEL2_CACHE_SIZE
      b = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
      if (b < 64 * 1024) b = 1024 * 1024;
    }
    __atomic_store_n(&g_l2, b, __ATOMIC_RELAXED);
  }
  return b;
}

/* Tiles per block: the forward-shaped pass keeps its block's transformed data (per_tile floats a tile)
 * in about half of L2; the weight gradient takes blocks four times as large (measured: its GEMM pays a
 * fixed cost per element and block, loading and storing the accumulators, and profits more from long
 * blocks than from an L2-resident block). At least 6 tiles (one register block of rows), at most 96.
 * Changes no result. */
static int tiles_per_block(size_t per_tile, int dw) {
  long t = (dw ? 2 * l2_bytes() : l2_bytes() / 2) / (long)(per_tile * sizeof(float));
  if (t > 96) t = 96;
  if (t >= 12) t -= t % 6;
  if (t < 6) t = 6;
  return (int)t;
}

static void plan(wplan *p, const mbsr__wino_isa *isa, int var, int n, int D, int H, int W, int cin, int cout,
                 int dw) {
  /* (no more tiles per block than the layer has) */
  p->isa = isa;
  p->tf = &isa->tf[var];
  for (int a = 0; a < 3; a++) p->m[a] = wv_m[var][a], p->n[a] = wv_m[var][a] + 2;
  p->ne = p->n[0] * p->n[1] * p->n[2];
  p->D = D, p->H = H, p->W = W;
  p->td = (D + p->m[0] - 1) / p->m[0];
  p->th = (H + p->m[1] - 1) / p->m[1];
  p->tw = (W + p->m[2] - 1) / p->m[2];
  p->Dp = p->td * p->m[0] + 2, p->Hp = p->th * p->m[1] + 2, p->Wp = p->tw * p->m[2] + 2;
  p->ntiles = (long)n * p->td * p->th * p->tw;
  p->cin = cin, p->cout = cout;
  p->alias = !dw && cin == cout && cout <= isa->vl * isa->cbmax;
  p->vs = (long)p->ne * cin + 16;
  p->ms = p->alias ? p->vs : (long)p->ne * cout + 16;
  p->T = tiles_per_block((size_t)p->vs + (p->alias ? 0 : (size_t)p->ms), dw);
  if (p->T > p->ntiles) p->T = (int)p->ntiles;
  p->slot = r16((size_t)p->T * (p->vs + (p->alias ? 0 : p->ms)));
}

/* The largest slot any variant and ISA this CPU has may need for a pass of cin -> cout of s's size. */
static size_t slot_max(const mbsr_conv3d_dims *s, int cin, int cout, int dw) {
  const mbsr__wino_isa *isas[2] = {mbsr__cpu_get()->avx512 ? &mbsr__wino_avx512 : NULL,
                                   mbsr__cpu_get()->avx2 ? &mbsr__wino_avx2 : NULL};
  size_t mx = 0;
  for (int i = 0; i < 2; i++)
    for (int v = 0; v < MBSR__WV_N && isas[i]; v++) {
      wplan p;
      plan(&p, isas[i], v, s->n, s->d, s->h, s->w, cin, cout, dw);
      if (p.slot > mx) mx = p.slot;
    }
  return mx;
}

enum { NE_MAX = 5 * 5 * 5 };

/* A padded copy for any variant: tiles * m + 2 <= size + 4 per axis. */
static size_t pad_floats(const mbsr_conv3d_dims *s, int c) {
  return r16((size_t)s->n * (s->d + 4) * (s->h + 4) * (s->w + 4) * c);
}
static size_t u_floats(const mbsr_conv3d_dims *s) { return r16((size_t)NE_MAX * s->cin * s->cout); }
static size_t partial_floats(int cin, int cout) { return r16((size_t)NE_MAX * cin * cout + cout); }
static size_t bwd_slot(const mbsr_conv3d_dims *s) {
  size_t a = slot_max(s, s->cout, s->cin, 0), b = slot_max(s, s->cin, s->cout, 1);
  return a > b ? a : b;
}

size_t mbsr__wino_forward_ws(const mbsr_conv3d_dims *s) {
  return u_floats(s) + pad_floats(s, s->cin) + (size_t)wslots() * slot_max(s, s->cin, s->cout, 0);
}

size_t mbsr__wino_backward_ws(const mbsr_conv3d_dims *s) {
  return u_floats(s) + pad_floats(s, s->cout) + pad_floats(s, s->cin) + (size_t)wslots() * bwd_slot(s) +
         (size_t)wgroups_max() * partial_floats(s->cin, s->cout);
}

/* ---- weight transforms (float64) ---- */

/* U[e][i][o] = (G g G^T)[e] of the 3x3x3 filter g from input channel i to output channel o of the pass
 * (i < cin, o < cout of the plan), in float64. flip = 0: g[k] = w[k][i][o], w (27, cin, cout); flip = 1
 * (the input gradient): g[k] = w[26-k][o][i], w (27, cout, cin) (the conv's own weights). Runs over the
 * channel that is contiguous in w, WB at a time. Worksharing loop: call inside a parallel region. */
#define WB 16
static void transform_weights(float *U, const float *w, int flip, const wplan *p) {
  const int ci_n = p->cin, co_n = p->cout;
  const int A = flip ? co_n : ci_n, B = flip ? ci_n : co_n; /* w is (27, A, B) */
  const int *m = p->m, *n = p->n;
  double gd[5][3], gh[5][3], gw[5][3];
  gmats(m, gd, gh, gw);
  const int nbb = (B + WB - 1) / WB;
#pragma omp for schedule(static) nowait
  for (long ab = 0; ab < (long)A * nbb; ab++) {
    const int a = (int)(ab / nbb), b0 = (int)(ab % nbb) * WB, nb = B - b0 < WB ? B - b0 : WB;
    double g[27][WB], t1[3][3][5][WB], t2[3][5][5][WB];
    for (int k = 0; k < 27; k++) {
      const float *src = w + ((size_t)(flip ? 26 - k : k) * A + a) * B + b0;
      for (int j = 0; j < WB; j++) g[k][j] = j < nb ? src[j] : 0.0;
    }
    for (int kd = 0; kd < 3; kd++)
      for (int kh = 0; kh < 3; kh++)
        for (int ew = 0; ew < n[2]; ew++)
          for (int j = 0; j < WB; j++)
            t1[kd][kh][ew][j] = gw[ew][0] * g[(kd * 3 + kh) * 3][j] + gw[ew][1] * g[(kd * 3 + kh) * 3 + 1][j] +
                                gw[ew][2] * g[(kd * 3 + kh) * 3 + 2][j];
    for (int kd = 0; kd < 3; kd++)
      for (int eh = 0; eh < n[1]; eh++)
        for (int ew = 0; ew < n[2]; ew++)
          for (int j = 0; j < WB; j++)
            t2[kd][eh][ew][j] = gh[eh][0] * t1[kd][0][ew][j] + gh[eh][1] * t1[kd][1][ew][j] + gh[eh][2] * t1[kd][2][ew][j];
    for (int ed = 0; ed < n[0]; ed++)
      for (int eh = 0; eh < n[1]; eh++)
        for (int ew = 0; ew < n[2]; ew++) {
          const int e = (ed * n[1] + eh) * n[2] + ew;
          double v[WB];
          for (int j = 0; j < WB; j++)
            v[j] = gd[ed][0] * t2[0][eh][ew][j] + gd[ed][1] * t2[1][eh][ew][j] + gd[ed][2] * t2[2][eh][ew][j];
          if (!flip) {
            float *dst = U + ((size_t)e * ci_n + a) * co_n + b0; /* i = a, o = b0 + j */
            for (int j = 0; j < nb; j++) dst[j] = (float)v[j];
          } else {
            float *dst = U + ((size_t)e * ci_n + b0) * co_n + a; /* i = b0 + j, o = a */
            for (int j = 0; j < nb; j++) dst[(size_t)j * co_n] = (float)v[j];
          }
        }
  }
}
#undef WB

/* ---- blocks ---- */

static void tile_coords(const wplan *p, long t, int *nn, int *z0, int *y0, int *x0) {
  const int tx = (int)(t % p->tw), ty = (int)(t / p->tw % p->th), tz = (int)(t / ((long)p->tw * p->th) % p->td);
  *nn = (int)(t / ((long)p->tw * p->th * p->td));
  *z0 = tz * p->m[0], *y0 = ty * p->m[1], *x0 = tx * p->m[2];
}

static int imin(int a, int b) { return a < b ? a : b; }

/* The tile's first voxel in the padded copy xp (N, Dp, Hp, Wp, cin): output voxel (z0, y0, x0) reads
 * from padded (z0, y0, x0) on (unpadded z0 - 1). */
static const float *tile_in(const wplan *p, const float *xp, int nn, int z0, int y0, int x0) {
  return xp + ((((long)nn * p->Dp + z0) * p->Hp + y0) * p->Wp + x0) * p->cin;
}

/* Forward-shaped block of nt tiles from t0: out (N,D,H,W,cout) from the padded input xp. */
static void fwd_block(float *out, const float *xp, const float *U, const float *bias, const mbsr__epi *ep,
                      const wplan *p, long t0, int nt, float *slot) {
  float *V = slot, *M = p->alias ? slot : slot + (size_t)p->T * p->vs;
  const long sz = (long)p->Hp * p->Wp * p->cin, sy = (long)p->Wp * p->cin;
  const long sample_out = (long)p->D * p->H * p->W * p->cout;
  for (int i = 0; i < nt; i++) {
    int nn, z0, y0, x0;
    tile_coords(p, t0 + i, &nn, &z0, &y0, &x0);
    p->tf->in_tile(V + i * p->vs, tile_in(p, xp, nn, z0, y0, x0), sz, sy, p->cin);
  }
  p->isa->gemm_fwd(M, p->ms, V, p->vs, U, p->ne, nt, p->cin, p->cout, p->m[0] == 3 && p->m[1] == 3 && p->m[2] == 3);
  for (int i = 0; i < nt; i++) {
    int nn, z0, y0, x0;
    tile_coords(p, t0 + i, &nn, &z0, &y0, &x0);
    const long off = nn * sample_out + (((long)z0 * p->H + y0) * p->W + x0) * p->cout;
    p->tf->out_tile(out + off, M + i * p->ms, p->H, p->W, p->cout, imin(p->m[0], p->D - z0),
                    imin(p->m[1], p->H - y0), imin(p->m[2], p->W - x0), bias, ep, off);
  }
}

/* Weight-gradient block: P[e][ci][co] += over the nt tiles from t0 (input from the padded copy xp);
 * db (may be NULL) += dout sums. want_dw = 0: only db. */
static void dw_block(float *P, float *db, int want_dw, const float *dout, const float *xp, const wplan *p, long t0,
                     int nt, float *slot) {
  float *V = slot, *Z = slot + (size_t)p->T * p->vs;
  const long sz = (long)p->Hp * p->Wp * p->cin, sy = (long)p->Wp * p->cin;
  const long sample_out = (long)p->D * p->H * p->W * p->cout;
  for (int i = 0; i < nt; i++) {
    int nn, z0, y0, x0;
    tile_coords(p, t0 + i, &nn, &z0, &y0, &x0);
    if (want_dw) p->tf->in_tile(V + i * p->vs, tile_in(p, xp, nn, z0, y0, x0), sz, sy, p->cin);
    const long off = nn * sample_out + (((long)z0 * p->H + y0) * p->W + x0) * p->cout;
    p->tf->g_tile(Z + i * p->ms, dout + off, p->H, p->W, p->cout, imin(p->m[0], p->D - z0), imin(p->m[1], p->H - y0),
                  imin(p->m[2], p->W - x0), db);
  }
  if (want_dw) p->isa->gemm_dw(P, V, p->vs, Z, p->ms, p->ne, nt, p->cin, p->cout);
}

/* The group partials added into the first, in group order (float; deterministic). Worksharing loop. */
static void sum_partials(float *partials, int G, size_t pst, size_t count) {
  const size_t chunk = 4096;
#pragma omp for schedule(static) nowait
  for (size_t c0 = 0; c0 < count; c0 += chunk) {
    const size_t c1 = c0 + chunk < count ? c0 + chunk : count;
    for (int g = 1; g < G; g++) {
      const float *src = partials + (size_t)g * pst;
      for (size_t i = c0; i < c1; i++) partials[i] += src[i];
    }
  }
}

/* dW[k][ci][co] += (G^T Q G)[k] along the three axes, Q[e][ci][co] the summed partials, in float64,
 * WB output channels at a time. Worksharing loop. */
#define WB 16
static void transform_dw(float *dweight, const float *Q, const wplan *p) {
  const int cin = p->cin, cout = p->cout, *m = p->m, *n = p->n;
  double gd[5][3], gh[5][3], gw[5][3];
  gmats(m, gd, gh, gw);
  const int nbb = (cout + WB - 1) / WB;
#pragma omp for schedule(static) nowait
  for (long ab = 0; ab < (long)cin * nbb; ab++) {
    const int ci = (int)(ab / nbb), c0 = (int)(ab % nbb) * WB, nb = cout - c0 < WB ? cout - c0 : WB;
    double t1[5][5][3][WB], t2[5][3][3][WB];
    for (int ed = 0; ed < n[0]; ed++)
      for (int eh = 0; eh < n[1]; eh++) {
        double q[5][WB];
        for (int ew = 0; ew < n[2]; ew++) {
          const float *src = Q + ((size_t)((ed * n[1] + eh) * n[2] + ew) * cin + ci) * cout + c0;
          for (int j = 0; j < WB; j++) q[ew][j] = j < nb ? src[j] : 0.0;
        }
        for (int c = 0; c < 3; c++)
          for (int j = 0; j < WB; j++) {
            double acc = gw[0][c] * q[0][j] + gw[1][c] * q[1][j] + gw[2][c] * q[2][j] + gw[3][c] * q[3][j];
            if (n[2] == 5) acc += gw[4][c] * q[4][j];
            t1[ed][eh][c][j] = acc;
          }
      }
    for (int ed = 0; ed < n[0]; ed++)
      for (int b = 0; b < 3; b++)
        for (int c = 0; c < 3; c++)
          for (int j = 0; j < WB; j++) {
            double acc = gh[0][b] * t1[ed][0][c][j] + gh[1][b] * t1[ed][1][c][j] + gh[2][b] * t1[ed][2][c][j] +
                         gh[3][b] * t1[ed][3][c][j];
            if (n[1] == 5) acc += gh[4][b] * t1[ed][4][c][j];
            t2[ed][b][c][j] = acc;
          }
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++)
        for (int c = 0; c < 3; c++) {
          float *dst = dweight + ((size_t)((a * 3 + b) * 3 + c) * cin + ci) * cout + c0;
          double v[WB];
          for (int j = 0; j < WB; j++) {
            double acc = gd[0][a] * t2[0][b][c][j] + gd[1][a] * t2[1][b][c][j] + gd[2][a] * t2[2][b][c][j] +
                         gd[3][a] * t2[3][b][c][j];
            if (n[0] == 5) acc += gd[4][a] * t2[4][b][c][j];
            v[j] = acc;
          }
          for (int j = 0; j < nb; j++) dst[j] += (float)v[j];
        }
  }
}
#undef WB

static int nthreads_for_call(void) {
  int t = omp_get_max_threads(), s = wslots();
  return t < s ? t : s;
}

/* Smaller blocks when the layer has few tiles, so that every thread gets about four (the slot stays
 * sized for the planned T; changes no result). */
static void balance(wplan *p, int nthr) {
  long t = (p->ntiles + 4L * nthr - 1) / (4L * nthr);
  if (t < 6) t = 6;
  if (t < p->T) p->T = (int)t;
}

/* ---- entry points (conv3d.c) ---- */

void mbsr__wino_forward(float *out, const float *inp, const float *weight, const float *bias, const mbsr__epi *ep,
                        const mbsr_conv3d_dims *s, int var, const mbsr__wino_isa *isa, float *ws) {
  // out (N,D,H,W,COUT) = epilogue(conv(inp (N,D,H,W,CIN), weight (3,3,3,CIN,COUT)))
  wplan p;
  plan(&p, isa, var, s->n, s->d, s->h, s->w, s->cin, s->cout, 0);
  const int nthr = nthreads_for_call();
  balance(&p, nthr);
  float *U = ws, *xp = U + u_floats(s), *slots = xp + pad_floats(s, s->cin);
  const long nblocks = (p.ntiles + p.T - 1) / p.T;
#pragma omp parallel num_threads(nthr)
  {
    transform_weights(U, weight, 0, &p);
    mbsr__pad_copy(xp, inp, s->n, p.Dp, p.Hp, p.Wp, s->cin, s->d, s->h, s->w, 1);
#pragma omp barrier
    float *slot = slots + (size_t)omp_get_thread_num() * p.slot;
#pragma omp for schedule(dynamic, 1) nowait
    for (long b = 0; b < nblocks; b++) {
      const long t0 = b * p.T;
      fwd_block(out, xp, U, bias, ep, &p, t0, (int)(p.ntiles - t0 < p.T ? p.ntiles - t0 : p.T), slot);
    }
  }
}

/* var_dx < 0: no input gradient here; var_dw < 0: no weight/bias gradient here. dx_ep: init (the base
 * the input gradient starts from, NULL = 0) and mask (ReLU output) of the input gradient. */
void mbsr__wino_backward(float *dinp, const mbsr__epi *dx_ep, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const mbsr_conv3d_dims *s, int var_dx, int var_dw,
                         const mbsr__wino_isa *isa, float *ws) {
  // dinp (N,D,H,W,CIN) = mask(init + conv^T(dout (N,D,H,W,COUT))); dweight (3,3,3,CIN,COUT), dbias (COUT) +=
  const int cin = s->cin, cout = s->cout;
  const int do_dx = dinp && var_dx >= 0, do_w = (dweight || dbias) && var_dw >= 0;
  if (!do_dx && !do_w) return;
  wplan px, pw;
  const int nthr = nthreads_for_call();
  if (do_dx) plan(&px, isa, var_dx, s->n, s->d, s->h, s->w, cout, cin, 0), balance(&px, nthr);
  if (do_w) plan(&pw, isa, var_dw, s->n, s->d, s->h, s->w, cin, cout, 1);
  float *U = ws, *gp = U + u_floats(s), *xp = gp + pad_floats(s, cout), *slots = xp + pad_floats(s, cin);
  float *partials = slots + (size_t)wslots() * bwd_slot(s);
  const size_t slot = (do_dx && do_w) ? (px.slot > pw.slot ? px.slot : pw.slot) : do_dx ? px.slot : pw.slot;
  const int G = do_w ? wgroups(pw.ntiles) : 1;
  const size_t pst = partial_floats(cin, cout);
  const long nbx = do_dx ? (px.ntiles + px.T - 1) / px.T : 0;
  const size_t nwe = do_w ? (size_t)pw.ne * cin * cout : 0;
#pragma omp parallel num_threads(nthr)
  {
    if (do_dx) {
      transform_weights(U, weight, 1, &px);
      mbsr__pad_copy(gp, dout, s->n, px.Dp, px.Hp, px.Wp, cout, s->d, s->h, s->w, 1);
    }
    if (do_w && dweight) mbsr__pad_copy(xp, inp, s->n, pw.Dp, pw.Hp, pw.Wp, cin, s->d, s->h, s->w, 1);
#pragma omp barrier
    float *myslot = slots + (size_t)omp_get_thread_num() * slot;
    if (do_w) {
#pragma omp for schedule(dynamic, 1) nowait
      for (int g = 0; g < G; g++) {
        float *P = partials + (size_t)g * pst;
        memset(P, 0, sizeof(float) * (nwe + cout));
        const long g0 = pw.ntiles * g / G, g1 = pw.ntiles * (g + 1) / G;
        for (long t0 = g0; t0 < g1; t0 += pw.T)
          dw_block(P, dbias ? P + nwe : NULL, dweight != NULL, dout, xp, &pw, t0, (int)(g1 - t0 < pw.T ? g1 - t0 : pw.T),
                   myslot);
      }
    }
    if (do_dx) {
#pragma omp for schedule(dynamic, 1) nowait
      for (long b = 0; b < nbx; b++) {
        const long t0 = b * px.T;
        fwd_block(dinp, gp, U, NULL, dx_ep, &px, t0, (int)(px.ntiles - t0 < px.T ? px.ntiles - t0 : px.T), myslot);
      }
    }
    if (do_w) {
#pragma omp barrier
      sum_partials(partials, G, pst, nwe + cout);
#pragma omp barrier
      if (dweight) transform_dw(dweight, partials, &pw);
      if (dbias) {
#pragma omp for schedule(static) nowait
        for (int co = 0; co < cout; co++) dbias[co] += partials[nwe + co];
      }
    }
  }
}

/* ---- the choice ---- */

/* MBSR_CONV_ALGO: auto (default) | direct | winograd (the automatic tile wherever Winograd applies) |
 * direct-narrow (every conv direct, narrow blocking) | wino222 | wino223 | wino233 | wino333 (that tile
 * wherever Winograd applies; for tests and benchmarks). */
static int g_algo = -3; /* -3: not read; -2: auto; -1: direct; -6: direct-narrow; -4: winograd with the automatic
                        * tile; >= 0 */
static int parse_algo(const char *e) {
  if (!e || !strcmp(e, "auto")) return -2;
  if (!strcmp(e, "direct")) return -1;
  if (!strcmp(e, "direct-narrow")) return -6;
  if (!strcmp(e, "winograd")) return -4;
  if (!strcmp(e, "wino222")) return MBSR__W222;
  if (!strcmp(e, "wino223")) return MBSR__W223;
  if (!strcmp(e, "wino233")) return MBSR__W233;
  if (!strcmp(e, "wino333")) return MBSR__W333;
  return -5;
}

int mbsr__conv3d_force_algo(const char *name) {
  int a = parse_algo(name);
  if (a == -5) return -1;
  __atomic_store_n(&g_algo, a, __ATOMIC_RELAXED);
  return 0;
}

int mbsr__conv3d_algo_setting(void);
static int algo_setting(void) {
  int a = __atomic_load_n(&g_algo, __ATOMIC_RELAXED);
  if (a == -3) {
    a = parse_algo(getenv("MBSR_CONV_ALGO"));
    if (a == -5) a = -2; /* unknown value: the default */
    __atomic_store_n(&g_algo, a, __ATOMIC_RELAXED);
  }
  return a;
}

int mbsr__conv3d_algo_setting(void) { return algo_setting(); }
void mbsr__conv3d_algo_restore(int setting) { __atomic_store_n(&g_algo, setting, __ATOMIC_RELAXED); }

int mbsr__conv_narrow(const mbsr_conv3d_dims *s, int pass, const mbsr__wino_isa *isa) {
  const int a = algo_setting();
  if (a == -6) return 1;
  return a == -2 && isa && mbsr__tune_lookup(s, pass, isa->name) == MBSR_CONV_DIRECT_NARROW;
}

/* The tile variant pass `pass` (0 forward, 1 input gradient, 2 weight gradient) of s uses with this ISA,
 * or -1 for the direct kernels. */
int mbsr__wino_pick(const mbsr_conv3d_dims *s, int pass, const mbsr__wino_isa *isa) {
  if (!isa || s->stride != 1 || s->prec != MBSR_PREC_FP32) return -1;
  if (s->cin % isa->vl || s->cout % isa->vl || s->cin > WZERO_MAX || s->cout > WZERO_MAX) return -1;
  const int a = algo_setting();
  if (a == -1 || a == -6) return -1;
  if (a >= 0) return a;
  if (a == -2) { /* auto: the measured choice for this CPU when `mbsr bench --tune` recorded one */
    const int t = mbsr__tune_lookup(s, pass, isa->name);
    if (t == MBSR_CONV_DIRECT || t == MBSR_CONV_DIRECT_NARROW) return -1;
    if (t >= MBSR_CONV_WINO222 && t <= MBSR_CONV_WINO333) return t - MBSR_CONV_WINO222;
  }
  /* automatic (measurements: experiments/bench/): Winograd for layers of at least 32 channels in and out
   * and 4 voxels per axis and 2048 voxels per call (16 -> 16 gains only 1.2-1.6x and needs more workspace
   * than a direct forward; below ~2000 voxels the fixed costs, weight transforms and partial sums, win);
   * F(3x3x3) (5.8x fewer multiplies than direct at 21^3, 7^3 tiles without a partial one). */
  if (a == -2 && (s->cin < 32 || s->cout < 32 || s->d < 4 || s->h < 4 || s->w < 4 ||
                  (long)s->n * s->d * s->h * s->w < 2048))
    return -1;
  return MBSR__W333;
}
