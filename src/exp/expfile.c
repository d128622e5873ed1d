/* Experiment files: a typed YAML schema (libyaml document API, so every error names a line).
 *
 *   experiment: NAME            title: "..."     paper_ref: "..."    description: "..."
 *   report: {anova: BOOL, table1: BOOL}
 *   scales:
 *     paper: {data: {...}, phantom: {...}, model: {...}, train: {...}, eval: {...}, matrix: {...}}
 *     demo:  {...the same sections...}        (any names: demo, paper, real, ...)
 *
 * Every scale is validated; one is selected. Every key of a scale has a
 * type and a default (the table below); unknown keys, wrong types and out-of-range values are
 * errors "FILE:LINE: ...". The matrix is the cartesian product of its axes (lists; a scalar is a
 * list of one). mbsr_exp_write_params() writes every key of the selected scale back, defaults
 * included, in the same schema.
 *
 * Loading is bounded: at most EXP_MAX_BYTES of file, EXP_MAX_DEPTH levels of nesting and
 * EXP_MAX_EVENTS YAML events, one document. A first pass over libyaml's events checks these and
 * stops at the first excess (libyaml's scanner costs O(depth) per token, so 100,000 nested '['
 * took minutes through the document API); only then is the document loaded. A key that appears
 * twice in a mapping is an error "FILE:LINE: duplicate key" (YAML forbids it; libyaml keeps both). */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "mbsr/exp.h"

typedef enum { K_INT, K_U64, K_DOUBLE, K_BOOL, K_STR, K_INT3, K_DBL2, L_ARCH, L_PAIR, L_INT, L_DATASET, L_BOOL } ktype;

typedef struct {
  const char *section, *key;
  ktype type;
  size_t off;     /* into mbsr_exp_scale */
  size_t cnt_off; /* lists: offset of the count */
  size_t cap;     /* strings: buffer size */
  double lo, hi;  /* numeric range */
  const char *def;
  const char *doc;
} keydef;

#define F(m) offsetof(mbsr_exp_scale, m)
#define S(sec, key, m, def, doc) {sec, key, K_STR, F(m), 0, sizeof(((mbsr_exp_scale *)0)->m), 0, 0, def, doc}
#define I(sec, key, m, lo, hi, def, doc) {sec, key, K_INT, F(m), 0, 0, lo, hi, def, doc}
#define U(sec, key, m, def, doc) {sec, key, K_U64, F(m), 0, 0, 0, 0, def, doc}
#define D(sec, key, m, lo, hi, def, doc) {sec, key, K_DOUBLE, F(m), 0, 0, lo, hi, def, doc}
#define B(sec, key, m, def, doc) {sec, key, K_BOOL, F(m), 0, 0, 0, 1, def, doc}
#define L(sec, key, t, m, n, def, doc) {sec, key, t, F(m), F(n), 0, 0, 0, def, doc}
static const keydef KEYS[] = {
    S("data", "cohort", cohort, "phantom", "phantom (SYNTHETIC, generated if absent) | dir (real volumes) | ambca (fetched)"),
    S("data", "dir", data_dir, "data/phantom", "directory (or manifest) of the cohort volumes; mbsr sweep --data overrides"),
    I("data", "base_um", base_um, 0, 10000, "50", "grid every input is brought to (um); 0 = each pair's HR grid"),
    I("data", "n_train", n_train, 1, 100000, "6", "training subjects (10 % of them, at least 1, validate)"),
    I("data", "n_test", n_test, 0, 100000, "4", "test subjects, held out by prep's seeded split (cv: none)"),
    S("data", "cv", cv, "none", "none | loso: leave-one-subject-out over the brains (one brain: its two halves)"),
    {"data", "norm_pct", K_DBL2, F(norm_pct), 0, 0, 0, 100, "[0.1, 99.9]", "intensity contract: percentiles of the network input"},
    S("data", "profile", profile, "boxcar", "slice profile of the LR degradation: boxcar (block average, the paper) | gaussian (FWHM = the LR voxel)"),
    S("data", "mri_dir", mri_dir, "../shared/data/mri", "co-registered AF/T2w (200 um) and the diffusion QA map (transfer, human)"),
    S("data", "human_dir", human_dir, "/usr/share/mricron/templates", "human T1 volumes: a directory of *.nii.gz or one file (Debian mricron-data)"),
    I("data", "human_n_train", human_n_train, 1, 1000, "1", "human volumes used for training"),
    I("phantom", "n", phantom_n, 1, 999, "12", "phantom subjects generated when the cohort is absent"),
    U("phantom", "seed", phantom_seed, "1", "phantom cohort seed"),
    {"phantom", "dims", K_INT3, F(phantom_dims), 0, 0, 0, 4096, "[0, 0, 0]", "grid (0 = field of view / base_um)"},
    I("model", "channels", channels, 1, 1024, "64", "ResNet / generator width"),
    I("model", "blocks", blocks, 0, 256, "10", "residual blocks"),
    B("model", "global_residual", global_residual, "false", "output = input + network"),
    I("model", "ccnn_c1", ccnn_c1, 1, 1024, "64", "cCNN first width"),
    I("model", "ccnn_c2", ccnn_c2, 1, 1024, "32", "cCNN second width"),
    I("model", "disc_channels", disc_channels, 1, 1024, "64", "GAN discriminator width"),
    I("model", "disc_blocks", disc_blocks, 0, 256, "10", "GAN discriminator residual blocks"),
    D("model", "gan_lambda", gan_lambda, 0, 1e6, "0.001", "adversarial weight in the generator loss"),
    I("train", "patch", patch, 5, 255, "21", "patch edge (HR voxels)"),
    I("train", "batch", batch, 1, 100000, "8", "global batch"),
    I("train", "epochs", epochs, 1, 1000000, "1000", "maximum epochs"),
    I("train", "patience", patience, 0, 1000000, "100", "early stopping patience (epochs; 0 = off)"),
    D("train", "lr", lr, 1e-9, 10, "0.001", "Adam learning rate"),
    D("train", "val_fraction", val_fraction, 0, 0.9, "0.1", "fraction of training subjects used for validation"),
    U("train", "seed", seed, "1", "weights, shuffles and patch sampling"),
    I("train", "finetune_layers", finetune_layers, 1, 1000, "3", "transfer learning: trainable last layers"),
    I("train", "finetune_samples", finetune_samples, 1, 100000000, "2000", "transfer learning: HR MRI patches"),
    I("train", "finetune_epochs", finetune_epochs, 1, 1000000, "100", "transfer learning: maximum epochs"),
    I("train", "steps_per_epoch", steps_per_epoch, 0, 100000000, "0", "steps per epoch (0 = patches / batch)"),
    B("train", "augment", augment, "false", "random flips and axis permutations of training patches"),
    B("train", "init_glorot", init_glorot, "false", "Glorot everywhere (the paper) instead of a zero output conv"),
    B("eval", "decorr", eval_decorr, "true", "effective resolution by decorrelation analysis"),
    I("eval", "decorr_axis", decorr_axis, 0, 2, "2", "decorrelation slices along this array axis"),
    I("eval", "decorr_step", decorr_step, 1, 1000, "1", "every n-th slice"),
    D("eval", "max_mb", apply_max_mb, 16, 1e7, "2048", "memory for inference tiles (MiB); overlap = 2 x receptive radius"),
    B("eval", "save_volumes", save_volumes, "true", "keep LR/cubic/SR/HR of the first test subject (figures)"),
    L("matrix", "arch", L_ARCH, arch, n_arch, "[resnet]", "networks: resnet | ccnn | gan"),
    L("matrix", "train_pair", L_PAIR, train_pair, n_train_pair, "[200-100]", "training pairs LR-HR in um, or LRixLRjxLRk-HR (e.g. 100x100x400-100)"),
    L("matrix", "test_pair", L_PAIR, test_pair, n_test_pair, "[]", "test pairs ([] = the training pair)"),
    L("matrix", "samples", L_INT, samples, n_samples, "[5000]", "training patches"),
    L("matrix", "train_data", L_DATASET, train_data, n_train_data, "[af]", "af | human_t1"),
    L("matrix", "test_data", L_DATASET, test_data, n_test_data, "[af]", "af | t2w | fa"),
    L("matrix", "finetune", L_BOOL, finetune, n_finetune, "[false]", "transfer learning on HR data of the test modality"),
};
#define NKEYS ((int)(sizeof KEYS / sizeof *KEYS))
static const char *SECTIONS[] = {"data", "phantom", "model", "train", "eval", "matrix"};
#define NSECTIONS 6

const char *mbsr_dataset_name(mbsr_dataset d) {
  switch (d) {
    case MBSR_DS_AF: return "af";
    case MBSR_DS_T2W: return "t2w";
    case MBSR_DS_FA: return "fa";
    case MBSR_DS_HUMAN_T1: return "human_t1";
  }
  return "?";
}

static int dataset_parse(const char *s, mbsr_dataset *d) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, mbsr_dataset_name((mbsr_dataset)i))) {
      *d = (mbsr_dataset)i;
      return 0;
    }
  return MBSR_EINVAL; /* the caller names the key */
}

/* ---- scalar parsing shared by YAML values and the defaults above ---- */
typedef struct {
  const char *file;
  int line;
} where;

#define ERR(w, ...) err_at(w, __VA_ARGS__)
static int err_at(where w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int err_at(where w, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return mbsr_error(MBSR_EINVAL, "%s:%d: %s", w.file, w.line, buf);
}

static int parse_bool(const char *s, int *v) {
  if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) *v = 1;
  else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) *v = 0;
  else return MBSR_EINVAL; /* the caller names the key */
  return 0;
}

static int set_scalar(const keydef *k, mbsr_exp_scale *s, const char *v, int list_index, where w) {
  char *base = (char *)s + k->off, *end;
  errno = 0;
  switch (k->type) {
    case K_INT: {
      long x = strtol(v, &end, 10);
      if (end == v || *end || errno) return ERR(w, "%s.%s: '%s' is not an integer", k->section, k->key, v);
      if (x < k->lo || x > k->hi) return ERR(w, "%s.%s: %ld out of range %g..%g", k->section, k->key, x, k->lo, k->hi);
      *(int *)base = (int)x;
      return 0;
    }
    case K_U64: {
      if (v[0] == '-') return ERR(w, "%s.%s: '%s' is not a non-negative integer", k->section, k->key, v);
      unsigned long long x = strtoull(v, &end, 10);
      if (end == v || *end || errno) return ERR(w, "%s.%s: '%s' is not a non-negative integer", k->section, k->key, v);
      *(uint64_t *)base = x;
      return 0;
    }
    case K_DOUBLE: {
      double x = strtod(v, &end);
      if (end == v || *end || errno) return ERR(w, "%s.%s: '%s' is not a number", k->section, k->key, v);
      if (!(x >= k->lo && x <= k->hi)) return ERR(w, "%s.%s: %g out of range %g..%g", k->section, k->key, x, k->lo, k->hi);
      *(double *)base = x;
      return 0;
    }
    case K_BOOL:
      if (parse_bool(v, (int *)base)) return ERR(w, "%s.%s: '%s' is not true/false", k->section, k->key, v);
      return 0;
    case K_STR:
      if (strlen(v) >= k->cap) return ERR(w, "%s.%s: value too long", k->section, k->key);
      strcpy(base, v);
      return 0;
    case K_DBL2: {
      double x = strtod(v, &end);
      if (end == v || *end || errno || !(x >= k->lo && x <= k->hi))
        return ERR(w, "%s.%s: '%s' is not a number in %g..%g", k->section, k->key, v, k->lo, k->hi);
      ((double *)base)[list_index] = x;
      return 0;
    }
    case K_INT3: {
      long x = strtol(v, &end, 10);
      if (end == v || *end || x < 0 || x > k->hi) return ERR(w, "%s.%s: '%s' is not an integer 0..%g", k->section, k->key, v, k->hi);
      ((int *)base)[list_index] = (int)x;
      return 0;
    }
    case L_ARCH:
      if (strcmp(v, "resnet") && strcmp(v, "ccnn") && strcmp(v, "gan"))
        return ERR(w, "matrix.arch: '%s' is not resnet | ccnn | gan", v);
      snprintf(((char(*)[16])base)[list_index], 16, "%s", v);
      return 0;
    case L_PAIR:
      if (mbsr_res_pair_parse(v, &((mbsr_res_pair *)base)[list_index])) {
        char m[512];
        snprintf(m, sizeof m, "%s", mbsr_last_error());
        return ERR(w, "matrix.%s: %s", k->key, m);
      }
      return 0;
    case L_INT: {
      long x = strtol(v, &end, 10);
      if (end == v || *end || x < 1 || x > 100000000) return ERR(w, "matrix.%s: '%s' is not a positive integer", k->key, v);
      ((int *)base)[list_index] = (int)x;
      return 0;
    }
    case L_DATASET:
      if (dataset_parse(v, &((mbsr_dataset *)base)[list_index]))
        return ERR(w, "matrix.%s: '%s' is not af | t2w | fa | human_t1", k->key, v);
      return 0;
    case L_BOOL:
      if (parse_bool(v, &((int *)base)[list_index])) return ERR(w, "matrix.%s: '%s' is not true/false", k->key, v);
      return 0;
  }
  return ERR(w, "internal: bad key type");
}

static int is_list(ktype t) { return t == K_INT3 || t == K_DBL2 || t >= L_ARCH; }
static int fixed_len(ktype t) { return t == K_INT3 ? 3 : t == K_DBL2 ? 2 : 0; }

/* Defaults: the same parser on "[a, b]" / scalar strings. */
static int apply_default(const keydef *k, mbsr_exp_scale *s) {
  where w = {"(built-in default)", 0};
  if (!is_list(k->type)) return set_scalar(k, s, k->def, 0, w);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", k->def);
  int n = 0;
  char *p = buf + 1, *tok;
  buf[strlen(buf) - 1] = 0;
  while ((tok = strsep(&p, ",")) != NULL) {
    while (*tok == ' ') tok++;
    if (!*tok) continue;
    int rc = set_scalar(k, s, tok, n++, w);
    if (rc) return rc;
  }
  if (!fixed_len(k->type)) *(int *)((char *)s + k->cnt_off) = n;
  return 0;
}

/* ---- YAML tree walking ---- */
typedef struct {
  yaml_document_t doc;
  const char *file;
} ydoc;

static where at(const ydoc *d, const yaml_node_t *n) {
  where w = {d->file, n ? (int)n->start_mark.line + 1 : 0};
  return w;
}
static const char *scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL; }

static int set_key(const ydoc *d, const keydef *k, mbsr_exp_scale *s, yaml_node_t *v) {
  if (!is_list(k->type)) {
    const char *x = scalar(v);
    if (!x) return ERR(at(d, v), "%s.%s: expected a scalar value", k->section, k->key);
    return set_scalar(k, s, x, 0, at(d, v));
  }
  int n = 0;
  const int fl = fixed_len(k->type);
  if (v->type == YAML_SCALAR_NODE) {
    if (fl) return ERR(at(d, v), "%s.%s: expected a list of %d numbers", k->section, k->key, fl);
    int rc = set_scalar(k, s, scalar(v), 0, at(d, v));
    if (rc) return rc;
    n = 1;
  } else if (v->type == YAML_SEQUENCE_NODE) {
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
      yaml_node_t *e = yaml_document_get_node((yaml_document_t *)&d->doc, *it);
      if (!scalar(e)) return ERR(at(d, e), "%s.%s: list items must be scalars", k->section, k->key);
      if (n >= (fl ? fl : MBSR_EXP_MAX_AXIS))
        return ERR(at(d, e), "%s.%s: too many items (max %d)", k->section, k->key, fl ? fl : MBSR_EXP_MAX_AXIS);
      int rc = set_scalar(k, s, scalar(e), n++, at(d, e));
      if (rc) return rc;
    }
  } else {
    return ERR(at(d, v), "%s.%s: expected a list", k->section, k->key);
  }
  if (fl) {
    if (n != fl) return ERR(at(d, v), "%s.%s: expected %d numbers, got %d", k->section, k->key, fl, n);
  } else {
    if (n == 0 && strcmp(k->key, "test_pair")) return ERR(at(d, v), "matrix.%s: empty list", k->key);
    *(int *)((char *)s + k->cnt_off) = n;
  }
  return 0;
}

static void known_keys(const char *section, char *buf, size_t n) {
  buf[0] = 0;
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(KEYS[i].section, section)) {
      size_t l = strlen(buf);
      snprintf(buf + l, n - l, "%s%s", l ? ", " : "", KEYS[i].key);
    }
}

static int parse_scale(const ydoc *d, yaml_node_t *m, const char *scale, mbsr_exp_scale *s) {
  for (int i = 0; i < NKEYS; i++) {
    int rc = apply_default(&KEYS[i], s);
    if (rc) return rc;
  }
  if (m->type != YAML_MAPPING_NODE) return ERR(at(d, m), "scales.%s: expected a mapping of sections", scale);
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node((yaml_document_t *)&d->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node((yaml_document_t *)&d->doc, p->value);
    const char *sec = scalar(kn);
    int known = 0;
    for (int j = 0; j < NSECTIONS; j++) known |= sec && !strcmp(sec, SECTIONS[j]);
    if (!known)
      return ERR(at(d, kn), "unknown section '%s' in scales.%s (known: data, phantom, model, train, eval, matrix)",
                 sec ? sec : "?", scale);
    if (vn->type != YAML_MAPPING_NODE) return ERR(at(d, vn), "scales.%s.%s: expected a mapping", scale, sec);
    for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
      yaml_node_t *k2 = yaml_document_get_node((yaml_document_t *)&d->doc, q->key);
      yaml_node_t *v2 = yaml_document_get_node((yaml_document_t *)&d->doc, q->value);
      const char *key = scalar(k2);
      const keydef *kd = NULL;
      for (int i = 0; i < NKEYS && key; i++)
        if (!strcmp(KEYS[i].section, sec) && !strcmp(KEYS[i].key, key)) kd = &KEYS[i];
      if (!kd) {
        char kk[1024];
        known_keys(sec, kk, sizeof kk);
        return ERR(at(d, k2), "unknown key '%s' in scales.%s.%s (known: %s)", key ? key : "?", scale, sec, kk);
      }
      int rc = set_key(d, kd, s, v2);
      if (rc) return rc;
    }
  }
  /* cross-field checks */
  where w = at(d, m);
  if (strcmp(s->cohort, "phantom") && strcmp(s->cohort, "dir") && strcmp(s->cohort, "ambca"))
    return ERR(w, "scales.%s.data.cohort: '%s' is not phantom | dir | ambca", scale, s->cohort);
  if (strcmp(s->cv, "none") && strcmp(s->cv, "loso"))
    return ERR(w, "scales.%s.data.cv: '%s' is not none | loso", scale, s->cv);
  if (!(s->norm_pct[0] < s->norm_pct[1]))
    return ERR(w, "scales.%s.data.norm_pct: [%g, %g] needs lo < hi", scale, s->norm_pct[0], s->norm_pct[1]);
  mbsr_profile prof;
  if (mbsr_profile_parse(s->profile, &prof)) return ERR(w, "scales.%s.data.profile: '%s' is not boxcar | gaussian", scale, s->profile);
  char pn[MBSR_PAIR_NAME_MAX];
  for (int i = 0; i < s->n_train_pair && s->base_um; i++)
    if (s->train_pair[i].hr_um % s->base_um)
      return ERR(w, "scales.%s: training pair %s is not a multiple of data.base_um %d", scale,
                 mbsr_res_pair_name(&s->train_pair[i], pn, sizeof pn), s->base_um);
  for (int i = 0; i < s->n_test_pair && s->base_um; i++)
    if (s->test_pair[i].hr_um % s->base_um)
      return ERR(w, "scales.%s: test pair %s is not a multiple of data.base_um %d", scale, mbsr_res_pair_name(&s->test_pair[i], pn, sizeof pn),
                 s->base_um);
  return 0;
}

static int copy_str(const ydoc *d, yaml_node_t *v, const char *key, char *dst, size_t cap) {
  const char *x = scalar(v);
  if (!x) return ERR(at(d, v), "%s: expected a string", key);
  if (strlen(x) >= cap) return ERR(at(d, v), "%s: too long (max %zu)", key, cap - 1);
  strcpy(dst, x);
  return 0;
}

static void cell_name(const mbsr_exp_cell *c, char *buf, size_t n) {
  char tr[MBSR_PAIR_NAME_MAX], te[MBSR_PAIR_NAME_MAX];
  int l = snprintf(buf, n, "c%02d_%s_%s", c->index, c->arch, mbsr_res_pair_name(&c->train_pair, tr, sizeof tr));
  if (!mbsr_res_pair_equal(&c->test_pair, &c->train_pair)) l += snprintf(buf + l, n - l, "_on%s", mbsr_res_pair_name(&c->test_pair, te, sizeof te));
  l += snprintf(buf + l, n - l, "_n%d", c->samples);
  if (c->train_data != MBSR_DS_AF) l += snprintf(buf + l, n - l, "_from-%s", mbsr_dataset_name(c->train_data));
  if (c->test_data != MBSR_DS_AF) l += snprintf(buf + l, n - l, "_%s", mbsr_dataset_name(c->test_data));
  if (c->finetune) snprintf(buf + l, n - l, "_ft");
}

static int expand_cells(mbsr_experiment *e) {
  const mbsr_exp_scale *s = &e->s;
  int ntp = s->n_test_pair ? s->n_test_pair : 1;
  long total = (long)s->n_arch * s->n_train_pair * ntp * s->n_samples * s->n_train_data * s->n_test_data * s->n_finetune;
  if (total > MBSR_EXP_MAX_CELLS) return mbsr_error(MBSR_EINVAL, "%s: %ld cells (max %d)", e->path, total, MBSR_EXP_MAX_CELLS);
  int k = 0;
  for (int a = 0; a < s->n_arch; a++)
    for (int tp = 0; tp < s->n_train_pair; tp++)
      for (int sp = 0; sp < ntp; sp++)
        for (int ns = 0; ns < s->n_samples; ns++)
          for (int td = 0; td < s->n_train_data; td++)
            for (int sd = 0; sd < s->n_test_data; sd++)
              for (int ft = 0; ft < s->n_finetune; ft++) {
                mbsr_exp_cell *c = &e->cells[k];
                memset(c, 0, sizeof *c);
                c->index = k++;
                snprintf(c->arch, sizeof c->arch, "%s", s->arch[a]);
                c->train_pair = s->train_pair[tp];
                c->test_pair = s->n_test_pair ? s->test_pair[sp] : c->train_pair;
                c->samples = s->samples[ns];
                c->train_data = s->train_data[td];
                c->test_data = s->test_data[sd];
                c->finetune = s->finetune[ft];
                cell_name(c, c->name, sizeof c->name);
              }
  e->n_cells = k;
  return 0;
}

/* ---- bounded loading (see the file comment) ---- */
#define EXP_MAX_BYTES (1L << 20)
#define EXP_MAX_DEPTH 32
#define EXP_MAX_EVENTS 200000L

/* First pass: libyaml events, depth, count and documents checked; stops at the first excess. */
static int check_events(const char *path, FILE *f) {
  yaml_parser_t parser;
  yaml_event_t ev;
  if (!yaml_parser_initialize(&parser)) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  yaml_parser_set_input_file(&parser, f);
  int rc = 0, depth = 0, docs = 0;
  long nev = 0;
  for (;;) {
    if (!yaml_parser_parse(&parser, &ev)) {
      rc = mbsr_error(MBSR_EFORMAT, "%s:%d: YAML syntax error: %s", path, (int)parser.problem_mark.line + 1,
                      parser.problem ? parser.problem : "?");
      break;
    }
    yaml_event_type_t t = ev.type;
    int line = (int)ev.start_mark.line + 1;
    yaml_event_delete(&ev);
    if (t == YAML_STREAM_END_EVENT) break;
    if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
      if (++depth > EXP_MAX_DEPTH) {
        rc = mbsr_error(MBSR_EFORMAT, "%s:%d: nesting deeper than %d levels", path, line, EXP_MAX_DEPTH);
        break;
      }
    } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
      depth--;
    } else if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
      rc = mbsr_error(MBSR_EFORMAT, "%s:%d: a second YAML document (an experiment file holds one)", path, line);
      break;
    }
    if (++nev > EXP_MAX_EVENTS) {
      rc = mbsr_error(MBSR_EFORMAT, "%s:%d: more than %ld YAML events (an experiment file is small)", path, line,
                      EXP_MAX_EVENTS);
      break;
    }
  }
  yaml_parser_delete(&parser);
  return rc;
}

typedef struct {
  const char *key;
  int line;
} keyref;

static int cmp_keyref(const void *a, const void *b) {
  const keyref *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Every mapping of the document: a scalar key may appear once (sorted, so O(n log n)). */
static int check_duplicate_keys(const ydoc *d) {
  yaml_document_t *doc = (yaml_document_t *)&d->doc;
  size_t cap = 0;
  keyref *v = NULL;
  int rc = 0;
  for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top && !rc; n++) {
    if (n->type != YAML_MAPPING_NODE) continue;
    size_t k = 0, np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (np < 2) continue;
    if (np > cap) {
      keyref *nv = realloc(v, np * sizeof *v);
      if (!nv) {
        rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", d->file);
        break;
      }
      v = nv;
      cap = np;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *kn = yaml_document_get_node(doc, p->key);
      const char *key = scalar(kn);
      if (key) v[k++] = (keyref){key, (int)kn->start_mark.line + 1};
    }
    qsort(v, k, sizeof *v, cmp_keyref);
    for (size_t i = 1; i < k; i++)
      if (!strcmp(v[i].key, v[i - 1].key)) {
        rc = mbsr_error(MBSR_EINVAL, "%s:%d: duplicate key '%s' (first at line %d)", d->file, v[i].line, v[i].key,
                        v[i - 1].line);
        break;
      }
  }
  free(v);
  return rc;
}

int mbsr_exp_load(const char *path, const char *scale, mbsr_experiment *e) {
  memset(e, 0, sizeof *e);
  snprintf(e->path, sizeof e->path, "%s", path);
  if (!scale) scale = "demo";
  snprintf(e->scale_name, sizeof e->scale_name, "%s", scale);
  FILE *f = fopen(path, "rb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > EXP_MAX_BYTES) {
    fclose(f);
    return mbsr_error(MBSR_EFORMAT, "%s: %lld bytes: an experiment file is at most %ld bytes", path,
                      (long long)st.st_size, EXP_MAX_BYTES);
  }
  int prc = check_events(path, f);
  if (!prc && fseek(f, 0, SEEK_SET) != 0) prc = mbsr_error(MBSR_EIO, "%s: cannot rewind: %s", path, strerror(errno));
  if (prc) {
    fclose(f);
    return prc;
  }
  yaml_parser_t parser;
  ydoc d = {.file = path};
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &d.doc)) {
    int rc = mbsr_error(MBSR_EFORMAT, "%s:%d: YAML syntax error: %s", path, (int)parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "?");
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
  }
  yaml_parser_delete(&parser);
  fclose(f);
  int rc = check_duplicate_keys(&d), nscales = 0, found = 0;
  char names[512] = "";
  if (rc) goto out;
  yaml_node_t *root = yaml_document_get_root_node(&d.doc);
  if (!root || root->type != YAML_MAPPING_NODE) {
    rc = mbsr_error(MBSR_EFORMAT, "%s:1: expected a mapping at the top level", path);
    goto out;
  }
  e->table1 = 0;
  e->anova = 0;
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top && !rc; p++) {
    yaml_node_t *kn = yaml_document_get_node(&d.doc, p->key), *vn = yaml_document_get_node(&d.doc, p->value);
    const char *key = scalar(kn);
    if (!key) rc = ERR(at(&d, kn), "top-level keys must be strings");
    else if (!strcmp(key, "experiment")) rc = copy_str(&d, vn, key, e->name, sizeof e->name);
    else if (!strcmp(key, "title")) rc = copy_str(&d, vn, key, e->title, sizeof e->title);
    else if (!strcmp(key, "paper_ref")) rc = copy_str(&d, vn, key, e->paper_ref, sizeof e->paper_ref);
    else if (!strcmp(key, "description")) rc = copy_str(&d, vn, key, e->description, sizeof e->description);
    else if (!strcmp(key, "report")) {
      if (vn->type != YAML_MAPPING_NODE) { rc = ERR(at(&d, vn), "report: expected a mapping"); break; }
      for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top && !rc; q++) {
        yaml_node_t *k2 = yaml_document_get_node(&d.doc, q->key), *v2 = yaml_document_get_node(&d.doc, q->value);
        const char *k = scalar(k2);
        int *dst = k && !strcmp(k, "anova") ? &e->anova : k && !strcmp(k, "table1") ? &e->table1 : NULL;
        if (!dst) rc = ERR(at(&d, k2), "unknown key '%s' in report (known: anova, table1)", k ? k : "?");
        else if (!scalar(v2) || parse_bool(scalar(v2), dst)) rc = ERR(at(&d, v2), "report.%s: expected true/false", k);
      }
    } else if (!strcmp(key, "scales")) {
      if (vn->type != YAML_MAPPING_NODE) { rc = ERR(at(&d, vn), "scales: expected a mapping (e.g. demo, paper)"); break; }
      for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top && !rc; q++) {
        yaml_node_t *k2 = yaml_document_get_node(&d.doc, q->key), *v2 = yaml_document_get_node(&d.doc, q->value);
        const char *k = scalar(k2);
        int okname = k && *k && strlen(k) < sizeof e->scale_name;
        for (const char *c = k; okname && *c; c++) okname = islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-';
        if (!okname) { rc = ERR(at(&d, k2), "scale name '%s': use lower-case letters, digits, '_' and '-'", k ? k : "?"); break; }
        nscales++;
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", strlen(names) ? ", " : "", k);
        mbsr_exp_scale tmp;
        memset(&tmp, 0, sizeof tmp);
        rc = parse_scale(&d, v2, k, &tmp);
        if (!rc && !strcmp(k, scale)) {
          e->s = tmp;
          found = 1;
        }
      }
    } else {
      rc = ERR(at(&d, kn), "unknown key '%s' (known: experiment, title, paper_ref, description, report, scales)", key);
    }
  }
  if (rc) goto out;
  if (!e->name[0]) { rc = mbsr_error(MBSR_EINVAL, "%s: missing 'experiment: NAME'", path); goto out; }
  for (const char *c = e->name; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
      rc = mbsr_error(MBSR_EINVAL, "%s: experiment name '%s': use letters, digits, '_' and '-'", path, e->name);
      goto out;
    }
  if (nscales == 0) { rc = mbsr_error(MBSR_EINVAL, "%s: no scales (e.g. scales: {demo: {...}})", path); goto out; }
  if (!found) { rc = mbsr_error(MBSR_EINVAL, "%s: no scale '%s' (this file has: %s)", path, scale, names); goto out; }
  rc = expand_cells(e);
out:
  yaml_document_delete(&d.doc);
  return rc;
}

/* ---- writing the resolved parameters ---- */
/* A YAML double-quoted scalar: backslash and quote escaped, control characters as \\xHH. */
static void write_qstr(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
    else if (*c < 0x20 || *c == 0x7f) fprintf(f, "\\x%02x", *c);
    else fputc(*c, f);
  }
  fputc('"', f);
}

static void write_value(FILE *f, const keydef *k, const mbsr_exp_scale *s) {
  const char *base = (const char *)s + k->off;
  int n = fixed_len(k->type) ? fixed_len(k->type) : is_list(k->type) ? *(const int *)((const char *)s + k->cnt_off) : 1;
  switch (k->type) {
    case K_INT: fprintf(f, "%d", *(const int *)base); break;
    case K_U64: fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)base); break;
    case K_DOUBLE: fprintf(f, "%.17g", *(const double *)base); break;
    case K_BOOL: fprintf(f, "%s", *(const int *)base ? "true" : "false"); break;
    case K_STR: write_qstr(f, base); break;
    default:
      fputc('[', f);
      for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        if (k->type == K_INT3 || k->type == L_INT) fprintf(f, "%d", ((const int *)base)[i]);
        else if (k->type == K_DBL2) fprintf(f, "%.17g", ((const double *)base)[i]);
        else if (k->type == L_ARCH) fprintf(f, "%s", ((const char(*)[16])base)[i]);
        else if (k->type == L_PAIR) {
          char pn[MBSR_PAIR_NAME_MAX];
          fputs(mbsr_res_pair_name(&((const mbsr_res_pair *)base)[i], pn, sizeof pn), f);
        }
        else if (k->type == L_DATASET) fprintf(f, "%s", mbsr_dataset_name(((const mbsr_dataset *)base)[i]));
        else if (k->type == L_BOOL) fprintf(f, "%s", ((const int *)base)[i] ? "true" : "false");
      }
      fputc(']', f);
  }
}

int mbsr_exp_write_params(const mbsr_experiment *e, const char *path) {
  char tmp[4200];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  if (rc) return rc;
  FILE *f = fopen(tmp, "w");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  fprintf(f, "# Parameters this run used (defaults included), written by mbsr %s from %s, scale %s.\n"
             "# The file is itself a valid experiment file: mbsr sweep params.yaml --scale %s\n",
          MBSR_VERSION, e->path, e->scale_name, e->scale_name);
  fprintf(f, "experiment: %s\ntitle: ", e->name);
  write_qstr(f, e->title);
  fprintf(f, "\npaper_ref: ");
  write_qstr(f, e->paper_ref);
  fputc('\n', f);
  fprintf(f, "report: {anova: %s, table1: %s}\n", e->anova ? "true" : "false", e->table1 ? "true" : "false");
  fprintf(f, "scales:\n  %s:\n", e->scale_name);
  for (int j = 0; j < NSECTIONS; j++) {
    fprintf(f, "    %s:\n", SECTIONS[j]);
    for (int i = 0; i < NKEYS; i++) {
      if (strcmp(KEYS[i].section, SECTIONS[j])) continue;
      fprintf(f, "      %s: ", KEYS[i].key);
      write_value(f, &KEYS[i], &e->s);
      fprintf(f, "    # %s\n", KEYS[i].doc);
    }
  }
  fprintf(f, "# cells (%d):\n", e->n_cells);
  for (int i = 0; i < e->n_cells; i++) fprintf(f, "#   %d %s\n", i, e->cells[i].name);
  if (fclose(f) != 0) {
    mbsr_abandon_file(tmp);
    return mbsr_error(MBSR_EIO, "%s: write failed", path);
  }
  return mbsr_commit_file(tmp, path);
}

int mbsr_exp_dir(const mbsr_experiment *e, const char *results, char *buf, size_t n) {
  int w = snprintf(buf, n, "%s/%s/%s", results ? results : "results", e->scale_name, e->name);
  if (w < 0 || (size_t)w >= n) return mbsr_error(MBSR_ERANGE, "results path too long");
  return 0;
}
