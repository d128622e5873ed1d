/* The SR contract end to end (issue: evaluation scaled the network's input differently from training).
 * Three SYNTHETIC subjects with saturated voxels (a few spots 30x the tissue, as in the real STPT
 * brain) go through `mbsr prep` and `mbsr train` (the CLI, as a user runs them); then, on the held-out
 * subject:
 *  1. prep's test patches ARE the contract applied to the subject's volumes: input patch =
 *     clip((keys(LR) - lo)/(hi - lo), 0, 1), target = clip((HR - lo)/(hi - lo), 0, 1), lo/hi the
 *     file's percentiles of keys(LR) -- i.e. what apply computes from the LR volume alone;
 *  2. the sweep's path (checkpoint -> mbsr_apply on the LR volume) and 3. `mbsr apply` (CLI) both
 *     equal one forward pass of the whole volume at that training scale, mapped back, within 1e-5 of
 *     hi - lo;
 *  4. the old behaviour (re-normalising the input by its own min/max) differs by far more: the test
 *     would have caught the bug. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/exp.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr_test.h"

static double maxdiff(const mbsr_volume *a, const mbsr_volume *b, double scale) {
  double m = 0;
  for (int64_t i = 0; i < mbsr_volume_nvox(a); i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]) / scale);
  return m;
}

/* forward pass of the whole volume x (already on the HR grid) at the scale lo/hi, mapped back */
static mbsr_volume *forward_at(const char *ckpt, const mbsr_volume *x, double lo, double hi, int clip) {
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(ckpt, 1, (int)x->nz, (int)x->ny, (int)x->nx, &m, NULL));
  mbsr_volume *n = mbsr_volume_clone(x), *out = mbsr_volume_new_like(x);
  const int64_t nv = mbsr_volume_nvox(x);
  for (int64_t i = 0; i < nv; i++) {
    double t = ((double)x->data[i] - lo) / (hi - lo);
    n->data[i] = (float)(clip ? (t < 0 ? 0 : t > 1 ? 1 : t) : t);
  }
  MT_ASSERT_OK(mbsr_model_forward(m, n->data, 1, out->data));
  for (int64_t i = 0; i < nv; i++)
    out->data[i] = clip ? (float)((double)x->data[i] + (hi - lo) * ((double)out->data[i] - (double)n->data[i]))
                        : (float)(lo + (hi - lo) * (double)out->data[i]);
  mbsr_volume_free(n);
  mbsr_model_free(m);
  return out;
}

static void read_i32(hid_t f, const char *name, int32_t *buf) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  CU_ASSERT_FATAL(d >= 0);
  CU_ASSERT(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  H5Dclose(d);
}

static void test_contract_prep_train_apply(void) {
  const char *t = mbsr_test_tmpdir(), *bin = mbsr_test_bin();
  char dir[4200], h5[4200], ev[4200], run[4200];
  snprintf(dir, sizeof dir, "%s/subjects", t);
  snprintf(h5, sizeof h5, "%s/p.h5", t);
  snprintf(ev, sizeof ev, "%s/eval", t);
  snprintf(run, sizeof run, "%s/run", t);
  MT_ASSERT_OK(mbsr_mkdir_p(dir));
  mbsr_phantom_opts po;
  mbsr_phantom_opts_default(&po);
  po.vox_mm = 0.1;
  po.dims[0] = 40, po.dims[1] = 48, po.dims[2] = 32;
  for (int s = 0; s < 3; s++) {
    mbsr_volume *img = NULL, *mask = NULL;
    MT_ASSERT_OK(mbsr_phantom_subject(&po, s, &img, &mask));
    /* two saturated voxels inside the brain, 30x the brightest tissue (fewer than 0.1 % of the voxels
     * after block averaging and Keys up-sampling, as the real STPT brain's: p99.9 569, max 14580) */
    int hot = 0;
    for (int64_t i = mbsr_volume_nvox(img) / 3; i < mbsr_volume_nvox(img) && hot < 2; i += 9973)
      if (mask->data[i] > 0.5f) img->data[i] = 15000.0f, hot++;
    char p[4400];
    snprintf(p, sizeof p, "%s/s%d.nii.gz", dir, s);
    MT_ASSERT_OK(mbsr_volume_write(p, img));
    mbsr_volume_free(img), mbsr_volume_free(mask);
  }
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && '%s' prep --inputs '%s' --out '%s' --pairs 200-100 --patch 9 --patches-per-volume 30 "
                                "--split 67,0,33 --test-subjects 1 --eval-dir '%s' --seed 5 > prep.log 2>&1",
                                t, bin, dir, h5, ev),
                   0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'looks saturated' '%s/prep.log'", t), 0); /* the warning */
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && OMP_NUM_THREADS=2 '%s' train --data '%s' --pair 200-100 --out '%s' --channels 4 "
                                "--blocks 2 --global-residual --batch 4 --epochs 3 --patience 0 --seed 2 > train.log 2>&1",
                                t, bin, h5, run),
                   0);
  /* the held-out subject and its volumes (as read: intensities in acquisition units) */
  hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  int32_t split[3], subj[30], ctr[90];
  read_i32(f, "/subject_split", split);
  int test = -1;
  for (int s = 0; s < 3; s++) test = split[s] == 2 ? s : test;
  CU_ASSERT_FATAL(test >= 0);
  double pct[2];
  hid_t a = H5Aopen(f, "norm_percentiles", H5P_DEFAULT);
  CU_ASSERT(H5Aread(a, H5T_NATIVE_DOUBLE, pct) >= 0);
  H5Aclose(a);
  MT_ASSERT_NEAR(pct[0], 0.1, 1e-12);
  MT_ASSERT_NEAR(pct[1], 99.9, 1e-12);
  char p[4400];
  mbsr_volume *lr = NULL, *hr = NULL, *up = NULL;
  snprintf(p, sizeof p, "%s/s%d_200um.nii.gz", ev, test);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &lr));
  snprintf(p, sizeof p, "%s/s%d_100um.nii.gz", ev, test);
  MT_ASSERT_OK(mbsr_volume_read(p, NULL, &hr));
  MT_ASSERT_OK(mbsr_upsample_like(lr, hr, MBSR_INTERP_KEYS, &up));
  double lo, hi;
  MT_ASSERT_OK(mbsr_norm_fit(up, pct[0], pct[1], &lo, &hi));
  float mn, mx;
  mbsr_volume_minmax(up, &mn, &mx);
  printf("\n  held-out subject s%d: input lo %.2f hi %.2f, max %.0f (min/max would squeeze the tissue into %.3f of [0,1])\n", test,
         lo, hi, mx, (hi - mn) / (mx - mn));
  CU_ASSERT(mx > 2 * hi);
  /* 1. prep's test patches = the contract applied to these volumes */
  {
    read_i32(f, "/pairs/200-100/test/subject", subj);
    read_i32(f, "/pairs/200-100/test/center", ctr);
    hid_t di = H5Dopen2(f, "/pairs/200-100/test/input", H5P_DEFAULT), dt = H5Dopen2(f, "/pairs/200-100/test/target", H5P_DEFAULT);
    static float pin[30 * 729], ptg[30 * 729];
    CU_ASSERT(H5Dread(di, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pin) >= 0);
    CU_ASSERT(H5Dread(dt, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptg) >= 0);
    H5Dclose(di), H5Dclose(dt);
    double dmax = 0;
    for (int k = 0; k < 30; k++) {
      CU_ASSERT(subj[k] == test);
      for (int z = 0; z < 9; z++)
        for (int y = 0; y < 9; y++)
          for (int x = 0; x < 9; x++) {
            int64_t q = (ctr[3 * k] - 4 + x) + up->nx * ((ctr[3 * k + 1] - 4 + y) + up->ny * (int64_t)(ctr[3 * k + 2] - 4 + z));
            double ei = (up->data[q] - lo) / (hi - lo), et = (hr->data[q] - lo) / (hi - lo);
            ei = ei < 0 ? 0 : ei > 1 ? 1 : ei, et = et < 0 ? 0 : et > 1 ? 1 : et;
            dmax = fmax(dmax, fabs(pin[k * 729 + x + 9 * (y + 9 * z)] - ei));
            dmax = fmax(dmax, fabs(ptg[k * 729 + x + 9 * (y + 9 * z)] - et));
          }
    }
    printf("  prep's 30 test patches vs the contract applied to the eval volumes: max |diff| %.2e\n", dmax);
    CU_ASSERT(dmax < 1e-5);
  }
  H5Fclose(f);
  /* 2. the sweep's path, 3. the CLI, against one forward pass at the training scale */
  char ckpt[4400], out[4400], like[4400];
  snprintf(ckpt, sizeof ckpt, "%s/best.h5", run);
  snprintf(out, sizeof out, "%s/sr.nii.gz", t);
  snprintf(like, sizeof like, "%s/s%d_100um.nii.gz", ev, test);
  mbsr_volume *ref = forward_at(ckpt, up, lo, hi, 1), *sweep = NULL, *cli = NULL, *old = forward_at(ckpt, up, mn, mx, 0);
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(ckpt, 1, 9, 9, 9, &m, NULL));
  MT_ASSERT_NEAR(mbsr_model_get_contract(m)->norm_phi, 99.9, 1e-12);
  MT_ASSERT_NEAR(mbsr_model_get_contract(m)->lr_vox_mm[0], 0.2, 1e-9);
  mbsr_apply_opts ao;
  mbsr_apply_opts_default(&ao);
  ao.progress = 0;
  ao.patch = 15; /* tiles smaller than the volume: the tiling is part of the path */
  MT_ASSERT_OK(mbsr_apply(m, lr, hr, &ao, &sweep));
  snprintf(p, sizeof p, "%s/s%d_200um.nii.gz", ev, test);
  MT_ASSERT_INT_EQ(mbsr_test_sh("'%s' apply --model '%s' '%s' '%s' --like '%s' --patch 17 --quiet", bin, ckpt, p, out, like), 0);
  MT_ASSERT_OK(mbsr_volume_read(out, NULL, &cli));
  const double d_sweep = maxdiff(sweep, ref, hi - lo), d_cli = maxdiff(cli, ref, hi - lo), d_old = maxdiff(old, ref, hi - lo);
  printf("  vs a forward pass at the training scale (of hi - lo): sweep path %.2e, mbsr apply %.2e; the old min/max "
         "re-normalisation %.2e\n", d_sweep, d_cli, d_old);
  CU_ASSERT(d_sweep < 1e-5);
  CU_ASSERT(d_cli < 1e-5);
  CU_ASSERT(d_old > 1e-2);
  mbsr_volume_free(ref), mbsr_volume_free(sweep), mbsr_volume_free(cli), mbsr_volume_free(old);
  mbsr_volume_free(lr), mbsr_volume_free(hr), mbsr_volume_free(up);
  mbsr_model_free(m);
}

int main(void) {
  const mbsr_test_case cases[] = {{"contract_prep_train_apply", test_contract_prep_train_apply}, {NULL, NULL}};
  return mbsr_test_main("exp_contract", cases);
}
