/* `mbsr train`: MPI data-parallel training (see include/mbsr/train.h for the scheme).
 *
 * Determinism: the permutation of epoch e is a Fisher-Yates shuffle driven by
 * mt19937(seed_mix(seed, EPOCH + e)); weights are Glorot-initialised from `seed`. Every random
 * choice is therefore derivable from (seed, epoch), and a checkpoint only needs (epoch, step in
 * epoch, global step, Adam state, early-stopping state, the epoch's running train-loss sum as a
 * hex float) for a resumed run to end bitwise equal to an uninterrupted one (same rank count, and
 * deterministic kernels: today 1 thread per rank, as the conv weight-gradient reduction under
 * dynamic OpenMP scheduling varies in the last bits with more threads).
 *
 * An epoch is ceil(N / B) global steps of exactly B patches (the last batch wraps around to the
 * start of the permutation), or --steps-per-epoch steps. Rank r's share of a global batch is the
 * contiguous slice [r*B/P, (r+1)*B/P).
 *
 * Per step: local read -> phase_grad(norm = B) -> one small MPI_Allreduce (loss, failures, stop
 * request) that also agrees on status -> ONE MPI_Allreduce(SUM) over the phase's contiguous
 * gradient span -> phase_update (identical on all ranks). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mbsr/train.h"

#define SEED_EPOCH 0x45504f4348ULL /* "EPOCH" */

void mbsr_train_config_default(mbsr_train_config *c) {
  memset(c, 0, sizeof *c);
  mbsr_model_config_default(&c->model, MBSR_ARCH_RESNET);
  c->model_given = MBSR_TRAIN_GIVEN_ALL;
  mbsr_adam_config_default(&c->adam);
  c->pair = "200-100";
  c->batch = 8;
  c->epochs = 1000;
  c->patience = 100;
  c->seed = 1;
  c->ckpt_every = 100;
  c->checksum_every = 10;
  c->finetune_last = -1;
  c->val_every = 1;
  c->progress = 1;
  c->inject_fail_rank = -1;
  c->inject_fail_step = -1;
  c->inject_diverge_rank = -1;
  c->inject_diverge_step = -1;
}

/* ---- JSON (Jansson) for the checkpoint's info string, config.json and train.jsonl ---- */
/* A number, or null when it is not finite (JSON has no NaN/Inf). */
static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* Number `key` of the JSON object text js (a string holding a hex float is parsed too). */
static int json_num(const char *js, const char *key, double *v) {
  json_t *o = json_loads(js, 0, NULL);
  json_t *x = o ? json_object_get(o, key) : NULL;
  int rc = -1;
  if (json_is_number(x)) *v = json_number_value(x), rc = 0;
  else if (json_is_string(x)) {
    char *end;
    *v = strtod(json_string_value(x), &end);
    rc = end == json_string_value(x) ? -1 : 0;
  }
  json_decref(o);
  return rc;
}

/* Write obj as one compact line (+ newline) into buf; -1 when it does not fit. */
static int json_line(json_t *obj, char *buf, size_t n) {
  size_t len = json_dumpb(obj, buf, n > 0 ? n - 1 : 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (len == 0 || len >= n) return -1;
  buf[len] = 0;
  return 0;
}

typedef struct {
  int64_t epoch, step_in_epoch, step, best_epoch, bad_epochs;
  double best_val, last_val, train_sum;
  int64_t train_n;
  int finished;
} run_state;

static void state_to_meta(const run_state *s, const mbsr_train_config *c, int P, int64_t spe, mbsr_ckpt_meta *m) {
  memset(m, 0, sizeof *m);
  m->step = s->step, m->epoch = s->epoch, m->best_epoch = s->best_epoch, m->bad_epochs = s->bad_epochs;
  m->best_val = s->best_val, m->last_val = s->last_val, m->seed = c->seed;
  char hex[64];
  snprintf(hex, sizeof hex, "%a", s->train_sum); /* exact, for a bitwise resume */
  json_t *o = json_object();
  json_object_set_new(o, "step_in_epoch", json_integer(s->step_in_epoch));
  json_object_set_new(o, "train_sum", json_string(hex));
  json_object_set_new(o, "train_n", json_integer(s->train_n));
  json_object_set_new(o, "finished", json_integer(s->finished));
  json_object_set_new(o, "nranks", json_integer(P));
  json_object_set_new(o, "batch", json_integer(c->batch));
  json_object_set_new(o, "steps_per_epoch", json_integer(spe));
  json_object_set_new(o, "lr", json_real(c->adam.lr));
  json_object_set_new(o, "pair", json_string(c->pair));
  json_object_set_new(o, "data", json_string(c->data));
  if (json_line(o, m->info, sizeof m->info)) { /* a very long data path: keep the state, drop the path */
    json_object_del(o, "data");
    json_line(o, m->info, sizeof m->info);
  }
  json_decref(o);
}

static int meta_to_state(const mbsr_ckpt_meta *m, run_state *s) {
  double v;
  s->step = m->step, s->epoch = m->epoch, s->best_epoch = m->best_epoch, s->bad_epochs = m->bad_epochs;
  s->best_val = m->best_val, s->last_val = m->last_val;
  if (json_num(m->info, "step_in_epoch", &v)) return mbsr_error(MBSR_EFORMAT, "checkpoint: no trainer state in its info");
  s->step_in_epoch = (int64_t)v;
  s->train_sum = json_num(m->info, "train_sum", &v) ? 0 : v;
  s->train_n = json_num(m->info, "train_n", &v) ? 0 : (int64_t)v;
  s->finished = json_num(m->info, "finished", &v) ? 0 : (int)v;
  return MBSR_OK;
}

/* On resume: every architecture field the caller chose must be the checkpoint's (the network
 * continues as saved; a different one would be silently ignored otherwise). */
static int check_resume_model(const mbsr_train_config *c, const mbsr_model_config *k) {
  const mbsr_model_config *w = &c->model;
  char diff[1024] = "";
  size_t n = 0;
#define DIFF(bit, cond, ...)                                                                     \
  do {                                                                                         \
    if ((c->model_given & (bit)) && (cond) && n < sizeof diff)                                 \
      n += (size_t)snprintf(diff + n, sizeof diff - n, "%s", n ? ", " : ""),                   \
          n += n < sizeof diff ? (size_t)snprintf(diff + n, sizeof diff - n, __VA_ARGS__) : 0; \
  } while (0)
  DIFF(MBSR_TRAIN_GIVEN_ARCH, w->arch != k->arch, "--arch %s vs its %s", mbsr_arch_name(w->arch), mbsr_arch_name(k->arch));
  DIFF(MBSR_TRAIN_GIVEN_CHANNELS, w->channels != k->channels, "--channels %d vs its %d", w->channels, k->channels);
  DIFF(MBSR_TRAIN_GIVEN_BLOCKS, w->blocks != k->blocks, "--blocks %d vs its %d", w->blocks, k->blocks);
  DIFF(MBSR_TRAIN_GIVEN_GLOBAL_RESIDUAL, !w->global_residual != !k->global_residual, "global residual %s vs its %s",
       w->global_residual ? "on" : "off", k->global_residual ? "on" : "off");
  DIFF(MBSR_TRAIN_GIVEN_CCNN_C1, w->ccnn_c1 != k->ccnn_c1, "cCNN width 1 %d vs its %d", w->ccnn_c1, k->ccnn_c1);
  DIFF(MBSR_TRAIN_GIVEN_CCNN_C2, w->ccnn_c2 != k->ccnn_c2, "cCNN width 2 %d vs its %d", w->ccnn_c2, k->ccnn_c2);
  DIFF(MBSR_TRAIN_GIVEN_DISC_CHANNELS, w->disc_channels != k->disc_channels, "--disc-channels %d vs its %d",
       w->disc_channels, k->disc_channels);
  DIFF(MBSR_TRAIN_GIVEN_DISC_BLOCKS, w->disc_blocks != k->disc_blocks, "--disc-blocks %d vs its %d", w->disc_blocks,
       k->disc_blocks);
  DIFF(MBSR_TRAIN_GIVEN_GAN_LAMBDA, w->gan_lambda != k->gan_lambda, "--gan-lambda %g vs its %g", (double)w->gan_lambda,
       (double)k->gan_lambda);
#undef DIFF
  if (!n) return MBSR_OK;
  return mbsr_error(MBSR_EMISMATCH, "the options contradict the checkpoint: %s; leave them out to continue its network, or "
                                    "train into another --out",
                    diff);
}

/* FNV-1a over the parameter bytes: equal weights on all ranks <=> equal hashes (in practice). */
static uint64_t param_hash(const float *p, size_t n) {
  const uint32_t *w = (const uint32_t *)p;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 1099511628211ULL;
  return h;
}

static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  mbsr_rng *r = mbsr_rng_new(mbsr_seed_mix(seed, SEED_EPOCH + (uint64_t)epoch));
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)mbsr_rng_uint(r, (uint64_t)i + 1);
    int64_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  mbsr_rng_free(r);
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Resident memory in bytes (Linux /proc/self/statm). */
static double rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return (double)res * (double)sysconf(_SC_PAGESIZE);
}

/* On resume: keep only the log lines of steps the checkpoint includes (rewritten atomically: a
 * full disk leaves the old log, never a cut one). */
static int truncate_log(const char *path, int64_t step) {
  FILE *f = fopen(path, "r");
  if (!f) return MBSR_OK; /* no log yet */
  char tmp[4200];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  FILE *g = rc ? NULL : fopen(tmp, "w");
  if (!rc && !g) rc = mbsr_error(MBSR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  char line[4096];
  while (!rc && fgets(line, sizeof line, f)) {
    double s;
    size_t ln = strlen(line); /* complete lines only: a killed run may have left half a line */
    if (ln >= 2 && line[ln - 1] == '\n' && line[ln - 2] == '}' && json_num(line, "step", &s) == 0 && (int64_t)s <= step)
      rc = mbsr_append_line(g, path, line);
  }
  fclose(f);
  if (g && fclose(g) != 0 && !rc) rc = mbsr_error(MBSR_EIO, "%s: write failed: %s", path, strerror(errno));
  if (rc) {
    if (g) mbsr_abandon_file(tmp);
    return rc;
  }
  return mbsr_commit_file(tmp, path);
}

static int write_config_json(const mbsr_train_config *c, const mbsr_model *m, const char *dir, int P, int64_t ntrain,
                             int64_t nval, int64_t spe) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  json_t *o = json_object(), *kc = json_object();
  json_object_set_new(o, "mbsr_version", json_string(MBSR_VERSION));
  json_object_set_new(o, "data", json_string(c->data));
  json_object_set_new(o, "pair", json_string(c->pair));
  const mbsr_model_config *mc = mbsr_model_get_config(m); /* the network trained (a resumed one: the checkpoint's) */
  json_object_set_new(o, "arch", json_string(mbsr_arch_name(mc->arch)));
  json_object_set_new(o, "channels", json_integer(mc->channels));
  json_object_set_new(o, "blocks", json_integer(mc->blocks));
  json_object_set_new(o, "global_residual", json_integer(mc->global_residual));
  json_object_set_new(o, "ccnn_c1", json_integer(mc->ccnn_c1));
  json_object_set_new(o, "ccnn_c2", json_integer(mc->ccnn_c2));
  json_object_set_new(o, "init", json_string(c->init ? c->init : c->init_glorot ? "glorot" : "glorot, output conv zero"));
  json_object_set_new(o, "batch", json_integer(c->batch));
  json_object_set_new(o, "lr", json_real(c->adam.lr));
  json_object_set_new(o, "beta1", json_real(c->adam.beta1));
  json_object_set_new(o, "beta2", json_real(c->adam.beta2));
  json_object_set_new(o, "eps", json_real(c->adam.eps));
  json_object_set_new(o, "epochs", json_integer(c->epochs));
  json_object_set_new(o, "patience", json_integer(c->patience));
  json_object_set_new(o, "max_patches", json_integer(c->max_patches));
  json_object_set_new(o, "steps_per_epoch", json_integer(spe));
  json_object_set_new(o, "max_steps", json_integer(c->max_steps));
  json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
  json_object_set_new(o, "ckpt_every", json_integer(c->ckpt_every));
  json_object_set_new(o, "checksum_every", json_integer(c->checksum_every));
  json_object_set_new(o, "finetune_last", json_integer(c->finetune_last));
  json_object_set_new(o, "exclude_subjects", json_string(c->exclude_subjects ? c->exclude_subjects : ""));
  json_object_set_new(o, "augment", json_string(c->augment ? "flips+axis permutations" : "none"));
  json_object_set_new(o, "time_limit", json_real(c->time_limit));
  json_object_set_new(o, "threads", json_integer(omp_get_max_threads()));
  json_object_set_new(o, "nranks", json_integer(P));
  json_object_set_new(o, "train_patches", json_integer(ntrain));
  json_object_set_new(o, "val_patches", json_integer(nval));
  json_object_set_new(kc, "norm", json_string("percentile"));
  json_object_set_new(kc, "norm_percentiles", json_pack("[f,f]", k->norm_plo, k->norm_phi));
  json_object_set_new(kc, "lr_vox_mm", json_pack("[f,f,f]", k->lr_vox_mm[0], k->lr_vox_mm[1], k->lr_vox_mm[2]));
  json_object_set_new(kc, "hr_vox_mm", json_pack("[f,f,f]", k->hr_vox_mm[0], k->hr_vox_mm[1], k->hr_vox_mm[2]));
  json_object_set_new(kc, "patch", json_integer(k->patch));
  json_object_set_new(kc, "interp", json_string(mbsr_interp_name(k->interp)));
  json_object_set_new(kc, "training", k->training[0] ? json_loads(k->training, 0, NULL) : json_null());
  json_object_set_new(o, "contract", kc);
  char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!txt) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  int rc = mbsr_write_text_atomic(path, txt);
  free(txt);
  return rc;
}

/* Indices of the patches of ps whose subject is not in the comma-separated list `exclude` (ascending). */
static int select_patches(const mbsr_patchset *ps, const char *exclude, const char *file, int64_t **idx, int64_t *n) {
  const char *const *names;
  const int S = mbsr_patchset_subjects(ps, &names);
  char *drop = calloc((size_t)(S > 0 ? S : 1), 1);
  const int64_t N = mbsr_patchset_count(ps);
  *idx = malloc(sizeof(int64_t) * (size_t)(N > 0 ? N : 1));
  *n = 0;
  if (!drop || !*idx) {
    free(drop);
    return mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  for (const char *t = exclude; t && *t;) {
    size_t len = strcspn(t, ",");
    int found = 0;
    for (int i = 0; i < S; i++)
      if (strlen(names[i]) == len && !strncmp(names[i], t, len)) drop[i] = 1, found = 1;
    if (!found && len) {
      free(drop);
      return mbsr_error(MBSR_EINVAL, "--exclude-subjects: no subject '%.*s' in %s", (int)len, t, file);
    }
    t += len + (t[len] == ',');
  }
  const int32_t *sub = mbsr_patchset_subject_of(ps);
  for (int64_t i = 0; i < N; i++)
    if (!drop[sub[i]]) (*idx)[(*n)++] = i;
  free(drop);
  return MBSR_OK;
}

/* JSON summary of the training data for the SR contract: file, pair, subjects used, patches. */
static void training_summary(const mbsr_train_config *c, const mbsr_patchset *tr, const int64_t *sub, int64_t ntrain,
                             const mbsr_patchset *va, const int64_t *vidx, int64_t nval, char *buf, size_t n) {
  const char *const *names;
  const int S = mbsr_patchset_subjects(tr, &names);
  char *used = calloc((size_t)(S > 0 ? S : 1), 2);
  const int32_t *st = mbsr_patchset_subject_of(tr), *sv = mbsr_patchset_subject_of(va);
  for (int64_t i = 0; used && i < ntrain; i++) used[2 * st[sub[i]]] = 1;
  for (int64_t i = 0; used && i < nval; i++) used[2 * sv[vidx[i]] + 1] = 1;
  const char *slash = strrchr(c->data, '/');
  json_t *o = json_object(), *lt = json_array(), *lv = json_array();
  int nt = 0, nv = 0;
  for (int i = 0; used && i < S; i++) {
    if (used[2 * i]) json_array_append_new(lt, json_string(names[i])), nt++;
    if (used[2 * i + 1]) json_array_append_new(lv, json_string(names[i])), nv++;
  }
  json_object_set_new(o, "data", json_string(slash ? slash + 1 : c->data));
  json_object_set_new(o, "pair", json_string(c->pair));
  json_object_set_new(o, "n_train_subjects", json_integer(nt));
  json_object_set_new(o, "train_subjects", lt);
  json_object_set_new(o, "n_val_subjects", json_integer(nv));
  json_object_set_new(o, "val_subjects", lv);
  json_object_set_new(o, "train_patches", json_integer(ntrain));
  json_object_set_new(o, "augment", json_string(c->augment ? "flips+axis permutations" : "none"));
  if (c->init) json_object_set_new(o, "init", json_string(c->init));
  if (json_line(o, buf, n)) { /* many subjects: counts only */
    json_object_del(o, "train_subjects");
    json_object_del(o, "val_subjects");
    if (json_line(o, buf, n)) buf[0] = 0;
  }
  json_decref(o);
  free(used);
}

/* A global-residual network starts as its cubic input: the generator's output conv (the last
 * non-discriminator weight and bias) is zeroed. */
static void zero_output_conv(mbsr_model *m) {
  int w = -1, b = -1;
  for (int i = 0; i < mbsr_model_num_tensors(m); i++) {
    const char *name = mbsr_model_tensor(m, i, NULL, NULL);
    if (!strncmp(name, "disc.", 5)) continue;
    size_t len = strlen(name);
    if (len > 7 && !strcmp(name + len - 7, ".weight")) w = i;
    if (len > 5 && !strcmp(name + len - 5, ".bias")) b = i;
  }
  const int ts[2] = {w, b};
  for (int k = 0; k < 2; k++) {
    size_t off, cnt;
    if (ts[k] >= 0 && mbsr_model_tensor(m, ts[k], &off, &cnt)) memset(mbsr_model_params(m) + off, 0, sizeof(float) * cnt);
  }
}

/* Augmentation of one patch pair (p^3, x fastest) in place: axis permutation perm (out axis a reads
 * in axis perm[a]) and flips (bit a: out axis a reversed). The same map for input and target. */
static void augment_patch(float *v, float *tmp, int p, const int perm[3], int flips) {
  const size_t p3 = (size_t)p * p * p;
  memcpy(tmp, v, sizeof(float) * p3);
  const size_t str[3] = {1, (size_t)p, (size_t)p * p};
  for (int z = 0; z < p; z++)
    for (int y = 0; y < p; y++)
      for (int x = 0; x < p; x++) {
        const int o[3] = {flips & 1 ? p - 1 - x : x, flips & 2 ? p - 1 - y : y, flips & 4 ? p - 1 - z : z};
        size_t src = 0;
        for (int a = 0; a < 3; a++) src += (size_t)o[a] * str[perm[a]];
        v[(size_t)x + (size_t)p * ((size_t)y + (size_t)p * z)] = tmp[src];
      }
}

#define SEED_AUG 0x4155474dULL /* "AUGM" */
/* Patch j of this rank's share (global position b0 + j) at global step `step`: one of the 48
 * flips x permutations, from (seed, step, position): independent of the rank count. */
static void augment_batch(float *in, float *tg, int nb, int p, uint64_t seed, int64_t step, int b0, float *tmp) {
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  const size_t p3 = (size_t)p * p * p;
  for (int j = 0; j < nb; j++) {
    mbsr_rng *r = mbsr_rng_new(mbsr_seed_mix(mbsr_seed_mix(seed, SEED_AUG + (uint64_t)step), (uint64_t)(b0 + j)));
    const int code = r ? (int)mbsr_rng_uint(r, 48) : 0;
    mbsr_rng_free(r);
    augment_patch(in + (size_t)j * p3, tmp, p, perms[code % 6], code / 6);
    augment_patch(tg + (size_t)j * p3, tmp, p, perms[code % 6], code / 6);
  }
}

/* Parallel validation: rank r evaluates the contiguous slice [r*N/P, (r+1)*N/P); the per-patch
 * MSEs are gathered and summed in patch order, so the value does not depend on the rank count. */
static int validate(mbsr_model *m, mbsr_patchset *val, const int64_t *vidx, int64_t nval, int cubic, int mb, float *in, float *tg,
                    float *out, MPI_Comm comm, double *loss, double *io_t) {
  int rank, P;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);
  int64_t v0 = nval * rank / P, v1 = nval * (rank + 1) / P;
  int nloc = (int)(v1 - v0);
  double *mine = malloc(sizeof(double) * (size_t)(nloc > 0 ? nloc : 1));
  double *all = malloc(sizeof(double) * (size_t)(nval > 0 ? nval : 1));
  int *cnts = malloc(sizeof(int) * (size_t)P), *disp = malloc(sizeof(int) * (size_t)P);
  int rc = (!mine || !all || !cnts || !disp) ? mbsr_error(MBSR_ENOMEM, "validation: out of memory") : 0;
  int pd, ph, pw;
  mbsr_model_patch_dims(m, NULL, &pd, &ph, &pw);
  const size_t vox = (size_t)pd * ph * pw;
  int64_t idx[256];
  for (int64_t k = v0; !rc && k < v1; k += mb) {
    int nb = (int)(v1 - k < mb ? v1 - k : mb);
    for (int j = 0; j < nb; j++) idx[j] = vidx[k + j];
    double t = mbsr_now();
    rc = mbsr_patchset_read(val, idx, nb, in, tg);
    *io_t += mbsr_now() - t;
    if (!rc && !cubic) rc = mbsr_model_forward(m, in, nb, out);
    if (!rc && cubic) memcpy(out, in, sizeof(float) * vox * (size_t)nb); /* the cubic baseline: the input itself */
    for (int j = 0; !rc && j < nb; j++) {
      double se = 0;
      for (size_t v = 0; v < vox; v++) {
        double d = (double)out[j * vox + v] - (double)tg[j * vox + v];
        se += d * d;
      }
      mine[k - v0 + j] = se / (double)vox;
    }
  }
  if ((rc = mbsr_mpi_agree(comm, rc)) == 0) {
    for (int r = 0; r < P; r++) cnts[r] = (int)(nval * (r + 1) / P - nval * r / P), disp[r] = (int)(nval * r / P);
    if (MPI_Allgatherv(mine, nloc, MPI_DOUBLE, all, cnts, disp, MPI_DOUBLE, comm) != MPI_SUCCESS)
      rc = mbsr_error(MBSR_EMPI, "validation: MPI_Allgatherv failed");
    double s = 0;
    for (int64_t k = 0; k < nval; k++) s += all[k];
    *loss = nval ? s / (double)nval : NAN;
  }
  free(mine), free(all), free(cnts), free(disp);
  return rc;
}

int mbsr_train_run(const mbsr_train_config *c, MPI_Comm comm, mbsr_train_summary *sum) {
  int rank, P, rc = MBSR_OK;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);
  mbsr_train_summary S0;
  if (!sum) sum = &S0;
  memset(sum, 0, sizeof *sum);
  const double t_start = mbsr_now();
  mbsr_patchset *tr = NULL, *va = NULL;
  mbsr_model *m = NULL;
  float *bin = NULL, *btg = NULL, *bout = NULL;
  int64_t *perm = NULL, *sub = NULL; /* epoch permutation of [0,ntrain); the used subset of the file's patches */
  int64_t *tr_idx = NULL, *va_idx = NULL; /* patches of subjects not excluded */
  float *aug_tmp = NULL;
  FILE *log = NULL;
  char last_path[4096], best_path[4096], log_path[4096];
  run_state st;
  memset(&st, 0, sizeof st);
  st.best_val = INFINITY, st.last_val = NAN, st.best_epoch = -1;

  /* ---- configuration checks (identical on all ranks) ---- */
  if (!c->data || !c->pair || (!c->out && !c->dry_run)) rc = mbsr_error(MBSR_EINVAL, "--data, --pair and --out are required");
  else if (c->batch < 1 || c->batch > 65536) rc = mbsr_error(MBSR_EINVAL, "--batch %d out of range 1..65536", c->batch);
  else if (c->epochs < 1) rc = mbsr_error(MBSR_EINVAL, "--epochs must be >= 1");
  else if (c->patience < 0) rc = mbsr_error(MBSR_EINVAL, "--patience must be >= 0");
  else if (!(c->adam.lr > 0)) rc = mbsr_error(MBSR_EINVAL, "--lr must be > 0");
  if (rc) return mbsr_mpi_agree(comm, rc);
  if (c->threads > 0) omp_set_num_threads(c->threads);
  if (c->out) {
    snprintf(last_path, sizeof last_path, "%s/last.h5", c->out);
    snprintf(best_path, sizeof best_path, "%s/best.h5", c->out);
    snprintf(log_path, sizeof log_path, "%s/train.jsonl", c->out);
  }

  /* ---- data ---- */
  rc = mbsr_patchset_open(c->data, c->pair, "train", &tr);
  if (!rc) rc = mbsr_patchset_open(c->data, c->pair, "val", &va);
  int64_t ntr_all = 0, nval = 0;
  if (!rc) rc = select_patches(tr, c->exclude_subjects, c->data, &tr_idx, &ntr_all);
  if (!rc) rc = select_patches(va, c->exclude_subjects, c->data, &va_idx, &nval);
  if (!rc && ntr_all < 1)
    rc = mbsr_error(MBSR_EINVAL, "%s: pair %s has no training patches%s", c->data, c->pair,
                    c->exclude_subjects ? " outside --exclude-subjects" : "");
  if ((rc = mbsr_mpi_agree(comm, rc))) goto out;
  const int p = mbsr_patchset_patch(tr);
  const size_t vox = (size_t)p * p * p;
  int64_t ntrain = ntr_all;
  if (c->max_patches > 0 && c->max_patches < ntrain) ntrain = c->max_patches;
  const int B = c->batch;
  const int64_t spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : (ntrain + B - 1) / B;
  const int b0 = (int)((int64_t)B * rank / P), b1 = (int)((int64_t)B * (rank + 1) / P), nb = b1 - b0;
  int mb = (B + P - 1) / P; /* the model's batch: the largest share, also the validation micro-batch */
  if (mb > 256) {
    rc = mbsr_error(MBSR_EINVAL, "global batch %d on %d ranks gives %d patches per rank (at most 256)", B, P, mb);
    goto out;
  }
  if (mb < 4) mb = 4;
  if (mb > 256) mb = 256;
  double cubic_val = mbsr_patchset_cubic_mse(va);

  /* ---- model: fresh, transfer (--init), or resumed (--resume and <out>/last.h5 exists) ---- */
  int resumed = 0;
  if (rank == 0 && c->out && !c->dry_run) {
    rc = mbsr_mkdir_p(c->out);
    if (!rc) mbsr_clean_stale_tmp(c->out, NULL); /* temporaries of killed runs */
  }
  if ((rc = mbsr_mpi_agree(comm, rc))) goto out;
  double rss0 = rss_bytes();
  if (c->resume && c->out && mbsr_file_exists(last_path)) {
    mbsr_ckpt_meta meta;
    rc = mbsr_checkpoint_load(last_path, mb, p, p, p, &m, &meta);
    if (!rc) rc = check_resume_model(c, mbsr_model_get_config(m));
    if (!rc) rc = meta_to_state(&meta, &st);
    double kb = 0, ks = 0, kp = 0;
    if (!rc && !json_num(meta.info, "batch", &kb) && !json_num(meta.info, "steps_per_epoch", &ks) &&
        ((int)kb != c->batch || (int64_t)ks != spe))
      rc = mbsr_error(MBSR_EMISMATCH, "the checkpoint was made with global batch %d and %lld steps per epoch, this run has %d and %lld",
                      (int)kb, (long long)ks, c->batch, (long long)spe);
    if (!rc && rank == 0 && !json_num(meta.info, "nranks", &kp) && (int)kp != P)
      mbsr_warn("resuming a %d-rank run on %d ranks: training continues correctly, but not bitwise as an uninterrupted run", (int)kp, P);
    if (rc) mbsr_error_prefix(rc, "resuming from %s: ", last_path);
    resumed = 1;
    if (!rc && c->init && c->finetune_last >= 0) rc = mbsr_model_freeze_all_but_last(m, c->finetune_last);
  } else {
    rc = mbsr_model_create(&c->model, mb, p, p, p, &m);
    if (!rc) mbsr_model_init(m, c->seed);
    if (!rc && !c->init && !c->init_glorot && c->model.global_residual) zero_output_conv(m);
    if (!rc && c->init) {
      mbsr_ckpt_meta im;
      rc = mbsr_checkpoint_load_into(m, c->init, &im);
      if (rc) mbsr_error_prefix(rc, "--init %s: ", c->init);
      if (!rc && c->finetune_last >= 0) rc = mbsr_model_freeze_all_but_last(m, c->finetune_last);
    }
  }
  bin = mbsr_alloc(sizeof(float) * vox * (size_t)mb);
  btg = mbsr_alloc(sizeof(float) * vox * (size_t)mb);
  bout = mbsr_alloc(sizeof(float) * vox * (size_t)mb);
  perm = malloc(sizeof(int64_t) * (size_t)ntr_all);
  sub = malloc(sizeof(int64_t) * (size_t)ntr_all);
  aug_tmp = c->augment ? mbsr_alloc(sizeof(float) * vox) : NULL;
  if (!rc && (!bin || !btg || !bout || !perm || !sub || (c->augment && !aug_tmp)))
    rc = mbsr_error(MBSR_ENOMEM, "out of memory for batch buffers");
  if ((rc = mbsr_mpi_agree(comm, rc))) goto out;
  /* --max-patches N: a seeded random subset of N patches (fixed for the run), sorted */
  shuffle(sub, ntr_all, c->seed, -1);
  if (ntrain < ntr_all) qsort(sub, (size_t)ntrain, sizeof *sub, cmp_i64);
  else
    for (int64_t i = 0; i < ntrain; i++) sub[i] = i;
  for (int64_t i = 0; i < ntrain; i++) sub[i] = tr_idx[sub[i]];
  /* the SR contract of the data, with what this run trains on: saved in every checkpoint */
  {
    mbsr_sr_contract k;
    rc = mbsr_patchset_contract(tr, &k);
    if (!rc) {
      training_summary(c, tr, sub, ntrain, va, va_idx, nval, k.training, sizeof k.training);
      mbsr_model_set_contract(m, &k);
    }
  }
  if ((rc = mbsr_mpi_agree(comm, rc))) goto out;
  /* the cubic baseline over the validation patches used (the file's value when none is left out) */
  if (nval != mbsr_patchset_count(va)) {
    double io = 0;
    rc = validate(m, va, va_idx, nval, 1, mb, bin, btg, bout, comm, &cubic_val, &io);
  }
  sum->cubic_val = cubic_val;
  if ((rc = mbsr_mpi_agree(comm, rc))) goto out;
  const double mem_rank = rss_bytes() - rss0;
  const size_t nparams = mbsr_model_num_params(m);
  const int nph = mbsr_model_num_phases(m);
  const double flops_sample = 3.0 * mbsr_model_forward_flops(m);

  if (st.finished && !c->dry_run) {
    mbsr_info("train: %s says the run finished (epoch %lld, step %lld): nothing to do", last_path, (long long)st.epoch, (long long)st.step);
    sum->finished = 1, sum->steps = st.step, sum->epochs = st.epoch, sum->best_val = st.best_val, sum->last_val = st.last_val;
    goto out;
  }

  /* ---- one global step (shared by the dry run and the loop) ---- */
  double t_io = 0, t_comp = 0, t_ar = 0, t_sync = 0, t_val = 0;
#define STEP_BODY(EPOCH_PERM, K, STOPREQ, LOSS_OUT)                                                                \
  do {                                                                                                               \
    int64_t idx_[256];                                                                                               \
    int lrc_ = 0;                                                                                                    \
    for (int j = 0; j < nb; j++) idx_[j] = sub[(EPOCH_PERM)[((K) * B + b0 + j) % ntrain]];                               \
    double t_ = mbsr_now();                                                                                          \
    if (nb) lrc_ = mbsr_patchset_read(tr, idx_, nb, bin, btg);                                                       \
    if (nb && !lrc_ && c->augment) augment_batch(bin, btg, nb, p, c->seed, st.step, b0, aug_tmp);                    \
    t_io += mbsr_now() - t_;                                                                                         \
    if (!lrc_ && rank == c->inject_fail_rank && st.step == c->inject_fail_step)                                      \
      lrc_ = mbsr_error(MBSR_EIO, "injected failure at step %lld (test hook --inject-fail)", (long long)st.step);   \
    double gl_ = 0;                                                                                                  \
    for (int ph = 0; ph < nph && !rc; ph++) {                                                                        \
      size_t so_, sc_;                                                                                               \
      mbsr_model_phase_span(m, ph, &so_, &sc_);                                                                      \
      t_ = mbsr_now();                                                                                               \
      double l_ = 0;                                                                                                 \
      if (!lrc_) {                                                                                                   \
        if (nb) {                                                                                                    \
          l_ = mbsr_model_phase_grad(m, ph, bin, btg, nb, (double)B);                                               \
          if (l_ < 0) lrc_ = (int)l_, l_ = 0;                                                                        \
        } else                                                                                                       \
          memset(mbsr_model_grads(m) + so_, 0, sizeof(float) * sc_);                                                 \
      }                                                                                                              \
      double mse_ = 0;                                                                                               \
      if (nb && !lrc_) mbsr_model_last_losses(m, &mse_, NULL, NULL);                                                 \
      t_comp += mbsr_now() - t_;                                                                                     \
      /* status agreement + loss + stop request in ONE small all-reduce */                                          \
      double sm_[3] = {nph == 1 ? l_ : mse_, lrc_ ? 1.0 : 0.0, (STOPREQ) ? 1.0 : 0.0};                              \
      t_ = mbsr_now();                                                                                               \
      if (MPI_Allreduce(MPI_IN_PLACE, sm_, 3, MPI_DOUBLE, MPI_SUM, comm) != MPI_SUCCESS)                             \
        rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce (step status) failed");                                           \
      t_sync += mbsr_now() - t_;                                                                                     \
      if (!rc && sm_[1] > 0) rc = mbsr_mpi_agree(comm, lrc_);                                                        \
      if (rc) break;                                                                                                 \
      if (sm_[2] > 0) stop_all = 1;                                                                                  \
      gl_ = sm_[0];                                                                                                  \
      t_ = mbsr_now();                                                                                               \
      if (P > 1 && MPI_Allreduce(MPI_IN_PLACE, mbsr_model_grads(m) + so_, (int)sc_, MPI_FLOAT, MPI_SUM, comm) != MPI_SUCCESS) \
        rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce of %zu gradients failed", sc_);                                  \
      t_ar += mbsr_now() - t_;                                                                                       \
      t_ = mbsr_now();                                                                                               \
      /* the reduced gradients are identical on all ranks: so are the update and its status */                    \
      if (!rc) rc = mbsr_model_phase_update(m, ph, &c->adam);                                                        \
      t_comp += mbsr_now() - t_;                                                                                     \
    }                                                                                                                \
    (LOSS_OUT) = gl_;                                                                                                \
  } while (0)

  int stop_all = 0;
  if (c->dry_run) {
    /* ---- the plan, with a few measured steps (nothing is written) ---- */
    const int64_t plan_n = c->plan_patches > 0 ? c->plan_patches : ntrain;
    const int64_t plan_spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : (plan_n + B - 1) / B;
    shuffle(perm, ntrain, c->seed, 0);
    const int warm = 1, meas = 3;
    double loss, tm = 0, tcpu = 0;
    for (int k = 0; k < warm + meas && !rc; k++) {
      double t0 = mbsr_now(), c0 = cpu_seconds();
      STEP_BODY(perm, (int64_t)k, 0, loss);
      MPI_Barrier(comm);
      if (k >= warm) tm += mbsr_now() - t0, tcpu += cpu_seconds() - c0;
    }
    /* CPU seconds per step summed over ranks: the cost in core-seconds, insensitive to other jobs
     * sharing the cores (the wall time is not) */
    tcpu /= meas;
    MPI_Allreduce(MPI_IN_PLACE, &tcpu, 1, MPI_DOUBLE, MPI_SUM, comm);
    if (rc) goto out;
    (void)loss;
    double tstep = tm / meas;
    MPI_Allreduce(MPI_IN_PLACE, &tstep, 1, MPI_DOUBLE, MPI_MAX, comm);
    double ar = t_ar, ar_max;
    MPI_Allreduce(&ar, &ar_max, 1, MPI_DOUBLE, MPI_MAX, comm);
    const double epoch_s = tstep * (double)plan_spe;
    const double fl_epoch = flops_sample * (double)plan_spe * B;
    /* validation: forward only, ~1/3 of a training step's work per patch, spread over the ranks;
     * planned val patches scale with the training patches when --plan-patches is given */
    const double plan_val = c->plan_val_patches > 0 ? (double)c->plan_val_patches
                            : c->plan_patches > 0 && ntrain > 0 ? (double)nval * (double)plan_n / (double)ntrain
                                                                : (double)nval;
    const double val_s = plan_val * (tstep / (3.0 * B));
    sum->dry_epoch_seconds = epoch_s, sum->dry_epoch_flops = fl_epoch, sum->dry_mem_bytes = mem_rank;
    char d1[32], d2[32];
    mbsr_format_duration(epoch_s, d1, sizeof d1);
    mbsr_format_duration((epoch_s + val_s) * c->epochs, d2, sizeof d2);
    mbsr_info("train --dry-run: plan (nothing written)");
    mbsr_info("  model           %s channels=%d blocks=%d: %zu parameters (%.1f MB; params+grads+Adam m,v %.1f MB)",
              mbsr_arch_name(mbsr_model_get_config(m)->arch), mbsr_model_get_config(m)->channels, mbsr_model_get_config(m)->blocks,
              nparams, nparams * 4.0 / 1e6, nparams * 16.0 / 1e6);
    mbsr_info("  data            %s pair %s: %lld train patches in the file, planning for %lld; %lld val patches; patch %d^3",
              c->data, c->pair, (long long)mbsr_patchset_count(tr), (long long)plan_n, (long long)nval, p);
    mbsr_info("  ranks           %d x %d thread%s; global batch %d -> %d..%d patches per rank per step", P, omp_get_max_threads(),
              omp_get_max_threads() > 1 ? "s" : "", B, B / P, (B + P - 1) / P);
    mbsr_info("  per epoch       %lld steps, %lld patches (%lld per rank)", (long long)plan_spe, (long long)(plan_spe * B),
              (long long)(plan_spe * B / P));
    mbsr_info("  memory per rank %.1f MB measured (model, activations, workspaces, batch buffers)", mem_rank / 1e6);
    mbsr_info("  FLOPs           %.3g per patch (3 x forward %.3g), %.3g per epoch (%.3g per rank)", flops_sample,
              flops_sample / 3, fl_epoch, fl_epoch / P);
    mbsr_info("  measured        %.3f s per global step (mean of %d after %d warm-up; all-reduce %.1f%%) = %.1f patches/s, %.1f GFLOP/s",
              tstep, meas, warm, 100.0 * ar_max / (tm > 0 ? tm : 1), B / tstep, flops_sample * B / tstep / 1e9);
    mbsr_info("  CPU             %.3f core-s per global step over all ranks (%.1f%% of %d cores x wall): %.3g core-h for %d epochs "
              "(training steps only)",
              tcpu, 100 * tcpu / (tstep * P * omp_get_max_threads()), P * omp_get_max_threads(),
              tcpu * (double)plan_spe * c->epochs / 3600, c->epochs);
    mbsr_info("  validation      ~%.0f patches per epoch, ~%.0f s (estimated: forward = 1/3 of a training step)", plan_val, val_s);
    mbsr_info("  time            %s per epoch of training, %s (%.1f days) for %d epochs incl. validation (upper bound: early "
              "stopping, patience %d, may end sooner)",
              d1, d2, (epoch_s + val_s) * c->epochs / 86400.0, c->epochs, c->patience);
    goto out;
  }

  if (rank == 0) {
    rc = write_config_json(c, m, c->out, P, ntrain, nval, spe);
    if (!rc && resumed) rc = truncate_log(log_path, st.step);
    if (!rc && !(log = fopen(log_path, resumed ? "a" : "w"))) rc = mbsr_error(MBSR_EIO, "%s: cannot open", log_path);
  }
  if ((rc = mbsr_mpi_agree(comm, rc))) goto out;
  if (resumed && c->progress)
    mbsr_info("train: resuming from %s at epoch %lld, step %lld (%lld of %lld in the epoch)", last_path, (long long)st.epoch,
              (long long)st.step, (long long)st.step_in_epoch, (long long)spe);
  if (c->progress)
    mbsr_info("train: %s %zu parameters; %lld train / %lld val patches (%d^3) from %s pair %s; %d rank%s x %d thread%s, global batch %d, "
            "%lld steps per epoch, lr %g, seed %llu; cubic-baseline val MSE %.6g",
            mbsr_arch_name(mbsr_model_get_config(m)->arch), nparams, (long long)ntrain, (long long)nval, p, c->data, c->pair, P,
            P > 1 ? "s" : "", omp_get_max_threads(), omp_get_max_threads() > 1 ? "s" : "", B, (long long)spe, (double)c->adam.lr,
            (unsigned long long)c->seed, cubic_val);

  /* ---- the loop ---- */
  const int64_t step0 = st.step;
  double t_train = 0, t_epoch0 = mbsr_now(), cpu0 = cpu_seconds();
  int64_t epochs_run = 0;
  int early = 0, timeup = 0, maxed = 0;
  mbsr_ckpt_meta meta;
#define SAVE_LAST()                                                                   \
  do {                                                                                \
    if (rank == 0) {                                                                  \
      state_to_meta(&st, c, P, spe, &meta);                                           \
      rc = mbsr_checkpoint_save(m, last_path, &meta);                                 \
    }                                                                                 \
    rc = mbsr_mpi_agree(comm, rc);                                                    \
  } while (0)
  while (!rc && st.epoch < c->epochs && !stop_all) {
    shuffle(perm, ntrain, c->seed, st.epoch);
    double te = mbsr_now();
    int64_t steps_here = 0;
    while (!rc && st.step_in_epoch < spe) {
      if (c->max_steps > 0 && st.step >= c->max_steps) {
        maxed = 1, stop_all = 1;
        break;
      }
      int want_stop = (c->time_limit > 0 && mbsr_now() - t_start > c->time_limit) ? 1 : 0;
      double loss, ts = mbsr_now();
      STEP_BODY(perm, st.step_in_epoch, want_stop, loss);
      if (rc) break;
      t_train += mbsr_now() - ts;
      st.step++, st.step_in_epoch++, steps_here++;
      st.train_sum += loss, st.train_n++;
      sum->last_train = loss;
      if (rank == c->inject_diverge_rank && st.step == c->inject_diverge_step)
        mbsr_model_params(m)[nparams / 2] += 1e-3f; /* test hook: silent divergence of one rank */
      if (c->checksum_every > 0 && st.step % c->checksum_every == 0 && P > 1) {
        uint64_t h = param_hash(mbsr_model_params(m), nparams), hv[2] = {h, ~h};
        if (MPI_Allreduce(MPI_IN_PLACE, hv, 2, MPI_UINT64_T, MPI_MIN, comm) != MPI_SUCCESS) {
          rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce (weight checksum) failed");
          break;
        }
        if (hv[0] != ~hv[1]) { /* min != max: the same verdict on every rank */
          rc = mbsr_error(MBSR_EMISMATCH, "weights differ between ranks at step %lld (checksums min %016llx max %016llx, this rank %016llx)",
                          (long long)st.step, (unsigned long long)hv[0], (unsigned long long)~hv[1], (unsigned long long)h);
          break;
        }
      }
      if (stop_all) {
        timeup = 1;
        break;
      }
      if (c->ckpt_every > 0 && st.step % c->ckpt_every == 0 && st.step_in_epoch < spe) SAVE_LAST();
    }
    if (rc) break;
    if (st.step_in_epoch < spe) { /* stopped inside the epoch: save the position and leave */
      SAVE_LAST();
      break;
    }
    /* ---- end of epoch: validation, early stopping, log, checkpoints ---- */
    const double train_loss = st.train_n ? st.train_sum / (double)st.train_n : NAN;
    st.epoch++, st.step_in_epoch = 0, st.train_sum = 0, st.train_n = 0, epochs_run++;
    int improved = 0;
    if (nval > 0 && c->val_every > 0 && st.epoch % c->val_every == 0) {
      double tv = mbsr_now(), vl = NAN;
      double vio = 0; /* validation reads are part of t_val */
      rc = validate(m, va, va_idx, nval, 0, mb, bin, btg, bout, comm, &vl, &vio);
      t_val += mbsr_now() - tv;
      if (rc) break;
      st.last_val = vl;
      if (vl < st.best_val) st.best_val = vl, st.best_epoch = st.epoch, st.bad_epochs = 0, improved = 1;
      else st.bad_epochs++;
    } else if (nval == 0) {
      st.last_val = NAN;
      improved = 1; /* no validation patches: best.h5 follows the last epoch */
    }
    if (c->patience > 0 && st.bad_epochs >= c->patience) early = 1;
    if (st.epoch >= c->epochs || early) st.finished = 1;
    const double el = mbsr_now() - t_epoch0;
    const double ep_s = el / (double)epochs_run;
    const double eta = ep_s * (double)(c->epochs - st.epoch);
    const double pps = t_train > 0 ? (double)(st.step - step0) * B / t_train : 0;
    const double ar_share = t_train > 0 ? t_ar / t_train : 0;
    if (rank == 0 && c->progress) {
      char e1[32], e2[32];
      mbsr_format_duration(eta, e1, sizeof e1);
      mbsr_format_duration(mbsr_now() - t_start, e2, sizeof e2);
      char vs[160];
      if (nval > 0)
        snprintf(vs, sizeof vs, "val %.6g (cubic %.6g, best %.6g @%lld)%s", st.last_val, cubic_val, st.best_val, (long long)st.best_epoch,
                 improved ? " *" : "");
      else
        snprintf(vs, sizeof vs, "no validation patches");
      mbsr_info("epoch %lld/%d step %lld: train %.6g  %s  %.1f patches/s  all-reduce %.1f%%  elapsed %s ETA %s", (long long)st.epoch,
                c->epochs, (long long)st.step, train_loss, vs, pps, 100 * ar_share, e2, e1);
    }
    int lrc = 0;
    if (rank == 0) {
      json_t *o = json_object();
      json_object_set_new(o, "epoch", json_integer(st.epoch));
      json_object_set_new(o, "step", json_integer(st.step));
      json_object_set_new(o, "train_loss", jnum(train_loss));
      json_object_set_new(o, "val_loss", jnum(st.last_val));
      json_object_set_new(o, "cubic_val", jnum(cubic_val));
      json_object_set_new(o, "best_val", jnum(st.best_val));
      json_object_set_new(o, "best_epoch", json_integer(st.best_epoch));
      json_object_set_new(o, "patches_per_s", jnum(pps));
      json_object_set_new(o, "allreduce_share", jnum(ar_share));
      json_object_set_new(o, "epoch_s", jnum(mbsr_now() - te));
      json_object_set_new(o, "elapsed_s", jnum(mbsr_now() - t_start));
      json_object_set_new(o, "eta_s", jnum(eta));
      json_object_set_new(o, "nranks", json_integer(P));
      json_object_set_new(o, "batch", json_integer(B));
      json_object_set_new(o, "lr", jnum(c->adam.lr));
      char line[2048];
      lrc = json_line(o, line, sizeof line) ? mbsr_error(MBSR_ERANGE, "%s: log line too long", log_path)
                                            : mbsr_append_line(log, log_path, line);
      json_decref(o);
    }
    /* a line that did not fit (full disk) ends every rank here; --resume drops what the checkpoint lacks */
    if ((rc = mbsr_mpi_agree(comm, lrc))) break;
    sum->last_train = train_loss;
    if (improved) {
      if (rank == 0) {
        state_to_meta(&st, c, P, spe, &meta);
        rc = mbsr_checkpoint_save(m, best_path, &meta);
      }
      if ((rc = mbsr_mpi_agree(comm, rc))) break;
    }
    SAVE_LAST();
    if (early) mbsr_info("train: early stopping: no validation improvement for %d epochs (best %.6g at epoch %lld)", c->patience,
                         st.best_val, (long long)st.best_epoch);
    if (early) break;
  }
  if (!rc) {
    if (timeup) mbsr_info("train: time limit %.0f s reached at step %lld: checkpoint %s (continue with --resume)", c->time_limit,
                          (long long)st.step, last_path);
    if (maxed) mbsr_info("train: --max-steps %lld reached: checkpoint %s", (long long)c->max_steps, last_path);
  }
  sum->steps = st.step, sum->epochs = st.epoch, sum->best_val = st.best_val, sum->last_val = st.last_val;
  sum->best_epoch = st.best_epoch, sum->stopped_early = early, sum->hit_time_limit = timeup, sum->finished = st.finished;
  sum->patches_per_s = t_train > 0 ? (double)(st.step - step0) * B / t_train : 0;
  sum->t_compute = t_comp, sum->t_allreduce = t_ar, sum->t_io = t_io, sum->t_val = t_val;
  if (!rc) {
    /* timing split of this invocation (rank 0's clock; the status all-reduce absorbs the wait for
     * the slowest rank, so "all-reduce" is the gradient transfer itself), and the CPU share the
     * ranks actually got (min over ranks): far below 100% means other jobs share the cores */
    const double tt = t_train > 0 ? t_train : 1;
    double cpu_share = (cpu_seconds() - cpu0) / ((mbsr_now() - t_epoch0) * omp_get_max_threads());
    MPI_Allreduce(MPI_IN_PLACE, &cpu_share, 1, MPI_DOUBLE, MPI_MIN, comm);
    mbsr_info("train: this run: %lld steps in %.2f s, %.2f patches/s; step time split: compute %.1f%%, gradient all-reduce %.1f%% "
              "(%zu floats), status sync/wait %.1f%%, reads %.1f%%; validation %.2f s; CPU %.0f%% of each rank's %d thread%s",
              (long long)(st.step - step0), t_train, sum->patches_per_s, 100 * t_comp / tt, 100 * t_ar / tt, nparams,
              100 * t_sync / tt, 100 * (t_io) / tt, t_val, 100 * cpu_share, omp_get_max_threads(),
              omp_get_max_threads() > 1 ? "s" : "");
  }
  sum->t_sync = t_sync;
  if (!rc && rank == 0 && st.finished) {
    char vs[160] = "no validation patches: best.h5 is the last epoch";
    if (nval > 0)
      snprintf(vs, sizeof vs, "best val %.6g at epoch %lld (cubic baseline %.6g)", st.best_val, (long long)st.best_epoch, cubic_val);
    mbsr_info("train: done: %lld epochs, %lld steps, %s; %s, %s", (long long)st.epoch, (long long)st.step, vs, last_path, best_path);
  }
out:
  if (rc == MBSR_ENONFINITE && rank == 0 && c->out)
    mbsr_errmsg("train: stopped on a non-finite loss; the last good checkpoint is %s", last_path);
  sum->t_total = mbsr_now() - t_start;
  if (log) fclose(log);
  mbsr_patchset_close(tr);
  mbsr_patchset_close(va);
  mbsr_model_free(m);
  mbsr_free(bin), mbsr_free(btg), mbsr_free(bout);
  free(perm), free(sub), free(tr_idx), free(va_idx);
  mbsr_free(aug_tmp);
  return rc;
}
