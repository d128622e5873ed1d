/* mbsr decorr: effective resolution by decorrelation analysis (Descloux, Grussmayer & Radenovic,
 * Nat. Methods 16:918, 2019), the algorithm of the MATLAB ImDecorr v1.1.8 getDcorr as described
 * in ../shared/docs/decorrelation.md (an independent implementation; single precision spectra,
 * FFTW3f plans made once per slice shape and reused by every thread).
 *
 * Image convention: a 2-D image is float[nx*ny] with i fastest: im[i + nx*j]. It is the same memory
 * as a MATLAB array of size [nx ny] (column-major), so MATLAB "rows" = i (nx) and "columns" = j (ny);
 * that matters where the MATLAB code uses size(im,1) (the first high-pass width rows/4 and the
 * refinement bound g1 = rows) and for the apodization of non-square images.
 * Frequencies are normalised: 1 = Nyquist along each axis. Resolution = 2 * px / kcMax. */
#ifndef MBSR_DECORR_H
#define MBSR_DECORR_H

#include <stdint.h>

#include "mbsr/volume.h"

/* Edge apodization before the analysis (main_imageDecorr.m applies apodImRect(im, 20)). */
typedef enum {
  /* apodImRect: the 1-D taper is built for the SHORTER side; the longer side uses that taper
   * resized bilinearly (MATLAB imresize) to its length. Same as AXIS for square images. Default. */
  MBSR_DECORR_APOD_MATLAB = 0,
  /* each axis gets its own taper over its outer apod_px pixels (decorrelation.md read literally) */
  MBSR_DECORR_APOD_AXIS = 1,
  MBSR_DECORR_APOD_NONE = 2
} mbsr_decorr_apod;

typedef struct {
  int nr;              /* radii per curve (default 50; < 30 is raised to 30, as the MATLAB code does) */
  int ng;              /* high-pass filters (default 10; < 5 is raised to 5) */
  double rmin, rmax;   /* radius range of the first pass (default 0, 1) */
  double px;           /* pixel size, any unit (default 0: 1 for 2-D images, the in-plane voxel size for volumes) */
  int apod_px;         /* apodization border in pixels (default 20) */
  mbsr_decorr_apod apod;
  /* ---- volume analysis ---- */
  int axis;            /* slices along array axis 0 (x), 1 (y) or 2 (z, default) */
  int step;            /* every step-th slice (default 1) */
  double fg_rel;       /* foreground voxel: value > fg_rel * (99th percentile of the volume) (default 0.1) */
  double min_fg;       /* a slice is analysed when >= min_fg of its voxels are foreground (default 0.25) */
  int keep_curves;     /* volume: keep every slice's curves (default 0) */
} mbsr_decorr_opts;
void mbsr_decorr_opts_default(mbsr_decorr_opts *o);

typedef struct {
  double kc_max;      /* highest peak frequency among all curves with amplitude >= 0.05 (0 if none) */
  double A0;          /* amplitude of the local maximum of d0 (the SNR estimate) */
  double k0;          /* position of that maximum */
  double a_max;       /* amplitude of the curve that gave kc_max */
  double resolution;  /* 2 * px / kc_max (INFINITY when kc_max == 0) */
  int nx, ny;         /* analysed size (odd, after dropping a last row/column) */
} mbsr_decorr_result;

/* Curves for plotting (Figure 6C of the paper). Curve c of d is d[c*nr + k]:
 * c = 0 .. ng      first pass (filter widths g[0] = rows/4, then ng widths from 2/k0 down to 0.15), radii r1;
 * c = ng+1 .. 2ng  refined pass, radii r2. kc[c], amp[c]: local maximum of curve c (before the 0.05 cut). */
typedef struct {
  int nr, ng;
  double *r1, *d0;     /* nr each: radii of d0 and the first pass; d0 = no high-pass */
  double *r2;          /* nr */
  double *d;           /* (2*ng+1) * nr */
  double *g, *kc, *amp; /* 2*ng+1 each */
} mbsr_decorr_curves;
mbsr_decorr_curves *mbsr_decorr_curves_new(int nr, int ng); /* nr, ng after the raising rules */
void mbsr_decorr_curves_free(mbsr_decorr_curves *c);

/* 2-D analysis of a float image (see the convention above); apodization per o->apod first.
 * curves may be NULL; else it must come from mbsr_decorr_curves_new with the same (effective) nr, ng.
 * Errors: MBSR_EINVAL (sides < 3, bad options), MBSR_ENONFINITE (NaN/Inf pixel), MBSR_ENOMEM. */
int mbsr_decorr_2d(const float *im, int64_t nx, int64_t ny, const mbsr_decorr_opts *o, mbsr_decorr_result *res,
                   mbsr_decorr_curves *curves);

/* Per-slice analysis of a volume along o->axis (OpenMP over slices).
 * Slice s along axis z is the image (i, j) at k = s (rows = i); along y it is (i, k); along x (j, k).
 * Background rule: thr = o->fg_rel * P99(volume); a slice is analysed only when the fraction of its
 * voxels > thr is >= o->min_fg (and only every o->step-th slice). Summary: quartiles (R type 7,
 * linear interpolation) over the analysed slices; a slice with kc_max = 0 has resolution +inf. */
typedef struct {
  int axis;
  int64_t nslices;       /* along the axis */
  int64_t nused;         /* analysed slices */
  double px;             /* pixel size used (mean of the two in-plane voxel sizes unless o->px > 0) */
  int px_anisotropic;    /* the two in-plane voxel sizes differ (> 0.1%) */
  double threshold;      /* foreground threshold used */
  int *used;             /* [nslices] 1 if analysed */
  double *fg_frac;       /* [nslices] foreground fraction */
  mbsr_decorr_result *slice; /* [nslices]; valid where used */
  mbsr_decorr_curves **curves; /* [nslices] when o->keep_curves (NULL entries for unused slices) */
  double kc_median, kc_q1, kc_q3, kc_min, kc_max;
  double res_median, res_q1, res_q3;   /* +inf when the quantile falls on a slice without a peak */
  double A0_median;
  int64_t n_no_peak;     /* analysed slices with kc_max = 0 */
  double seconds;
} mbsr_decorr_summary;
int mbsr_decorr_volume(const mbsr_volume *v, const mbsr_decorr_opts *o, mbsr_decorr_summary **out);
void mbsr_decorr_summary_free(mbsr_decorr_summary *s);

/* ---- pieces, exposed for tests ---- */
/* MATLAB linspace(a, b, n): y[k] = a + k*(b-a)/(n-1), y[n-1] = b exactly (n == 1 gives b). */
void mbsr_decorr_linspace(double a, double b, int n, double *y);
/* ImDecorr's local-maximum rule on d[0..n-1]; returns the 0-based index (amplitude = d[index]). */
int mbsr_decorr_local_max(const double *d, int n);
/* floor(1000*x)/1000 as the MATLAB code evaluates it on single-precision values; NaN gives 0. */
double mbsr_decorr_trunc3(double num, double c1, double c2);
/* The apodization mask (nx*ny, i fastest) for an image of that size: border px pixels, mode. */
int mbsr_decorr_apod_mask(int64_t nx, int64_t ny, int px, mbsr_decorr_apod mode, double *mask);

#endif
