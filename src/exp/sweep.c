/* mbsr sweep: run the cells of an experiment. For each AF cell: prep the patches (one HDF5 file per
 * base grid, shared by the cells), train (or reuse a finished checkpoint shared by cells with the same
 * training parameters), apply to every test subject through mbsr_apply -- the path a user runs, on
 * volumes in their acquired intensity units -- and evaluate the network AND cubic (Keys)
 * interpolation against the HR reference (exp_util.c: on the SR contract's scale, inside the brain
 * mask; effective resolution by decorrelation). Results: cells/<cell>/metrics.csv, then
 * cells/<cell>/done (atomic, last). A finished cell is skipped; a killed sweep, run again, recomputes
 * only unfinished cells with the same seeds.
 *
 * Test designs (data.cv):
 *  - none: prep's seeded split by subject holds n_test subjects out; one network per cell.
 *  - loso: leave-one-subject-out over the subjects of the pair's grid: fold f trains on every other
 *    subject (mbsr train --exclude-subjects f) and is evaluated on f; a cohort of ONE brain is cut
 *    in two halves along its longest axis (2 folds, a within-brain design). Each row carries its
 *    brain, the unit of the report's statistics. For the cells of the largest training set a final
 *    network on all subjects is trained too (what a user would apply; its expected performance is
 *    the cross-validated one).
 * Grids (data.base_um): one grid for every pair, or 0 = each pair's HR grid, so that a volume serves
 * every pair whose HR voxels are not finer than its own (a 100 um template serves 200-100 and
 * 400-200, not 100-50).
 *
 * MPI: prep and train are collective over MPI_COMM_WORLD; evaluation runs on rank 0 while the
 * other ranks wait; every step ends with a status agreement. */
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/data.h"
#include "mbsr/train.h"

/* ---- the AF cohort ---- */
/* Resolve the cohort directory: DIR, or DIR/af when DIR is a data root like ../shared/data. */
static void cohort_dir(const char *data, char *out, size_t n) {
  char af[2048];
  snprintf(af, sizeof af, "%s/af", data);
  if (mbsr_is_dir(af)) snprintf(out, n, "%s", af);
  else snprintf(out, n, "%s", data);
}

/* Generate the phantom cohort unless complete (SYNTHETIC-COHORT.txt is written last). Concurrent
 * array tasks serialise on DIR.lock; the cohort is deterministic, so who generates does not matter. */
static int ensure_phantom(const mbsr_exp_scale *s, const char *dir) {
  char marker[2400], lk[2400];
  snprintf(marker, sizeof marker, "%s/SYNTHETIC-COHORT.txt", dir);
  if (mbsr_file_exists(marker)) return 0;
  snprintf(lk, sizeof lk, "%s.lock", dir);
  int fd = mbsr__lock_file(lk), rc = 0;
  if (!mbsr_file_exists(marker)) {
    mbsr_phantom_opts po;
    mbsr_phantom_opts_default(&po);
    po.n = s->phantom_n;
    po.seed = s->phantom_seed;
    po.vox_mm = (s->base_um ? s->base_um : 50) / 1000.0;
    for (int a = 0; a < 3; a++) po.dims[a] = s->phantom_dims[a];
    mbsr_info("sweep: generating the SYNTHETIC phantom cohort in %s", dir);
    rc = mbsr_phantom_cohort(&po, dir);
  }
  mbsr__unlock_file(fd);
  return rc;
}

int mbsr__base_for(const mbsr_exp_scale *s, int hr_um) { return s->base_um > 0 ? s->base_um : hr_um; }

static int is_cv(const mbsr_exp_scale *s) { return !strcmp(s->cv, "loso"); }

/* A growing text buffer. */
typedef struct {
  char *s;
  size_t n, cap;
} text;
static int text_add(text *t, const char *a, const char *b) {
  size_t need = strlen(a) + (b ? strlen(b) + 1 : 0) + 2;
  if (t->n + need > t->cap) {
    size_t cap = 2 * (t->cap + need);
    char *ns = realloc(t->s, cap);
    if (!ns) return mbsr_error(MBSR_ENOMEM, "out of memory");
    t->s = ns, t->cap = cap;
  }
  t->n += (size_t)sprintf(t->s + t->n, "%s%s%s\n", a, b ? "\t" : "", b ? b : "");
  return 0;
}

/* Rank 0: the manifest of the cohort volumes usable at base_um (masks excluded; a real volume coarser
 * than the grid is left out with a warning; at most nmax in name order). With cv and ONE usable
 * volume, the volume is cut in two halves along its longest axis (written to halves_dir) and the
 * halves are the subjects. Returns the number of subjects. */
static int write_manifest(const char *src, const char *path, int nmax, int real, int cv, double base_mm, const char *halves_dir,
                          const mbsr_read_opts *ro, int *count) {
  mbsr_input_list in;
  int rc = mbsr_input_list_load(src, &in);
  if (rc) return rc;
  int *use = calloc((size_t)in.n + 1, sizeof *use), nu = 0;
  text t = {0};
  if (!use) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  for (int i = 0; i < in.n && nu < nmax && !rc; i++) {
    if (strstr(in.names[i], "mask")) continue;
    if (real) {
      mbsr_volume *v = NULL;
      if (mbsr_volume_read(in.paths[i], ro, &v)) {
        mbsr_warn("sweep: %s: %s: left out", in.paths[i], mbsr_last_error());
        continue;
      }
      double vmax = fmax(v->vox[0], fmax(v->vox[1], v->vox[2]));
      mbsr_volume_free(v);
      if (vmax > base_mm * 1.001) {
        mbsr_info("sweep: %s: voxels of %.3g mm are coarser than the %.3g mm grid: not used at this grid", in.paths[i], vmax, base_mm);
        continue;
      }
    }
    use[nu++] = i;
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
  if (!rc && cv && nu == 1) {
    /* one brain: its two halves are the subjects (a within-brain design; the report says so) */
    mbsr_volume *v = NULL;
    const char *path0 = in.paths[use[0]];
    rc = mbsr_mkdir_p(halves_dir);
    if (!rc) rc = mbsr_volume_read(path0, ro, &v);
    for (int h = 0; h < 2 && !rc; h++) {
      char hp[4096], name[512], d[80];
      snprintf(name, sizeof name, "%s-half%c", in.names[use[0]], 'A' + h);
      snprintf(hp, sizeof hp, "%s/%s.nii.gz", halves_dir, name);
      if (!mbsr_file_exists(hp)) {
        int a = mbsr__longest_axis(v);
        int64_t n = mbsr__dimof(v, a);
        mbsr_volume *c = mbsr__crop_axis(v, a, h ? n / 2 : 0, h ? n : n / 2);
        snprintf(d, sizeof d, "%.40s half %c (real data)", in.names[use[0]], 'A' + h);
        rc = c ? mbsr_exp_write_nifti_desc(hp, c, d) : mbsr_error(MBSR_ENOMEM, "out of memory");
        mbsr_volume_free(c);
      }
      char ab[8192];
      snprintf(ab, sizeof ab, "%s%s%s", hp[0] == '/' ? "" : cwd, hp[0] == '/' ? "" : "/", hp);
      if (!rc) rc = text_add(&t, ab, name);
    }
    mbsr_volume_free(v);
    if (!rc) {
      mbsr_warn("sweep: one usable volume at %.3g mm (%s): its two halves are the folds (a within-brain design: one brain, "
                "no inference to other brains)", base_mm, path0);
      nu = 2;
    }
  } else {
    for (int i = 0; i < nu && !rc; i++) {
      char ab[8192];
      const char *p = in.paths[use[i]];
      snprintf(ab, sizeof ab, "%s%s%s", p[0] == '/' ? "" : cwd, p[0] == '/' ? "" : "/", p);
      rc = text_add(&t, ab, in.names[use[i]]);
    }
  }
  *count = nu;
  if (!rc) rc = nu ? mbsr_write_text_atomic(path, t.s) : mbsr_error(MBSR_EINVAL, "%s: no usable input volumes at %.3g mm", src, base_mm);
  free(t.s);
  free(use);
  mbsr_input_list_free(&in);
  return rc;
}

static void group_free(af_group *g) {
  for (int i = 0; i < g->n_subjects; i++) free(g->subjects[i]), free(g->brains[i]);
  free(g->subjects), free(g->brains);
  g->subjects = g->brains = NULL;
  g->n_subjects = 0;
}

/* The AF pairs of the experiment prepared at base_um. */
static void group_pairs(const mbsr_experiment *e, int base_um, mbsr_prep_config *pc) {
  pc->npairs = 0;
  for (int c = 0; c < e->n_cells; c++) {
    const mbsr_exp_cell *cl = &e->cells[c];
    int pr[2][2] = {{cl->train_lr_um, cl->train_hr_um}, {cl->test_lr_um, cl->test_hr_um}};
    for (int t = 0; t < 2; t++) {
      if ((t == 0 ? cl->train_data : cl->test_data) != MBSR_DS_AF || mbsr__base_for(&e->s, pr[t][1]) != base_um) continue;
      int dup = 0;
      for (int q = 0; q < pc->npairs; q++) dup |= pc->pairs[q].lr_um == pr[t][0] && pc->pairs[q].hr_um == pr[t][1];
      if (!dup && pc->npairs < MBSR_MAX_PAIRS) pc->pairs[pc->npairs++] = (mbsr_res_pair){pr[t][0], pr[t][1]};
    }
  }
}

int mbsr__af_group(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, int base_um, af_group **out) {
  for (int i = 0; i < x->ngroups; i++)
    if (x->groups[i].base_um == base_um) return *out = &x->groups[i], 0;
  if (x->ngroups >= (int)(sizeof x->groups / sizeof *x->groups)) return mbsr_error(MBSR_ERANGE, "sweep: too many base grids");
  const mbsr_exp_scale *s = &e->s;
  const int cv = is_cv(s), real = o->data || strcmp(s->cohort, "phantom");
  mbsr_prep_config pc;
  mbsr_prep_config_default(&pc);
  int rc = 0, have = 0;
  char man[2400], hd[2400];
  snprintf(man, sizeof man, "%s/data/cohort-%dum.txt", x->dir, base_um);
  snprintf(hd, sizeof hd, "%s/data/halves-%dum", x->dir, base_um);
  const int want = cv ? 1 << 20 : s->n_train + s->n_test;
  if (mbsr__rank0()) {
    rc = mbsr_mkdir_p(x->cohort);
    if (!rc && !strcmp(s->cohort, "phantom") && !o->data) rc = ensure_phantom(s, x->cohort);
    if (!rc) rc = write_manifest(x->cohort, man, want, real, cv, base_um / 1000.0, hd, &pc.read_opts, &have);
    if (!rc && !cv && have < 2)
      rc = mbsr_error(MBSR_EINVAL, "%s: %d usable volume(s) at %d um: a held-out test needs 2 or more (or data.cv: loso)", x->cohort,
                      have, base_um);
    if (!rc && !cv && have < want)
      mbsr_warn("sweep: %s has %d volumes at %d um, fewer than n_train + n_test = %d: %d test and %d training subjects", x->cohort,
                have, base_um, want, (have + 2) / 3, have - (have + 2) / 3);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  MPI_Bcast(&have, 1, MPI_INT, 0, MPI_COMM_WORLD);
  af_group *g = &x->groups[x->ngroups];
  memset(g, 0, sizeof *g);
  g->base_um = base_um;
  /* the subjects, as prep will name and order them (every rank reads the manifest) */
  mbsr_input_list in;
  if ((rc = mbsr_input_list_load(man, &in))) return mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  g->subjects = calloc((size_t)in.n + 1, sizeof *g->subjects);
  g->brains = calloc((size_t)in.n + 1, sizeof *g->brains);
  for (int i = 0; i < in.n && g->subjects && g->brains; i++) {
    char b[256];
    mbsr__brain_of(in.names[i], b, sizeof b);
    g->subjects[i] = strdup(in.names[i]), g->brains[i] = strdup(b);
    g->n_subjects = i + 1;
  }
  mbsr_input_list_free(&in);
  if (g->n_subjects != have) {
    group_free(g);
    return mbsr_mpi_agree(MPI_COMM_WORLD, mbsr_error(MBSR_ENOMEM, "sweep: reading %s failed", man));
  }
  /* the split: cv -> every subject in training (folds leave one out), its volumes for evaluation */
  int n_val = 0;
  if (cv) {
    g->n_test = have;
    pc.split[0] = 100, pc.split[1] = 0, pc.split[2] = 0;
    pc.eval_all = 1;
  } else {
    g->n_test = have >= want ? s->n_test : (have + 2) / 3;
    int n_tr = have - g->n_test;
    n_val = n_tr >= 2 ? (int)lround(s->val_fraction * n_tr) : 0;
    if (n_val < 1 && n_tr >= 2 && s->val_fraction > 0) n_val = 1;
    pc.split[1] = n_val ? (int)ceil(100.0 * n_val / have) : 0;
    pc.split[2] = 0;
    pc.split[0] = 100 - pc.split[1];
    pc.test_subjects = g->n_test;
  }
  int maxs = 0;
  for (int i = 0; i < s->n_samples; i++) maxs = s->samples[i] > maxs ? s->samples[i] : maxs;
  const int n_train_subj = cv ? (have > 1 ? have - 1 : 1) : have - g->n_test - n_val;
  pc.inputs = man;
  pc.base_um = base_um;
  pc.patch = s->patch;
  pc.patches_per_volume = (maxs + n_train_subj - 1) / (n_train_subj > 0 ? n_train_subj : 1);
  pc.seed = s->seed;
  pc.norm_plo = s->norm_pct[0], pc.norm_phi = s->norm_pct[1];
  pc.progress = 1;
  group_pairs(e, base_um, &pc);
  /* the file name carries a hash of everything that determines its content */
  uint64_t h = 0xcbf29ce484222325ULL;
  FILE *mf = fopen(man, "r");
  if (mf) {
    char line[8192];
    while (fgets(line, sizeof line, mf)) h = mbsr__fnv_str(h, line);
    fclose(mf);
  }
  h = mbsr__fnv(h, &pc.base_um, sizeof pc.base_um);
  h = mbsr__fnv(h, pc.pairs, sizeof pc.pairs[0] * (size_t)pc.npairs);
  h = mbsr__fnv(h, &pc.patch, sizeof pc.patch);
  h = mbsr__fnv(h, &pc.patches_per_volume, sizeof pc.patches_per_volume);
  h = mbsr__fnv(h, pc.split, sizeof pc.split);
  h = mbsr__fnv(h, &pc.test_subjects, sizeof pc.test_subjects);
  h = mbsr__fnv(h, &pc.eval_all, sizeof pc.eval_all);
  h = mbsr__fnv(h, &pc.seed, sizeof pc.seed);
  h = mbsr__fnv(h, &pc.norm_plo, sizeof pc.norm_plo);
  h = mbsr__fnv(h, &pc.norm_phi, sizeof pc.norm_phi);
  char stem[2300];
  snprintf(stem, sizeof stem, "%s/data/af-%dum-%016llx", x->dir, base_um, (unsigned long long)h);
  snprintf(g->h5, sizeof g->h5, "%s.h5", stem);
  snprintf(g->eval, sizeof g->eval, "%s-eval", stem);
  pc.out = g->h5;
  pc.eval_dir = g->eval;
  int fd = -1, exists = 0;
  char lk[2500];
  snprintf(lk, sizeof lk, "%s.lock", g->h5);
  if (mbsr__rank0()) {
    fd = mbsr__lock_file(lk);
    exists = mbsr_file_exists(g->h5);
  }
  MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (exists) {
    if (mbsr__rank0()) mbsr_info("sweep: reusing %s", g->h5);
  } else {
    if (mbsr__rank0())
      mbsr_info("sweep: prep %d subjects at %d um (%s), %d pair(s), %d patches per volume -> %s", have, base_um,
                cv ? "cross-validation: every subject is a fold" : "fixed split", pc.npairs, pc.patches_per_volume, g->h5);
    mbsr_prep_summary sum;
    rc = mbsr_prep_run(&pc, MPI_COMM_WORLD, &sum);
    if (!rc && sum.n_failed) rc = mbsr_error(MBSR_EINVAL, "prep: %d input(s) failed (see %s /failed)", sum.n_failed, g->h5);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    group_free(g);
    return rc;
  }
  x->ngroups++;
  *out = g;
  return 0;
}

/* ---- training (or reuse) ---- */
static void model_config(const mbsr_exp_scale *s, const char *arch, mbsr_model_config *mc) {
  mbsr_arch a = MBSR_ARCH_RESNET;
  mbsr_arch_parse(arch, &a);
  mbsr_model_config_default(mc, a);
  mc->channels = s->channels;
  mc->blocks = s->blocks;
  mc->global_residual = s->global_residual;
  mc->ccnn_c1 = s->ccnn_c1;
  mc->ccnn_c2 = s->ccnn_c2;
  mc->disc_channels = s->disc_channels;
  mc->disc_blocks = s->disc_blocks;
  mc->gan_lambda = (float)s->gan_lambda;
}

int mbsr__train_or_reuse(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x, const train_job *j, char *ckpt,
                         size_t n) {
  const mbsr_exp_scale *s = &e->s;
  mbsr_train_config tc;
  mbsr_train_config_default(&tc);
  model_config(s, j->arch, &tc.model);
  mbsr_adam_config_default(&tc.adam);
  tc.adam.lr = (float)s->lr;
  tc.data = j->h5;
  tc.pair = j->pair;
  tc.batch = s->batch;
  tc.epochs = j->epochs;
  tc.patience = s->patience;
  tc.max_patches = j->samples;
  tc.steps_per_epoch = j->init ? 0 : s->steps_per_epoch;
  tc.seed = s->seed;
  tc.ckpt_every = 0;
  tc.init = j->init;
  tc.finetune_last = j->init ? j->finetune_last : -1;
  tc.exclude_subjects = j->exclude;
  tc.augment = s->augment;
  tc.init_glorot = s->init_glorot;
  tc.threads = o->threads;
  tc.progress = 1;
  uint64_t h = 0xcbf29ce484222325ULL;
  h = mbsr__fnv_str(h, j->arch);
  h = mbsr__fnv(h, &tc.model, sizeof tc.model);
  h = mbsr__fnv(h, &tc.adam, sizeof tc.adam);
  h = mbsr__fnv_str(h, j->h5);
  h = mbsr__fnv_str(h, j->pair);
  h = mbsr__fnv(h, &j->samples, sizeof j->samples);
  const int64_t v[8] = {tc.batch, tc.epochs, tc.patience, (int64_t)tc.seed, tc.steps_per_epoch, tc.augment, tc.init_glorot,
                        j->finetune_last};
  h = mbsr__fnv(h, v, sizeof v);
  h = mbsr__fnv_str(h, j->init ? j->init : "");
  h = mbsr__fnv_str(h, j->exclude ? j->exclude : "");
  char mdir[2600], fin[2700], lk[2700];
  snprintf(mdir, sizeof mdir, "%s/models/%s_%s_n%d%s%s%s-%016llx", x->dir, j->arch, j->pair, j->samples, j->init ? "_ft" : "",
           j->tag ? "_" : "", j->tag ? j->tag : "", (unsigned long long)h);
  snprintf(fin, sizeof fin, "%s/FINISHED", mdir);
  snprintf(lk, sizeof lk, "%s.lock", mdir);
  tc.out = mdir;
  int rc = 0, fd = -1, done = 0;
  if (mbsr__rank0()) {
    rc = mbsr_mkdir_p(mdir);
    fd = mbsr__lock_file(lk);
    done = mbsr_file_exists(fin);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    if (mbsr__rank0()) mbsr__unlock_file(fd);
    return rc;
  }
  MPI_Bcast(&done, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (done) {
    if (mbsr__rank0()) mbsr_info("sweep: reusing the finished checkpoint in %s", mdir);
  } else {
    if (mbsr__rank0()) {
      /* an unfinished run is restarted from scratch (same seeds -> same weights as an uninterrupted run) */
      char p[2800];
      snprintf(p, sizeof p, "%s/last.h5", mdir);
      unlink(p);
      snprintf(p, sizeof p, "%s/best.h5", mdir);
      unlink(p);
      mbsr_info("sweep: training %s on %s pair %s, %d patches%s%s%s -> %s", j->arch, j->h5, j->pair, j->samples,
                j->init ? " (fine-tuning)" : "", j->exclude ? ", leaving out " : "", j->exclude ? j->exclude : "", mdir);
    }
    mbsr_train_summary sum;
    rc = mbsr_train_run(&tc, MPI_COMM_WORLD, &sum);
    if (!rc && mbsr__rank0()) {
      char txt[512];
      snprintf(txt, sizeof txt, "steps %lld epochs %lld best_val %.6g cubic_val %.6g best_epoch %lld stopped_early %d\n",
               (long long)sum.steps, (long long)sum.epochs, sum.best_val, sum.cubic_val, (long long)sum.best_epoch,
               sum.stopped_early);
      rc = mbsr_write_text_atomic(fin, txt);
    }
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  if (rc) return rc;
  snprintf(ckpt, n, "%s/best.h5", mdir);
  if (!mbsr_file_exists(ckpt)) snprintf(ckpt, n, "%s/last.h5", mdir);
  return 0;
}

/* ---- evaluation of AF test subjects (rank 0) ---- */
static int load_eval(const char *dir, const char *subject, int um, int mask, mbsr_volume **v) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s_%dum%s.nii.gz", dir, subject, um, mask ? "_mask" : "");
  return mbsr_volume_read(p, NULL, v);
}

/* Test subjects in the evaluation directory at hr_um: "<name>_<hr>um.nii.gz" (name order). */
static int eval_subjects(const af_group *g, int hr_um, int *idx) {
  int n = 0;
  for (int i = 0; i < g->n_subjects; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s_%dum.nii.gz", g->eval, g->subjects[i], hr_um);
    if (mbsr_file_exists(p)) idx[n++] = i;
  }
  return n;
}

/* Evaluate `ckpt` on subjects sel[0..ns) of group g (rows appended); the first subject's volumes are
 * kept for figures when `save` is set. */
static int eval_af(const mbsr_experiment *e, const mbsr_exp_cell *c, const af_group *g, const char *ckpt, const char *fold,
                   const int *sel, int ns, int save, const char *cdir, eval_rows *rows) {
  const mbsr_exp_scale *s = &e->s;
  mbsr_apply_opts ao;
  mbsr__eval_apply_opts(s, &ao);
  mbsr_model *m = NULL;
  int rc = mbsr_checkpoint_load(ckpt, 1, s->patch, s->patch, s->patch, &m, NULL);
  if (rc) return mbsr_error_prefix(rc, "cell %s: ", c->name);
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  mbsr_progress pr;
  char lab[160];
  snprintf(lab, sizeof lab, "sweep: %s: evaluate", c->name);
  mbsr_progress_init(&pr, lab, ns);
  pr.min_interval = 0;
  for (int i = 0; i < ns && !rc; i++) {
    const char *name = g->subjects[sel[i]];
    mbsr_volume *hr = NULL, *lr = NULL, *mask = NULL, *cub = NULL, *sr = NULL;
    rc = load_eval(g->eval, name, c->test_hr_um, 0, &hr);
    if (!rc) rc = load_eval(g->eval, name, c->test_lr_um, 0, &lr);
    if (!rc) rc = load_eval(g->eval, name, c->test_hr_um, 1, &mask);
    double ta = mbsr_now();
    if (!rc) rc = mbsr_upsample_like(lr, hr, k->interp, &cub);
    if (!rc) rc = mbsr_apply(m, lr, hr, &ao, &sr);
    ta = mbsr_now() - ta;
    double tm = mbsr_now();
    const int r0 = rows->n;
    if (!rc) rc = mbsr__eval_unit(s, k, cub, sr, hr, mask, c->arch, fold, name, g->brains[sel[i]], -1, 0, 0, rows);
    if (!rc && i == 0 && save) {
      const char *syn = strstr(name, "phantom") ? "SYNTHETIC phantom " : "";
      char d[80];
      snprintf(d, sizeof d, "%s%.40s LR %d um", syn, name, c->test_lr_um);
      rc = mbsr__save_vol(cdir, "lr", lr, d);
      snprintf(d, sizeof d, "%s%.40s cubic", syn, name);
      if (!rc) rc = mbsr__save_vol(cdir, "cubic", cub, d);
      snprintf(d, sizeof d, "%s%.40s %s SR", syn, name, c->arch);
      if (!rc) rc = mbsr__save_vol(cdir, "sr", sr, d);
      snprintf(d, sizeof d, "%s%.40s HR %d um", syn, name, c->test_hr_um);
      if (!rc) rc = mbsr__save_vol(cdir, "hr", hr, d);
      if (!rc) rc = mbsr__save_vol(cdir, "mask", mask, d);
    }
    if (!rc) {
      char ex[512];
      snprintf(ex, sizeof ex, "%s: RMSE cubic %.5f %s %.5f (%+.1f %%) (apply %.1f s, metrics %.1f s)", name, rows->rows[r0].m.rmse,
               c->arch, rows->rows[r0 + 1].m.rmse, 100 * (rows->rows[r0].m.rmse - rows->rows[r0 + 1].m.rmse) / rows->rows[r0].m.rmse,
               ta, mbsr_now() - tm);
      mbsr_progress_update(&pr, i + 1, "subjects", ex);
    }
    mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(mask), mbsr_volume_free(cub), mbsr_volume_free(sr);
  }
  mbsr_model_free(m);
  return rc;
}

/* One AF cell: fixed split (one network, every test subject) or cross-validation (one network per
 * fold, evaluated on its held-out subject; plus the final network on all subjects). */
static int run_af_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, const mbsr_exp_cell *c, double tc) {
  const mbsr_exp_scale *s = &e->s;
  af_group *gtr = NULL, *gte = NULL;
  int rc = mbsr__af_group(e, o, x, mbsr__base_for(s, c->train_hr_um), &gtr);
  if (!rc) rc = mbsr__af_group(e, o, x, mbsr__base_for(s, c->test_hr_um), &gte);
  if (rc) return rc;
  char pair[32], ckpt[2800], cdir[2600], done_txt[8192];
  snprintf(pair, sizeof pair, "%d-%d", c->train_lr_um, c->train_hr_um);
  snprintf(cdir, sizeof cdir, "%s/cells/%s", x->dir, c->name);
  eval_rows rows = {0};
  int *sel = malloc(sizeof(int) * (size_t)(gte->n_subjects + 1));
  if (!sel) return mbsr_error(MBSR_ENOMEM, "out of memory");
  int ns = mbsr__rank0() ? eval_subjects(gte, c->test_hr_um, sel) : 0;
  MPI_Bcast(&ns, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Bcast(sel, ns, MPI_INT, 0, MPI_COMM_WORLD);
  if (ns == 0) rc = mbsr_error(MBSR_EINVAL, "%s: no test subjects at %d um", gte->eval, c->test_hr_um);
  size_t dl = (size_t)snprintf(done_txt, sizeof done_txt, "cell %s\nparams %016llx\ndata %s\n", c->name,
                               (unsigned long long)mbsr__cell_key(e, c->index), gtr->h5);
  int erc = 0;
  if (!rc && mbsr__rank0()) erc = mbsr_mkdir_p(cdir);
  rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc ? rc : erc);
  const int cv = is_cv(s), nfold = cv ? ns : 1;
  for (int f = 0; f < nfold && !rc; f++) {
    const char *held = cv ? gte->subjects[sel[f]] : NULL;
    /* leave out of training every subject of the training grid that is the held-out subject, a part
     * of it (a half of a held-out brain) or the whole it is a half of */
    char excl[4096] = "", tag[300];
    for (int i = 0; held && i < gtr->n_subjects; i++) {
      const char *t = gtr->subjects[i];
      if (strcmp(t, held) && strcmp(gtr->brains[i], held) && strcmp(t, gte->brains[sel[f]])) continue;
      size_t l = strlen(excl);
      if (l + strlen(t) + 2 >= sizeof excl) {
        rc = mbsr_error(MBSR_ERANGE, "sweep: too many subjects to leave out for %s", held);
        break;
      }
      snprintf(excl + l, sizeof excl - l, "%s%s", l ? "," : "", t);
    }
    if (rc) break;
    snprintf(tag, sizeof tag, "fold-%s", held ? held : "");
    train_job j = {c->arch, gtr->h5, pair, c->samples, excl[0] ? excl : NULL, cv ? tag : NULL, NULL, -1, s->epochs};
    if (mbsr__rank0() && cv) mbsr_info("sweep: %s: fold %d/%d: held-out subject %s (brain %s)", c->name, f + 1, nfold, held,
                                      gte->brains[sel[f]]);
    rc = mbsr__train_or_reuse(e, o, x, &j, ckpt, sizeof ckpt);
    if (rc) break;
    erc = 0;
    if (mbsr__rank0()) {
      erc = eval_af(e, c, gte, ckpt, held ? held : "-", cv ? &sel[f] : sel, cv ? 1 : ns, s->save_volumes && f == 0, cdir, &rows);
      dl += (size_t)snprintf(done_txt + dl, sizeof done_txt - (dl < sizeof done_txt ? dl : sizeof done_txt), "checkpoint %s %s\n",
                             held ? held : "-", ckpt);
    }
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, erc);
  }
  int largest = 1; /* the final network is what a user would apply: only for the largest training set */
  for (int i = 0; i < s->n_samples; i++) largest &= s->samples[i] <= c->samples;
  if (!rc && cv && largest) { /* the final network: every subject of the training grid */
    train_job j = {c->arch, gtr->h5, pair, c->samples, NULL, "all", NULL, -1, s->epochs};
    rc = mbsr__train_or_reuse(e, o, x, &j, ckpt, sizeof ckpt);
    if (!rc && dl < sizeof done_txt) dl += (size_t)snprintf(done_txt + dl, sizeof done_txt - dl, "final %s\n", ckpt);
  }
  erc = 0;
  if (!rc && mbsr__rank0()) {
    char p[2800];
    snprintf(p, sizeof p, "%s/metrics.csv", cdir);
    erc = mbsr__write_metrics(p, c, &rows);
    if (!erc && dl < sizeof done_txt) snprintf(done_txt + dl, sizeof done_txt - dl, "finished in %.1f s\n", mbsr_now() - tc);
    snprintf(p, sizeof p, "%s/done", cdir);
    if (!erc) erc = mbsr_write_text_atomic(p, done_txt);
  }
  if (!rc) rc = mbsr_mpi_agree(MPI_COMM_WORLD, erc);
  mbsr__rows_free(&rows);
  free(sel);
  return rc;
}

/* results/<scale>/<experiment>: directories, params.yaml, and the cohort these results come from
 * (recorded in data/SOURCE.txt once a cell has finished; another cohort in the same directory is
 * refused). Rank 0. */
static int setup_dir(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x) {
  const mbsr_exp_scale *s = &e->s;
  char p[2400];
  int rc = 0;
  const char *sub[3] = {"cells", "data", "models"};
  for (int i = 0; i < 3 && !rc; i++) {
    snprintf(p, sizeof p, "%s/%s", x->dir, sub[i]);
    rc = mbsr_mkdir_p(p);
  }
  snprintf(p, sizeof p, "%s/params.yaml", x->dir);
  if (!rc) rc = mbsr_exp_write_params(e, p);
  char t[2600], old[2600] = "";
  snprintf(t, sizeof t, "cohort: %s (%s)\n", x->cohort, o->data ? "mbsr sweep --data" : s->cohort);
  snprintf(p, sizeof p, "%s/data/SOURCE.txt", x->dir);
  FILE *sf = rc ? NULL : fopen(p, "r");
  if (sf) {
    if (!fgets(old, sizeof old, sf)) old[0] = 0;
    fclose(sf);
  }
  int any_done = 0;
  for (int c = 0; c < e->n_cells; c++) any_done |= mbsr__cell_state(e, o->results, c) != 0;
  if (!rc && old[0] && strcmp(old, t) && any_done && !o->force) {
    old[strcspn(old, "\n")] = 0;
    rc = mbsr_error(MBSR_EINVAL, "%s holds results of another cohort (%s); use another --results DIR (or --force)", x->dir, old);
  }
  return rc;
}

int mbsr_sweep_run(const mbsr_experiment *e, const mbsr_sweep_opts *o) {
  const mbsr_exp_scale *s = &e->s;
  sweep_ctx *x = calloc(1, sizeof *x);
  if (!x) return mbsr_error(MBSR_ENOMEM, "out of memory");
  int rc = mbsr_exp_dir(e, o->results, x->dir, sizeof x->dir);
  if (!rc && o->cell >= e->n_cells)
    rc = mbsr_error(MBSR_EINVAL, "%s: --cell %d out of range 0..%d", e->path, o->cell, e->n_cells - 1);
  if (rc) {
    free(x);
    return rc;
  }
  if (o->threads > 0) omp_set_num_threads(o->threads);
  cohort_dir(o->data ? o->data : s->data_dir, x->cohort, sizeof x->cohort);
  if (mbsr__rank0()) rc = setup_dir(e, o, x);
  int first = o->cell >= 0 ? o->cell : 0, last = o->cell >= 0 ? o->cell : e->n_cells - 1, todo = 0;
  if (!(rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    for (int c = first; c <= last; c++) todo += o->force || !mbsr_sweep_cell_done(e, o->results, c);
    if (mbsr__rank0())
      mbsr_info("sweep: %s (%s scale): %d cell(s) selected, %d to run, results in %s", e->name, e->scale_name, last - first + 1,
                todo, x->dir);
  }
  double t0 = mbsr_now();
  int k = 0;
  for (int ci = first; ci <= last && !rc && todo; ci++) {
    const mbsr_exp_cell *c = &e->cells[ci];
    int st = mbsr__cell_state(e, o->results, ci);
    if (!o->force && st == 1) {
      if (mbsr__rank0()) mbsr_info("sweep: cell %d/%d %s: finished earlier, skipped", ci + 1, e->n_cells, c->name);
      continue;
    }
    if (st < 0 || st == 2) {
      char p[2600];
      snprintf(p, sizeof p, "%s/cells/%s/done", x->dir, c->name);
      if (mbsr__rank0()) {
        mbsr_warn("sweep: %s finished with other parameters: recomputed", c->name);
        unlink(p);
      }
    }
    k++;
    double tc = mbsr_now();
    if (mbsr__rank0()) mbsr_info("sweep: cell %d/%d %s (%d of %d to run)", ci + 1, e->n_cells, c->name, k, todo);
    if (c->train_data != MBSR_DS_AF || c->test_data != MBSR_DS_AF) rc = mbsr__sweep_mri_cell(e, o, x, c);
    else rc = run_af_cell(e, o, x, c, tc);
    if (!rc && mbsr__rank0()) {
      char el[32], p[2400], t[2600];
      mbsr_format_duration(mbsr_now() - t0, el, sizeof el);
      mbsr_info("sweep: cell %d/%d %s done in %.1f s (sweep elapsed %s)", ci + 1, e->n_cells, c->name, mbsr_now() - tc, el);
      /* the cohort of these results (after the first finished cell: a failed run records nothing) */
      snprintf(t, sizeof t, "cohort: %s (%s)\n", x->cohort, o->data ? "mbsr sweep --data" : s->cohort);
      snprintf(p, sizeof p, "%s/data/SOURCE.txt", x->dir);
      rc = mbsr_write_text_atomic(p, t);
    }
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  }
  for (int i = 0; i < x->ngroups; i++) group_free(&x->groups[i]);
  free(x);
  return rc;
}
