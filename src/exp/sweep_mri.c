/* Cells that test on mouse MRI (transfer, human experiments) and the AF-vs-MRI correlation figure.
 *
 * MRI test data (data.mri_dir): t2w = ccf200_t2w_dsurqe.nii.gz (DSURQE T2w, 200 um, co-registered
 * with ccf200_af_template.nii.gz; mask ccf200_t2w_dsurqe_mask.nii.gz), fa = civm50_dti_qa.nii.gz
 * (CIVM diffusion QA, an FA-like map, 50 um; mask: labels civm50_labels_dsurqe.nii.gz != 0).
 * With ONE volume per contrast (intensities as stored; the SR contract maps them for the network), the
 * volume is cut along its longest array axis: the first half is the HR MRI used for fine-tuning
 * (transfer learning), the second half is evaluated in `n_test` slabs -- test units of ONE brain
 * (template), so the report gives no p-value for them. Every cell of a contrast evaluates the same
 * slabs, with and without fine-tuning.
 * Human training data (data.human_dir): the first human_n_train NIfTI volumes there (Debian
 * mricron-data: ch2better.nii.gz, Colin27 T1, 0.5 mm). */
#pragma GCC diagnostic ignored "-Wformat-truncation" /* issue 11: fixed-size path buffers */
#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/data.h"
#include "mbsr/model.h"
#include "mbsr/stats.h"

typedef struct {
  const char *file, *mask, *labels, *desc, *brain;
} mri_src;

static mri_src mri_source(mbsr_dataset d) {
  mri_src s = {0};
  if (d == MBSR_DS_T2W)
    s = (mri_src){"ccf200_t2w_dsurqe.nii.gz", "ccf200_t2w_dsurqe_mask.nii.gz", NULL, "DSURQE T2w (200 um)", "DSURQE-T2w-template"};
  if (d == MBSR_DS_FA)
    s = (mri_src){"civm50_dti_qa.nii.gz", NULL, "civm50_labels_dsurqe.nii.gz", "CIVM diffusion QA (FA-like, 50 um)", "CIVM-DTI-template"};
  return s;
}

/* Load the MRI volume of contrast d (intensities as stored) and its brain mask on the same grid. */
static int load_mri(const mbsr_exp_scale *s, mbsr_dataset d, mbsr_volume **v, mbsr_volume **mask, int *um) {
  mri_src src = mri_source(d);
  if (!src.file) return mbsr_error(MBSR_EINVAL, "no MRI source for data '%s'", mbsr_dataset_name(d));
  char p[2400];
  snprintf(p, sizeof p, "%s/%s", s->mri_dir, src.file);
  int rc = mbsr_volume_read(p, NULL, v);
  if (rc) return mbsr_error_prefix(rc, "MRI test data (data.mri_dir): ");
  *um = (int)lround((*v)->vox[0] * 1000);
  mbsr_volume *m = NULL;
  if (!rc && src.mask) {
    snprintf(p, sizeof p, "%s/%s", s->mri_dir, src.mask);
    rc = mbsr_volume_read(p, NULL, &m);
  } else if (!rc && src.labels) {
    mbsr_volume *lab = NULL;
    snprintf(p, sizeof p, "%s/%s", s->mri_dir, src.labels);
    rc = mbsr_volume_read(p, NULL, &lab);
    if (!rc) rc = mbsr_mask_from_labels(lab, &m);
    mbsr_volume_free(lab);
  }
  if (!rc && !mbsr_volume_same_grid(*v, m, 1e-3)) rc = mbsr_error(MBSR_EMISMATCH, "%s: mask grid differs from the image", p);
  if (rc) {
    mbsr_volume_free(*v), mbsr_volume_free(m);
    *v = NULL;
    return rc;
  }
  *mask = m;
  return 0;
}

/* Block average by f (f == 1: copy). */
static int level(const mbsr_volume *v, int f, mbsr_volume **out) {
  if (f == 1) return (*out = mbsr_volume_clone(v)) ? 0 : mbsr_error(MBSR_ENOMEM, "out of memory");
  int ff[3] = {f, f, f};
  return mbsr_downsample_block(v, ff, out);
}

/* Volumes in a directory (NIfTI), name order; or the path itself when it is a file. */
static int list_nifti(const char *dir, char names[][1024], int max) {
  if (mbsr_file_exists(dir) && !mbsr_is_dir(dir)) {
    snprintf(names[0], 1024, "%s", dir);
    return 1;
  }
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d)) && n < max) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' || !(l > 7 && !strcmp(e->d_name + l - 7, ".nii.gz")) || strstr(e->d_name, "mask")) continue;
    snprintf(names[n++], 1024, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char t[1024];
      memcpy(t, names[j], 1024), memcpy(names[j], names[j - 1], 1024), memcpy(names[j - 1], t, 1024);
    }
  return n;
}

/* Prep patches from the given volumes (manifest) into DIR/data/<tag>-<hash>.h5 (collective, reused). */
static int prep_files(const mbsr_experiment *e, const sweep_ctx *x, const char *tag, char files[][1024], int nfiles,
                      int base_um, int lr_um, int hr_um, int ppv, char *h5, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  char man[2600], text[16384] = "";
  size_t l = 0;
  for (int i = 0; i < nfiles; i++) {
    l += (size_t)snprintf(text + l, sizeof text - l, "%s\n", files[i]);
    h = mbsr__fnv_str(h, files[i]);
  }
  int v[6] = {base_um, lr_um, hr_um, ppv, e->s.patch, (int)e->s.seed};
  h = mbsr__fnv(h, v, sizeof v);
  h = mbsr__fnv(h, e->s.norm_pct, sizeof e->s.norm_pct);
  snprintf(h5, n, "%s/data/%s-%016llx.h5", x->dir, tag, (unsigned long long)h);
  snprintf(man, sizeof man, "%s/data/%s-%016llx.txt", x->dir, tag, (unsigned long long)h);
  int rc = 0, exists = 0, fd = -1;
  char lk[2700];
  snprintf(lk, sizeof lk, "%s.lock", h5);
  if (mbsr__rank0()) {
    fd = mbsr__lock_file(lk);
    exists = mbsr_file_exists(h5);
    if (!exists) rc = mbsr_write_text_atomic(man, text);
  }
  MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!exists && !(rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    mbsr_prep_config pc;
    mbsr_prep_config_default(&pc);
    pc.out = h5;
    pc.inputs = man;
    pc.base_um = base_um;
    pc.npairs = 1;
    pc.pairs[0] = (mbsr_res_pair){lr_um, hr_um};
    pc.patch = e->s.patch;
    pc.patches_per_volume = ppv;
    pc.split[0] = 100, pc.split[1] = 0, pc.split[2] = 0;
    pc.seed = e->s.seed;
    pc.norm_plo = e->s.norm_pct[0], pc.norm_phi = e->s.norm_pct[1];
    pc.progress = 1;
    mbsr_prep_summary sum;
    rc = mbsr_prep_run(&pc, MPI_COMM_WORLD, &sum);
    if (!rc && sum.n_failed) rc = mbsr_error(MBSR_EINVAL, "prep: %d input(s) failed (see %s /failed)", sum.n_failed, h5);
  } else if (exists && mbsr__rank0()) {
    mbsr_info("sweep: reusing %s", h5);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  return mbsr_mpi_agree(MPI_COMM_WORLD, rc);
}

/* Evaluate on the MRI test half: per slab, cubic and network. Rank 0. */
static int eval_mri(const mbsr_experiment *e, const mbsr_exp_cell *c, const char *ckpt, const char *cdir, int um,
                    const mbsr_volume *v, const mbsr_volume *mask, eval_rows *rows) {
  const mbsr_exp_scale *s = &e->s;
  if (c->test_hr_um % um || c->test_lr_um % um)
    return mbsr_error(MBSR_EINVAL, "cell %s: test pair %d-%d is not a multiple of the %s volume's %d um", c->name, c->test_lr_um,
                      c->test_hr_um, mbsr_dataset_name(c->test_data), um);
  mbsr_volume *hr = NULL, *lr = NULL, *mhr = NULL, *cub = NULL, *sr = NULL, *unit = NULL;
  mbsr_model *m = NULL;
  mbsr_apply_opts ao;
  mbsr__eval_apply_opts(s, &ao);
  int rc = level(v, c->test_hr_um / um, &hr);
  if (!rc) rc = level(v, c->test_lr_um / um, &lr);
  if (!rc) rc = level(mask, c->test_hr_um / um, &mhr);
  if (!rc) rc = mbsr_checkpoint_load(ckpt, 1, s->patch, s->patch, s->patch, &m, NULL);
  if (!rc) rc = mbsr_upsample_like(lr, hr, mbsr_model_get_contract(m)->interp, &cub);
  if (!rc) rc = mbsr_apply(m, lr, hr, &ao, &sr);
  if (!rc && !(unit = mbsr_volume_new_like(hr))) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  const mri_src src = mri_source(c->test_data);
  if (!rc) {
    int a = mbsr__longest_axis(v);
    int64_t n = mbsr__dimof(hr, a), lo = n / 2, K = s->n_test > 0 ? s->n_test : 4;
    for (int k = 0; k < K && !rc; k++) {
      int64_t s0 = lo + (n - lo) * k / K, s1 = lo + (n - lo) * (k + 1) / K;
      int64_t nv = mbsr_volume_nvox(hr);
      for (int64_t q = 0; q < nv; q++) {
        int64_t i = q % hr->nx, j = (q / hr->nx) % hr->ny, kk = q / (hr->nx * hr->ny);
        int64_t t = a == 0 ? i : a == 1 ? j : kk;
        unit->data[q] = (t >= s0 && t < s1 && mhr->data[q] > 0.5f) ? 1.0f : 0.0f;
      }
      char unit_name[64];
      snprintf(unit_name, sizeof unit_name, "%s-slab%d", mbsr_dataset_name(c->test_data), k);
      const int r0 = rows->n;
      rc = mbsr__eval_unit(s, mbsr_model_get_contract(m), cub, sr, hr, unit, c->arch, "-", unit_name, src.brain, a, s0, s1, rows);
      if (!rc)
        mbsr_info("sweep: %s: slab %d/%d RMSE cubic %.5f %s %.5f", c->name, k + 1, (int)K, rows->rows[r0].m.rmse, c->arch,
                  rows->rows[r0 + 1].m.rmse);
    }
  }
  if (!rc && s->save_volumes) {
    char d[80];
    snprintf(d, sizeof d, "%s LR %d um", src.desc, c->test_lr_um);
    rc = mbsr__save_vol(cdir, "lr", lr, d);
    if (!rc) rc = mbsr__save_vol(cdir, "cubic", cub, "MRI cubic");
    if (!rc) rc = mbsr__save_vol(cdir, "sr", sr, "MRI network SR");
    if (!rc) rc = mbsr__save_vol(cdir, "hr", hr, "MRI HR reference");
    if (!rc) rc = mbsr__save_vol(cdir, "mask", mhr, "MRI brain mask");
  }
  mbsr_model_free(m);
  mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(mhr), mbsr_volume_free(cub), mbsr_volume_free(sr);
  mbsr_volume_free(unit);
  return rc;
}

int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c) {
  const mbsr_exp_scale *s = &e->s;
  if (c->test_data != MBSR_DS_T2W && c->test_data != MBSR_DS_FA)
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: cell %s: test data '%s' is not supported (af, t2w, fa)", e->path, c->name,
                      mbsr_dataset_name(c->test_data));
  double t0 = mbsr_now();
  char pair[32], ckpt[2800], h5[2600];
  int rc = 0;
  snprintf(pair, sizeof pair, "%d-%d", c->train_lr_um, c->train_hr_um);
  /* 1. the base network: AF (the cohort) or human T1 */
  if (c->train_data == MBSR_DS_AF) {
    /* every AF subject of the pair's grid trains it (the test data are MRI) */
    af_group *g = NULL;
    if ((rc = mbsr__af_group(e, o, x, mbsr__base_for(s, c->train_hr_um), &g))) return rc;
    train_job j = {c->arch, g->h5, pair, c->samples, NULL, strcmp(s->cv, "none") ? "all" : NULL, NULL, -1, s->epochs};
    rc = mbsr__train_or_reuse(e, o, x, &j, ckpt, sizeof ckpt);
  } else if (c->train_data == MBSR_DS_HUMAN_T1) {
    static char files[64][1024];
    int nf = list_nifti(s->human_dir, files, 64);
    if (nf > s->human_n_train) nf = s->human_n_train;
    if (nf < 1)
      return mbsr_error(MBSR_EINVAL, "%s: no human T1 volumes (*.nii.gz) in data.human_dir '%s' (Debian: apt-get install mricron-data)",
                        e->path, s->human_dir);
    rc = prep_files(e, x, "human", files, nf, c->train_hr_um, c->train_lr_um, c->train_hr_um, (c->samples + nf - 1) / nf, h5,
                    sizeof h5);
    train_job j = {c->arch, h5, pair, c->samples, NULL, NULL, NULL, -1, s->epochs};
    if (!rc) rc = mbsr__train_or_reuse(e, o, x, &j, ckpt, sizeof ckpt);
  } else {
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: cell %s: training data '%s' is not supported (af, human_t1)", e->path, c->name,
                      mbsr_dataset_name(c->train_data));
  }
  if (rc) return rc;
  /* 2. the MRI volume; fine-tuning on its first half */
  mbsr_volume *v = NULL, *mask = NULL;
  int um = 0, erc = 0;
  erc = load_mri(s, c->test_data, &v, &mask, &um);
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, erc))) {
    mbsr_volume_free(v), mbsr_volume_free(mask);
    return rc;
  }
  char cdir[2600];
  snprintf(cdir, sizeof cdir, "%s/cells/%s", x->dir, c->name);
  if (c->finetune) {
    char tune[2600];
    static char files[1][1024];
    snprintf(tune, sizeof tune, "%s/data/mri-%s-first-half.nii.gz", x->dir, mbsr_dataset_name(c->test_data));
    if (mbsr__rank0() && !mbsr_file_exists(tune)) {
      int a = mbsr__longest_axis(v);
      mbsr_volume *half = mbsr__crop_axis(v, a, 0, mbsr__dimof(v, a) / 2);
      erc = half ? mbsr_exp_write_nifti_desc(tune, half, "MRI first half (fine-tuning data)") : mbsr_error(MBSR_ENOMEM, "out of memory");
      mbsr_volume_free(half);
    }
    if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, erc))) goto out;
    if (tune[0] != '/') {
      char cwd[2048];
      if (getcwd(cwd, sizeof cwd)) snprintf(files[0], 1024, "%s/%s", cwd, tune);
      else snprintf(files[0], 1024, "%s", tune);
    } else {
      snprintf(files[0], 1024, "%s", tune);
    }
    char fh5[2600], tag[64], fck[2800];
    snprintf(tag, sizeof tag, "mri-%s-tune", mbsr_dataset_name(c->test_data));
    if ((rc = prep_files(e, x, tag, files, 1, um, c->test_lr_um, c->test_hr_um, s->finetune_samples, fh5, sizeof fh5))) goto out;
    char tpair[32];
    snprintf(tpair, sizeof tpair, "%d-%d", c->test_lr_um, c->test_hr_um);
    train_job j = {c->arch, fh5, tpair, s->finetune_samples, NULL, NULL, ckpt, s->finetune_layers, s->finetune_epochs};
    rc = mbsr__train_or_reuse(e, o, x, &j, fck, sizeof fck);
    if (rc) goto out;
    snprintf(ckpt, sizeof ckpt, "%s", fck);
  }
  /* 3. evaluate on the second half, in slabs */
  if (mbsr__rank0()) {
    eval_rows rows = {0};
    erc = mbsr_mkdir_p(cdir);
    if (!erc) erc = eval_mri(e, c, ckpt, cdir, um, v, mask, &rows);
    char p[2800];
    snprintf(p, sizeof p, "%s/metrics.csv", cdir);
    if (!erc) erc = mbsr__write_metrics(p, c, &rows);
    mbsr__rows_free(&rows);
    if (!erc) {
      char t[4096];
      snprintf(t, sizeof t, "cell %s finished in %.1f s\nparams %016llx\ncheckpoint %s\ntest data %s/%s (second half, %d slabs)\n",
               c->name, mbsr_now() - t0, (unsigned long long)mbsr__cell_key(e, c->index), ckpt, s->mri_dir,
               mri_source(c->test_data).file, s->n_test);
      snprintf(p, sizeof p, "%s/done", cdir);
      erc = mbsr_write_text_atomic(p, t);
    }
  }
  rc = mbsr_mpi_agree(MPI_COMM_WORLD, erc);
  if (!rc && mbsr__rank0()) mbsr_info("sweep: cell %s done in %.1f s", c->name, mbsr_now() - t0);
out:
  mbsr_volume_free(v), mbsr_volume_free(mask);
  return rc;
}

