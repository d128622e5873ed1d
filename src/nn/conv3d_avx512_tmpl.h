/* Register-blocked AVX-512 micro-kernels, instantiated by conv3d_avx512.c once per block shape.
 * Included with exactly one of TMPL_FWD (P, CB), TMPL_BWW (RB, CB), TMPL_FWD1 (P), TMPL_BWW1 (RV),
 * TMPL_FWDBF (P, CB), TMPL_BWWBF (RB, CB) (both in conv3d_bf16.c)
 * defined; the block sizes are macros so that the accumulator arrays have constant size, the loops
 * over them unroll completely and the accumulators live in zmm registers. */
#ifndef MBSR_EPI_MACROS
#define MBSR_EPI_MACROS
/* Accumulator start: e->init (the output's old value, or another tensor) if set, else the bias (or 0). */
#define EPI_INIT(acc, P_, CB_, bias, e, eo, ostr, lm)                                                       \
  _Pragma("GCC unroll 4") for (int c = 0; c < CB_; c++) {                                                  \
    __mmask16 m = c == CB_ - 1 ? lm : 0xFFFF;                                                               \
    __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * c) : _mm512_setzero_ps();                        \
    _Pragma("GCC unroll 24") for (int p = 0; p < P_; p++) acc[p][c] =                                      \
        e->init ? _mm512_maskz_loadu_ps(m, e->init + eo + (long)p * ostr + 16 * c) : b;                     \
  }
/* Store with the fused epilogue: + e->res, ReLU, times (e->mask > 0). */
#define EPI_STORE(acc, P_, CB_, out, e, eo, ostr, lm)                                                       \
  _Pragma("GCC unroll 24") for (int p = 0; p < P_; p++) _Pragma("GCC unroll 4") for (int c = 0; c < CB_; c++) { \
    __mmask16 m = c == CB_ - 1 ? lm : 0xFFFF;                                                               \
    const long at = (long)p * ostr + 16 * c;                                                                \
    __m512 v = acc[p][c];                                                                                   \
    if (e->res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, e->res + eo + at));                          \
    if (e->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());                                                 \
    if (e->mask)                                                                                            \
      v = _mm512_maskz_mov_ps(                                                                              \
          _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, e->mask + eo + at), _mm512_setzero_ps(), _CMP_GT_OQ), v); \
    _mm512_mask_storeu_ps(out + at, m, v);                                                                  \
  }
#endif

#define CAT_(a, b, c, d) a##b##_##c##_##d
#define CAT(a, b, c, d) CAT_(a, b, c, d)

#if defined(TMPL_FWD)
/* P positions x CB zmm of output channels. out at (position 0 of the block, co0); x at the padded input
 * of position 0, tap (0,0,0), channel 0; w at [0][0][0][0][co0]; nd x nh tap rows (3 x 3 but for the
 * stride-2 input gradient's parity classes). */
static void CAT(fwd, , P, CB)(float *out, int ostr, const float *x, int xps, long rowH, long rowD, int nd, int nh,
                              int rlen, const float *w, int wstr, const float *bias, const mbsr__epi *e, long eo,
                              __mmask16 lm) {
  __m512 acc[P][CB];
  EPI_INIT(acc, P, CB, bias, e, eo, ostr, lm);
  for (int kd = 0; kd < nd; kd++)
    for (int kh = 0; kh < nh; kh++) {
      const float *xr = x + kd * rowD + kh * rowH;
      const float *wr = w + (long)(kd * nh + kh) * rlen * wstr;
      for (int r = 0; r < rlen; r++) {
        __m512 wv[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++)
          wv[c] = c == CB - 1 ? _mm512_maskz_loadu_ps(lm, wr + (long)r * wstr + 16 * c)
                              : _mm512_loadu_ps(wr + (long)r * wstr + 16 * c);
#pragma GCC unroll 24
        for (int p = 0; p < P; p++) {
          __m512 xv = _mm512_set1_ps(xr[(long)p * xps + r]);
          if (CB > 1) PIN(xv);
#pragma GCC unroll 4
          for (int c = 0; c < CB; c++) acc[p][c] = _mm512_fmadd_ps(xv, wv[c], acc[p][c]);
        }
      }
    }
  EPI_STORE(acc, P, CB, out, e, eo, ostr, lm);
}
#undef P
#undef CB

#elif defined(TMPL_BWW)
/* dw[r][co] += sum_{rows, ow} x[row*rowHs + ow*xps + r] * g[(row*OW + ow)*COUT + co] for RB values of r x
 * CB zmm of channels; the x value broadcast into a register. */
static void CAT(bww, , RB, CB)(float *dw, int cout, const float *x, int xps, long rowHs, const float *g, int nrows,
                               int ow_n, __mmask16 lm) {
  __m512 acc[RB][CB];
#pragma GCC unroll 24
  for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) acc[i][c] = _mm512_setzero_ps();
  for (int oh = 0; oh < nrows; oh++) {
    const float *xr = x + oh * rowHs;
    const float *gr = g + (long)oh * ow_n * cout;
    for (int o = 0; o < ow_n; o++) {
      __m512 gv[CB];
#pragma GCC unroll 4
      for (int c = 0; c < CB; c++)
        gv[c] = c == CB - 1 ? _mm512_maskz_loadu_ps(lm, gr + (long)o * cout + 16 * c)
                            : _mm512_loadu_ps(gr + (long)o * cout + 16 * c);
#pragma GCC unroll 24
      for (int i = 0; i < RB; i++) {
        __m512 xv = _mm512_set1_ps(xr[(long)o * xps + i]);
        if (CB > 1) PIN(xv);
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++) acc[i][c] = _mm512_fmadd_ps(xv, gv[c], acc[i][c]);
      }
    }
  }
#pragma GCC unroll 24
  for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) {
      __mmask16 m = c == CB - 1 ? lm : 0xFFFF;
      float *d = dw + (long)i * cout + 16 * c;
      _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), acc[i][c]));
    }
}
#undef RB
#undef CB

#elif defined(TMPL_FWD1)
/* COUT = 1: P positions, vectorised over the reduction (16 values of r per zmm), then a horizontal sum. */
static void CAT(fwd1, , P, x)(float *out, int ostr, const float *x, int xps, long rowH, long rowD, int nd, int nh,
                              int rlen, const float *w, const float *bias, const mbsr__epi *e, long eo) {
  __m512 acc[P];
#pragma GCC unroll 24
  for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
  const int rv = rlen & ~15;
  const __mmask16 tm = (__mmask16)((1u << (rlen & 15)) - 1);
  for (int kd = 0; kd < nd; kd++)
    for (int kh = 0; kh < nh; kh++) {
      const float *xr = x + kd * rowD + kh * rowH;
      const float *wr = w + (long)(kd * nh + kh) * rlen;
      for (int r = 0; r < rv; r += 16) {
        __m512 wv = _mm512_loadu_ps(wr + r);
#pragma GCC unroll 24
        for (int p = 0; p < P; p++) acc[p] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + (long)p * xps + r), wv, acc[p]);
      }
      if (tm) {
        __m512 wv = _mm512_maskz_loadu_ps(tm, wr + rv);
#pragma GCC unroll 24
        for (int p = 0; p < P; p++)
          acc[p] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, xr + (long)p * xps + rv), wv, acc[p]);
      }
    }
#pragma GCC unroll 24
  for (int p = 0; p < P; p++) {
    const long at = (long)p * ostr;
    float v = _mm512_reduce_add_ps(acc[p]) + (e->init ? e->init[eo + at] : bias ? bias[0] : 0.0f);
    if (e->res) v += e->res[eo + at];
    if (e->relu && !(v > 0.0f)) v = 0.0f;
    if (e->mask && !(e->mask[eo + at] > 0.0f)) v = 0.0f;
    out[at] = v;
  }
}
#undef P

#elif defined(TMPL_BWW1)
/* COUT = 1: dw[r] += sum_pos x[pos][r] * g[pos], vectorised over r (RV zmm = up to 16*RV values of r). */
static void CAT(bww1, , RV, x)(float *dw, const float *x, int xps, long rowHs, const float *g, int nrows, int ow_n,
                               int rlen) {
  __m512 acc[RV];
  __mmask16 m[RV];
#pragma GCC unroll 16
  for (int j = 0; j < RV; j++) {
    int left = rlen - 16 * j;
    m[j] = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
    acc[j] = _mm512_setzero_ps();
  }
  for (int oh = 0; oh < nrows; oh++)
    for (int o = 0; o < ow_n; o++) {
      const float *xr = x + oh * rowHs + (long)o * xps;
      __m512 gv = _mm512_set1_ps(g[(long)oh * ow_n + o]);
#pragma GCC unroll 16
      for (int j = 0; j < RV; j++) acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[j], xr + 16 * j), gv, acc[j]);
    }
#pragma GCC unroll 16
  for (int j = 0; j < RV; j++)
    _mm512_mask_storeu_ps(dw + 16 * j, m[j], _mm512_add_ps(_mm512_maskz_loadu_ps(m[j], dw + 16 * j), acc[j]));
}
#undef RV

#elif defined(TMPL_FWDBF)
/* bf16 inputs and weights, fp32 accumulation (vdpbf16ps: each lane adds the products of one PAIR of
 * consecutive reduction values). x: padded bf16 input; the pair (r, r+1) is one 32-bit broadcast.
 * w: [9][rlen2][COUT][2] bf16, the odd tail of the reduction padded with a zero weight. */
static void CAT(fwdbf, , P, CB)(float *out, int ostr, const uint16_t *x, int xps, long rowH, long rowD, int rlen2,
                                const uint16_t *w, int wstr, const float *bias, const mbsr__epi *e, long eo,
                                __mmask16 lm) {
  __m512 acc[P][CB];
  EPI_INIT(acc, P, CB, bias, e, eo, ostr, lm);
  for (int kd = 0; kd < 3; kd++)
    for (int kh = 0; kh < 3; kh++) {
      const uint16_t *xr = x + kd * rowD + kh * rowH;
      const uint16_t *wr = w + (long)(kd * 3 + kh) * rlen2 * wstr * 2;
      for (int r2 = 0; r2 < rlen2; r2++) {
        __m512i wv[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++)
          wv[c] = c == CB - 1 ? _mm512_maskz_loadu_epi32(lm, wr + ((long)r2 * wstr + 16 * c) * 2)
                              : _mm512_loadu_si512(wr + ((long)r2 * wstr + 16 * c) * 2);
#pragma GCC unroll 24
        for (int p = 0; p < P; p++) {
          int32_t pair;
          memcpy(&pair, xr + (long)p * xps + 2 * r2, 4);
          __m512i xv = _mm512_set1_epi32(pair);
          PIN(xv);
#pragma GCC unroll 4
          for (int c = 0; c < CB; c++) acc[p][c] = _mm512_dpbf16_ps(acc[p][c], (__m512bh)xv, (__m512bh)wv[c]);
        }
      }
    }
  EPI_STORE(acc, P, CB, out, e, eo, ostr, lm);
}
#undef P
#undef CB
#elif defined(TMPL_BWWBF)
/* Weight gradient in bf16 (vdpbf16ps), the reduction over PAIRS of output positions (2j, 2j+1):
 * dw[r][co] += sum_{rows, j} xpair(r, j) . gpair(j, co). g: dout of a row as [j][COUT][2] bf16;
 * x: the padded input row as two parity copies [2][K][CIN][2] (pairs (2k+p, 2k+p+1)); off[i] locates
 * reduction value r0+i (tap kw, channel ci) for j = 0; the pair for j is 2*CIN bf16 further. */
static void CAT(bwwbf, , RB, CB)(float *dw, int cout, const uint16_t *x, long rowHs, const int *off, int xpstep,
                                 const uint16_t *g, long growstr, int nrows, int npairs, __mmask16 lm) {
  __m512 acc[RB][CB];
  long o[RB];
#pragma GCC unroll 24
  for (int i = 0; i < RB; i++) {
    o[i] = off[i];
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) acc[i][c] = _mm512_setzero_ps();
  }
  for (int oh = 0; oh < nrows; oh++) {
    const uint16_t *xr = x + oh * rowHs;
    const uint16_t *gr = g + oh * growstr;
    for (int j = 0; j < npairs; j++) {
      __m512i gv[CB];
#pragma GCC unroll 4
      for (int c = 0; c < CB; c++)
        gv[c] = c == CB - 1 ? _mm512_maskz_loadu_epi32(lm, gr + ((long)j * cout + 16 * c) * 2)
                            : _mm512_loadu_si512(gr + ((long)j * cout + 16 * c) * 2);
      const uint16_t *xj = xr + (long)j * xpstep;
#pragma GCC unroll 24
      for (int i = 0; i < RB; i++) {
        int32_t pair;
        memcpy(&pair, xj + o[i], 4);
        __m512i xv = _mm512_set1_epi32(pair);
        PIN(xv);
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++) acc[i][c] = _mm512_dpbf16_ps(acc[i][c], (__m512bh)xv, (__m512bh)gv[c]);
      }
    }
  }
#pragma GCC unroll 24
  for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) {
      __mmask16 m = c == CB - 1 ? lm : 0xFFFF;
      float *d = dw + (long)i * cout + 16 * c;
      _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), acc[i][c]));
    }
}
#undef RB
#undef CB
#endif


#undef CAT
#undef CAT_
