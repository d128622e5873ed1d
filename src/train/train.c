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

/* Number `key` of the JSON object text js (a string holding a hex float is parsed too): 1 when
 * found, 0 when absent or not a number. */
static int json_num(const char *js, const char *key, double *v) {
  json_t *o = json_loads(js, 0, NULL);
  json_t *x = o ? json_object_get(o, key) : NULL;
  int found = 0;
  if (json_is_number(x)) *v = json_number_value(x), found = 1;
  else if (json_is_string(x)) {
    char *end;
    *v = strtod(json_string_value(x), &end);
    found = end != json_string_value(x);
  }
  json_decref(o);
  return found;
}

/* Write obj as one compact line into buf: 1 when written, 0 when it does not fit. */
static int json_line(json_t *obj, char *buf, size_t n) {
  size_t len = json_dumpb(obj, buf, n > 0 ? n - 1 : 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (len == 0 || len >= n) return 0;
  buf[len] = 0;
  return 1;
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
  if (!json_line(o, m->info, sizeof m->info)) { /* a very long data path: keep the state, drop the path */
    json_object_del(o, "data");
    json_line(o, m->info, sizeof m->info);
  }
  json_decref(o);
}

static int meta_to_state(const mbsr_ckpt_meta *m, run_state *s) {
  double v;
  s->step = m->step, s->epoch = m->epoch, s->best_epoch = m->best_epoch, s->bad_epochs = m->bad_epochs;
  s->best_val = m->best_val, s->last_val = m->last_val;
  if (!json_num(m->info, "step_in_epoch", &v)) return mbsr_error(MBSR_EFORMAT, "checkpoint: no trainer state in its info");
  s->step_in_epoch = (int64_t)v;
  s->train_sum = json_num(m->info, "train_sum", &v) ? v : 0;
  s->train_n = json_num(m->info, "train_n", &v) ? (int64_t)v : 0;
  s->finished = json_num(m->info, "finished", &v) ? (int)v : 0;
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
  DIFF(MBSR_TRAIN_GIVEN_ARCH, w->arch != k->arch, "arch %s vs its %s", mbsr_arch_name(w->arch), mbsr_arch_name(k->arch));
  DIFF(MBSR_TRAIN_GIVEN_CHANNELS, w->channels != k->channels, "channels %d vs its %d", w->channels, k->channels);
  DIFF(MBSR_TRAIN_GIVEN_BLOCKS, w->blocks != k->blocks, "blocks %d vs its %d", w->blocks, k->blocks);
  DIFF(MBSR_TRAIN_GIVEN_GLOBAL_RESIDUAL, !w->global_residual != !k->global_residual, "global residual %s vs its %s",
       w->global_residual ? "on" : "off", k->global_residual ? "on" : "off");
  DIFF(MBSR_TRAIN_GIVEN_CCNN_C1, w->ccnn_c1 != k->ccnn_c1, "cCNN width 1 %d vs its %d", w->ccnn_c1, k->ccnn_c1);
  DIFF(MBSR_TRAIN_GIVEN_CCNN_C2, w->ccnn_c2 != k->ccnn_c2, "cCNN width 2 %d vs its %d", w->ccnn_c2, k->ccnn_c2);
  DIFF(MBSR_TRAIN_GIVEN_DISC_CHANNELS, w->disc_channels != k->disc_channels, "disc_channels %d vs its %d",
       w->disc_channels, k->disc_channels);
  DIFF(MBSR_TRAIN_GIVEN_DISC_BLOCKS, w->disc_blocks != k->disc_blocks, "disc_blocks %d vs its %d", w->disc_blocks,
       k->disc_blocks);
  DIFF(MBSR_TRAIN_GIVEN_GAN_LAMBDA, w->gan_lambda != k->gan_lambda, "gan_lambda %g vs its %g", (double)w->gan_lambda,
       (double)k->gan_lambda);
#undef DIFF
  if (!n) return MBSR_OK;
  return mbsr_error(MBSR_EMISMATCH, "the options contradict the checkpoint: %s; leave them out to continue its network, or "
                                    "train into another output directory",
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
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  while (!rc && (got = getline(&line, &cap, f)) > 0) {
    double s;
    size_t ln = (size_t)got; /* complete lines only: a killed run may have left half a line */
    if (ln >= 2 && line[ln - 1] == '\n' && line[ln - 2] == '}' && json_num(line, "step", &s) && (int64_t)s <= step)
      rc = mbsr_append_line(g, path, line);
  }
  free(line);
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
  int prc = mbsr_pathf(path, sizeof path, "%s/config.json", dir);
  if (prc) return prc;
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
    return mbsr_error(MBSR_ENOMEM, "%s: out of memory", file);
  }
  for (const char *t = exclude; t && *t;) {
    size_t len = strcspn(t, ",");
    int found = 0;
    for (int i = 0; i < S; i++)
      if (strlen(names[i]) == len && !strncmp(names[i], t, len)) drop[i] = 1, found = 1;
    if (!found && len) {
      free(drop);
      return mbsr_error(MBSR_EINVAL, "exclude_subjects: no subject '%.*s' in %s", (int)len, t, file);
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
  if (!json_line(o, buf, n)) { /* many subjects: counts only */
    json_object_del(o, "train_subjects");
    json_object_del(o, "val_subjects");
    if (!json_line(o, buf, n)) buf[0] = 0;
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

/* ---- the run: a trainer state and its verbs ---- */
typedef struct {
  const mbsr_train_config *c;
  MPI_Comm comm;
  int rank, P;
  mbsr_train_summary *sum;
  double t_start;
  /* data */
  mbsr_patchset *tr, *va;
  int64_t *tr_idx, *va_idx;   /* patches of subjects not excluded */
  int64_t *perm, *sub;        /* epoch permutation of [0,ntrain); the used subset of the file's patches */
  int64_t ntr_all, ntrain, nval, spe;
  int p, B, b0, nb, mb;       /* patch edge; global batch; this rank's slice [b0, b0 + nb); model batch */
  size_t vox;
  double cubic_val;
  /* model and buffers */
  mbsr_model *m;
  float *bin, *btg, *bout, *aug_tmp;
  size_t nparams;
  int nph, resumed;
  double rss0, mem_rank, flops_sample;
  /* outputs */
  FILE *log;
  char last_path[4096], best_path[4096], log_path[4096];
  /* progress */
  run_state st;
  int stop_all, early, timeup, maxed;
  int64_t step0, epochs_run;
  double t_io, t_comp, t_ar, t_sync, t_val, t_train, t_epoch0, cpu0;
} trainer;

/* The configuration (identical on all ranks); messages name the parameters. */
static int check_config(const mbsr_train_config *c) {
  if (!c->data || !c->pair || (!c->out && !c->dry_run)) return mbsr_error(MBSR_EINVAL, "train: data, pair and out are required");
  if (c->batch < 1 || c->batch > 65536) return mbsr_error(MBSR_EINVAL, "train: batch %d out of range 1..65536", c->batch);
  if (c->epochs < 1) return mbsr_error(MBSR_EINVAL, "train: epochs must be >= 1");
  if (c->patience < 0) return mbsr_error(MBSR_EINVAL, "train: patience must be >= 0");
  if (!(c->adam.lr > 0)) return mbsr_error(MBSR_EINVAL, "train: lr must be > 0");
  return MBSR_OK;
}

/* The patch files' train and val sets, the patches used, the batch geometry. */
static int open_data(trainer *run) {
  const mbsr_train_config *c = run->c;
  int rc = 0;
  if (c->out) {
    rc = mbsr_pathf(run->last_path, sizeof run->last_path, "%s/last.h5", c->out);
    if (!rc) rc = mbsr_pathf(run->best_path, sizeof run->best_path, "%s/best.h5", c->out);
    if (!rc) rc = mbsr_pathf(run->log_path, sizeof run->log_path, "%s/train.jsonl", c->out);
  }
  if (!rc) rc = mbsr_patchset_open(c->data, c->pair, "train", &run->tr);
  if (!rc) rc = mbsr_patchset_open(c->data, c->pair, "val", &run->va);
  if (!rc) rc = select_patches(run->tr, c->exclude_subjects, c->data, &run->tr_idx, &run->ntr_all);
  if (!rc) rc = select_patches(run->va, c->exclude_subjects, c->data, &run->va_idx, &run->nval);
  if (!rc && run->ntr_all < 1)
    rc = mbsr_error(MBSR_EINVAL, "%s: pair %s has no training patches%s", c->data, c->pair,
                    c->exclude_subjects ? " outside the excluded subjects" : "");
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  run->p = mbsr_patchset_patch(run->tr);
  run->vox = (size_t)run->p * run->p * run->p;
  run->ntrain = run->ntr_all;
  if (c->max_patches > 0 && c->max_patches < run->ntrain) run->ntrain = c->max_patches;
  run->B = c->batch;
  run->spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : (run->ntrain + run->B - 1) / run->B;
  run->b0 = (int)((int64_t)run->B * run->rank / run->P);
  run->nb = (int)((int64_t)run->B * (run->rank + 1) / run->P) - run->b0;
  run->mb = (run->B + run->P - 1) / run->P; /* the model's batch: the largest share, also the validation micro-batch */
  if (run->mb > 256)
    return mbsr_error(MBSR_EINVAL, "global batch %d on %d ranks gives %d patches per rank (at most 256)", run->B, run->P, run->mb);
  if (run->mb < 4) run->mb = 4;
  run->cubic_val = mbsr_patchset_cubic_mse(run->va);
  return 0;
}

/* The model of a resumed run: <out>/last.h5, checked against the configuration. */
static int resume_model(trainer *run) {
  const mbsr_train_config *c = run->c;
  mbsr_ckpt_meta meta;
  int rc = mbsr_checkpoint_load(run->last_path, run->mb, run->p, run->p, run->p, &run->m, &meta);
  if (!rc) rc = check_resume_model(c, mbsr_model_get_config(run->m));
  if (!rc) rc = meta_to_state(&meta, &run->st);
  double kb = 0, ks = 0, kp = 0;
  if (!rc && json_num(meta.info, "batch", &kb) && json_num(meta.info, "steps_per_epoch", &ks) &&
      ((int)kb != c->batch || (int64_t)ks != run->spe))
    rc = mbsr_error(MBSR_EMISMATCH, "the checkpoint was made with global batch %d and %lld steps per epoch, this run has %d and %lld",
                    (int)kb, (long long)ks, c->batch, (long long)run->spe);
  if (!rc && run->rank == 0 && json_num(meta.info, "nranks", &kp) && (int)kp != run->P)
    mbsr_warn("resuming a %d-rank run on %d ranks: training continues correctly, but not bitwise as an uninterrupted run", (int)kp,
              run->P);
  if (rc) mbsr_error_prefix(rc, "resuming from %s: ", run->last_path);
  run->resumed = 1;
  if (!rc && c->init && c->finetune_last >= 0) rc = mbsr_model_freeze_all_but_last(run->m, c->finetune_last);
  return rc;
}

/* A fresh model (Glorot; a global-residual output conv zeroed) or a transfer (init). */
static int fresh_model(trainer *run) {
  const mbsr_train_config *c = run->c;
  int rc = mbsr_model_create(&c->model, run->mb, run->p, run->p, run->p, &run->m);
  if (!rc) mbsr_model_init(run->m, c->seed);
  if (!rc && !c->init && !c->init_glorot && c->model.global_residual) zero_output_conv(run->m);
  if (!rc && c->init) {
    mbsr_ckpt_meta im;
    rc = mbsr_checkpoint_load_into(run->m, c->init, &im);
    if (rc) mbsr_error_prefix(rc, "init %s: ", c->init);
    if (!rc && c->finetune_last >= 0) rc = mbsr_model_freeze_all_but_last(run->m, c->finetune_last);
  }
  return rc;
}

/* The model (fresh, transfer, or resumed when resume is set and <out>/last.h5 exists), the batch
 * buffers, and the subset of patches this run trains on. */
static int build_model(trainer *run) {
  const mbsr_train_config *c = run->c;
  int rc = 0;
  if (run->rank == 0 && c->out && !c->dry_run) {
    rc = mbsr_mkdir_p(c->out);
    if (!rc) mbsr_clean_stale_tmp(c->out, NULL); /* temporaries of killed runs */
  }
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  run->rss0 = rss_bytes();
  rc = c->resume && c->out && mbsr_file_exists(run->last_path) ? resume_model(run) : fresh_model(run);
  const size_t bytes = sizeof(float) * run->vox * (size_t)run->mb;
  run->bin = mbsr_alloc(bytes), run->btg = mbsr_alloc(bytes), run->bout = mbsr_alloc(bytes);
  run->perm = malloc(sizeof(int64_t) * (size_t)run->ntr_all);
  run->sub = malloc(sizeof(int64_t) * (size_t)run->ntr_all);
  run->aug_tmp = c->augment ? mbsr_alloc(sizeof(float) * run->vox) : NULL;
  if (!rc && (!run->bin || !run->btg || !run->bout || !run->perm || !run->sub || (c->augment && !run->aug_tmp)))
    rc = mbsr_error(MBSR_ENOMEM, "train: out of memory for batch buffers");
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  /* max_patches N: a seeded random subset of N patches (fixed for the run), sorted */
  shuffle(run->sub, run->ntr_all, c->seed, -1);
  if (run->ntrain < run->ntr_all) qsort(run->sub, (size_t)run->ntrain, sizeof *run->sub, cmp_i64);
  else
    for (int64_t i = 0; i < run->ntrain; i++) run->sub[i] = i;
  for (int64_t i = 0; i < run->ntrain; i++) run->sub[i] = run->tr_idx[run->sub[i]];
  /* the SR contract of the data, with what this run trains on: saved in every checkpoint */
  mbsr_sr_contract k;
  rc = mbsr_patchset_contract(run->tr, &k);
  if (!rc && k.through_plane && c->augment) /* axis permutations would move the degraded axis away from axis 0 */
    rc = mbsr_error(MBSR_EINVAL, "%s: pair %s is self-supervised through-plane (the network restores axis 0): augment (axis "
                    "permutations) would undo that; train without it", c->data, c->pair);
  const int aniso = fabs(k.lr_vox_mm[0] - k.lr_vox_mm[1]) > 1e-6 || fabs(k.lr_vox_mm[1] - k.lr_vox_mm[2]) > 1e-6;
  if (!rc && !k.through_plane && aniso && c->augment) /* a permutation would move the thick axis: a degradation never trained on */
    rc = mbsr_error(MBSR_EINVAL, "%s: pair %s has per-axis LR voxels: augment (axis permutations) would move the coarse axis; "
                    "train without it", c->data, c->pair);
  if (!rc) {
    training_summary(c, run->tr, run->sub, run->ntrain, run->va, run->va_idx, run->nval, k.training, sizeof k.training);
    mbsr_model_set_contract(run->m, &k);
  }
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  /* the cubic baseline over the validation patches used (the file's value when none is left out) */
  if (run->nval != mbsr_patchset_count(run->va)) {
    double io = 0;
    rc = validate(run->m, run->va, run->va_idx, run->nval, 1, run->mb, run->bin, run->btg, run->bout, run->comm, &run->cubic_val, &io);
  }
  run->sum->cubic_val = run->cubic_val;
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  run->mem_rank = rss_bytes() - run->rss0;
  run->nparams = mbsr_model_num_params(run->m);
  run->nph = mbsr_model_num_phases(run->m);
  run->flops_sample = 3.0 * mbsr_model_forward_flops(run->m);
  return 0;
}

/* This rank's share of global step k of the epoch permutation: read (and augment) the batch. */
static int read_batch(trainer *run, const int64_t *perm, int64_t k) {
  const mbsr_train_config *c = run->c;
  int64_t idx[256];
  int rc = 0;
  for (int j = 0; j < run->nb; j++) idx[j] = run->sub[perm[(k * run->B + run->b0 + j) % run->ntrain]];
  double t = mbsr_now();
  if (run->nb) rc = mbsr_patchset_read(run->tr, idx, run->nb, run->bin, run->btg);
  if (run->nb && !rc && c->augment) augment_batch(run->bin, run->btg, run->nb, run->p, c->seed, run->st.step, run->b0, run->aug_tmp);
  run->t_io += mbsr_now() - t;
  if (!rc && run->rank == c->inject_fail_rank && run->st.step == c->inject_fail_step)
    rc = mbsr_error(MBSR_EIO, "injected failure at step %lld (test hook inject_fail)", (long long)run->st.step);
  return rc;
}

/* One phase of a step: local gradient, ONE small all-reduce (loss, failures, stop request: the
 * status agreement), the gradient all-reduce, the update (identical on all ranks). *lrc: this
 * rank's local failure so far; *loss: the phase's global loss. */
static int step_phase(trainer *run, int ph, int stopreq, int *lrc, double *loss) {
  size_t so, sc;
  mbsr_model_phase_span(run->m, ph, &so, &sc);
  double t = mbsr_now(), l = 0, mse = 0;
  int rc = 0;
  if (!*lrc) {
    if (run->nb) {
      l = mbsr_model_phase_grad(run->m, ph, run->bin, run->btg, run->nb, (double)run->B);
      if (l < 0) *lrc = (int)l, l = 0;
    } else
      memset(mbsr_model_grads(run->m) + so, 0, sizeof(float) * sc);
  }
  if (run->nb && !*lrc) mbsr_model_last_losses(run->m, &mse, NULL, NULL);
  run->t_comp += mbsr_now() - t;
  double sm[3] = {run->nph == 1 ? l : mse, *lrc ? 1.0 : 0.0, stopreq ? 1.0 : 0.0};
  t = mbsr_now();
  if (MPI_Allreduce(MPI_IN_PLACE, sm, 3, MPI_DOUBLE, MPI_SUM, run->comm) != MPI_SUCCESS)
    rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce (step status) failed");
  run->t_sync += mbsr_now() - t;
  if (!rc && sm[1] > 0) rc = mbsr_mpi_agree(run->comm, *lrc);
  if (rc) return rc;
  if (sm[2] > 0) run->stop_all = 1;
  *loss = sm[0];
  t = mbsr_now();
  if (run->P > 1 && MPI_Allreduce(MPI_IN_PLACE, mbsr_model_grads(run->m) + so, (int)sc, MPI_FLOAT, MPI_SUM, run->comm) != MPI_SUCCESS)
    rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce of %zu gradients failed", sc);
  run->t_ar += mbsr_now() - t;
  t = mbsr_now();
  /* the reduced gradients are identical on all ranks: so are the update and its status */
  if (!rc) rc = mbsr_model_phase_update(run->m, ph, &run->c->adam);
  run->t_comp += mbsr_now() - t;
  return rc;
}

/* One global step (shared by the dry run and the loop): the global loss of the last phase into *loss. */
static int train_step(trainer *run, const int64_t *perm, int64_t k, int stopreq, double *loss) {
  int lrc = read_batch(run, perm, k), rc = 0;
  double gl = 0;
  for (int ph = 0; ph < run->nph && !rc; ph++) rc = step_phase(run, ph, stopreq, &lrc, &gl);
  *loss = gl;
  return rc;
}

/* dry_run: the plan, with a few measured steps (nothing is written). */
static int dry_run(trainer *run) {
  const mbsr_train_config *c = run->c;
  const int B = run->B, P = run->P, nthr = omp_get_max_threads();
  const int64_t plan_n = c->plan_patches > 0 ? c->plan_patches : run->ntrain;
  const int64_t plan_spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : (plan_n + B - 1) / B;
  shuffle(run->perm, run->ntrain, c->seed, 0);
  const int warm = 1, meas = 3;
  double loss, tm = 0, tcpu = 0;
  int rc = 0;
  for (int k = 0; k < warm + meas && !rc; k++) {
    double t0 = mbsr_now(), c0 = cpu_seconds();
    rc = train_step(run, run->perm, k, 0, &loss);
    MPI_Barrier(run->comm);
    if (k >= warm) tm += mbsr_now() - t0, tcpu += cpu_seconds() - c0;
  }
  /* CPU seconds per step summed over ranks: the cost in core-seconds, insensitive to other jobs
   * sharing the cores (the wall time is not) */
  tcpu /= meas;
  MPI_Allreduce(MPI_IN_PLACE, &tcpu, 1, MPI_DOUBLE, MPI_SUM, run->comm);
  if (rc) return rc;
  double tstep = tm / meas, ar_max;
  MPI_Allreduce(MPI_IN_PLACE, &tstep, 1, MPI_DOUBLE, MPI_MAX, run->comm);
  MPI_Allreduce(&run->t_ar, &ar_max, 1, MPI_DOUBLE, MPI_MAX, run->comm);
  const double epoch_s = tstep * (double)plan_spe, fl = run->flops_sample, fl_epoch = fl * (double)plan_spe * B;
  /* validation: forward only, ~1/3 of a training step's work per patch, spread over the ranks;
   * planned val patches scale with the training patches when plan_patches is given */
  const double plan_val = c->plan_val_patches > 0 ? (double)c->plan_val_patches
                          : c->plan_patches > 0 && run->ntrain > 0 ? (double)run->nval * (double)plan_n / (double)run->ntrain
                                                                 : (double)run->nval;
  const double val_s = plan_val * (tstep / (3.0 * B));
  run->sum->dry_epoch_seconds = epoch_s, run->sum->dry_epoch_flops = fl_epoch, run->sum->dry_mem_bytes = run->mem_rank;
  char d1[32], d2[32];
  mbsr_format_duration(epoch_s, d1, sizeof d1);
  mbsr_format_duration((epoch_s + val_s) * c->epochs, d2, sizeof d2);
  const mbsr_model_config *mc = mbsr_model_get_config(run->m);
  mbsr_info("train --dry-run: plan (nothing written)");
  mbsr_info("  model           %s channels=%d blocks=%d: %zu parameters (%.1f MB; params+grads+Adam m,v %.1f MB)",
            mbsr_arch_name(mc->arch), mc->channels, mc->blocks, run->nparams, run->nparams * 4.0 / 1e6, run->nparams * 16.0 / 1e6);
  mbsr_info("  data            %s pair %s: %lld train patches in the file, planning for %lld; %lld val patches; patch %d^3", c->data,
            c->pair, (long long)mbsr_patchset_count(run->tr), (long long)plan_n, (long long)run->nval, run->p);
  mbsr_info("  ranks           %d x %d thread%s; global batch %d -> %d..%d patches per rank per step", P, nthr, nthr > 1 ? "s" : "",
            B, B / P, (B + P - 1) / P);
  mbsr_info("  per epoch       %lld steps, %lld patches (%lld per rank)", (long long)plan_spe, (long long)(plan_spe * B),
            (long long)(plan_spe * B / P));
  mbsr_info("  memory per rank %.1f MB measured (model, activations, workspaces, batch buffers)", run->mem_rank / 1e6);
  mbsr_info("  FLOPs           %.3g per patch (3 x forward %.3g), %.3g per epoch (%.3g per rank)", fl, fl / 3, fl_epoch, fl_epoch / P);
  mbsr_info("  measured        %.3f s per global step (mean of %d after %d warm-up; all-reduce %.1f%%) = %.1f patches/s, %.1f GFLOP/s",
            tstep, meas, warm, 100.0 * ar_max / (tm > 0 ? tm : 1), B / tstep, fl * B / tstep / 1e9);
  mbsr_info("  CPU             %.3f core-s per global step over all ranks (%.1f%% of %d cores x wall): %.3g core-h for %d epochs "
            "(training steps only)",
            tcpu, 100 * tcpu / (tstep * P * nthr), P * nthr, tcpu * (double)plan_spe * c->epochs / 3600, c->epochs);
  mbsr_info("  validation      ~%.0f patches per epoch, ~%.0f s (estimated: forward = 1/3 of a training step)", plan_val, val_s);
  mbsr_info("  time            %s per epoch of training, %s (%.1f days) for %d epochs incl. validation (upper bound: early "
            "stopping, patience %d, may end sooner)",
            d1, d2, (epoch_s + val_s) * c->epochs / 86400.0, c->epochs, c->patience);
  return 0;
}

/* config.json, the log (truncated to the checkpoint on resume), the opening lines. */
static int open_outputs(trainer *run) {
  const mbsr_train_config *c = run->c;
  int rc = 0;
  if (run->rank == 0) {
    rc = write_config_json(c, run->m, c->out, run->P, run->ntrain, run->nval, run->spe);
    if (!rc && run->resumed) rc = truncate_log(run->log_path, run->st.step);
    if (!rc && !(run->log = fopen(run->log_path, run->resumed ? "a" : "w"))) rc = mbsr_error(MBSR_EIO, "%s: cannot open", run->log_path);
  }
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  const int nthr = omp_get_max_threads();
  if (run->resumed && c->progress)
    mbsr_info("train: resuming from %s at epoch %lld, step %lld (%lld of %lld in the epoch)", run->last_path, (long long)run->st.epoch,
              (long long)run->st.step, (long long)run->st.step_in_epoch, (long long)run->spe);
  if (c->progress)
    mbsr_info("train: %s %zu parameters; %lld train / %lld val patches (%d^3) from %s pair %s; %d rank%s x %d thread%s, global batch %d, "
              "%lld steps per epoch, lr %g, seed %llu; cubic-baseline val MSE %.6g",
              mbsr_arch_name(mbsr_model_get_config(run->m)->arch), run->nparams, (long long)run->ntrain, (long long)run->nval, run->p, c->data,
              c->pair, run->P, run->P > 1 ? "s" : "", nthr, nthr > 1 ? "s" : "", run->B, (long long)run->spe, (double)c->adam.lr,
              (unsigned long long)c->seed, run->cubic_val);
  if (c->progress) {
    const char *tf = mbsr_conv_tune_source();
    mbsr_info("train: conv algorithms %s (per pass of the 3x3x3 layers: %s)",
              tf ? "measured for this CPU" : "by the fixed rule (no tuning file for this CPU: mbsr bench --tune)",
              tf ? tf : "forward/input gradient Winograd 2x3x3, weight gradient 2x2x3 where Winograd applies");
  }
  return 0;
}

/* A checkpoint of the current state (rank 0 writes; every rank returns the agreed status). */
static int save_checkpoint(trainer *run, const char *path) {
  int rc = 0;
  if (run->rank == 0) {
    mbsr_ckpt_meta meta;
    state_to_meta(&run->st, run->c, run->P, run->spe, &meta);
    rc = mbsr_checkpoint_save(run->m, path, &meta);
  }
  return mbsr_mpi_agree(run->comm, rc);
}

/* Equal weights on all ranks (every checksum_every steps): a silent divergence is an error. */
static int check_weights(trainer *run) {
  uint64_t h = param_hash(mbsr_model_params(run->m), run->nparams), hv[2] = {h, ~h};
  if (MPI_Allreduce(MPI_IN_PLACE, hv, 2, MPI_UINT64_T, MPI_MIN, run->comm) != MPI_SUCCESS)
    return mbsr_error(MBSR_EMPI, "MPI_Allreduce (weight checksum) failed");
  if (hv[0] != ~hv[1]) /* min != max: the same verdict on every rank */
    return mbsr_error(MBSR_EMISMATCH, "weights differ between ranks at step %lld (checksums min %016llx max %016llx, this rank %016llx)",
                      (long long)run->st.step, (unsigned long long)hv[0], (unsigned long long)~hv[1], (unsigned long long)h);
  return 0;
}

/* The steps of the current epoch (from its saved position); stops early on max_steps, the time
 * limit, or a stop request of any rank. */
static int run_steps(trainer *run) {
  const mbsr_train_config *c = run->c;
  int rc = 0;
  while (!rc && run->st.step_in_epoch < run->spe) {
    if (c->max_steps > 0 && run->st.step >= c->max_steps) {
      run->maxed = 1, run->stop_all = 1;
      break;
    }
    int want_stop = (c->time_limit > 0 && mbsr_now() - run->t_start > c->time_limit) ? 1 : 0;
    double loss, ts = mbsr_now();
    if ((rc = train_step(run, run->perm, run->st.step_in_epoch, want_stop, &loss))) break;
    run->t_train += mbsr_now() - ts;
    run->st.step++, run->st.step_in_epoch++;
    run->st.train_sum += loss, run->st.train_n++;
    run->sum->last_train = loss;
    if (run->rank == c->inject_diverge_rank && run->st.step == c->inject_diverge_step)
      mbsr_model_params(run->m)[run->nparams / 2] += 1e-3f; /* test hook: silent divergence of one rank */
    if (c->checksum_every > 0 && run->st.step % c->checksum_every == 0 && run->P > 1 && (rc = check_weights(run))) break;
    if (run->stop_all) {
      run->timeup = 1;
      break;
    }
    if (c->ckpt_every > 0 && run->st.step % c->ckpt_every == 0 && run->st.step_in_epoch < run->spe) rc = save_checkpoint(run, run->last_path);
  }
  return rc;
}

/* The epoch's line of train.jsonl (rank 0). */
static int log_epoch(trainer *run, double train_loss, double pps, double ar_share, double epoch_s, double eta) {
  json_t *o = json_object();
  json_object_set_new(o, "epoch", json_integer(run->st.epoch));
  json_object_set_new(o, "step", json_integer(run->st.step));
  json_object_set_new(o, "train_loss", jnum(train_loss));
  json_object_set_new(o, "val_loss", jnum(run->st.last_val));
  json_object_set_new(o, "cubic_val", jnum(run->cubic_val));
  json_object_set_new(o, "best_val", jnum(run->st.best_val));
  json_object_set_new(o, "best_epoch", json_integer(run->st.best_epoch));
  json_object_set_new(o, "patches_per_s", jnum(pps));
  json_object_set_new(o, "allreduce_share", jnum(ar_share));
  json_object_set_new(o, "epoch_s", jnum(epoch_s));
  json_object_set_new(o, "elapsed_s", jnum(mbsr_now() - run->t_start));
  json_object_set_new(o, "eta_s", jnum(eta));
  json_object_set_new(o, "nranks", json_integer(run->P));
  json_object_set_new(o, "batch", json_integer(run->B));
  json_object_set_new(o, "lr", jnum(run->c->adam.lr));
  char line[2048];
  int rc = json_line(o, line, sizeof line) ? mbsr_append_line(run->log, run->log_path, line)
                                           : mbsr_error(MBSR_ERANGE, "%s: log line too long", run->log_path);
  json_decref(o);
  return rc;
}

/* Validation (when due), early stopping; 1 when the epoch improved on the best. */
static int validate_epoch(trainer *run, int *improved) {
  const mbsr_train_config *c = run->c;
  run_state *st = &run->st;
  *improved = 0;
  if (run->nval > 0 && c->val_every > 0 && st->epoch % c->val_every == 0) {
    double tv = mbsr_now(), vl = NAN, vio = 0; /* validation reads are part of t_val */
    int rc = validate(run->m, run->va, run->va_idx, run->nval, 0, run->mb, run->bin, run->btg, run->bout, run->comm, &vl, &vio);
    run->t_val += mbsr_now() - tv;
    if (rc) return rc;
    st->last_val = vl;
    if (vl < st->best_val) st->best_val = vl, st->best_epoch = st->epoch, st->bad_epochs = 0, *improved = 1;
    else st->bad_epochs++;
  } else if (run->nval == 0) {
    st->last_val = NAN;
    *improved = 1; /* no validation patches: best.h5 follows the last epoch */
  }
  if (c->patience > 0 && st->bad_epochs >= c->patience) run->early = 1;
  if (st->epoch >= c->epochs || run->early) st->finished = 1;
  return 0;
}

/* End of an epoch: validation, early stopping, progress line, log, checkpoints. */
static int end_epoch(trainer *run, double te) {
  const mbsr_train_config *c = run->c;
  run_state *st = &run->st;
  const double train_loss = st->train_n ? st->train_sum / (double)st->train_n : NAN;
  st->epoch++, st->step_in_epoch = 0, st->train_sum = 0, st->train_n = 0, run->epochs_run++;
  int improved = 0, rc = validate_epoch(run, &improved);
  if (rc) return rc;
  const double ep_s = (mbsr_now() - run->t_epoch0) / (double)run->epochs_run;
  const double eta = ep_s * (double)(c->epochs - st->epoch);
  const double pps = run->t_train > 0 ? (double)(st->step - run->step0) * run->B / run->t_train : 0;
  const double ar_share = run->t_train > 0 ? run->t_ar / run->t_train : 0;
  if (run->rank == 0 && c->progress) {
    char e1[32], e2[32], vs[160];
    mbsr_format_duration(eta, e1, sizeof e1);
    mbsr_format_duration(mbsr_now() - run->t_start, e2, sizeof e2);
    if (run->nval > 0)
      snprintf(vs, sizeof vs, "val %.6g (cubic %.6g, best %.6g @%lld)%s", st->last_val, run->cubic_val, st->best_val,
               (long long)st->best_epoch, improved ? " *" : "");
    else
      snprintf(vs, sizeof vs, "no validation patches");
    mbsr_info("epoch %lld/%d step %lld: train %.6g  %s  %.1f patches/s  all-reduce %.1f%%  elapsed %s ETA %s", (long long)st->epoch,
              c->epochs, (long long)st->step, train_loss, vs, pps, 100 * ar_share, e2, e1);
  }
  /* a line that did not fit (full disk) ends every rank here; resume drops what the checkpoint lacks */
  rc = run->rank == 0 ? log_epoch(run, train_loss, pps, ar_share, mbsr_now() - te, eta) : 0;
  if ((rc = mbsr_mpi_agree(run->comm, rc))) return rc;
  run->sum->last_train = train_loss;
  if (improved && (rc = save_checkpoint(run, run->best_path))) return rc;
  if ((rc = save_checkpoint(run, run->last_path))) return rc;
  if (run->early)
    mbsr_info("train: early stopping: no validation improvement for %d epochs (best %.6g at epoch %lld)", c->patience, st->best_val,
              (long long)st->best_epoch);
  return 0;
}

/* The epochs, until the last, early stopping, or a stop. */
static int run_epochs(trainer *run) {
  const mbsr_train_config *c = run->c;
  run->step0 = run->st.step;
  run->t_epoch0 = mbsr_now(), run->cpu0 = cpu_seconds();
  int rc = 0;
  while (!rc && run->st.epoch < c->epochs && !run->stop_all) {
    shuffle(run->perm, run->ntrain, c->seed, run->st.epoch);
    double te = mbsr_now();
    if ((rc = run_steps(run))) break;
    if (run->st.step_in_epoch < run->spe) { /* stopped inside the epoch: save the position and leave */
      rc = save_checkpoint(run, run->last_path);
      break;
    }
    if ((rc = end_epoch(run, te)) || run->early) break;
  }
  if (!rc) {
    if (run->timeup)
      mbsr_info("train: time limit %.0f s reached at step %lld: checkpoint %s (continue with resume)", c->time_limit,
                (long long)run->st.step, run->last_path);
    if (run->maxed) mbsr_info("train: max_steps %lld reached: checkpoint %s", (long long)c->max_steps, run->last_path);
  }
  return rc;
}

/* The summary, the timing split of this invocation and the closing line. */
static void summarise(trainer *run, int rc) {
  const run_state *st = &run->st;
  mbsr_train_summary *sum = run->sum;
  const int nthr = omp_get_max_threads();
  sum->steps = st->step, sum->epochs = st->epoch, sum->best_val = st->best_val, sum->last_val = st->last_val;
  sum->best_epoch = st->best_epoch, sum->stopped_early = run->early, sum->hit_time_limit = run->timeup, sum->finished = st->finished;
  sum->patches_per_s = run->t_train > 0 ? (double)(st->step - run->step0) * run->B / run->t_train : 0;
  sum->t_compute = run->t_comp, sum->t_allreduce = run->t_ar, sum->t_io = run->t_io, sum->t_val = run->t_val;
  sum->t_sync = run->t_sync;
  if (rc) return;
  /* timing split of this invocation (rank 0's clock; the status all-reduce absorbs the wait for
   * the slowest rank, so "all-reduce" is the gradient transfer itself), and the CPU share the
   * ranks actually got (min over ranks): far below 100% means other jobs share the cores */
  const double tt = run->t_train > 0 ? run->t_train : 1;
  double cpu_share = (cpu_seconds() - run->cpu0) / ((mbsr_now() - run->t_epoch0) * nthr);
  MPI_Allreduce(MPI_IN_PLACE, &cpu_share, 1, MPI_DOUBLE, MPI_MIN, run->comm);
  mbsr_info("train: this run: %lld steps in %.2f s, %.2f patches/s; step time split: compute %.1f%%, gradient all-reduce %.1f%% "
            "(%zu floats), status sync/wait %.1f%%, reads %.1f%%; validation %.2f s; CPU %.0f%% of each rank's %d thread%s",
            (long long)(st->step - run->step0), run->t_train, sum->patches_per_s, 100 * run->t_comp / tt, 100 * run->t_ar / tt, run->nparams,
            100 * run->t_sync / tt, 100 * run->t_io / tt, run->t_val, 100 * cpu_share, nthr, nthr > 1 ? "s" : "");
  if (run->rank == 0 && st->finished) {
    char vs[160] = "no validation patches: best.h5 is the last epoch";
    if (run->nval > 0)
      snprintf(vs, sizeof vs, "best val %.6g at epoch %lld (cubic baseline %.6g)", st->best_val, (long long)st->best_epoch, run->cubic_val);
    mbsr_info("train: done: %lld epochs, %lld steps, %s; %s, %s", (long long)st->epoch, (long long)st->step, vs, run->last_path,
              run->best_path);
  }
}

static void trainer_close(trainer *run) {
  if (run->log) fclose(run->log);
  mbsr_patchset_close(run->tr);
  mbsr_patchset_close(run->va);
  mbsr_model_free(run->m);
  mbsr_free(run->bin), mbsr_free(run->btg), mbsr_free(run->bout);
  free(run->perm), free(run->sub), free(run->tr_idx), free(run->va_idx);
  mbsr_free(run->aug_tmp);
}

int mbsr_train_run(const mbsr_train_config *c, MPI_Comm comm, mbsr_train_summary *sum) {
  trainer *run = calloc(1, sizeof *run);
  mbsr_train_summary S0;
  if (!sum) sum = &S0;
  memset(sum, 0, sizeof *sum);
  int rc = run ? check_config(c) : mbsr_error(MBSR_ENOMEM, "train: out of memory");
  if (rc) {
    free(run);
    return mbsr_mpi_agree(comm, rc);
  }
  run->c = c, run->comm = comm, run->sum = sum, run->t_start = mbsr_now();
  MPI_Comm_rank(comm, &run->rank);
  MPI_Comm_size(comm, &run->P);
  run->st.best_val = INFINITY, run->st.last_val = NAN, run->st.best_epoch = -1;
  rc = mbsr_mpi_agree(comm, open_data(run));
  if (!rc) rc = build_model(run);
  if (!rc && run->st.finished && !c->dry_run) {
    mbsr_info("train: %s says the run finished (epoch %lld, step %lld): nothing to do", run->last_path, (long long)run->st.epoch,
              (long long)run->st.step);
    sum->finished = 1, sum->steps = run->st.step, sum->epochs = run->st.epoch, sum->best_val = run->st.best_val,
    sum->last_val = run->st.last_val;
  } else if (!rc && c->dry_run) {
    rc = dry_run(run);
  } else if (!rc) {
    rc = open_outputs(run);
    if (!rc) rc = run_epochs(run);
    summarise(run, rc);
  }
  if (rc == MBSR_ENONFINITE && run->rank == 0 && c->out)
    mbsr_errmsg("train: stopped on a non-finite loss; the last good checkpoint is %s", run->last_path);
  sum->t_total = mbsr_now() - run->t_start;
  trainer_close(run);
  free(run);
  return rc;
}
