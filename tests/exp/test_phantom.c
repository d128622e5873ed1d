/* Phantom cohort: deterministic (same seed -> same bytes, independent of the thread count),
 * distinct subjects, AF-like range, brain mask, SYNTHETIC labels in names and headers. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "mbsr/exp.h"
#include "mbsr_test.h"

static mbsr_phantom_opts small(void) {
  mbsr_phantom_opts o;
  mbsr_phantom_opts_default(&o);
  o.vox_mm = 0.1;
  o.dims[0] = 64, o.dims[1] = 80, o.dims[2] = 48;
  return o;
}

static void test_deterministic(void) {
  mbsr_phantom_opts o = small();
  mbsr_volume *a, *b, *ma, *mb;
  omp_set_num_threads(2);
  MT_ASSERT_OK(mbsr_phantom_subject(&o, 3, &a, &ma));
  omp_set_num_threads(1);
  MT_ASSERT_OK(mbsr_phantom_subject(&o, 3, &b, &mb));
  omp_set_num_threads(2);
  MT_ASSERT_INT_EQ(a->nx, 64);
  MT_ASSERT_INT_EQ(a->nz, 48);
  CU_ASSERT(memcmp(a->data, b->data, sizeof(float) * (size_t)mbsr_volume_nvox(a)) == 0);
  CU_ASSERT(memcmp(ma->data, mb->data, sizeof(float) * (size_t)mbsr_volume_nvox(a)) == 0);
  /* a different seed gives a different cohort */
  o.seed = 2;
  mbsr_volume *c;
  MT_ASSERT_OK(mbsr_phantom_subject(&o, 3, &c, NULL));
  CU_ASSERT(memcmp(a->data, c->data, sizeof(float) * (size_t)mbsr_volume_nvox(a)) != 0);
  mbsr_volume_free(a), mbsr_volume_free(b), mbsr_volume_free(c), mbsr_volume_free(ma), mbsr_volume_free(mb);
}

static void test_distinct_and_af_like(void) {
  mbsr_phantom_opts o = small();
  mbsr_volume *v[3], *m[3];
  for (int s = 0; s < 3; s++) MT_ASSERT_OK(mbsr_phantom_subject(&o, s, &v[s], &m[s]));
  int64_t n = mbsr_volume_nvox(v[0]);
  for (int s = 0; s < 3; s++) {
    float mn, mx;
    mbsr_volume_minmax(v[s], &mn, &mx);
    CU_ASSERT(mn >= 0);
    CU_ASSERT(mx > 350 && mx < 700); /* AF-like range (Allen template 0..516) */
    double in = 0, sin_ = 0, sout = 0;
    for (int64_t i = 0; i < n; i++) {
      if (m[s]->data[i] > 0.5f) in++, sin_ += v[s]->data[i];
      else sout += v[s]->data[i];
    }
    double frac = in / n;
    CU_ASSERT(frac > 0.25 && frac < 0.75); /* a brain, with background around it */
    CU_ASSERT(sin_ / in > 5 * sout / (n - in)); /* brain much brighter than background */
  }
  /* pairwise: correlated (same anatomy) but clearly distinct (deformation, bias, intensities) */
  for (int a = 0; a < 3; a++)
    for (int b = a + 1; b < 3; b++) {
      double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, dm = 0;
      for (int64_t i = 0; i < n; i++) {
        double x = v[a]->data[i], y = v[b]->data[i];
        sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
        dm += m[a]->data[i] != m[b]->data[i];
      }
      double r = (n * sab - sa * sb) / sqrt((n * saa - sa * sa) * (n * sbb - sb * sb));
      CU_ASSERT(r > 0.5 && r < 0.97);
      CU_ASSERT(dm / n > 0.005); /* the brain outlines differ */
    }
  for (int s = 0; s < 3; s++) mbsr_volume_free(v[s]), mbsr_volume_free(m[s]);
}

static void test_cohort_files_labelled(void) {
  mbsr_phantom_opts o = small();
  o.n = 2;
  char dir[4096], p[8192];
  snprintf(dir, sizeof dir, "%s/cohort", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_phantom_cohort(&o, dir));
  snprintf(p, sizeof p, "%s/phantom-01_af100um.nii.gz", dir);
  CU_ASSERT(mbsr_file_exists(p));
  mbsr_volume *v;
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &v));
  MT_ASSERT_NEAR(v->vox[0], 0.1, 1e-6);
  MT_ASSERT_NEAR(v->affine[0][3], -0.5 * 63 * 0.1, 1e-5); /* grid centred on the origin */
  mbsr_volume_free(v);
  snprintf(p, sizeof p, "%s/phantom-01_mask100um.nii.gz", dir);
  CU_ASSERT(mbsr_file_exists(p));
  snprintf(p, sizeof p, "%s/SYNTHETIC-COHORT.txt", dir);
  CU_ASSERT(mbsr_file_exists(p));
  /* the NIfTI description field says SYNTHETIC */
  CU_ASSERT(mbsr_test_sh("gzip -dc '%s/phantom-00_af100um.nii.gz' | head -c 348 | grep -a -q SYNTHETIC", dir) == 0);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"deterministic", test_deterministic},
                                         {"distinct_and_af_like", test_distinct_and_af_like},
                                         {"cohort_files_labelled", test_cohort_files_labelled},
                                         {NULL, NULL}};
  return mbsr_test_main("exp_phantom", cases);
}
