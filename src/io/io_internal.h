/* io module internals shared by the format readers (not a public header). */
#ifndef MBSR_IO_INTERNAL_H
#define MBSR_IO_INTERNAL_H

#include "mbsr/volume.h"

/* NIfTI datatype codes (nifti1.h values), so that readers need not include nifti headers. */
enum {
  MBSR__DT_UINT8 = 2, MBSR__DT_INT16 = 4, MBSR__DT_INT32 = 8, MBSR__DT_FLOAT32 = 16, MBSR__DT_FLOAT64 = 64,
  MBSR__DT_INT8 = 256, MBSR__DT_UINT16 = 512, MBSR__DT_UINT32 = 768, MBSR__DT_INT64 = 1024, MBSR__DT_UINT64 = 1280
};

/* Append one interpretation note for the current read (see mbsr_volume_read_notes). */
void mbsr__note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mbsr__notes_clear(void);
/* Convert n samples of NIfTI datatype dt at src (native byte order) to float, y = x*slope + inter;
 * records the range of the converted values. Returns 0 or MBSR_EUNSUPPORTED. */
int mbsr__convert(float *dst, const void *src, int64_t n, int dt, double slope, double inter, double *mn, double *mx);

/* ---- geometry validation at read time ----
 * A voxel-to-world affine (mm) is usable when every entry of the top three rows is finite with
 * |x| <= MBSR__GEOM_MAX, every column (voxel axis) has a length in [MBSR__VOX_MIN, MBSR__GEOM_MAX],
 * and the unit columns are not (nearly) coplanar (|det| >= 1e-6). */
#define MBSR__GEOM_MAX 1e9
#define MBSR__VOX_MIN 1e-9
/* "" when A is usable, else what is wrong (e.g. "the voxel size along axis 1 is 0"). */
const char *mbsr__affine_problem(const double A[4][4], char *buf, size_t n);
/* Check the affine a reader built for `path` from `source` (e.g. "the sform", "space directions").
 * Bad and !allow: MBSR_EFORMAT "<path>: bad geometry in <source>: <problem> (...)". Bad and allow:
 * A is replaced by a usable substitute (diag of the usable column lengths, 1 mm for the others;
 * origin 0 where unusable), a warning and a read note say so, and 0 is returned. */
int mbsr__check_geometry(const char *path, double A[4][4], const char *source, int allow);

/* The readers with the geometry override (the public mbsr_*_read are the strict ones). */
/* NIfTI: opts may be NULL (strict geometry, a one-volume file); see mbsr_read_opts. */
int mbsr__nifti_read(const char *path, const mbsr_read_opts *opts, mbsr_volume **out);
int mbsr__nifti_read_series(const char *path, const mbsr_read_opts *opts, mbsr_volume ***vols, int64_t *n);
int mbsr__nrrd_read(const char *path, int allow_bad_geometry, mbsr_volume **out);
int mbsr__mhd_read(const char *path, int allow_bad_geometry, mbsr_volume **out);

#endif
