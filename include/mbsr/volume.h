/* mbsr volume: the one in-memory image type, and its readers/writers.
 *
 * Conventions (also in README):
 *  - voxels are float32; array axes (i,j,k) with i fastest: data[i + nx*(j + ny*k)];
 *  - affine maps voxel indices (0-based, voxel CENTRES) to world coordinates in millimetres,
 *    RAS+ (NIfTI convention). NRRD (LPS, micrometres in Allen files) is converted on read;
 *  - vox[a] is the length of column a of the affine (the voxel size along array axis a). */
#ifndef MBSR_VOLUME_H
#define MBSR_VOLUME_H

#include <stdint.h>

#include "mbsr/core.h"

#define MBSR_MAX_VOXELS ((int64_t)1 << 34) /* 16 Gi voxels: larger dims are refused as absurd */

/* Header metadata carried from the file read to the files written from it (NIfTI terms). The
 * NIfTI reader fills it from the header; the other readers (NRRD, MetaImage, TIFF) and
 * mbsr_volume_new set the defaults: codes 1 (scanner-anat), no descrip or intent, mm and s, one
 * volume. mbsr_volume_new_like and _clone copy it (same grid); the resamplers that change the grid
 * keep only the world space (mbsr_volume_keep_space). */
typedef struct {
  int sform_code, qform_code; /* NIFTI_XFORM_*: 0 unknown, 1 scanner, 2 aligned, 3 talairach, 4 mni, 5 template */
  int xyz_units, time_units;  /* NIFTI_UNITS_* of the file (the affine is in mm whatever they are) */
  double scl_slope, scl_inter; /* as in the file (already applied to the voxels; 0 slope = none) */
  int intent_code;
  double intent_p[3];
  char intent_name[16];
  char descrip[80];          /* "" = none (the writer then writes "mbsr <version>") */
  double tr, toffset;        /* pixdim[4] and toffset (time_units) */
  int64_t nvol;              /* 3-D volumes in the file (dim[4..7] multiplied) */
  int64_t vol_index;         /* which of them this is (0-based) */
} mbsr_volume_meta;

typedef struct {
  int64_t nx, ny, nz;
  double vox[3];
  double affine[4][4];
  float *data;           /* nx*ny*nz floats, 64-byte aligned, owned */
  int src_dtype;         /* NIfTI datatype code of the source (DT_UINT16, ...); 16 (float32) if made here */
  char src_format[16];   /* "nifti1", "nifti2", "nrrd", "tiff", "mbsr" */
  double src_min, src_max; /* value range as read (after scaling) */
  mbsr_volume_meta meta; /* header metadata (see above) */
} mbsr_volume;

/* New zero-filled volume. vox may be NULL (1 mm); affine NULL = diag(vox) with origin 0. */
mbsr_volume *mbsr_volume_new(int64_t nx, int64_t ny, int64_t nz, const double vox[3], const double affine[4][4]);
/* Same grid as ref (dims, vox, affine), zero-filled. */
mbsr_volume *mbsr_volume_new_like(const mbsr_volume *ref);
mbsr_volume *mbsr_volume_clone(const mbsr_volume *v);
void mbsr_volume_free(mbsr_volume *v);
static inline int64_t mbsr_volume_nvox(const mbsr_volume *v) { return v->nx * v->ny * v->nz; }
/* Recompute vox[] from the affine's columns. */
void mbsr_volume_update_vox(mbsr_volume *v);
/* 1 if same dims and affines equal within tol (mm); else 0. */
int mbsr_volume_same_grid(const mbsr_volume *a, const mbsr_volume *b, double tol);
/* Error (MBSR_EMISMATCH, message names both files) if grids differ. */
int mbsr_volume_check_same_grid(const mbsr_volume *a, const char *name_a, const mbsr_volume *b, const char *name_b);
/* Error (MBSR_ENONFINITE, message names file and first bad voxel) if any NaN/Inf. */
int mbsr_volume_check_finite(const mbsr_volume *v, const char *name);
void mbsr_volume_minmax(const mbsr_volume *v, float *mn, float *mx);
/* dst (on another grid) is in src's world space: its sform/qform codes and units are src's; its
 * descrip and intent are reset (the writer writes mbsr's own descrip). */
void mbsr_volume_keep_space(mbsr_volume *dst, const mbsr_volume *src);
/* Name of a NIfTI xform code: "unknown", "scanner", "aligned", "talairach", "mni", "template"
 * (nibabel's names); "invalid" otherwise. */
const char *mbsr_xform_name(int code);

/* ---- reading ----
 * Dispatch: directory or .tif/.tiff -> TIFF stack; .nrrd/.nhdr -> NRRD; .mhd -> MetaImage;
 * *.nii, *.nii.gz -> NIfTI-1/2.
 * TIFF stacks carry no geometry: opts gives the voxel size (mm) of (column, row, slice) and the
 * axis directions as a 3-letter RAS/LPS code (e.g. "LSP": columns go Left, rows Superior, slices
 * Posterior). NULL opts = 1 mm, "RAS"-like identity. */
typedef struct {
  double tiff_vox[3];    /* mm along columns, rows, slices */
  char tiff_orient[4];   /* e.g. "LIP"; "" = identity */
  /* Geometry is validated at read time: the affine must be finite with non-zero, non-parallel
   * columns (NIfTI sform/qform/pixdim, NRRD space directions/spacings/origin, MetaImage
   * TransformMatrix/ElementSpacing/Offset, tiff_vox); otherwise the read fails naming the file
   * (MBSR_EFORMAT; MBSR_EINVAL for a bad tiff_vox). Non-zero: read anyway with a substitute
   * (the next valid NIfTI transform, else diag(voxel sizes, 1 mm where unusable), origin 0 where
   * not finite), a warning and a read note (`mbsr info/convert --allow-bad-geometry`). */
  int allow_bad_geometry;
  /* 4-D (or higher) NIfTI files hold several 3-D volumes. volume_given: read volume `volume`
   * (0-based; out of range: MBSR_ERANGE naming the file and the count). Otherwise a file with more
   * than one volume is refused (MBSR_EINVAL, "<file>: 4-D file with N volumes: choose one (--volume
   * N)"). 3-D files and the other formats hold one volume (volume 0). */
  int volume_given;
  int64_t volume;
} mbsr_read_opts;
int mbsr_volume_read(const char *path, const mbsr_read_opts *opts, mbsr_volume **out);
int mbsr_nifti_read(const char *path, mbsr_volume **out);
/* Every 3-D volume of path in file order, read in one pass (*n of them; a 3-D file or another
 * format gives one; opts->volume is ignored). Free with mbsr_volume_series_free(*vols, *n). */
int mbsr_volume_read_series(const char *path, const mbsr_read_opts *opts, mbsr_volume ***vols, int64_t *n);
void mbsr_volume_series_free(mbsr_volume **vols, int64_t n);
int mbsr_nrrd_read(const char *path, mbsr_volume **out);
int mbsr_tiff_read(const char *path, const mbsr_read_opts *opts, mbsr_volume **out);
/* Orientation code ("RIA": +column Right, +row Inferior, +slice Anterior; "" = "RAS") -> D whose
 * column a is the RAS unit vector of array axis a. MBSR_EINVAL for a malformed code. */
int mbsr_orient_matrix(const char *code, double D[3][3]);
/* The inverse, for an affine: the RAS letter nearest to each of its first three columns (the
 * direction in which i, j, k increase), e.g. "LPS"; code[4] gets a terminating NUL. */
void mbsr_orient_code(const double affine[4][4], char code[4]);
/* MetaImage (.mhd + .raw/.zraw, as Allen archives may carry); LPS like NRRD. */
int mbsr_mhd_read(const char *path, mbsr_volume **out);

/* ---- writing: NIfTI-1 float32 (.nii.gz by default if no extension), sform+qform from the affine,
 * written to a temporary name and renamed when complete. The header keeps v->meta: the sform/qform
 * codes (both 1 when both are 0), descrip (mbsr's own when empty), intent, units (the affine is
 * written in the file's spatial unit, micron/metre/mm; unknown -> mm) and time units. */
int mbsr_volume_write(const char *path, const mbsr_volume *v);
/* n volumes on one grid as one 4-D file (dim[4] = n, pixdim[4] = vols[0]->meta.tr); n = 1 is
 * mbsr_volume_write. MBSR_EMISMATCH if the grids differ. */
int mbsr_volume_write_series(const char *path, mbsr_volume *const *vols, int64_t n);
/* The file name mbsr_volume_write(path) produces: path itself for .nii/.nii.gz, path + ".nii.gz"
 * when there is no recognised extension; MBSR_EUNSUPPORTED for other formats' extensions. */
int mbsr_volume_output_path(const char *path, char *buf, size_t n);

/* How the last read on this thread interpreted its file (units rule, LPS->RAS, 4-D, scaling...),
 * as "; "-separated notes; "" when there was nothing to say. */
const char *mbsr_volume_read_notes(void);
/* Name of a NIfTI datatype code: "uint8", "int16", ..., "float64"; "unknown" otherwise. */
const char *mbsr_dtype_name(int dt);

#endif
