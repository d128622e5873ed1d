/* AVX2+FMA register-blocked micro-kernels, instantiated by conv3d_avx2.c once per block shape (the same
 * scheme as conv3d_avx512_tmpl.h with 8-wide ymm vectors and 16 registers). Included with TMPL2_FWD
 * (P, CB) or TMPL2_BWW (RB, CB) defined; COUT is a multiple of 8 here. */
#define CAT2_(a, b, c) a##_##b##_##c
#define CAT2(a, b, c) CAT2_(a, b, c)

#if defined(TMPL2_FWD)
static void CAT2(fwd2, P, CB)(float *out, int ostr, const float *x, int xps, long rowH, long rowD, int nd, int nh,
                             int rlen, const float *w, int wstr, const float *bias, const mbsr__epi *e, long eo) {
  __m256 acc[P][CB];
#pragma GCC unroll 4
  for (int c = 0; c < CB; c++) {
    __m256 b = bias ? _mm256_loadu_ps(bias + 8 * c) : _mm256_setzero_ps();
#pragma GCC unroll 12
    for (int p = 0; p < P; p++) acc[p][c] = e->init ? _mm256_loadu_ps(e->init + eo + (long)p * ostr + 8 * c) : b;
  }
  for (int kd = 0; kd < nd; kd++)
    for (int kh = 0; kh < nh; kh++) {
      const float *xr = x + kd * rowD + kh * rowH;
      const float *wr = w + (long)(kd * nh + kh) * rlen * wstr;
      for (int r = 0; r < rlen; r++) {
        __m256 wv[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++) wv[c] = _mm256_loadu_ps(wr + (long)r * wstr + 8 * c);
#pragma GCC unroll 12
        for (int p = 0; p < P; p++) {
          __m256 xv = _mm256_broadcast_ss(xr + (long)p * xps + r);
          if (CB > 1) PIN2(xv);
#pragma GCC unroll 4
          for (int c = 0; c < CB; c++) acc[p][c] = _mm256_fmadd_ps(xv, wv[c], acc[p][c]);
        }
      }
    }
#pragma GCC unroll 12
  for (int p = 0; p < P; p++)
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) {
      const long at = (long)p * ostr + 8 * c;
      __m256 v = acc[p][c];
      if (e->res) v = _mm256_add_ps(v, _mm256_loadu_ps(e->res + eo + at));
      if (e->relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
      if (e->mask) v = _mm256_and_ps(v, _mm256_cmp_ps(_mm256_loadu_ps(e->mask + eo + at), _mm256_setzero_ps(), _CMP_GT_OQ));
      _mm256_storeu_ps(out + at, v);
    }
}
#undef P
#undef CB

#elif defined(TMPL2_BWW)
static void CAT2(bww2, RB, CB)(float *dw, int cout, const float *x, int xps, long rowHs, const float *g, int nrows,
                              int ow_n) {
  __m256 acc[RB][CB];
#pragma GCC unroll 12
  for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) acc[i][c] = _mm256_setzero_ps();
  for (int oh = 0; oh < nrows; oh++) {
    const float *xr = x + oh * rowHs;
    const float *gr = g + (long)oh * ow_n * cout;
    for (int o = 0; o < ow_n; o++) {
      __m256 gv[CB];
#pragma GCC unroll 4
      for (int c = 0; c < CB; c++) gv[c] = _mm256_loadu_ps(gr + (long)o * cout + 8 * c);
#pragma GCC unroll 12
      for (int i = 0; i < RB; i++) {
        __m256 xv = _mm256_broadcast_ss(xr + (long)o * xps + i);
        if (CB > 1) PIN2(xv);
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++) acc[i][c] = _mm256_fmadd_ps(xv, gv[c], acc[i][c]);
      }
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
    for (int c = 0; c < CB; c++) {
      float *d = dw + (long)i * cout + 8 * c;
      _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[i][c]));
    }
}
#undef RB
#undef CB
#endif

#undef CAT2
#undef CAT2_
