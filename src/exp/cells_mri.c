/* Cells that test on mouse MRI (transfer, human experiments).
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
#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

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

/* The brain mask of an MRI source on its grid (a mask file, or labels != 0). */
static int load_mri_mask(const char *dir, const mri_src *src, mbsr_volume **m, char *p, size_t pn) {
  if (src->mask) {
    int rc = mbsr_pathf(p, pn, "%s/%s", dir, src->mask);
    return rc ? rc : mbsr_volume_read(p, NULL, m);
  }
  if (!src->labels) return 0;
  mbsr_volume *lab = NULL;
  int rc = mbsr_pathf(p, pn, "%s/%s", dir, src->labels);
  if (!rc) rc = mbsr_volume_read(p, NULL, &lab);
  if (!rc) rc = mbsr_mask_from_labels(lab, m);
  mbsr_volume_free(lab);
  return rc;
}

/* Load the MRI volume of contrast d (intensities as stored) and its brain mask on the same grid. */
static int load_mri(const mbsr_exp_scale *s, mbsr_dataset d, mbsr_volume **v, mbsr_volume **mask, int *um) {
  mri_src src = mri_source(d);
  if (!src.file) return mbsr_error(MBSR_EINVAL, "no MRI source for data '%s'", mbsr_dataset_name(d));
  char p[2400];
  int rc = mbsr_pathf(p, sizeof p, "%s/%s", s->mri_dir, src.file);
  if (!rc) rc = mbsr_volume_read(p, NULL, v);
  if (rc) return mbsr_error_prefix(rc, "MRI test data (data.mri_dir): ");
  *um = (int)lround((*v)->vox[0] * 1000);
  mbsr_volume *m = NULL;
  rc = load_mri_mask(s->mri_dir, &src, &m, p, sizeof p);
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
static int level(const mbsr_volume *v, const int um[3], int vox_um, mbsr_profile p, mbsr_volume **out) {
  int ff[3] = {um[0] / vox_um, um[1] / vox_um, um[2] / vox_um};
  if (ff[0] == 1 && ff[1] == 1 && ff[2] == 1) return (*out = mbsr_volume_clone(v)) ? 0 : mbsr_error(MBSR_ENOMEM, "out of memory");
  return mbsr_downsample(v, ff, p, out);
}

/* A list of paths (heap). */
typedef struct {
  char **p;
  int n, cap;
} path_list;

static void paths_free(path_list *l) {
  for (int i = 0; i < l->n; i++) free(l->p[i]);
  free(l->p);
  memset(l, 0, sizeof *l);
}

static int paths_add(path_list *l, char *owned) {
  if (!owned) return mbsr_error(MBSR_ENOMEM, "path list: out of memory");
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    char **np = realloc(l->p, sizeof *np * (size_t)cap);
    if (!np) {
      free(owned);
      return mbsr_error(MBSR_ENOMEM, "path list: out of memory");
    }
    l->p = np, l->cap = cap;
  }
  l->p[l->n++] = owned;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Volumes in a directory (NIfTI, no masks), name order; or the path itself when it is a file. A
 * directory that cannot be read gives an empty list. */
static int list_nifti(const char *dir, path_list *out) {
  if (mbsr_file_exists(dir) && !mbsr_is_dir(dir)) return paths_add(out, strdup(dir));
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int rc = 0;
  while (!rc && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' || !(l > 7 && !strcmp(e->d_name + l - 7, ".nii.gz")) || strstr(e->d_name, "mask")) continue;
    char *p = NULL;
    rc = paths_add(out, asprintf(&p, "%s/%s", dir, e->d_name) < 0 ? NULL : p);
  }
  closedir(d);
  if (!rc && out->n > 1) qsort(out->p, (size_t)out->n, sizeof *out->p, cmp_str);
  return rc;
}

/* Prep patches from the given volumes (a manifest) into DIR/data/<tag>-<hash>.h5 (collective, reused). */
static int prep_files(const mbsr_experiment *e, const sweep_ctx *x, const char *tag, const path_list *files, int base_um,
                      const mbsr_res_pair *pair, int ppv, char *h5, size_t n) {
  uint64_t h = MBSR__FNV_SEED;
  mbsr__sbuf text = {0};
  for (int i = 0; i < files->n; i++) {
    mbsr__sb_add(&text, "%s\n", files->p[i]);
    h = mbsr__fnv_str(h, files->p[i]);
  }
  int v[6] = {base_um, pair->lr_um[0], pair->hr_um, ppv, e->s.patch, (int)e->s.seed};
  h = mbsr__fnv(h, v, sizeof v);
  h = mbsr__fnv(h, e->s.norm_pct, sizeof e->s.norm_pct);
  char pn[MBSR_PAIR_NAME_MAX]; /* isotropic boxcar pairs: the hash of older mbsr */
  if (!mbsr_res_pair_isotropic(pair)) h = mbsr__fnv_str(h, mbsr_res_pair_name(pair, pn, sizeof pn));
  if (mbsr__exp_profile(&e->s) != MBSR_PROFILE_BOXCAR) h = mbsr__fnv_str(h, e->s.profile);
  char man[2600];
  int rc = mbsr_pathf(h5, n, "%s/data/%s-%016llx.h5", x->dir, tag, (unsigned long long)h);
  if (!rc) rc = mbsr_pathf(man, sizeof man, "%s/data/%s-%016llx.txt", x->dir, tag, (unsigned long long)h);
  const char *t = rc ? NULL : mbsr__sb_text(&text, man);
  if (!rc && !t) rc = MBSR_ENOMEM;
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    mbsr__sb_free(&text);
    return rc;
  }
  mbsr_prep_config pc;
  mbsr_prep_config_default(&pc);
  pc.out = h5;
  pc.inputs = man;
  pc.base_um = base_um;
  pc.npairs = 1;
  pc.pairs[0] = *pair;
  pc.profile = mbsr__exp_profile(&e->s);
  pc.patch = e->s.patch;
  pc.patches_per_volume = ppv;
  pc.split[0] = 100, pc.split[1] = 0, pc.split[2] = 0;
  pc.seed = e->s.seed;
  pc.norm_plo = e->s.norm_pct[0], pc.norm_phi = e->s.norm_pct[1];
  pc.progress = 1;
  rc = mbsr__prep_or_reuse(&pc, t, NULL);
  mbsr__sb_free(&text);
  return rc;
}

/* The slab k of K along axis a of the second half [lo, n): [s0, s1), and its mask in unit. */
static void slab_mask(const mbsr_volume *mhr, int a, int64_t s0, int64_t s1, mbsr_volume *unit) {
  int64_t nv = mbsr_volume_nvox(mhr);
  for (int64_t q = 0; q < nv; q++) {
    int64_t i = q % mhr->nx, j = (q / mhr->nx) % mhr->ny, kk = q / (mhr->nx * mhr->ny);
    int64_t t = a == 0 ? i : a == 1 ? j : kk;
    unit->data[q] = (t >= s0 && t < s1 && mhr->data[q] > 0.5f) ? 1.0f : 0.0f;
  }
}

/* The volumes of an MRI evaluation. */
typedef struct {
  mbsr_volume *hr, *lr, *mhr, *cub, *sr, *unit;
  mbsr_model *m;
} mri_eval;

static void mri_eval_free(mri_eval *v) {
  mbsr_model_free(v->m);
  mbsr_volume_free(v->hr), mbsr_volume_free(v->lr), mbsr_volume_free(v->mhr), mbsr_volume_free(v->cub), mbsr_volume_free(v->sr);
  mbsr_volume_free(v->unit);
}

static int save_mri(const mbsr_exp_cell *c, const char *cdir, const mri_src *src, const mri_eval *w) {
  char d[80], pn[MBSR_PAIR_NAME_MAX];
  mbsr_res_pair_name(&c->test_pair, pn, sizeof pn);
  snprintf(d, sizeof d, "%s LR %.*s um", src->desc, (int)strcspn(pn, "-"), pn);
  int rc = mbsr__save_vol(cdir, "lr", w->lr, d);
  if (!rc) rc = mbsr__save_vol(cdir, "cubic", w->cub, "MRI cubic");
  if (!rc) rc = mbsr__save_vol(cdir, "sr", w->sr, "MRI network SR");
  if (!rc) rc = mbsr__save_vol(cdir, "hr", w->hr, "MRI HR reference");
  if (!rc) rc = mbsr__save_vol(cdir, "mask", w->mhr, "MRI brain mask");
  return rc;
}

/* Evaluate on the MRI test half: per slab, cubic and network. Rank 0. */
static int eval_mri(const mbsr_experiment *e, const mbsr_exp_cell *c, const char *ckpt, const char *cdir, int um,
                    const mbsr_volume *v, const mbsr_volume *mask, eval_rows *rows) {
  const mbsr_exp_scale *s = &e->s;
  const mbsr_res_pair *tp = &c->test_pair;
  const int hu[3] = {tp->hr_um, tp->hr_um, tp->hr_um};
  char pn[MBSR_PAIR_NAME_MAX];
  if (tp->hr_um % um || tp->lr_um[0] % um || tp->lr_um[1] % um || tp->lr_um[2] % um)
    return mbsr_error(MBSR_EINVAL, "cell %s: test pair %s is not a multiple of the %s volume's %d um", c->name,
                      mbsr_res_pair_name(tp, pn, sizeof pn), mbsr_dataset_name(c->test_data), um);
  mri_eval w = {0};
  mbsr_apply_opts ao;
  mbsr__eval_apply_opts(s, &ao);
  int rc = level(v, hu, um, MBSR_PROFILE_BOXCAR, &w.hr);
  if (!rc) rc = level(v, tp->lr_um, um, mbsr__exp_profile(s), &w.lr);
  if (!rc) rc = level(mask, hu, um, MBSR_PROFILE_BOXCAR, &w.mhr);
  if (!rc) rc = mbsr_checkpoint_load(ckpt, 1, s->patch, s->patch, s->patch, &w.m, NULL);
  if (!rc) rc = mbsr_upsample_like(w.lr, w.hr, mbsr_model_get_contract(w.m)->interp, &w.cub);
  if (!rc) rc = mbsr_apply(w.m, w.lr, w.hr, &ao, &w.sr);
  if (!rc && !(w.unit = mbsr_volume_new_like(w.hr))) rc = mbsr_error(MBSR_ENOMEM, "cell %s: out of memory", c->name);
  const mri_src src = mri_source(c->test_data);
  const int a = mbsr__longest_axis(v);
  const int64_t n = rc ? 0 : mbsr__dimof(w.hr, a), lo = n / 2, K = s->n_test > 0 ? s->n_test : 4;
  for (int k = 0; k < K && !rc; k++) {
    int64_t s0 = lo + (n - lo) * k / K, s1 = lo + (n - lo) * (k + 1) / K;
    slab_mask(w.mhr, a, s0, s1, w.unit);
    char unit_name[64];
    snprintf(unit_name, sizeof unit_name, "%s-slab%d", mbsr_dataset_name(c->test_data), k);
    const int r0 = rows->n;
    const eval_unit u = {c->arch, "-", unit_name, src.brain, a, s0, s1};
    rc = mbsr__eval_unit(s, mbsr_model_get_contract(w.m), w.cub, w.sr, w.hr, w.unit, &u, rows);
    if (!rc)
      mbsr_info("sweep: %s: slab %d/%d RMSE cubic %.5f %s %.5f", c->name, k + 1, (int)K, rows->rows[r0].m.rmse, c->arch,
                rows->rows[r0 + 1].m.rmse);
  }
  if (!rc && s->save_volumes) rc = save_mri(c, cdir, &src, &w);
  mri_eval_free(&w);
  return rc;
}

/* 1. The base network: AF (every AF subject of the pair's grid; the test data are MRI) or human T1. */
static int base_network(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c, char *ckpt,
                        size_t n) {
  const mbsr_exp_scale *s = &e->s;
  char pair[MBSR_PAIR_NAME_MAX], h5[2600];
  mbsr_res_pair_name(&c->train_pair, pair, sizeof pair);
  if (c->train_data == MBSR_DS_AF) {
    af_group *g = NULL;
    int rc = mbsr__af_group(e, o, x, mbsr__base_for(s, c->train_pair.hr_um), &g);
    train_job j = {c->arch, rc ? NULL : g->h5, pair, c->samples, NULL, strcmp(s->cv, "none") ? "all" : NULL, NULL, -1, s->epochs};
    return rc ? rc : mbsr__train_or_reuse(e, o, x, &j, ckpt, n);
  }
  if (c->train_data != MBSR_DS_HUMAN_T1)
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: cell %s: training data '%s' is not supported (af, human_t1)", e->path, c->name,
                      mbsr_dataset_name(c->train_data));
  path_list files = {0};
  int rc = list_nifti(s->human_dir, &files);
  int nf = files.n > s->human_n_train ? s->human_n_train : files.n;
  if (!rc && nf < 1)
    rc = mbsr_error(MBSR_EINVAL, "%s: no human T1 volumes (*.nii.gz) in data.human_dir '%s' (Debian: apt-get install mricron-data)",
                    e->path, s->human_dir);
  if (!rc) {
    path_list first = {files.p, nf, nf};
    rc = prep_files(e, x, "human", &first, c->train_pair.hr_um, &c->train_pair, (c->samples + nf - 1) / nf, h5, sizeof h5);
  }
  paths_free(&files);
  train_job j = {c->arch, h5, pair, c->samples, NULL, NULL, NULL, -1, s->epochs};
  return rc ? rc : mbsr__train_or_reuse(e, o, x, &j, ckpt, n);
}

/* 2. Fine-tuning on the first half of the MRI volume (written once); ckpt becomes the tuned network. */
static int finetune(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c, const mbsr_volume *v,
                    int um, char *ckpt, size_t n) {
  const mbsr_exp_scale *s = &e->s;
  char tune[2600];
  int rc = mbsr_pathf(tune, sizeof tune, "%s/data/mri-%s-first-half.nii.gz", x->dir, mbsr_dataset_name(c->test_data));
  if (!rc && mbsr__rank0() && !mbsr_file_exists(tune)) {
    int a = mbsr__longest_axis(v);
    mbsr_volume *half = mbsr__crop_axis(v, a, 0, mbsr__dimof(v, a) / 2);
    rc = half ? mbsr_exp_write_nifti_desc(tune, half, "MRI first half (fine-tuning data)") : mbsr_error(MBSR_ENOMEM, "%s: out of memory", tune);
    mbsr_volume_free(half);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  path_list files = {0};
  rc = paths_add(&files, mbsr__abspath(tune));
  char fh5[2600], tag[64], fck[2800], tpair[MBSR_PAIR_NAME_MAX];
  snprintf(tag, sizeof tag, "mri-%s-tune", mbsr_dataset_name(c->test_data));
  mbsr_res_pair_name(&c->test_pair, tpair, sizeof tpair);
  rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  if (!rc) rc = prep_files(e, x, tag, &files, um, &c->test_pair, s->finetune_samples, fh5, sizeof fh5);
  paths_free(&files);
  if (rc) return rc;
  train_job j = {c->arch, fh5, tpair, s->finetune_samples, NULL, NULL, ckpt, s->finetune_layers, s->finetune_epochs};
  if ((rc = mbsr__train_or_reuse(e, o, x, &j, fck, sizeof fck))) return rc;
  return mbsr_pathf(ckpt, n, "%s", fck);
}

/* 3. Rank 0: evaluate on the second half in slabs; metrics.csv, then the done marker. */
static int evaluate_cell(const mbsr_experiment *e, const sweep_ctx *x, const mbsr_exp_cell *c, const char *ckpt, int um,
                         const mbsr_volume *v, const mbsr_volume *mask, double t0) {
  const mbsr_exp_scale *s = &e->s;
  eval_rows rows = {0};
  char cdir[2600], p[2800];
  int rc = mbsr_pathf(cdir, sizeof cdir, "%s/cells/%s", x->dir, c->name);
  if (!rc) rc = mbsr_mkdir_p(cdir);
  if (!rc) rc = eval_mri(e, c, ckpt, cdir, um, v, mask, &rows);
  if (!rc) rc = mbsr_pathf(p, sizeof p, "%s/metrics.csv", cdir);
  if (!rc) rc = mbsr__write_metrics(p, c, &rows);
  mbsr__rows_free(&rows);
  if (rc) return rc;
  mbsr__sbuf t = {0};
  mbsr__sb_add(&t, "cell %s finished in %.1f s\nparams %016llx\ncheckpoint %s\ntest data %s/%s (second half, %d slabs)\n", c->name,
               mbsr_now() - t0, (unsigned long long)mbsr__cell_key(e, c->index), ckpt, s->mri_dir, mri_source(c->test_data).file,
               s->n_test);
  rc = mbsr_pathf(p, sizeof p, "%s/done", cdir);
  const char *text = rc ? NULL : mbsr__sb_text(&t, p);
  if (!rc) rc = text ? mbsr_write_text_atomic(p, text) : MBSR_ENOMEM;
  mbsr__sb_free(&t);
  return rc;
}

int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c) {
  const mbsr_exp_scale *s = &e->s;
  if (c->test_data != MBSR_DS_T2W && c->test_data != MBSR_DS_FA)
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: cell %s: test data '%s' is not supported (af, t2w, fa)", e->path, c->name,
                      mbsr_dataset_name(c->test_data));
  double t0 = mbsr_now();
  char ckpt[2800];
  int rc = base_network(e, o, x, c, ckpt, sizeof ckpt);
  if (rc) return rc;
  mbsr_volume *v = NULL, *mask = NULL;
  int um = 0;
  rc = mbsr_mpi_agree(MPI_COMM_WORLD, load_mri(s, c->test_data, &v, &mask, &um));
  if (!rc && c->finetune) rc = finetune(e, o, x, c, v, um, ckpt, sizeof ckpt);
  if (!rc) rc = mbsr_mpi_agree(MPI_COMM_WORLD, mbsr__rank0() ? evaluate_cell(e, x, c, ckpt, um, v, mask, t0) : 0);
  if (!rc && mbsr__rank0()) mbsr_info("sweep: cell %s done in %.1f s", c->name, mbsr_now() - t0);
  mbsr_volume_free(v), mbsr_volume_free(mask);
  return rc;
}
