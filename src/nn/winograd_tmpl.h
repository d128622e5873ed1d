/* 3-D Winograd convolution kernels (3x3x3, stride 1, padding 1), written once for a vector ISA and
 * instantiated by winograd_avx512.c (VL = 16) and winograd_avx2.c (VL = 8); the driver is winograd.c.
 *
 * F(m, 3) per axis, m = 2 or 3 (tile sizes MD x MH x MW; n = m + 2 transform points per axis,
 * NE = ND*NH*NW transform elements per tile):
 *   F(2,3), points 0, 1, -1, inf:      B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *                                      A^T = [1 1 1 0; 0 1 -1 -1]
 *   F(3,3), points 0, 1, -1, 2, inf:   B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0;
 *                                             0 2 -1 -2 1]
 *                                      A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 1]
 * (Lavin and Gray, CVPR 2016; the G matrices, applied in float64 by the driver, are in winograd.c.)
 * The 3-D transforms nest: the 1-D transform along W, then H, then D, on vectors of VL channels
 * (activations are channels-last, so a tile's voxel is a run of channels and no shuffles are needed).
 *
 * Forward-shaped pass (forward, and the input gradient with flipped weights), per block of T tiles:
 *   V[t][e][ci] = (B^T d B)[e] of tile t           in_tile
 *   M[t][e][co] = sum_ci V[t][e][ci] U[e][ci][co]  gemm_fwd: NE independent [T x CIN] x [CIN x COUT]
 *   out = epilogue(A^T M A)                        out_tile (bias or init, + res, ReLU, mask)
 * Weight gradient (the trilinear form sum_i z_i g_k d_(i+k) = sum_e (A z)_e (G g)_e (B^T d)_e read
 * with the output gradient z in the role of the filter):
 *   V[t][e][ci] as above; Z[t][e][co] = (A z A^T)[e] of the m^3 output-gradient tile t   g_tile
 *   P[e][ci][co] += sum_t V[t][e][ci] Z[t][e][co]   gemm_dw (the block's tiles summed in order from
 *                                                   zero, then added to P: two-level summation, 3x
 *                                                   less float32 error than one running sum; fixed
 *                                                   blocks, so the sum is the same in every run)
 *   dW = G^T P G (driver, float64, after the group partials are added in a fixed order).
 *
 * ISA macros expected: VL, VT, VLD, VST, VADD, VSUB, VMUL, VFMA(a,b,c) = a*b+c, VSET1, VZERO, VMAX0
 * (max with 0), VMASKGT0(v, m) (v where m > 0, else 0), ISA(name), CBMAX (vectors of output channels
 * per register block), and the micro-kernel register budget macros below.
 * Included with WT_COMMON defined (1-D transforms, GEMMs; once per ISA), then once per tile variant
 * with MD, MH, MW defined. */

#ifdef WT_COMMON

/* ---- 1-D transforms on arrays of vectors ---- */
static inline __attribute__((always_inline)) void bt4(VT *o, const VT *d) {
  o[0] = VSUB(d[0], d[2]);
  o[1] = VADD(d[1], d[2]);
  o[2] = VSUB(d[2], d[1]);
  o[3] = VSUB(d[1], d[3]);
}
static inline __attribute__((always_inline)) void bt5(VT *o, const VT *d) {
  const VT two = VSET1(2.0f), mtwo = VSET1(-2.0f), mthree = VSET1(-3.0f);
  o[0] = VFMA(two, VSUB(d[0], d[2]), VSUB(d[3], d[1]));  /* 2d0 - d1 - 2d2 + d3 */
  o[1] = VFMA(mtwo, d[1], VSUB(d[3], d[2]));             /* -2d1 - d2 + d3 */
  o[2] = VFMA(two, d[1], VFMA(mthree, d[2], d[3]));      /* 2d1 - 3d2 + d3 */
  o[3] = VSUB(d[3], d[1]);                               /* -d1 + d3 */
  o[4] = VFMA(two, VSUB(d[1], d[3]), VSUB(d[4], d[2]));  /* 2d1 - d2 - 2d3 + d4 */
}
static inline __attribute__((always_inline)) void at4(VT *y, const VT *m) {
  y[0] = VADD(VADD(m[0], m[1]), m[2]);
  y[1] = VSUB(VSUB(m[1], m[2]), m[3]);
}
static inline __attribute__((always_inline)) void at5(VT *y, const VT *m) {
  const VT two = VSET1(2.0f), four = VSET1(4.0f);
  y[0] = VADD(VADD(m[0], m[1]), VADD(m[2], m[3]));
  y[1] = VFMA(two, m[3], VSUB(m[1], m[2]));
  y[2] = VFMA(four, m[3], VADD(VADD(m[1], m[2]), m[4]));
}
/* A = (A^T)^T: m values of the output gradient to n transform points */
static inline __attribute__((always_inline)) void a4(VT *o, const VT *g) {
  o[0] = g[0];
  o[1] = VADD(g[0], g[1]);
  o[2] = VSUB(g[0], g[1]);
  o[3] = VSUB(VZERO(), g[1]);
}
static inline __attribute__((always_inline)) void a5(VT *o, const VT *g) {
  const VT two = VSET1(2.0f), four = VSET1(4.0f);
  VT s = VADD(g[0], g[2]);
  o[0] = g[0];
  o[1] = VADD(s, g[1]);
  o[2] = VSUB(s, g[1]);
  o[3] = VFMA(four, g[2], VFMA(two, g[1], g[0]));
  o[4] = g[2];
}

/* ---- GEMM micro-kernels: RB rows x CB vectors of output channels in registers ---- */
#define WCAT_(a, b, c) a##_##b##_##c
#define WCAT(a, b, c) WCAT_(a, b, c)

/* The RB x CB accumulators: a statement for each (r, c); RB rank-1 updates acc[r][c] += v(r) u[c]. */
#define ACC_EACH(RB, CB, stmt) \
  _Pragma("GCC unroll 16") for (int r = 0; r < RB; r++) _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++) stmt;
#define ACC_RANK1(RB, CB, vexpr, u)                                                                        \
  _Pragma("GCC unroll 16") for (int r = 0; r < RB; r++) {                                                  \
    VT v = VSET1(vexpr);                                                                                   \
    PIN(v);                                                                                                \
    _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++) acc[r][c] = VFMA(v, u[c], acc[r][c]);             \
  }

/* Forward-shaped: M[t][co] = sum_ci V[t][ci] U[ci][co] for RB tiles (rows vt / mt floats apart) and CB
 * vectors of co. A V row may be overwritten by its M row (the whole row in one call). gf: one running
 * sum over ci; gfh (cin even): the two halves of ci summed apart and then added. The float32 sum over ci
 * is most of the Winograd error; two halves cut it by a third for one spill of the accumulators (to the
 * stack, in L1) per call, which F(3x3x3) needs and the smaller tiles do not. */
#define GF_LOOP(RB, CB, c0, c1)                                                                            \
  for (int ci = c0; ci < c1; ci++) {                                                                       \
    VT u[CB];                                                                                              \
    _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++) u[c] = VLD(U + (long)ci * ustr + VL * c);         \
    ACC_RANK1(RB, CB, V[(long)r * vt + ci], u)                                                             \
  }
#define GEMM_FWD_KERNEL(RB, CB)                                                                            \
  static void WCAT(ISA(gf), RB, CB)(float *M, long mt, const float *V, long vt, int cin, const float *U,    \
                                    int ustr) {                                                            \
    VT acc[RB][CB];                                                                                        \
    ACC_EACH(RB, CB, acc[r][c] = VZERO())                                                                  \
    GF_LOOP(RB, CB, 0, cin)                                                                                    \
    ACC_EACH(RB, CB, VST(M + (long)r * mt + VL * c, acc[r][c]))                                            \
  }                                                                                                        \
  static void WCAT(ISA(gfh), RB, CB)(float *M, long mt, const float *V, long vt, int cin, const float *U,   \
                                     int ustr) {                                                           \
    VT acc[RB][CB], half[RB][CB];                                                                          \
    ACC_EACH(RB, CB, acc[r][c] = VZERO())                                                                  \
    GF_LOOP(RB, CB, 0, cin / 2)                                                                                \
    ACC_EACH(RB, CB, (half[r][c] = acc[r][c], acc[r][c] = VZERO()))                                        \
    GF_LOOP(RB, CB, cin / 2, cin)                                                                              \
    ACC_EACH(RB, CB, VST(M + (long)r * mt + VL * c, VADD(half[r][c], acc[r][c])))                          \
  }

/* Weight gradient: P[ci][co] += sum_t V[t][ci] Z[t][co] for RB values of ci and CB vectors of co, the
 * tiles summed one after another from zero and the sum then added to P. pf: the P rows of the next call
 * (prefetched while this one runs). */
#define GEMM_DW_KERNEL(RB, CB)                                                                             \
  static void WCAT(ISA(gw), RB, CB)(float *P, int pstr, const float *V, long vt, const float *Z, long zt,  \
                                    int nt, const float *pf) {                                             \
    VT acc[RB][CB];                                                                                        \
    ACC_EACH(RB, CB, acc[r][c] = VZERO())                                                                  \
    if (pf) ACC_EACH(RB, CB, __builtin_prefetch(pf + (long)r * pstr + VL * c, 1, 3))                       \
    for (int t = 0; t < nt; t++) {                                                                         \
      VT z[CB];                                                                                            \
      _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++) z[c] = VLD(Z + (long)t * zt + VL * c);          \
      ACC_RANK1(RB, CB, V[(long)t * vt + r], z)                                                            \
    }                                                                                                      \
    ACC_EACH(RB, CB, VST(P + (long)r * pstr + VL * c, VADD(VLD(P + (long)r * pstr + VL * c), acc[r][c])))  \
  }

typedef void (*ISA(gf_fn))(float *, long, const float *, long, int, const float *, int);
typedef void (*ISA(gw_fn))(float *, int, const float *, long, const float *, long, int, const float *);
/* The ISA file lists GEMM_FWD_KERNEL(RB, CB) and GEMM_DW_KERNEL(RB, CB) for its register budget, then
 * the tables gf_tab / gw_tab [CB][RB] and the largest RB per CB, gf_rbmax / gw_rbmax. */
WGEMM_INSTANCES
WGEMM_TABLES

/* What voxels outside the volume read (channel counts up to WZERO_MAX). */
static const float ISA(wzero)[WZERO_MAX] __attribute__((aligned(64)));

/* M[t][e][co] = sum_ci V[t][e][ci] U[e][ci][co] for the nt tiles of a block, all ne elements; tile
 * blocks are vt (V) and mt (M) floats apart. M may be V when cin == cout <= VL*CBMAX and mt == vt.
 * halves: sum the two halves of ci apart (gfh). */
static void ISA(gemm_fwd)(float *M, long mt, const float *V, long vt, const float *U, int ne, int nt, int cin,
                          int cout, int halves) {
  for (int e = 0; e < ne; e++) {
    const float *Ue = U + (long)e * cin * cout;
    for (int co0 = 0; co0 < cout; co0 += VL * CBMAX) {
      const int cb = (cout - co0) / VL < CBMAX ? (cout - co0) / VL : CBMAX;
      const int rbmax = ISA(gf_rbmax)[cb];
      for (int t0 = 0; t0 < nt; t0 += rbmax) {
        const int rb = nt - t0 < rbmax ? nt - t0 : rbmax;
        (halves ? ISA(gfh_tab) : ISA(gf_tab))[cb][rb](M + t0 * mt + (long)e * cout + co0, mt, V + t0 * vt + (long)e * cin,
                                                      vt, cin, Ue + co0, cout);
      }
    }
  }
}

/* P[e][ci][co] += sum_t V[t][e][ci] Z[t][e][co] over the nt tiles of a block (tile blocks vt and zt
 * floats apart). */
static void ISA(gemm_dw)(float *P, const float *V, long vt, const float *Z, long zt, int ne, int nt, int cin,
                         int cout) {
  for (int e = 0; e < ne; e++) {
    float *Pe = P + (long)e * cin * cout;
    for (int co0 = 0; co0 < cout; co0 += VL * CBMAX) {
      const int cb = (cout - co0) / VL < CBMAX ? (cout - co0) / VL : CBMAX;
      const int rbmax = ISA(gw_rbmax)[cb];
      for (int ci0 = 0; ci0 < cin; ci0 += rbmax) {
        const int rb = cin - ci0 < rbmax ? cin - ci0 : rbmax;
        /* the next call's rows: the next ci block, else the next element's first block (same co0) */
        const float *pf = ci0 + rb < cin ? Pe + (long)(ci0 + rb) * cout + co0 : e + 1 < ne ? Pe + (long)cin * cout + co0 : NULL;
        ISA(gw_tab)[cb][rb](Pe + (long)ci0 * cout + co0, cout, V + (long)e * cin + ci0, vt, Z + (long)e * cout + co0, zt,
                            nt, pf);
      }
    }
  }
}

#undef WCAT
#undef WCAT_

#else /* one tile variant: MD, MH, MW */

#define WN_(a, b, c, d) a##b##c##d
#define WN(a, b, c, d) WN_(a, b, c, d)
#define WNAME(f) ISA(WN(f, MD, MH, MW))

#define ND (MD + 2)
#define NH (MH + 2)
#define NW (MW + 2)
#define NE (ND * NH * NW)
#if MD == 2
#define BTD bt4
#define ATD at4
#define AD a4
#else
#define BTD bt5
#define ATD at5
#define AD a5
#endif
#if MH == 2
#define BTH bt4
#define ATH at4
#define AH a4
#else
#define BTH bt5
#define ATH at5
#define AH a5
#endif
#if MW == 2
#define BTW bt4
#define ATW at4
#define AW a4
#else
#define BTW bt5
#define ATW at5
#define AW a5
#endif

/* The input transform of one tile: V[e * C + c] (the tile's block) for every channel c < C
 * (C % VL == 0) of the tile whose first voxel is x, in a zero-padded copy of the input with sz, sy floats
 * between planes and rows (voxels C floats apart). Two passes per channel vector, each fitting the
 * register file: B^T along D into t (on the stack, in L1), then per transformed D plane B^T along W
 * and H, stored to V. */
static inline __attribute__((always_inline)) void WNAME(in_body)(float *V, const float *x, long sz, long sy,
                                                                  const int C) {
  for (int c = 0; c < C; c += VL) {
    VT t[ND][NH][NW];
    const float *xc = x + c;
#pragma GCC unroll 8
    for (int y = 0; y < NH; y++)
#pragma GCC unroll 8
      for (int w = 0; w < NW; w++) {
        VT d[ND], o[ND];
#pragma GCC unroll 8
        for (int z = 0; z < ND; z++) d[z] = VLD(xc + z * sz + y * sy + (long)w * C);
        BTD(o, d);
#pragma GCC unroll 8
        for (int z = 0; z < ND; z++) t[z][y][w] = o[z];
      }
#pragma GCC unroll 8
    for (int z = 0; z < ND; z++) {
      VT p[NH][NW];
#pragma GCC unroll 8
      for (int y = 0; y < NH; y++) BTW(p[y], t[z][y]);
#pragma GCC unroll 8
      for (int w = 0; w < NW; w++) {
        VT d[NH], o[NH];
#pragma GCC unroll 8
        for (int y = 0; y < NH; y++) d[y] = p[y][w];
        BTH(o, d);
#pragma GCC unroll 8
        for (int y = 0; y < NH; y++) VST(V + (long)((z * NH + y) * NW + w) * C + c, o[y]);
      }
    }
  }
}
/* C = 32 and 64 compiled apart: constant strides fold into the addressing */
static void WNAME(in_tile)(float *V, const float *x, long sz, long sy, int C) {
  if (C == 64) WNAME(in_body)(V, x, sz, sy, 64);
  else if (C == 32) WNAME(in_body)(V, x, sz, sy, 32);
  else WNAME(in_body)(V, x, sz, sy, C);
}

/* The output transform of one tile with the fused epilogue: out = mask(relu((init or bias) + A^T M A
 * + res)) at the tile's voxels inside the volume. M[e * C + c] (the tile's block); out, init, res, mask
 * point at the tile's first voxel (z0, y0, x0) of the (D, H, W, C) sample (init, res, mask: at offset
 * eoff of their tensors); nz, ny, nx = voxels inside per axis. Per channel vector: A^T along W and H
 * per D plane in registers (into u, on the stack), then A^T along D and the epilogue. */
static inline __attribute__((always_inline)) void WNAME(out_body)(float *out, const float *M, long sz, long sy,
                                                                   const int C, int nz, int ny, int nx,
                                                                   const float *bias, const mbsr__epi *ep,
                                                                   long eoff) {
  for (int c = 0; c < C; c += VL) {
    VT u[ND][MH][MW];
    const float *Mc = M + c;
#pragma GCC unroll 8
    for (int z = 0; z < ND; z++) {
      VT t[NH][MW];
#pragma GCC unroll 8
      for (int yy = 0; yy < NH; yy++) {
        VT d[NW];
#pragma GCC unroll 8
        for (int w = 0; w < NW; w++) d[w] = VLD(Mc + (long)((z * NH + yy) * NW + w) * C);
        ATW(t[yy], d);
      }
#pragma GCC unroll 8
      for (int w = 0; w < MW; w++) {
        VT d[NH], o[MH];
#pragma GCC unroll 8
        for (int yy = 0; yy < NH; yy++) d[yy] = t[yy][w];
        ATH(o, d);
#pragma GCC unroll 8
        for (int yy = 0; yy < MH; yy++) u[z][yy][w] = o[yy];
      }
    }
    const VT b = bias ? VLD(bias + c) : VZERO();
#pragma GCC unroll 8
    for (int yy = 0; yy < MH; yy++)
#pragma GCC unroll 8
      for (int w = 0; w < MW; w++) {
        VT d[ND], y[MD];
#pragma GCC unroll 8
        for (int z = 0; z < ND; z++) d[z] = u[z][yy][w];
        ATD(y, d);
        if (yy >= ny || w >= nx) continue;
#pragma GCC unroll 8
        for (int z = 0; z < MD; z++) {
          if (z >= nz) break;
          const long at = z * sz + yy * sy + (long)w * C + c;
          VT v = VADD(y[z], ep->init ? VLD(ep->init + eoff + at) : b);
          if (ep->res) v = VADD(v, VLD(ep->res + eoff + at));
          if (ep->relu) v = VMAX0(v);
          if (ep->mask) v = VMASKGT0(v, VLD(ep->mask + eoff + at));
          VST(out + at, v);
        }
      }
  }
}
static void WNAME(out_tile)(float *out, const float *M, int H, int W, int C, int nz, int ny, int nx,
                            const float *bias, const mbsr__epi *ep, long eoff) {
  const long sz = (long)H * W * C, sy = (long)W * C;
  if (C == 64) WNAME(out_body)(out, M, sz, sy, 64, nz, ny, nx, bias, ep, eoff);
  else if (C == 32) WNAME(out_body)(out, M, sz, sy, 32, nz, ny, nx, bias, ep, eoff);
  else WNAME(out_body)(out, M, sz, sy, C, nz, ny, nx, bias, ep, eoff);
}

/* The weight-gradient transform of one m^3 output-gradient tile: Z[e * C + c] = (A z A^T)[e] (the
 * tile's block), z the tile at g (the (D, H, W, C) gradient at the tile's first voxel), zero past nz, ny,
 * nx voxels per axis; also db[c] += the tile's sum (db may be NULL). */
static inline __attribute__((always_inline)) void WNAME(g_body)(float *Z, const float *g, int H, int W,
                                                                 const int C, int nz, int ny, int nx, float *db) {
  const float *ptr[MD][MH][MW];
  for (int z = 0; z < MD; z++)
    for (int y = 0; y < MH; y++)
      for (int w = 0; w < MW; w++)
        ptr[z][y][w] = z < nz && y < ny && w < nx ? g + ((long)z * H * W + (long)y * W + w) * C : ISA(wzero);
  for (int c = 0; c < C; c += VL) {
    VT u[MD][NH][NW];
    VT sum = VZERO();
#pragma GCC unroll 8
    for (int z = 0; z < MD; z++) {
      VT t[MH][NW];
#pragma GCC unroll 8
      for (int yy = 0; yy < MH; yy++) {
        VT d[MW];
#pragma GCC unroll 8
        for (int w = 0; w < MW; w++) {
          d[w] = VLD(ptr[z][yy][w] + c);
          sum = VADD(sum, d[w]);
        }
        AW(t[yy], d);
      }
#pragma GCC unroll 8
      for (int w = 0; w < NW; w++) {
        VT d[MH], o[NH];
#pragma GCC unroll 8
        for (int yy = 0; yy < MH; yy++) d[yy] = t[yy][w];
        AH(o, d);
#pragma GCC unroll 8
        for (int yy = 0; yy < NH; yy++) u[z][yy][w] = o[yy];
      }
    }
    if (db) VST(db + c, VADD(VLD(db + c), sum));
#pragma GCC unroll 8
    for (int yy = 0; yy < NH; yy++)
#pragma GCC unroll 8
      for (int w = 0; w < NW; w++) {
        VT d[MD], o[ND];
#pragma GCC unroll 8
        for (int z = 0; z < MD; z++) d[z] = u[z][yy][w];
        AD(o, d);
#pragma GCC unroll 8
        for (int z = 0; z < ND; z++) VST(Z + (long)((z * NH + yy) * NW + w) * C + c, o[z]);
      }
  }
}
static void WNAME(g_tile)(float *Z, const float *g, int H, int W, int C, int nz, int ny, int nx, float *db) {
  if (C == 64) WNAME(g_body)(Z, g, H, W, 64, nz, ny, nx, db);
  else if (C == 32) WNAME(g_body)(Z, g, H, W, 32, nz, ny, nx, db);
  else WNAME(g_body)(Z, g, H, W, C, nz, ny, nx, db);
}

#undef ND
#undef NH
#undef NW
#undef NE
#undef BTD
#undef BTH
#undef BTW
#undef ATD
#undef ATH
#undef ATW
#undef AD
#undef AH
#undef AW
#undef WNAME
#undef WN
#undef WN_
#undef MD
#undef MH
#undef MW
#endif
