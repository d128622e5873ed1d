/* Test helper (header-only): synthetic AF-like "brains" for the prep/train tests: an ellipsoid
 * with smooth texture + noise, deterministic in (subject, seed). Written as NIfTI or raw NRRD. */
#ifndef MBSR_TEST_PREP_GEN_H
#define MBSR_TEST_PREP_GEN_H
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mbsr/volume.h"

static inline mbsr_volume *gen_brain(int nx, int ny, int nz, double vox_mm, int subject) {
  double vox[3] = {vox_mm, vox_mm, vox_mm};
  mbsr_volume *v = mbsr_volume_new(nx, ny, nz, vox, NULL);
  mbsr_rng *r = mbsr_rng_new(1000 + (uint64_t)subject);
  for (int k = 0; k < nz; k++)
    for (int j = 0; j < ny; j++)
      for (int i = 0; i < nx; i++) {
        double x = 2.0 * i / (nx - 1) - 1, y = 2.0 * j / (ny - 1) - 1, z = 2.0 * k / (nz - 1) - 1;
        double rr = x * x / 0.64 + y * y / 0.5 + z * z / 0.56;
        double val = rr < 1 ? 200 + 80 * sin(7 * x + subject) * cos(6 * y) + 50 * cos(9 * z + 0.5 * subject) : 10;
        v->data[i + (int64_t)nx * (j + (int64_t)ny * k)] = (float)(val + mbsr_rng_normal(r, 4));
      }
  mbsr_rng_free(r);
  return v;
}

/* Raw little-endian float NRRD with explicit mm units. */
static inline int write_nrrd(const char *path, const mbsr_volume *v) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fprintf(f,
          "NRRD0004\ntype: float\ndimension: 3\nspace: left-posterior-superior\nsizes: %lld %lld %lld\n"
          "space directions: (%g,0,0) (0,%g,0) (0,0,%g)\nspace units: \"mm\" \"mm\" \"mm\"\nendian: little\nencoding: raw\n"
          "space origin: (0,0,0)\n\n",
          (long long)v->nx, (long long)v->ny, (long long)v->nz, v->vox[0], v->vox[1], v->vox[2]);
  size_t n = (size_t)mbsr_volume_nvox(v);
  int ok = fwrite(v->data, sizeof(float), n, f) == n;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* dir/sub<k>.nii.gz for k < n (sub1 as NRRD when nrrd_one), plus dir/zz_broken.nii.gz when corrupt. */
static inline int gen_cohort(const char *dir, int n, int nx, double vox_mm, int nrrd_one, int corrupt) {
  char p[4096];
  if (mbsr_mkdir_p(dir)) return -1;
  for (int s = 0; s < n; s++) {
    mbsr_volume *v = gen_brain(nx, nx - 2, nx - 4, vox_mm, s);
    int rc;
    if (nrrd_one && s == 1) {
      snprintf(p, sizeof p, "%s/sub%d.nrrd", dir, s);
      rc = write_nrrd(p, v);
    } else {
      snprintf(p, sizeof p, "%s/sub%d.nii.gz", dir, s);
      rc = mbsr_volume_write(p, v);
    }
    mbsr_volume_free(v);
    if (rc) return -1;
  }
  if (corrupt) {
    snprintf(p, sizeof p, "%s/zz_broken.nii.gz", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    for (int i = 0; i < 50; i++) fputs("\x1f\x8b this is not a gzip stream nor a volume", f);
    fclose(f);
  }
  return 0;
}
#endif
