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
static int open_data(trainer *T) {
  const mbsr_train_config *c = T->c;
  int rc = 0;
  if (c->out) {
    rc = mbsr_pathf(T->last_path, sizeof T->last_path, "%s/last.h5", c->out);
    if (!rc) rc = mbsr_pathf(T->best_path, sizeof T->best_path, "%s/best.h5", c->out);
    if (!rc) rc = mbsr_pathf(T->log_path, sizeof T->log_path, "%s/train.jsonl", c->out);
  }
  if (!rc) rc = mbsr_patchset_open(c->data, c->pair, "train", &T->tr);
  if (!rc) rc = mbsr_patchset_open(c->data, c->pair, "val", &T->va);
  if (!rc) rc = select_patches(T->tr, c->exclude_subjects, c->data, &T->tr_idx, &T->ntr_all);
  if (!rc) rc = select_patches(T->va, c->exclude_subjects, c->data, &T->va_idx, &T->nval);
  if (!rc && T->ntr_all < 1)
    rc = mbsr_error(MBSR_EINVAL, "%s: pair %s has no training patches%s", c->data, c->pair,
                    c->exclude_subjects ? " outside the excluded subjects" : "");
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  T->p = mbsr_patchset_patch(T->tr);
  T->vox = (size_t)T->p * T->p * T->p;
  T->ntrain = T->ntr_all;
  if (c->max_patches > 0 && c->max_patches < T->ntrain) T->ntrain = c->max_patches;
  T->B = c->batch;
  T->spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : (T->ntrain + T->B - 1) / T->B;
  T->b0 = (int)((int64_t)T->B * T->rank / T->P);
  T->nb = (int)((int64_t)T->B * (T->rank + 1) / T->P) - T->b0;
  T->mb = (T->B + T->P - 1) / T->P; /* the model's batch: the largest share, also the validation micro-batch */
  if (T->mb > 256)
    return mbsr_error(MBSR_EINVAL, "global batch %d on %d ranks gives %d patches per rank (at most 256)", T->B, T->P, T->mb);
  if (T->mb < 4) T->mb = 4;
  T->cubic_val = mbsr_patchset_cubic_mse(T->va);
  return 0;
}

/* The model of a resumed run: <out>/last.h5, checked against the configuration. */
static int resume_model(trainer *T) {
  const mbsr_train_config *c = T->c;
  mbsr_ckpt_meta meta;
  int rc = mbsr_checkpoint_load(T->last_path, T->mb, T->p, T->p, T->p, &T->m, &meta);
  if (!rc) rc = check_resume_model(c, mbsr_model_get_config(T->m));
  if (!rc) rc = meta_to_state(&meta, &T->st);
  double kb = 0, ks = 0, kp = 0;
  if (!rc && json_num(meta.info, "batch", &kb) && json_num(meta.info, "steps_per_epoch", &ks) &&
      ((int)kb != c->batch || (int64_t)ks != T->spe))
    rc = mbsr_error(MBSR_EMISMATCH, "the checkpoint was made with global batch %d and %lld steps per epoch, this run has %d and %lld",
                    (int)kb, (long long)ks, c->batch, (long long)T->spe);
  if (!rc && T->rank == 0 && json_num(meta.info, "nranks", &kp) && (int)kp != T->P)
    mbsr_warn("resuming a %d-rank run on %d ranks: training continues correctly, but not bitwise as an uninterrupted run", (int)kp,
              T->P);
  if (rc) mbsr_error_prefix(rc, "resuming from %s: ", T->last_path);
  T->resumed = 1;
  if (!rc && c->init && c->finetune_last >= 0) rc = mbsr_model_freeze_all_but_last(T->m, c->finetune_last);
  return rc;
}

/* A fresh model (Glorot; a global-residual output conv zeroed) or a transfer (init). */
static int fresh_model(trainer *T) {
  const mbsr_train_config *c = T->c;
  int rc = mbsr_model_create(&c->model, T->mb, T->p, T->p, T->p, &T->m);
  if (!rc) mbsr_model_init(T->m, c->seed);
  if (!rc && !c->init && !c->init_glorot && c->model.global_residual) zero_output_conv(T->m);
  if (!rc && c->init) {
    mbsr_ckpt_meta im;
    rc = mbsr_checkpoint_load_into(T->m, c->init, &im);
    if (rc) mbsr_error_prefix(rc, "init %s: ", c->init);
    if (!rc && c->finetune_last >= 0) rc = mbsr_model_freeze_all_but_last(T->m, c->finetune_last);
  }
  return rc;
}

/* The model (fresh, transfer, or resumed when resume is set and <out>/last.h5 exists), the batch
 * buffers, and the subset of patches this run trains on. */
static int build_model(trainer *T) {
  const mbsr_train_config *c = T->c;
  int rc = 0;
  if (T->rank == 0 && c->out && !c->dry_run) {
    rc = mbsr_mkdir_p(c->out);
    if (!rc) mbsr_clean_stale_tmp(c->out, NULL); /* temporaries of killed runs */
  }
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  T->rss0 = rss_bytes();
  rc = c->resume && c->out && mbsr_file_exists(T->last_path) ? resume_model(T) : fresh_model(T);
  const size_t bytes = sizeof(float) * T->vox * (size_t)T->mb;
  T->bin = mbsr_alloc(bytes), T->btg = mbsr_alloc(bytes), T->bout = mbsr_alloc(bytes);
  T->perm = malloc(sizeof(int64_t) * (size_t)T->ntr_all);
  T->sub = malloc(sizeof(int64_t) * (size_t)T->ntr_all);
  T->aug_tmp = c->augment ? mbsr_alloc(sizeof(float) * T->vox) : NULL;
  if (!rc && (!T->bin || !T->btg || !T->bout || !T->perm || !T->sub || (c->augment && !T->aug_tmp)))
    rc = mbsr_error(MBSR_ENOMEM, "train: out of memory for batch buffers");
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  /* max_patches N: a seeded random subset of N patches (fixed for the run), sorted */
  shuffle(T->sub, T->ntr_all, c->seed, -1);
  if (T->ntrain < T->ntr_all) qsort(T->sub, (size_t)T->ntrain, sizeof *T->sub, cmp_i64);
  else
    for (int64_t i = 0; i < T->ntrain; i++) T->sub[i] = i;
  for (int64_t i = 0; i < T->ntrain; i++) T->sub[i] = T->tr_idx[T->sub[i]];
  /* the SR contract of the data, with what this run trains on: saved in every checkpoint */
  mbsr_sr_contract k;
  rc = mbsr_patchset_contract(T->tr, &k);
  if (!rc) {
    training_summary(c, T->tr, T->sub, T->ntrain, T->va, T->va_idx, T->nval, k.training, sizeof k.training);
    mbsr_model_set_contract(T->m, &k);
  }
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  /* the cubic baseline over the validation patches used (the file's value when none is left out) */
  if (T->nval != mbsr_patchset_count(T->va)) {
    double io = 0;
    rc = validate(T->m, T->va, T->va_idx, T->nval, 1, T->mb, T->bin, T->btg, T->bout, T->comm, &T->cubic_val, &io);
  }
  T->sum->cubic_val = T->cubic_val;
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  T->mem_rank = rss_bytes() - T->rss0;
  T->nparams = mbsr_model_num_params(T->m);
  T->nph = mbsr_model_num_phases(T->m);
  T->flops_sample = 3.0 * mbsr_model_forward_flops(T->m);
  return 0;
}

/* This rank's share of global step k of the epoch permutation: read (and augment) the batch. */
static int read_batch(trainer *T, const int64_t *perm, int64_t k) {
  const mbsr_train_config *c = T->c;
  int64_t idx[256];
  int rc = 0;
  for (int j = 0; j < T->nb; j++) idx[j] = T->sub[perm[(k * T->B + T->b0 + j) % T->ntrain]];
  double t = mbsr_now();
  if (T->nb) rc = mbsr_patchset_read(T->tr, idx, T->nb, T->bin, T->btg);
  if (T->nb && !rc && c->augment) augment_batch(T->bin, T->btg, T->nb, T->p, c->seed, T->st.step, T->b0, T->aug_tmp);
  T->t_io += mbsr_now() - t;
  if (!rc && T->rank == c->inject_fail_rank && T->st.step == c->inject_fail_step)
    rc = mbsr_error(MBSR_EIO, "injected failure at step %lld (test hook inject_fail)", (long long)T->st.step);
  return rc;
}

/* One phase of a step: local gradient, ONE small all-reduce (loss, failures, stop request: the
 * status agreement), the gradient all-reduce, the update (identical on all ranks). *lrc: this
 * rank's local failure so far; *loss: the phase's global loss. */
static int step_phase(trainer *T, int ph, int stopreq, int *lrc, double *loss) {
  size_t so, sc;
  mbsr_model_phase_span(T->m, ph, &so, &sc);
  double t = mbsr_now(), l = 0, mse = 0;
  int rc = 0;
  if (!*lrc) {
    if (T->nb) {
      l = mbsr_model_phase_grad(T->m, ph, T->bin, T->btg, T->nb, (double)T->B);
      if (l < 0) *lrc = (int)l, l = 0;
    } else
      memset(mbsr_model_grads(T->m) + so, 0, sizeof(float) * sc);
  }
  if (T->nb && !*lrc) mbsr_model_last_losses(T->m, &mse, NULL, NULL);
  T->t_comp += mbsr_now() - t;
  double sm[3] = {T->nph == 1 ? l : mse, *lrc ? 1.0 : 0.0, stopreq ? 1.0 : 0.0};
  t = mbsr_now();
  if (MPI_Allreduce(MPI_IN_PLACE, sm, 3, MPI_DOUBLE, MPI_SUM, T->comm) != MPI_SUCCESS)
    rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce (step status) failed");
  T->t_sync += mbsr_now() - t;
  if (!rc && sm[1] > 0) rc = mbsr_mpi_agree(T->comm, *lrc);
  if (rc) return rc;
  if (sm[2] > 0) T->stop_all = 1;
  *loss = sm[0];
  t = mbsr_now();
  if (T->P > 1 && MPI_Allreduce(MPI_IN_PLACE, mbsr_model_grads(T->m) + so, (int)sc, MPI_FLOAT, MPI_SUM, T->comm) != MPI_SUCCESS)
    rc = mbsr_error(MBSR_EMPI, "MPI_Allreduce of %zu gradients failed", sc);
  T->t_ar += mbsr_now() - t;
  t = mbsr_now();
  /* the reduced gradients are identical on all ranks: so are the update and its status */
  if (!rc) rc = mbsr_model_phase_update(T->m, ph, &T->c->adam);
  T->t_comp += mbsr_now() - t;
  return rc;
}

/* One global step (shared by the dry run and the loop): the global loss of the last phase into *loss. */
static int train_step(trainer *T, const int64_t *perm, int64_t k, int stopreq, double *loss) {
  int lrc = read_batch(T, perm, k), rc = 0;
  double gl = 0;
  for (int ph = 0; ph < T->nph && !rc; ph++) rc = step_phase(T, ph, stopreq, &lrc, &gl);
  *loss = gl;
  return rc;
}

/* dry_run: the plan, with a few measured steps (nothing is written). */
static int dry_run(trainer *T) {
  const mbsr_train_config *c = T->c;
  const int B = T->B, P = T->P, nthr = omp_get_max_threads();
  const int64_t plan_n = c->plan_patches > 0 ? c->plan_patches : T->ntrain;
  const int64_t plan_spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : (plan_n + B - 1) / B;
  shuffle(T->perm, T->ntrain, c->seed, 0);
  const int warm = 1, meas = 3;
  double loss, tm = 0, tcpu = 0;
  int rc = 0;
  for (int k = 0; k < warm + meas && !rc; k++) {
    double t0 = mbsr_now(), c0 = cpu_seconds();
    rc = train_step(T, T->perm, k, 0, &loss);
    MPI_Barrier(T->comm);
    if (k >= warm) tm += mbsr_now() - t0, tcpu += cpu_seconds() - c0;
  }
  /* CPU seconds per step summed over ranks: the cost in core-seconds, insensitive to other jobs
   * sharing the cores (the wall time is not) */
  tcpu /= meas;
  MPI_Allreduce(MPI_IN_PLACE, &tcpu, 1, MPI_DOUBLE, MPI_SUM, T->comm);
  if (rc) return rc;
  double tstep = tm / meas, ar_max;
  MPI_Allreduce(MPI_IN_PLACE, &tstep, 1, MPI_DOUBLE, MPI_MAX, T->comm);
  MPI_Allreduce(&T->t_ar, &ar_max, 1, MPI_DOUBLE, MPI_MAX, T->comm);
  const double epoch_s = tstep * (double)plan_spe, fl = T->flops_sample, fl_epoch = fl * (double)plan_spe * B;
  /* validation: forward only, ~1/3 of a training step's work per patch, spread over the ranks;
   * planned val patches scale with the training patches when plan_patches is given */
  const double plan_val = c->plan_val_patches > 0 ? (double)c->plan_val_patches
                          : c->plan_patches > 0 && T->ntrain > 0 ? (double)T->nval * (double)plan_n / (double)T->ntrain
                                                                 : (double)T->nval;
  const double val_s = plan_val * (tstep / (3.0 * B));
  T->sum->dry_epoch_seconds = epoch_s, T->sum->dry_epoch_flops = fl_epoch, T->sum->dry_mem_bytes = T->mem_rank;
  char d1[32], d2[32];
  mbsr_format_duration(epoch_s, d1, sizeof d1);
  mbsr_format_duration((epoch_s + val_s) * c->epochs, d2, sizeof d2);
  const mbsr_model_config *mc = mbsr_model_get_config(T->m);
  mbsr_info("train --dry-run: plan (nothing written)");
  mbsr_info("  model           %s channels=%d blocks=%d: %zu parameters (%.1f MB; params+grads+Adam m,v %.1f MB)",
            mbsr_arch_name(mc->arch), mc->channels, mc->blocks, T->nparams, T->nparams * 4.0 / 1e6, T->nparams * 16.0 / 1e6);
  mbsr_info("  data            %s pair %s: %lld train patches in the file, planning for %lld; %lld val patches; patch %d^3", c->data,
            c->pair, (long long)mbsr_patchset_count(T->tr), (long long)plan_n, (long long)T->nval, T->p);
  mbsr_info("  ranks           %d x %d thread%s; global batch %d -> %d..%d patches per rank per step", P, nthr, nthr > 1 ? "s" : "",
            B, B / P, (B + P - 1) / P);
  mbsr_info("  per epoch       %lld steps, %lld patches (%lld per rank)", (long long)plan_spe, (long long)(plan_spe * B),
            (long long)(plan_spe * B / P));
  mbsr_info("  memory per rank %.1f MB measured (model, activations, workspaces, batch buffers)", T->mem_rank / 1e6);
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
static int open_outputs(trainer *T) {
  const mbsr_train_config *c = T->c;
  int rc = 0;
  if (T->rank == 0) {
    rc = write_config_json(c, T->m, c->out, T->P, T->ntrain, T->nval, T->spe);
    if (!rc && T->resumed) rc = truncate_log(T->log_path, T->st.step);
    if (!rc && !(T->log = fopen(T->log_path, T->resumed ? "a" : "w"))) rc = mbsr_error(MBSR_EIO, "%s: cannot open", T->log_path);
  }
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  const int nthr = omp_get_max_threads();
  if (T->resumed && c->progress)
    mbsr_info("train: resuming from %s at epoch %lld, step %lld (%lld of %lld in the epoch)", T->last_path, (long long)T->st.epoch,
              (long long)T->st.step, (long long)T->st.step_in_epoch, (long long)T->spe);
  if (c->progress)
    mbsr_info("train: %s %zu parameters; %lld train / %lld val patches (%d^3) from %s pair %s; %d rank%s x %d thread%s, global batch %d, "
              "%lld steps per epoch, lr %g, seed %llu; cubic-baseline val MSE %.6g",
              mbsr_arch_name(mbsr_model_get_config(T->m)->arch), T->nparams, (long long)T->ntrain, (long long)T->nval, T->p, c->data,
              c->pair, T->P, T->P > 1 ? "s" : "", nthr, nthr > 1 ? "s" : "", T->B, (long long)T->spe, (double)c->adam.lr,
              (unsigned long long)c->seed, T->cubic_val);
  return 0;
}

/* A checkpoint of the current state (rank 0 writes; every rank returns the agreed status). */
static int save_checkpoint(trainer *T, const char *path) {
  int rc = 0;
  if (T->rank == 0) {
    mbsr_ckpt_meta meta;
    state_to_meta(&T->st, T->c, T->P, T->spe, &meta);
    rc = mbsr_checkpoint_save(T->m, path, &meta);
  }
  return mbsr_mpi_agree(T->comm, rc);
}

/* Equal weights on all ranks (every checksum_every steps): a silent divergence is an error. */
static int check_weights(trainer *T) {
  uint64_t h = param_hash(mbsr_model_params(T->m), T->nparams), hv[2] = {h, ~h};
  if (MPI_Allreduce(MPI_IN_PLACE, hv, 2, MPI_UINT64_T, MPI_MIN, T->comm) != MPI_SUCCESS)
    return mbsr_error(MBSR_EMPI, "MPI_Allreduce (weight checksum) failed");
  if (hv[0] != ~hv[1]) /* min != max: the same verdict on every rank */
    return mbsr_error(MBSR_EMISMATCH, "weights differ between ranks at step %lld (checksums min %016llx max %016llx, this rank %016llx)",
                      (long long)T->st.step, (unsigned long long)hv[0], (unsigned long long)~hv[1], (unsigned long long)h);
  return 0;
}

/* The steps of the current epoch (from its saved position); stops early on max_steps, the time
 * limit, or a stop request of any rank. */
static int run_steps(trainer *T) {
  const mbsr_train_config *c = T->c;
  int rc = 0;
  while (!rc && T->st.step_in_epoch < T->spe) {
    if (c->max_steps > 0 && T->st.step >= c->max_steps) {
      T->maxed = 1, T->stop_all = 1;
      break;
    }
    int want_stop = (c->time_limit > 0 && mbsr_now() - T->t_start > c->time_limit) ? 1 : 0;
    double loss, ts = mbsr_now();
    if ((rc = train_step(T, T->perm, T->st.step_in_epoch, want_stop, &loss))) break;
    T->t_train += mbsr_now() - ts;
    T->st.step++, T->st.step_in_epoch++;
    T->st.train_sum += loss, T->st.train_n++;
    T->sum->last_train = loss;
    if (T->rank == c->inject_diverge_rank && T->st.step == c->inject_diverge_step)
      mbsr_model_params(T->m)[T->nparams / 2] += 1e-3f; /* test hook: silent divergence of one rank */
    if (c->checksum_every > 0 && T->st.step % c->checksum_every == 0 && T->P > 1 && (rc = check_weights(T))) break;
    if (T->stop_all) {
      T->timeup = 1;
      break;
    }
    if (c->ckpt_every > 0 && T->st.step % c->ckpt_every == 0 && T->st.step_in_epoch < T->spe) rc = save_checkpoint(T, T->last_path);
  }
  return rc;
}

/* The epoch's line of train.jsonl (rank 0). */
static int log_epoch(trainer *T, double train_loss, double pps, double ar_share, double epoch_s, double eta) {
  json_t *o = json_object();
  json_object_set_new(o, "epoch", json_integer(T->st.epoch));
  json_object_set_new(o, "step", json_integer(T->st.step));
  json_object_set_new(o, "train_loss", jnum(train_loss));
  json_object_set_new(o, "val_loss", jnum(T->st.last_val));
  json_object_set_new(o, "cubic_val", jnum(T->cubic_val));
  json_object_set_new(o, "best_val", jnum(T->st.best_val));
  json_object_set_new(o, "best_epoch", json_integer(T->st.best_epoch));
  json_object_set_new(o, "patches_per_s", jnum(pps));
  json_object_set_new(o, "allreduce_share", jnum(ar_share));
  json_object_set_new(o, "epoch_s", jnum(epoch_s));
  json_object_set_new(o, "elapsed_s", jnum(mbsr_now() - T->t_start));
  json_object_set_new(o, "eta_s", jnum(eta));
  json_object_set_new(o, "nranks", json_integer(T->P));
  json_object_set_new(o, "batch", json_integer(T->B));
  json_object_set_new(o, "lr", jnum(T->c->adam.lr));
  char line[2048];
  int rc = json_line(o, line, sizeof line) ? mbsr_append_line(T->log, T->log_path, line)
                                           : mbsr_error(MBSR_ERANGE, "%s: log line too long", T->log_path);
  json_decref(o);
  return rc;
}

/* Validation (when due), early stopping; 1 when the epoch improved on the best. */
static int validate_epoch(trainer *T, int *improved) {
  const mbsr_train_config *c = T->c;
  run_state *st = &T->st;
  *improved = 0;
  if (T->nval > 0 && c->val_every > 0 && st->epoch % c->val_every == 0) {
    double tv = mbsr_now(), vl = NAN, vio = 0; /* validation reads are part of t_val */
    int rc = validate(T->m, T->va, T->va_idx, T->nval, 0, T->mb, T->bin, T->btg, T->bout, T->comm, &vl, &vio);
    T->t_val += mbsr_now() - tv;
    if (rc) return rc;
    st->last_val = vl;
    if (vl < st->best_val) st->best_val = vl, st->best_epoch = st->epoch, st->bad_epochs = 0, *improved = 1;
    else st->bad_epochs++;
  } else if (T->nval == 0) {
    st->last_val = NAN;
    *improved = 1; /* no validation patches: best.h5 follows the last epoch */
  }
  if (c->patience > 0 && st->bad_epochs >= c->patience) T->early = 1;
  if (st->epoch >= c->epochs || T->early) st->finished = 1;
  return 0;
}

/* End of an epoch: validation, early stopping, progress line, log, checkpoints. */
static int end_epoch(trainer *T, double te) {
  const mbsr_train_config *c = T->c;
  run_state *st = &T->st;
  const double train_loss = st->train_n ? st->train_sum / (double)st->train_n : NAN;
  st->epoch++, st->step_in_epoch = 0, st->train_sum = 0, st->train_n = 0, T->epochs_run++;
  int improved = 0, rc = validate_epoch(T, &improved);
  if (rc) return rc;
  const double ep_s = (mbsr_now() - T->t_epoch0) / (double)T->epochs_run;
  const double eta = ep_s * (double)(c->epochs - st->epoch);
  const double pps = T->t_train > 0 ? (double)(st->step - T->step0) * T->B / T->t_train : 0;
  const double ar_share = T->t_train > 0 ? T->t_ar / T->t_train : 0;
  if (T->rank == 0 && c->progress) {
    char e1[32], e2[32], vs[160];
    mbsr_format_duration(eta, e1, sizeof e1);
    mbsr_format_duration(mbsr_now() - T->t_start, e2, sizeof e2);
    if (T->nval > 0)
      snprintf(vs, sizeof vs, "val %.6g (cubic %.6g, best %.6g @%lld)%s", st->last_val, T->cubic_val, st->best_val,
               (long long)st->best_epoch, improved ? " *" : "");
    else
      snprintf(vs, sizeof vs, "no validation patches");
    mbsr_info("epoch %lld/%d step %lld: train %.6g  %s  %.1f patches/s  all-reduce %.1f%%  elapsed %s ETA %s", (long long)st->epoch,
              c->epochs, (long long)st->step, train_loss, vs, pps, 100 * ar_share, e2, e1);
  }
  /* a line that did not fit (full disk) ends every rank here; resume drops what the checkpoint lacks */
  rc = T->rank == 0 ? log_epoch(T, train_loss, pps, ar_share, mbsr_now() - te, eta) : 0;
  if ((rc = mbsr_mpi_agree(T->comm, rc))) return rc;
  T->sum->last_train = train_loss;
  if (improved && (rc = save_checkpoint(T, T->best_path))) return rc;
  if ((rc = save_checkpoint(T, T->last_path))) return rc;
  if (T->early)
    mbsr_info("train: early stopping: no validation improvement for %d epochs (best %.6g at epoch %lld)", c->patience, st->best_val,
              (long long)st->best_epoch);
  return 0;
}

/* The epochs, until the last, early stopping, or a stop. */
static int run_epochs(trainer *T) {
  const mbsr_train_config *c = T->c;
  T->step0 = T->st.step;
  T->t_epoch0 = mbsr_now(), T->cpu0 = cpu_seconds();
  int rc = 0;
  while (!rc && T->st.epoch < c->epochs && !T->stop_all) {
    shuffle(T->perm, T->ntrain, c->seed, T->st.epoch);
    double te = mbsr_now();
    if ((rc = run_steps(T))) break;
    if (T->st.step_in_epoch < T->spe) { /* stopped inside the epoch: save the position and leave */
      rc = save_checkpoint(T, T->last_path);
      break;
    }
    if ((rc = end_epoch(T, te)) || T->early) break;
  }
  if (!rc) {
    if (T->timeup)
      mbsr_info("train: time limit %.0f s reached at step %lld: checkpoint %s (continue with resume)", c->time_limit,
                (long long)T->st.step, T->last_path);
    if (T->maxed) mbsr_info("train: max_steps %lld reached: checkpoint %s", (long long)c->max_steps, T->last_path);
  }
  return rc;
}

/* The summary, the timing split of this invocation and the closing line. */
static void summarise(trainer *T, int rc) {
  const run_state *st = &T->st;
  mbsr_train_summary *sum = T->sum;
  const int nthr = omp_get_max_threads();
  sum->steps = st->step, sum->epochs = st->epoch, sum->best_val = st->best_val, sum->last_val = st->last_val;
  sum->best_epoch = st->best_epoch, sum->stopped_early = T->early, sum->hit_time_limit = T->timeup, sum->finished = st->finished;
  sum->patches_per_s = T->t_train > 0 ? (double)(st->step - T->step0) * T->B / T->t_train : 0;
  sum->t_compute = T->t_comp, sum->t_allreduce = T->t_ar, sum->t_io = T->t_io, sum->t_val = T->t_val;
  sum->t_sync = T->t_sync;
  if (rc) return;
  /* timing split of this invocation (rank 0's clock; the status all-reduce absorbs the wait for
   * the slowest rank, so "all-reduce" is the gradient transfer itself), and the CPU share the
   * ranks actually got (min over ranks): far below 100% means other jobs share the cores */
  const double tt = T->t_train > 0 ? T->t_train : 1;
  double cpu_share = (cpu_seconds() - T->cpu0) / ((mbsr_now() - T->t_epoch0) * nthr);
  MPI_Allreduce(MPI_IN_PLACE, &cpu_share, 1, MPI_DOUBLE, MPI_MIN, T->comm);
  mbsr_info("train: this run: %lld steps in %.2f s, %.2f patches/s; step time split: compute %.1f%%, gradient all-reduce %.1f%% "
            "(%zu floats), status sync/wait %.1f%%, reads %.1f%%; validation %.2f s; CPU %.0f%% of each rank's %d thread%s",
            (long long)(st->step - T->step0), T->t_train, sum->patches_per_s, 100 * T->t_comp / tt, 100 * T->t_ar / tt, T->nparams,
            100 * T->t_sync / tt, 100 * T->t_io / tt, T->t_val, 100 * cpu_share, nthr, nthr > 1 ? "s" : "");
  if (T->rank == 0 && st->finished) {
    char vs[160] = "no validation patches: best.h5 is the last epoch";
    if (T->nval > 0)
      snprintf(vs, sizeof vs, "best val %.6g at epoch %lld (cubic baseline %.6g)", st->best_val, (long long)st->best_epoch, T->cubic_val);
    mbsr_info("train: done: %lld epochs, %lld steps, %s; %s, %s", (long long)st->epoch, (long long)st->step, vs, T->last_path,
              T->best_path);
  }
}

static void trainer_close(trainer *T) {
  if (T->log) fclose(T->log);
  mbsr_patchset_close(T->tr);
  mbsr_patchset_close(T->va);
  mbsr_model_free(T->m);
  mbsr_free(T->bin), mbsr_free(T->btg), mbsr_free(T->bout);
  free(T->perm), free(T->sub), free(T->tr_idx), free(T->va_idx);
  mbsr_free(T->aug_tmp);
}

int mbsr_train_run(const mbsr_train_config *c, MPI_Comm comm, mbsr_train_summary *sum) {
  trainer *T = calloc(1, sizeof *T);
  mbsr_train_summary S0;
  if (!sum) sum = &S0;
  memset(sum, 0, sizeof *sum);
  int rc = T ? check_config(c) : mbsr_error(MBSR_ENOMEM, "train: out of memory");
  if (rc) {
    free(T);
    return mbsr_mpi_agree(comm, rc);
  }
  T->c = c, T->comm = comm, T->sum = sum, T->t_start = mbsr_now();
  MPI_Comm_rank(comm, &T->rank);
  MPI_Comm_size(comm, &T->P);
  T->st.best_val = INFINITY, T->st.last_val = NAN, T->st.best_epoch = -1;
  rc = mbsr_mpi_agree(comm, open_data(T));
  if (!rc) rc = build_model(T);
  if (!rc && T->st.finished && !c->dry_run) {
    mbsr_info("train: %s says the run finished (epoch %lld, step %lld): nothing to do", T->last_path, (long long)T->st.epoch,
              (long long)T->st.step);
    sum->finished = 1, sum->steps = T->st.step, sum->epochs = T->st.epoch, sum->best_val = T->st.best_val,
    sum->last_val = T->st.last_val;
  } else if (!rc && c->dry_run) {
    rc = dry_run(T);
  } else if (!rc) {
    rc = open_outputs(T);
    if (!rc) rc = run_epochs(T);
    summarise(T, rc);
  }
  if (rc == MBSR_ENONFINITE && T->rank == 0 && c->out)
    mbsr_errmsg("train: stopped on a non-finite loss; the last good checkpoint is %s", T->last_path);
  sum->t_total = mbsr_now() - T->t_start;
  trainer_close(T);
  free(T);
  return rc;
}
