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
/* Down-sampling with a slice profile (src/image/profile.c), on the grid of mbsr_downsample_block:
 * boxcar = the block average; gaussian = a Gaussian profile of FWHM f HR voxels along each axis with
 * f > 1 (sigma = f / (2 sqrt(2 ln 2))), sampled at the block centres b f + (f-1)/2: taps |t| <= 4 sigma
 * + 0.5 voxels around the centre, weights normalised to 1, half-sample mirror beyond the edges
 * (scipy.ndimage mode 'reflect'). */
typedef enum { MBSR_PROFILE_BOXCAR = 0, MBSR_PROFILE_GAUSSIAN = 1 } mbsr_profile;
int mbsr_profile_parse(const char *name, mbsr_profile *out); /* "boxcar" | "gaussian" */
const char *mbsr_profile_name(mbsr_profile p);
int mbsr_downsample(const mbsr_volume *in, const int f[3], mbsr_profile p, mbsr_volume **out);

/* Axis permutation with reversals (src/image/permute.c): new array axis d is old axis perm[d], reversed
 * when bit d of flips is set; the affine's columns follow (reversed axes move the origin to their last
 * voxel), so every voxel keeps its world position. mbsr_perm_inverse gives the transform that undoes it. */
int mbsr_volume_permute(const mbsr_volume *in, const int perm[3], int flips, mbsr_volume **out);
void mbsr_perm_inverse(const int perm[3], int flips, int inv[3], int *inv_flips);

typedef enum { MBSR_INTERP_KEYS = 0, MBSR_INTERP_BSPLINE = 1, MBSR_INTERP_LINEAR = 2 } mbsr_interp;
int mbsr_interp_parse(const char *name, mbsr_interp *out); /* "keys"|"cubic"|"bspline"|"linear" */
const char *mbsr_interp_name(mbsr_interp m);

/* Up-sample `in` onto the grid of `grid` (dims + affine; grid->data unused); the result has exactly
 * grid's dims and affine. The index map x_in = s*o + t per axis comes from the two affines
 * (mbsr_grid_map) and must be axis-aligned (MBSR_EUNSUPPORTED otherwise: permuted/rotated grids).
 * Keys: a=-0.5, half-sample mirrored (symmetric) border; on a grid made by mbsr_downsample_block this
 * IS MATLAB imresize 'cubic' (s = 1/f, t = (1/f - 1)/2 is imresize's pixel-centre map).
 * B-spline: cubic with the scipy.ndimage prefilter, whole-sample mirror border (scipy mode 'mirror'),
 * evaluated at the GEOMETRIC positions above. This differs from scipy.ndimage.zoom(order=3), whose
 * corner-aligned map x = o*(n_in-1)/(n_out-1) would not put the result on the HR grid (use
 * mbsr_zoom_scipy for that exact behaviour). Linear: clamped to the edge samples.
 * A target coarser than the input (s > 1) is interpolated without antialiasing. */
int mbsr_upsample_like(const mbsr_volume *in, const mbsr_volume *grid, mbsr_interp m, mbsr_volume **out);
/* Up-sample by integer factors onto the grid a block-average by f would have come from
 * (dims n*f, affine consistent with mbsr_downsample_block). */
int mbsr_upsample_factor(const mbsr_volume *in, const int f[3], mbsr_interp m, mbsr_volume **out);

/* ---- the intensity contract (one definition for prep, training, the sweep's evaluation and apply) ----
 * A network sees y = clip((x - lo) / (hi - lo), 0, 1) where lo, hi are the plo and phi percentiles of
 * the volume it sees: the LR volume up-sampled onto the HR grid. Everything needed is therefore
 * computable from a user's LR volume alone. The training target (HR) is mapped with the SAME lo, hi.
 * Default percentiles 0.1, 99.9: robust to saturated voxels, and to the negative Keys ringing around
 * them (which drives the minimum of the real STPT brain to -227 against a background of 5);
 * 0, 100 = exact min/max (the paper's).
 * mbsr_norm_fit: lo, hi of v (MBSR_ERANGE when hi <= lo: a constant volume).
 * mbsr_norm_map: y[i] = clip((x[i] - lo) / (hi - lo), 0, 1); y may be x. */
int mbsr_norm_fit(const mbsr_volume *v, double plo, double phi, double *lo, double *hi);
void mbsr_norm_map(const float *x, float *y, int64_t n, double lo, double hi);
/* fit + map in place; stores the used lo, hi (undo inside [lo, hi]: x*(hi-lo)+lo). */
int mbsr_normalize(mbsr_volume *v, double plo, double phi, double *lo, double *hi);
/* Percentile (0..100) of the values (optionally inside mask>0.5). */
double mbsr_percentile(const mbsr_volume *v, const mbsr_volume *mask, double pct);

/* Brain mask (1/0 floats on the same grid): voxels > thr, largest connected component,
 * holes filled (background not connected to the border becomes brain). thr < 0 = Otsu. */
int mbsr_mask_threshold(const mbsr_volume *v, double thr, mbsr_volume **mask);
/* Otsu threshold as skimage.filters.threshold_otsu(v, nbins=256): the bin centre (256 bins over
 * [min, max]) maximising the between-class variance; foreground is v > threshold. */
double mbsr_otsu_threshold(const mbsr_volume *v);
/* Mask from a label volume: label != 0. */
int mbsr_mask_from_labels(const mbsr_volume *labels, mbsr_volume **mask);

typedef struct {
  double rmse, mse, psnr, ssim;
  double data_range;
  int64_t n; /* voxels evaluated */
} mbsr_metrics;
/* RMSE/PSNR over mask voxels (mask > 0.5; all if mask NULL); SSIM = 3-D Gaussian SSIM (sigma 1.5,
 * 11 taps, K1 0.01, K2 0.03, reflect borders, population covariance, mean over the interior cropped
 * by 5 voxels, as scikit-image). With a mask the SSIM mean runs over the voxels that are in BOTH the
 * cropped interior and the mask (local statistics still use every voxel under the window).
 * data_range <= 0 means max(ref)-min(ref) over the whole ref. Grids must match (MBSR_EMISMATCH
 * otherwise), values must be finite (MBSR_ENONFINITE). PSNR is +inf when MSE = 0; ssim is NaN (with a
 * warning) when a dimension is < 11 or no mask voxel lies in the interior. */
int mbsr_metrics_compute(const mbsr_volume *test, const mbsr_volume *ref, const mbsr_volume *mask,
                         double data_range, mbsr_metrics *out);
/* ---- calibration of a voxel-wise uncertainty (src/image/calib.c) ----
 * Over the mask voxels (mask > 0.5; all if NULL), with err = |test - ref| (per voxel, in double):
 * corr = Pearson's r of sd with err (NaN when either is constant); deciles: the voxels ordered by sd
 * (ties by voxel index), decile b = ranks [floor(b n / 10), floor((b + 1) n / 10)), each with its
 * voxel count, lowest and highest sd, mean sd and mean err. Grids must match (MBSR_EMISMATCH), sd must
 * be finite and >= 0 (MBSR_ENONFINITE), at least 10 voxels (MBSR_EINVAL). */
#define MBSR_SD_BINS 10
typedef struct {
  double corr;
  int64_t n;
  int64_t count[MBSR_SD_BINS];
  double sd_lo[MBSR_SD_BINS], sd_hi[MBSR_SD_BINS], sd_mean[MBSR_SD_BINS], err_mean[MBSR_SD_BINS];
} mbsr_sd_calibration;
int mbsr_sd_calibrate(const mbsr_volume *test, const mbsr_volume *ref, const mbsr_volume *sd, const mbsr_volume *mask,
                      mbsr_sd_calibration *out);
/* SSIM on raw arrays (x fastest): the mean SSIM defined above (mask may be NULL), or NaN with the
 * error recorded (a dimension < 11, bad data range, empty interior mask, out of memory). */
double mbsr_ssim3d(const float *a, const float *b, int64_t nx, int64_t ny, int64_t nz, double data_range,
                   const float *mask);

/* ---- raw-array resampling: the separable machinery under the volume functions, exposed for parity
 * tests and for callers without a volume. Arrays are x fastest: a[i + n[0]*(j + n[1]*k)]. ---- */
typedef enum {
  MBSR_BORDER_SYMMETRIC = 0, /* half-sample mirror (d c b a | a b c d | d c b a): MATLAB imresize */
  MBSR_BORDER_MIRROR = 1,    /* whole-sample mirror (d c b | a b c d | c b a): scipy mode 'mirror' */
  MBSR_BORDER_NEAREST = 2,   /* clamp to the edge sample */
  MBSR_BORDER_CONSTANT = 3   /* scipy mode 'constant', cval 0: an output whose coordinate leaves [0, n-1]
                                (exact double comparison) is 0; taps beyond an edge read the whole-sample
                                mirror (B-spline prefilter: mirror boundary, as scipy) */
} mbsr_border;
/* out (nout) = in (nin) interpolated at input coordinate x = scale[a]*o + shift[a] (0-based, in
 * double) of every output index o along each array axis a. Keys: a = -0.5, 4 taps, weights
 * normalised to sum 1 (as imresize); B-spline: cubic, prefiltered along each axis (poles of the cubic
 * B-spline, mirror boundary as scipy.ndimage.spline_filter); linear: 2 taps. Separable passes, OpenMP. */
int mbsr_resample_raw(const float *in, const int64_t nin[3], float *out, const int64_t nout[3],
                      const double scale[3], const double shift[3], mbsr_interp m, mbsr_border border);
/* scipy.ndimage.zoom(x, zoom, order=3) with its defaults (mode='constant', cval=0, grid_mode=False:
 * x = o * (nin-1)/(nout-1), corner-aligned) onto nout, including scipy's quirk that an output whose
 * rounded coordinate exceeds nin-1 by an ulp becomes 0. */
int mbsr_zoom_scipy(const float *in, const int64_t nin[3], float *out, const int64_t nout[3]);
/* MATLAB imresize3(x, nout, 'cubic') for nout >= nin (no antialiasing): Keys a = -0.5, pixel-centre
 * mapping u = x/s + 0.5(1 - 1/s) with s = nout/nin, symmetric border. */
int mbsr_imresize_keys(const float *in, const int64_t nin[3], float *out, const int64_t nout[3]);
/* Keys cubic convolution kernel, a = -0.5 (w(0.5) = 0.5625). */
double mbsr_keys_weight(double x);

/* Grid-to-grid index map from two affines: x_in = scale[a]*o + shift[a] for an output index o of
 * `grid`. MBSR_EUNSUPPORTED (naming both grids) when the map is not axis-aligned. */
int mbsr_grid_map(const double in_affine[4][4], const double grid_affine[4][4], double scale[3], double shift[3]);

#endif
