/* mbsr sweep: run the cells of an experiment. For each cell: prep the patches it needs (one HDF5
 * file per experiment and data set, reused), train (or reuse a finished checkpoint shared by cells
 * with the same training parameters), apply to every test subject and evaluate the network AND
 * cubic (Keys) interpolation against the HR reference: RMSE, PSNR, SSIM inside the brain mask on
 * [0,1]-normalised intensities (each subject's base volume is min/max-normalised before block
 * averaging, as the paper normalises every volume; data range 1), and the effective resolution
 * by decorrelation analysis. Results: cells/<cell>/metrics.csv, then cells/<cell>/done (atomic,
 * last). A finished cell is skipped; a killed sweep, run again, recomputes only unfinished cells
 * from scratch with the same seeds, so its table equals an uninterrupted run's.
 *
 * MPI: prep and train are collective over MPI_COMM_WORLD; evaluation runs on rank 0 while the
 * other ranks wait; every step ends with a status agreement. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/data.h"
#include "mbsr/decorr.h"
#include "mbsr/exp.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/train.h"

int mbsr__rank0(void) { return mbsr_log_rank() == 0; }

uint64_t mbsr__fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
  return h;
}
uint64_t mbsr__fnv_str(uint64_t h, const char *s) { return mbsr__fnv(h, s, strlen(s) + 1); }

/* Key of everything that determines a cell's results: the resolved scale and the cell. */
uint64_t mbsr__cell_key(const mbsr_experiment *e, int cell) {
  uint64_t h = mbsr__fnv(0xcbf29ce484222325ULL, &e->s, sizeof e->s);
  return mbsr__fnv(h, &e->cells[cell], sizeof e->cells[cell]);
}

/* State of a cell's done marker: 0 absent, 1 written with these parameters ("params <key>"),
 * 2 present without a key line, -1 written with other parameters. */
int mbsr__cell_state(const mbsr_experiment *e, const char *results, int cell) {
  char d[2048], p[2400];
  if (mbsr_exp_dir(e, results, d, sizeof d)) return 0;
  snprintf(p, sizeof p, "%s/cells/%s/done", d, e->cells[cell].name);
  FILE *f = fopen(p, "r");
  if (!f) return 0;
  char line[4096], want[64];
  snprintf(want, sizeof want, "params %016llx", (unsigned long long)mbsr__cell_key(e, cell));
  int match = 0, key = 0;
  while (fgets(line, sizeof line, f)) {
    key |= !strncmp(line, "params ", 7);
    match |= !strncmp(line, want, strlen(want));
  }
  fclose(f);
  return match ? 1 : key ? -1 : 2;
}

int mbsr_sweep_cell_done(const mbsr_experiment *e, const char *results, int cell) {
  return mbsr__cell_state(e, results, cell) == 1;
}

/* A blocking exclusive lock on PATH (another array task preparing the same file waits). */
int mbsr__lock_file(const char *path) {
  int fd = open(path, O_CREAT | O_RDWR, 0644);
  if (fd < 0) return -1;
  while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  return fd;
}
void mbsr__unlock_file(int fd) {
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
}

int mbsr__exp_write_text(const char *path, const char *text) {
  char tmp[4200];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  if (rc) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  fputs(text, f);
  if (fclose(f)) {
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed", path);
  }
  return mbsr_commit_file(tmp, path);
}

/* ---- the AF cohort ---- */
/* Resolve the cohort directory: DIR, or DIR/af when DIR is a data root like ../shared/data. */
static void cohort_dir(const char *data, char *out, size_t n) {
  char af[2048];
  snprintf(af, sizeof af, "%s/af", data);
  if (mbsr_is_dir(af)) snprintf(out, n, "%s", af);
  else snprintf(out, n, "%s", data);
}

static int ensure_phantom_locked(const mbsr_exp_scale *s, const char *dir) {
  mbsr_phantom_opts po;
  mbsr_phantom_opts_default(&po);
  po.n = s->phantom_n;
  po.seed = s->phantom_seed;
  po.vox_mm = s->base_um / 1000.0;
  for (int a = 0; a < 3; a++) po.dims[a] = s->phantom_dims[a];
  mbsr_info("sweep: generating the SYNTHETIC phantom cohort in %s", dir);
  return mbsr_phantom_cohort(&po, dir);
}

/* Generate the phantom cohort unless complete (SYNTHETIC-COHORT.txt is written last). Concurrent
 * array tasks serialise on DIR.lock; the cohort is deterministic, so who generates does not matter. */
static int ensure_phantom(const mbsr_exp_scale *s, const char *dir) {
  char marker[2400], lk[2400];
  snprintf(marker, sizeof marker, "%s/SYNTHETIC-COHORT.txt", dir);
  if (mbsr_file_exists(marker)) return 0;
  snprintf(lk, sizeof lk, "%s.lock", dir);
  int fd = mbsr__lock_file(lk);
  int rc = mbsr_file_exists(marker) ? 0 : ensure_phantom_locked(s, dir);
  mbsr__unlock_file(fd);
  return rc;
}

/* Manifest of the cohort's images (mask files excluded), name order, at most nmax. Returns count.
 * Real cohorts (check_vox): volumes coarser than the base grid are left out with a warning (prep
 * cannot make HR data finer than the input); when fewer than 3 usable volumes remain, each is cut
 * in two halves along its longest axis, written to halves_dir, and the halves are the subjects
 * (prep then holds one half out for testing: the network never sees the test half). */
static int write_manifest(const char *src, const char *path, int nmax, int check_vox, double base_mm,
                          const char *halves_dir, int *count, int *halves) {
  mbsr_input_list in;
  int rc = mbsr_input_list_load(src, &in);
  if (rc) return rc;
  char **use = calloc((size_t)in.n + 1, sizeof *use);
  int nu = 0;
  for (int i = 0; i < in.n && nu < nmax && !rc; i++) {
    if (strstr(in.names[i], "mask")) continue;
    if (check_vox) {
      mbsr_read_opts ro = {{0.04, 0.04, 0.05}, "LSP"}; /* prep's default TIFF geometry (the AF individual brain) */
      mbsr_volume *v = NULL;
      if (mbsr_volume_read(in.paths[i], &ro, &v)) {
        mbsr_warn("sweep: %s: %s: left out", in.paths[i], mbsr_last_error());
        continue;
      }
      double vmax = fmax(v->vox[0], fmax(v->vox[1], v->vox[2]));
      mbsr_volume_free(v);
      if (vmax > base_mm * 1.001) {
        mbsr_warn("sweep: %s: voxel size %.3g mm is coarser than the base grid %.3g mm: left out", in.paths[i], vmax, base_mm);
        continue;
      }
    }
    use[nu++] = in.paths[i];
  }
  *halves = 0;
  char **list = use;
  static char hp[64][4096];
  if (!rc && check_vox && nu >= 1 && nu < 3 && nu <= 32) {
    rc = mbsr_mkdir_p(halves_dir);
    int nh = 0;
    for (int i = 0; i < nu && !rc; i++) {
      mbsr_read_opts ro = {{0.04, 0.04, 0.05}, "LSP"};
      mbsr_volume *v = NULL;
      if ((rc = mbsr_volume_read(use[i], &ro, &v))) break;
      int a = mbsr__longest_axis(v);
      int64_t n = mbsr__dimof(v, a);
      const char *base = strrchr(use[i], '/') ? strrchr(use[i], '/') + 1 : use[i];
      char stem[1024];
      snprintf(stem, sizeof stem, "%s", base);
      char *dot = strstr(stem, ".n");
      if (dot) *dot = 0;
      for (int h = 0; h < 2 && !rc; h++) {
        snprintf(hp[nh], sizeof hp[nh], "%s/%s-half%c.nii.gz", halves_dir, stem, 'A' + h);
        if (!mbsr_file_exists(hp[nh])) {
          mbsr_volume *c = mbsr__crop_axis(v, a, h ? n / 2 : 0, h ? n : n / 2);
          char d[80];
          snprintf(d, sizeof d, "%s half %c (real data)", stem, 'A' + h);
          rc = c ? mbsr_exp_write_nifti_desc(hp[nh], c, d) : mbsr_error(MBSR_ENOMEM, "out of memory");
          mbsr_volume_free(c);
        }
        nh++;
      }
      mbsr_volume_free(v);
    }
    if (!rc) {
      mbsr_warn("sweep: only %d usable real volume(s): each is cut in two halves along its longest axis; the halves are "
                "the subjects (one held out for testing, evaluated in slabs)", nu);
      for (int i = 0; i < nh; i++) use[i] = hp[i];
      nu = nh;
      *halves = 1;
    }
  }
  size_t cap = 4096, len = 0;
  char *text = malloc(cap);
  text[0] = 0;
  for (int i = 0; i < nu && !rc; i++) {
    char ab[8192];
    const char *p = list[i];
    if (p[0] != '/') {
      char cwd[4096];
      if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
      snprintf(ab, sizeof ab, "%s/%s", cwd, p);
      p = ab;
    }
    size_t need = strlen(p) + 2;
    if (len + need + 1 > cap) text = realloc(text, cap = 2 * (cap + need));
    len += (size_t)sprintf(text + len, "%s\n", p);
  }
  *count = nu;
  if (!rc) rc = nu ? mbsr__exp_write_text(path, text) : mbsr_error(MBSR_EINVAL, "%s: no usable input volumes", src);
  free(text);
  free(use);
  mbsr_input_list_free(&in);
  return rc;
}

static void pair_name(int lr, int hr, char *b, size_t n) { snprintf(b, n, "%d-%d", lr, hr); }

/* Prep the AF patches for every pair the experiment trains or tests on (rank-collective). */
int mbsr__sweep_prep_af(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x) {
  if (x->af_ready) return 0;
  const mbsr_exp_scale *s = &e->s;
  mbsr_prep_config pc;
  mbsr_prep_config_default(&pc);
  int rc = 0;
  char man[2400];
  snprintf(man, sizeof man, "%s/data/cohort.txt", x->dir);
  int want = s->n_train + s->n_test, have = 0;
  if (mbsr__rank0()) {
    rc = mbsr_mkdir_p(x->cohort);
    if (!rc && !strcmp(s->cohort, "phantom") && !o->data) rc = ensure_phantom(s, x->cohort);
    char hd[2400];
    snprintf(hd, sizeof hd, "%s/data/halves", x->dir);
    int real = o->data || strcmp(s->cohort, "phantom"), halves = 0;
    if (!rc) rc = write_manifest(x->cohort, man, want, real, s->base_um / 1000.0, hd, &have, &halves);
    if (!rc && have < want)
      mbsr_warn("sweep: %s has %d volumes, fewer than n_train + n_test = %d: using %d test and %d training subjects",
                x->cohort, have, want, have >= 2 ? (have + 2) / 3 : 0, have - (have + 2) / 3);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  MPI_Bcast(&have, 1, MPI_INT, 0, MPI_COMM_WORLD);
  int n_test = have >= want ? s->n_test : (have + 2) / 3;
  int n_tr = have - n_test;
  if (n_tr < 1 || n_test < 1) return mbsr_error(MBSR_EINVAL, "%s: need at least 2 volumes (1 training, 1 test)", x->cohort);
  int n_val = n_tr >= 2 ? (int)lround(s->val_fraction * n_tr) : 0;
  if (n_val < 1 && n_tr >= 2 && s->val_fraction > 0) n_val = 1;
  x->n_subjects = have, x->n_val = n_val, x->n_train_eff = n_tr - n_val;
  int maxs = 0;
  for (int i = 0; i < s->n_samples; i++) maxs = s->samples[i] > maxs ? s->samples[i] : maxs;
  pc.inputs = man;
  pc.base_um = s->base_um;
  pc.patch = s->patch;
  pc.patches_per_volume = (maxs + x->n_train_eff - 1) / x->n_train_eff;
  pc.split[1] = n_val ? (int)ceil(100.0 * n_val / have) : 0;
  pc.split[2] = 0;
  pc.split[0] = 100 - pc.split[1];
  pc.test_subjects = n_test;
  pc.seed = s->seed;
  pc.progress = 1;
  /* pairs: union of training and test pairs over AF cells */
  for (int c = 0; c < e->n_cells; c++) {
    const mbsr_exp_cell *cl = &e->cells[c];
    int pr[2][2] = {{cl->train_lr_um, cl->train_hr_um}, {cl->test_lr_um, cl->test_hr_um}};
    for (int t = 0; t < 2; t++) {
      if (t == 0 && cl->train_data != MBSR_DS_AF) continue;
      if (t == 1 && cl->test_data != MBSR_DS_AF) continue;
      int dup = 0;
      for (int q = 0; q < pc.npairs; q++) dup |= pc.pairs[q].lr_um == pr[t][0] && pc.pairs[q].hr_um == pr[t][1];
      if (!dup && pc.npairs < MBSR_MAX_PAIRS) pc.pairs[pc.npairs++] = (mbsr_res_pair){pr[t][0], pr[t][1]};
    }
  }
  if (pc.npairs == 0) return 0;
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
  h = mbsr__fnv(h, &pc.seed, sizeof pc.seed);
  snprintf(x->h5, sizeof x->h5, "%s/data/af-%016llx.h5", x->dir, (unsigned long long)h);
  snprintf(x->eval, sizeof x->eval, "%s/data/af-%016llx-eval", x->dir, (unsigned long long)h);
  pc.out = x->h5;
  pc.eval_dir = x->eval;
  int fd = -1, exists = 0;
  char lk[2500];
  snprintf(lk, sizeof lk, "%s.lock", x->h5);
  if (mbsr__rank0()) {
    fd = mbsr__lock_file(lk);
    exists = mbsr_file_exists(x->h5);
  }
  MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (exists) {
    if (mbsr__rank0()) mbsr_info("sweep: reusing %s", x->h5);
  } else {
    if (mbsr__rank0()) mbsr_info("sweep: prep %d subjects (%d train, %d val, %d test), %d pair(s), %d patches per volume -> %s",
                           have, x->n_train_eff, n_val, n_test, pc.npairs, pc.patches_per_volume, x->h5);
    mbsr_prep_summary sum;
    rc = mbsr_prep_run(&pc, MPI_COMM_WORLD, &sum);
    if (!rc && sum.n_failed) rc = mbsr_error(MBSR_EINVAL, "prep: %d input(s) failed (see %s /failed)", sum.n_failed, x->h5);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  return mbsr_mpi_agree(MPI_COMM_WORLD, rc);
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

/* Train on `h5` pair `pair` into models/<key>/ unless a finished checkpoint exists; returns its path. */
int mbsr__train_or_reuse(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x, const char *arch,
                          const char *h5, const char *pair, int samples, const char *init, int finetune_last,
                          int epochs, char *ckpt, size_t n) {
  const mbsr_exp_scale *s = &e->s;
  mbsr_train_config tc;
  mbsr_train_config_default(&tc);
  model_config(s, arch, &tc.model);
  mbsr_adam_config_default(&tc.adam);
  tc.adam.lr = (float)s->lr;
  tc.data = h5;
  tc.pair = pair;
  tc.batch = s->batch;
  tc.epochs = epochs;
  tc.patience = s->patience;
  tc.max_patches = samples;
  tc.seed = s->seed;
  tc.ckpt_every = 0;
  tc.init = init;
  tc.finetune_last = init ? finetune_last : -1;
  tc.threads = o->threads;
  tc.progress = 1;
  uint64_t h = 0xcbf29ce484222325ULL;
  h = mbsr__fnv_str(h, arch);
  h = mbsr__fnv(h, &tc.model, sizeof tc.model);
  h = mbsr__fnv(h, &tc.adam, sizeof tc.adam);
  h = mbsr__fnv_str(h, h5);
  h = mbsr__fnv_str(h, pair);
  h = mbsr__fnv(h, &samples, sizeof samples);
  h = mbsr__fnv(h, &tc.batch, sizeof tc.batch);
  h = mbsr__fnv(h, &tc.epochs, sizeof tc.epochs);
  h = mbsr__fnv(h, &tc.patience, sizeof tc.patience);
  h = mbsr__fnv(h, &tc.seed, sizeof tc.seed);
  h = mbsr__fnv_str(h, init ? init : "");
  h = mbsr__fnv(h, &finetune_last, sizeof finetune_last);
  char mdir[2600], fin[2700], lk[2700];
  snprintf(mdir, sizeof mdir, "%s/models/%s_%s_n%d%s-%016llx", x->dir, arch, pair, samples, init ? "_ft" : "",
           (unsigned long long)h);
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
      mbsr_info("sweep: training %s on %s pair %s, %d patches%s -> %s", arch, h5, pair, samples,
                init ? " (fine-tuning)" : "", mdir);
    }
    mbsr_train_summary sum;
    rc = mbsr_train_run(&tc, MPI_COMM_WORLD, &sum);
    if (!rc && mbsr__rank0()) {
      char txt[512];
      snprintf(txt, sizeof txt, "steps %lld epochs %lld best_val %.6g cubic_val %.6g best_epoch %lld stopped_early %d\n",
               (long long)sum.steps, (long long)sum.epochs, sum.best_val, sum.cubic_val, (long long)sum.best_epoch,
               sum.stopped_early);
      rc = mbsr__exp_write_text(fin, txt);
    }
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  if (rc) return rc;
  snprintf(ckpt, n, "%s/best.h5", mdir);
  if (!mbsr_file_exists(ckpt)) snprintf(ckpt, n, "%s/last.h5", mdir);
  return 0;
}

/* ---- evaluation ---- */
int mbsr__longest_axis(const mbsr_volume *v) {
  int64_t n[3] = {v->nx, v->ny, v->nz};
  return n[1] > n[0] ? (n[2] > n[1] ? 2 : 1) : (n[2] > n[0] ? 2 : 0);
}

int64_t mbsr__dimof(const mbsr_volume *v, int a) { return a == 0 ? v->nx : a == 1 ? v->ny : v->nz; }

/* Sub-volume [lo, hi) along axis a (affine origin moved accordingly). */
mbsr_volume *mbsr__crop_axis(const mbsr_volume *v, int a, int64_t lo, int64_t hi) {
  int64_t n[3] = {v->nx, v->ny, v->nz};
  n[a] = hi - lo;
  double aff[4][4];
  memcpy(aff, v->affine, sizeof aff);
  for (int r = 0; r < 3; r++) aff[r][3] += v->affine[r][a] * (double)lo;
  mbsr_volume *o = mbsr_volume_new(n[0], n[1], n[2], v->vox, (const double(*)[4])aff);
  if (!o) return NULL;
  for (int64_t k = 0; k < n[2]; k++)
    for (int64_t j = 0; j < n[1]; j++)
      for (int64_t i = 0; i < n[0]; i++) {
        int64_t s[3] = {i, j, k};
        s[a] += lo;
        o->data[i + n[0] * (j + n[1] * k)] = v->data[s[0] + v->nx * (s[1] + v->ny * s[2])];
      }
  return o;
}




int mbsr__eff_res(const mbsr_exp_scale *s, const mbsr_volume *v, int axis, double *kc, double *res_um) {
  *kc = NAN;
  *res_um = NAN;
  if (!s->eval_decorr) return 0;
  mbsr_decorr_opts dopt;
  mbsr_decorr_opts_default(&dopt);
  dopt.axis = axis >= 0 ? axis : s->decorr_axis;
  dopt.step = s->decorr_step;
  mbsr_decorr_summary *r = NULL;
  int rc = mbsr_decorr_volume(v, &dopt, &r);
  if (rc) return rc;
  *kc = r->kc_median;
  *res_um = r->res_median * 1000.0;
  mbsr_decorr_summary_free(r);
  return 0;
}

static int load_eval(const char *dir, const char *subject, int um, int mask, mbsr_volume **v) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s_%dum%s.nii.gz", dir, subject, um, mask ? "_mask" : "");
  return mbsr_volume_read(p, NULL, v);
}

/* Test subjects of the prep file: the eval dir's "<name>_<hr>um.nii.gz" files. */
static int list_subjects(const char *dir, int hr_um, char names[][256], int max) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int n = 0;
  char suf[64];
  snprintf(suf, sizeof suf, "_%dum.nii.gz", hr_um);
  while ((e = readdir(d)) && n < max) {
    size_t l = strlen(e->d_name), ls = strlen(suf);
    if (e->d_name[0] == '.' || l <= ls || strcmp(e->d_name + l - ls, suf)) continue;
    snprintf(names[n], 256, "%.*s", (int)(l - ls), e->d_name);
    n++;
  }
  closedir(d);
  /* name order */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char t[256];
      memcpy(t, names[j], 256);
      memcpy(names[j], names[j - 1], 256);
      memcpy(names[j - 1], t, 256);
    }
  return n;
}

int mbsr__save_vol(const char *cdir, const char *what, const mbsr_volume *v, const char *desc) {
  char p[4096];
  snprintf(p, sizeof p, "%s/vol_%s.nii.gz", cdir, what);
  return mbsr_exp_write_nifti_desc(p, v, desc);
}

/* Evaluate one cell on rank 0: rows appended to *rows. */
static int eval_af_cell(const mbsr_experiment *e, const mbsr_exp_cell *c, const sweep_ctx *x, const char *ckpt,
                        const char *cdir, eval_row *rows, int *nrows, int maxrows) {
  const mbsr_exp_scale *s = &e->s;
  static char names[256][256];
  int ns = list_subjects(x->eval, c->test_hr_um, names, 256);
  if (ns == 0) return mbsr_error(MBSR_EINVAL, "%s: no test subjects at %d um", x->eval, c->test_hr_um);
  mbsr_apply_opts ao;
  mbsr_apply_opts_default(&ao);
  ao.patch = 2 * s->patch;
  ao.overlap = s->apply_overlap >= 0 ? s->apply_overlap : s->patch / 3;
  ao.batch = 2;
  ao.progress = 0;
  mbsr_model *m = NULL;
  int rc = mbsr_checkpoint_load(ckpt, ao.batch, ao.patch, ao.patch, ao.patch, &m, NULL);
  if (rc) return mbsr_error_prefix(rc, "cell %s: ", c->name);
  mbsr_progress pr;
  char lab[160];
  snprintf(lab, sizeof lab, "sweep: %s: evaluate", c->name);
  mbsr_progress_init(&pr, lab, ns);
  pr.min_interval = 0;
  for (int i = 0; i < ns && !rc; i++) {
    mbsr_volume *hr = NULL, *lr = NULL, *mask = NULL, *cub = NULL, *sr = NULL;
    rc = load_eval(x->eval, names[i], c->test_hr_um, 0, &hr);
    if (!rc) rc = load_eval(x->eval, names[i], c->test_lr_um, 0, &lr);
    if (!rc) rc = load_eval(x->eval, names[i], c->test_hr_um, 1, &mask);
    double ta = mbsr_now();
    if (!rc) rc = mbsr_upsample_like(lr, hr, MBSR_INTERP_KEYS, &cub);
    if (!rc) rc = mbsr_apply(m, lr, hr, &ao, &sr);
    ta = mbsr_now() - ta;
    double tm = mbsr_now();
    const mbsr_volume *meth[3] = {cub, sr, hr};
    const char *mname[3] = {"cubic", c->arch, "hr"};
    /* Fewer than 3 test subjects (a few real volumes): each is evaluated in 4 slabs along its
     * longest axis, so that a paired test has units to work with (named "<subject>-slabK"). */
    int nunit = ns < 3 ? 4 : 1, ax = hr ? mbsr__longest_axis(hr) : 0;
    mbsr_volume *um = NULL;
    if (!rc && nunit > 1 && !(um = mbsr_volume_new_like(hr))) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
    for (int u = 0; u < nunit && !rc; u++) {
      int64_t n = hr ? mbsr__dimof(hr, ax) : 0, s0 = n * u / nunit, s1 = n * (u + 1) / nunit;
      if (nunit > 1) {
        int64_t nv = mbsr_volume_nvox(hr);
        for (int64_t q = 0; q < nv; q++) {
          int64_t ii = q % hr->nx, jj = (q / hr->nx) % hr->ny, kk = q / (hr->nx * hr->ny);
          int64_t t = ax == 0 ? ii : ax == 1 ? jj : kk;
          um->data[q] = (t >= s0 && t < s1 && mask->data[q] > 0.5f) ? 1.0f : 0.0f;
        }
      }
      for (int k = 0; k < 3 && !rc; k++) {
        if (*nrows >= maxrows) {
          rc = mbsr_error(MBSR_ERANGE, "too many result rows");
          break;
        }
        eval_row *r = &rows[(*nrows)++];
        if (nunit > 1) snprintf(r->subject, sizeof r->subject, "%s-slab%d", names[i], u);
        else snprintf(r->subject, sizeof r->subject, "%s", names[i]);
        snprintf(r->method, sizeof r->method, "%s", mname[k]);
        rc = mbsr_metrics_compute(meth[k], hr, nunit > 1 ? um : mask, 1.0, &r->m);
        if (!rc && nunit == 1) rc = mbsr__eff_res(s, meth[k], -1, &r->kc, &r->res_um);
        if (!rc && nunit > 1) {
          mbsr_volume *cr = mbsr__crop_axis(meth[k], ax, s0, s1);
          if (!cr || mbsr__eff_res(s, cr, ax, &r->kc, &r->res_um)) r->kc = r->res_um = NAN; /* slices across the slab */
          mbsr_error_clear();
          mbsr_volume_free(cr);
        }
      }
    }
    mbsr_volume_free(um);
    if (!rc && i == 0 && s->save_volumes) {
      const char *syn = strstr(names[i], "phantom") ? "SYNTHETIC phantom " : "";
      char d[80];
      snprintf(d, sizeof d, "%s%s LR %d um", syn, names[i], c->test_lr_um);
      rc = mbsr__save_vol(cdir, "lr", lr, d);
      snprintf(d, sizeof d, "%s%s cubic", syn, names[i]);
      if (!rc) rc = mbsr__save_vol(cdir, "cubic", cub, d);
      snprintf(d, sizeof d, "%s%s %s SR", syn, names[i], c->arch);
      if (!rc) rc = mbsr__save_vol(cdir, "sr", sr, d);
      snprintf(d, sizeof d, "%s%s HR %d um", syn, names[i], c->test_hr_um);
      if (!rc) rc = mbsr__save_vol(cdir, "hr", hr, d);
      if (!rc) rc = mbsr__save_vol(cdir, "mask", mask, d);
    }
    if (!rc) {
      const eval_row *rc_ = &rows[*nrows - 3], *rn = &rows[*nrows - 2];
      char ex[256];
      snprintf(ex, sizeof ex, "%s RMSE cubic %.5f %s %.5f (apply %.1f s, metrics %.1f s)", names[i], rc_->m.rmse, c->arch,
               rn->m.rmse, ta, mbsr_now() - tm);
      mbsr_progress_update(&pr, i + 1, "subjects", ex);
    }
    mbsr_volume_free(hr), mbsr_volume_free(lr), mbsr_volume_free(mask), mbsr_volume_free(cub), mbsr_volume_free(sr);
  }
  mbsr_model_free(m);
  return rc;
}

int mbsr__write_metrics(const char *path, const mbsr_exp_cell *c, const eval_row *rows, int n) {
  size_t cap = 256 + (size_t)n * 512;
  char *t = malloc(cap);
  size_t l = (size_t)snprintf(t, cap, "cell,subject,method,rmse,ssim,psnr,kc,res_um,n_vox\n");
  for (int i = 0; i < n; i++)
    l += (size_t)snprintf(t + l, cap - l, "%s,%s,%s,%.9g,%.9g,%.9g,%.6g,%.6g,%lld\n", c->name, rows[i].subject,
                          rows[i].method, rows[i].m.rmse, rows[i].m.ssim, rows[i].m.psnr, rows[i].kc, rows[i].res_um,
                          (long long)rows[i].m.n);
  int rc = mbsr__exp_write_text(path, t);
  free(t);
  return rc;
}

int mbsr_sweep_run(const mbsr_experiment *e, const mbsr_sweep_opts *o) {
  const mbsr_exp_scale *s = &e->s;
  sweep_ctx x;
  memset(&x, 0, sizeof x);
  int rc = mbsr_exp_dir(e, o->results, x.dir, sizeof x.dir);
  if (rc) return rc;
  if (o->cell >= e->n_cells) return mbsr_error(MBSR_EINVAL, "%s: --cell %d out of range 0..%d", e->path, o->cell, e->n_cells - 1);
  if (o->threads > 0) omp_set_num_threads(o->threads);
  cohort_dir(o->data ? o->data : s->data_dir, x.cohort, sizeof x.cohort);
  if (mbsr__rank0()) {
    char p[2400];
    snprintf(p, sizeof p, "%s/cells", x.dir);
    rc = mbsr_mkdir_p(p);
    snprintf(p, sizeof p, "%s/data", x.dir);
    if (!rc) rc = mbsr_mkdir_p(p);
    snprintf(p, sizeof p, "%s/models", x.dir);
    if (!rc) rc = mbsr_mkdir_p(p);
    snprintf(p, sizeof p, "%s/params.yaml", x.dir);
    if (!rc) rc = mbsr_exp_write_params(e, p);
    /* the cohort these results come from; refuse to mix cohorts in one results directory */
    char t[2600], old[2600] = "";
    snprintf(t, sizeof t, "cohort: %s (%s)\n", x.cohort, o->data ? "mbsr sweep --data" : s->cohort);
    snprintf(p, sizeof p, "%s/data/SOURCE.txt", x.dir);
    FILE *sf = rc ? NULL : fopen(p, "r");
    if (sf) {
      if (!fgets(old, sizeof old, sf)) old[0] = 0;
      fclose(sf);
    }
    if (!rc && old[0] && strcmp(old, t) && !o->force) {
      old[strcspn(old, "\n")] = 0;
      rc = mbsr_error(MBSR_EINVAL, "%s holds results of another cohort (%s); use another --results DIR (or --force)", x.dir, old);
    } else if (!rc) {
      rc = mbsr__exp_write_text(p, t);
    }
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  int first = o->cell >= 0 ? o->cell : 0, last = o->cell >= 0 ? o->cell : e->n_cells - 1;
  int todo = 0;
  for (int c = first; c <= last; c++) todo += o->force || !mbsr_sweep_cell_done(e, o->results, c);
  if (mbsr__rank0())
    mbsr_info("sweep: %s (%s scale): %d cell(s) selected, %d to run, results in %s", e->name, e->scale_name,
              last - first + 1, todo, x.dir);
  if (todo == 0) return 0;
  double t0 = mbsr_now();
  int k = 0;
  for (int ci = first; ci <= last && !rc; ci++) {
    const mbsr_exp_cell *c = &e->cells[ci];
    int st = mbsr__cell_state(e, o->results, ci);
    if (!o->force && st == 1) {
      if (mbsr__rank0()) mbsr_info("sweep: cell %d/%d %s: finished earlier, skipped", ci + 1, e->n_cells, c->name);
      continue;
    }
    if (st < 0 || st == 2) {
      char p[2600];
      snprintf(p, sizeof p, "%s/cells/%s/done", x.dir, c->name);
      if (mbsr__rank0()) {
        mbsr_warn("sweep: %s finished with other parameters: recomputed", c->name);
        unlink(p);
      }
    }
    k++;
    double tc = mbsr_now();
    if (mbsr__rank0()) mbsr_info("sweep: cell %d/%d %s (%d of %d to run)", ci + 1, e->n_cells, c->name, k, todo);
    if (c->train_data != MBSR_DS_AF || c->test_data != MBSR_DS_AF) {
      rc = mbsr__sweep_mri_cell(e, o, &x, c);
      if (rc) break;
      continue;
    }
    if ((rc = mbsr__sweep_prep_af(e, o, &x))) break;
    char pair[32], ckpt[2800], cdir[2600];
    pair_name(c->train_lr_um, c->train_hr_um, pair, sizeof pair);
    rc = mbsr__train_or_reuse(e, o, &x, c->arch, x.h5, pair, c->samples, NULL, -1, s->epochs, ckpt, sizeof ckpt);
    if (rc) break;
    snprintf(cdir, sizeof cdir, "%s/cells/%s", x.dir, c->name);
    int erc = 0;
    if (mbsr__rank0()) {
      static eval_row rows[3 * 256];
      int nrows = 0;
      erc = mbsr_mkdir_p(cdir);
      if (!erc) erc = eval_af_cell(e, c, &x, ckpt, cdir, rows, &nrows, 3 * 256);
      char p[2800];
      snprintf(p, sizeof p, "%s/metrics.csv", cdir);
      if (!erc) erc = mbsr__write_metrics(p, c, rows, nrows);
      if (!erc) {
        char t[4096];
        snprintf(t, sizeof t, "cell %s finished in %.1f s\nparams %016llx\ncheckpoint %s\ndata %s\n", c->name, mbsr_now() - tc,
                 (unsigned long long)mbsr__cell_key(e, ci), ckpt, x.h5);
        snprintf(p, sizeof p, "%s/done", cdir);
        erc = mbsr__exp_write_text(p, t);
      }
    }
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, erc);
    if (!rc && mbsr__rank0()) {
      char el[32];
      mbsr_format_duration(mbsr_now() - t0, el, sizeof el);
      mbsr_info("sweep: cell %d/%d %s done in %.1f s (sweep elapsed %s)", ci + 1, e->n_cells, c->name, mbsr_now() - tc, el);
    }
  }
  return rc;
}
