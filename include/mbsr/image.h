/* mbsr image: resampling (block average down, Keys / B-spline / linear up), normalisation,
 * brain masks and image-quality metrics (RMSE, PSNR, 3-D SSIM). */
#ifndef MBSR_IMAGE_H
#define MBSR_IMAGE_H

#include "mbsr/volume.h"

/* Block-average down-sampling by integer factors f[3] (>=1) along array axes.
 * Remainder rule: trailing voxels that do not fill a whole block are CROPPED
 * (out n = floor(n/f)). Affine: columns scaled by f, origin moved to the centre of block 0:
 * new_origin = old_affine * ((f-1)/2, ...). */
int mbsr_downsample_block(const mbsr_volume *in, const int f[3], mbsr_volume **out);

typedef enum { MBSR_INTERP_KEYS = 0, MBSR_INTERP_BSPLINE = 1, MBSR_INTERP_LINEAR = 2 } mbsr_interp;
int mbsr_interp_parse(const char *name, mbsr_interp *out); /* "keys"|"cubic"|"bspline"|"linear" */
const char *mbsr_interp_name(mbsr_interp m);

/* Up-sample `in` onto the grid of `grid` (dims + affine; grid->data unused).
 * The mapping between the two grids comes from their affines and must be axis-aligned
 * (per-axis scale and shift; an error otherwise). Keys: a=-0.5, mirrored (symmetric) boundary,
 * identical to MATLAB imresize 'cubic' for the block-centre mapping. B-spline: cubic with the
 * scipy.ndimage prefilter. Linear: clamped. */
int mbsr_upsample_like(const mbsr_volume *in, const mbsr_volume *grid, mbsr_interp m, mbsr_volume **out);
/* Up-sample by integer factors onto the grid a block-average by f would have come from
 * (dims n*f, affine consistent with mbsr_downsample_block). */
int mbsr_upsample_factor(const mbsr_volume *in, const int f[3], mbsr_interp m, mbsr_volume **out);

/* Normalise in place to [0,1]: lo/hi = the plo and phi percentiles (0 and 100 = min/max, the
 * paper's), values clipped. Stores the used lo, hi (for undoing: x*(hi-lo)+lo). */
int mbsr_normalize(mbsr_volume *v, double plo, double phi, double *lo, double *hi);
/* Percentile (0..100) of the values (optionally inside mask>0.5). */
double mbsr_percentile(const mbsr_volume *v, const mbsr_volume *mask, double pct);

/* Brain mask (1/0 floats on the same grid): voxels > thr, largest connected component,
 * holes filled (background not connected to the border becomes brain). thr < 0 = Otsu. */
int mbsr_mask_threshold(const mbsr_volume *v, double thr, mbsr_volume **mask);
/* Mask from a label volume: label != 0. */
int mbsr_mask_from_labels(const mbsr_volume *labels, mbsr_volume **mask);

typedef struct {
  double rmse, mse, psnr, ssim;
  double data_range;
  int64_t n; /* voxels evaluated */
} mbsr_metrics;
/* RMSE/PSNR over mask voxels (all if mask NULL); SSIM = 3-D Gaussian SSIM (sigma 1.5, 11 taps,
 * K1 0.01, K2 0.03, reflect borders, population covariance, mean over the interior cropped by 5
 * voxels, as scikit-image) averaged over mask voxels when a mask is given. data_range <= 0 means
 * max(ref)-min(ref). Grids must match (MBSR_EMISMATCH otherwise). */
int mbsr_metrics_compute(const mbsr_volume *test, const mbsr_volume *ref, const mbsr_volume *mask,
                         double data_range, mbsr_metrics *out);
/* SSIM map helper on raw arrays (x fastest), returns mean SSIM (see above) or NaN on error. */
double mbsr_ssim3d(const float *a, const float *b, int64_t nx, int64_t ny, int64_t nz, double data_range,
                   const float *mask);

#endif
