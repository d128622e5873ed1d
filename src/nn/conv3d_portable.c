/* Portable direct 3-D convolution row kernels (any x86-64 or other CPU): the same data layout and loop
 * structure as conv3d_avx512.c, written as plain C loops over COUT innermost that the compiler
 * vectorises with the baseline ISA. Used when cpuid reports no AVX-512. */
#include <stddef.h>
#include <string.h>

#include "conv3d_kernels.h"

#define PB 4 /* output positions per block */
#define CBLK 64

void mbsr__conv_fwd_row_portable(const mbsr__conv_row *a) {
  const int cout = a->cout;
  const int xps = a->xps ? a->xps : a->stride * a->cin, rlen = a->rlen ? a->rlen : 3 * a->cin;
  const int nd = a->nd ? a->nd : 3, nh = a->nh ? a->nh : 3, ostr = a->ostr ? a->ostr : cout;
  for (int co0 = 0; co0 < cout; co0 += CBLK) {
    const int nc = cout - co0 < CBLK ? cout - co0 : CBLK;
    for (int o0 = 0; o0 < a->ow; o0 += PB) {
      const int np = a->ow - o0 < PB ? a->ow - o0 : PB;
      float acc[PB][CBLK];
      const mbsr__epi *e = &a->epi;
      for (int p = 0; p < np; p++)
        for (int c = 0; c < nc; c++)
          acc[p][c] = e->init ? e->init[(long)(o0 + p) * ostr + co0 + c] : a->bias ? a->bias[co0 + c] : 0.0f;
      for (int kd = 0; kd < nd; kd++)
        for (int kh = 0; kh < nh; kh++) {
          const float *xr = a->x + kd * a->rowD + kh * a->rowH + (long)o0 * xps;
          const float *wr = a->w + (long)(kd * nh + kh) * rlen * cout + co0;
          for (int r = 0; r < rlen; r++) {
            const float *wv = wr + (long)r * cout;
            for (int p = 0; p < np; p++) {
              const float xv = xr[(long)p * xps + r];
              float *ac = acc[p];
              for (int c = 0; c < nc; c++) ac[c] += xv * wv[c];
            }
          }
        }
      for (int p = 0; p < np; p++)
        for (int c = 0; c < nc; c++) {
          const long at = (long)(o0 + p) * ostr + co0 + c;
          float v = acc[p][c];
          if (e->res) v += e->res[at];
          if (e->relu && !(v > 0.0f)) v = 0.0f;
          if (e->mask && !(e->mask[at] > 0.0f)) v = 0.0f;
          a->out[at] = v;
        }
    }
  }
}

void mbsr__conv_bww_portable(const mbsr__conv_bww *a) {
  const int cout = a->cout;
  for (int oh = 0; oh < a->nrows; oh++)
    for (int o = 0; o < a->ow; o++) {
      const float *xr = a->x + oh * a->rowHs + (long)o * a->xps;
      const float *gr = a->g + ((long)oh * a->ow + o) * cout;
      for (int r = 0; r < a->rlen; r++) {
        const float xv = xr[r];
        float *d = a->dw + (long)r * cout;
        for (int c = 0; c < cout; c++) d[c] += xv * gr[c];
      }
    }
}
