/* Shipped models: models/manifest.json (Jansson) lists inference-only checkpoints by name.
 *   {"format": "mbsr-models", "version": 1, "models": [{"name": "af-200-100", "file": "af-200-100.h5",
 *     "sha256": "...", "description": "...", "pair_um": [200, 100], "lr_vox_mm": [...], "hr_vox_mm": [...],
 *     ...more fields for people (architecture, training data, cross-validated metrics)}]}
 * The manifest is looked for in $MBSR_MODELS, then <prefix>/share/mbsr/models next to the executable
 * (<prefix>/bin/mbsr), then the source tree's models/ (a build tree's bin/mbsr, or the directory
 * compiled in as MBSR_MODELS_DIR). A model found by name is verified against its sha256 before use. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/data.h"
#include "mbsr/fetch.h"

#ifndef MBSR_MODELS_DIR
#define MBSR_MODELS_DIR ""
#endif

/* 1 (and dir set) when d holds manifest.json; d appended to `tried` otherwise. */
static int try_dir(const char *d, char *dir, size_t n, char *tried, size_t tn) {
  char m[4200];
  int w = snprintf(m, sizeof m, "%s/manifest.json", d);
  if (w > 0 && (size_t)w < sizeof m && mbsr_file_exists(m)) {
    snprintf(dir, n, "%s", d);
    return 1;
  }
  size_t l = strlen(tried);
  snprintf(tried + l, tn - l, "%s%s", l ? ", " : "", d);
  return 0;
}

/* The directory holding the manifest (first found), or MBSR_EIO listing where it looked. */
static int find_dir(char *dir, size_t n) {
  char exe[2048], c[2100], tried[8192] = "";
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[k > 0 ? k : 0] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  const char *env = getenv("MBSR_MODELS");
  if (env && *env && try_dir(env, dir, n, tried, sizeof tried)) return MBSR_OK;
  snprintf(c, sizeof c, "%s/../share/mbsr/models", exe);
  if (exe[0] && try_dir(c, dir, n, tried, sizeof tried)) return MBSR_OK;
  snprintf(c, sizeof c, "%s/../../models", exe); /* <source>/build/bin/mbsr */
  if (exe[0] && try_dir(c, dir, n, tried, sizeof tried)) return MBSR_OK;
  if (MBSR_MODELS_DIR[0] && try_dir(MBSR_MODELS_DIR, dir, n, tried, sizeof tried)) return MBSR_OK;
  return mbsr_error(MBSR_EIO, "no models/manifest.json found (looked in: %s; set MBSR_MODELS=DIR)", tried);
}

static void get_vec(json_t *o, const char *key, double *v, int n) {
  json_t *a = json_object_get(o, key);
  for (int i = 0; i < n; i++) v[i] = json_is_array(a) && json_is_number(json_array_get(a, (size_t)i)) ? json_number_value(json_array_get(a, (size_t)i)) : 0;
}

static void entry_from(json_t *m, const char *dir, mbsr_model_entry *e) {
  memset(e, 0, sizeof *e);
  const char *name = json_string_value(json_object_get(m, "name")), *file = json_string_value(json_object_get(m, "file"));
  const char *sha = json_string_value(json_object_get(m, "sha256")), *desc = json_string_value(json_object_get(m, "description"));
  snprintf(e->name, sizeof e->name, "%s", name ? name : "");
  if (file && file[0] == '/') snprintf(e->file, sizeof e->file, "%s", file);
  else if (file) snprintf(e->file, sizeof e->file, "%.2000s/%.2000s", dir, file);
  snprintf(e->sha256, sizeof e->sha256, "%s", sha ? sha : "");
  snprintf(e->description, sizeof e->description, "%s", desc ? desc : "");
  double pr[2];
  get_vec(m, "pair_um", pr, 2);
  e->lr_um = (int)pr[0], e->hr_um = (int)pr[1];
  get_vec(m, "lr_vox_mm", e->lr_vox_mm, 3);
  get_vec(m, "hr_vox_mm", e->hr_vox_mm, 3);
}

int mbsr_models_list(mbsr_model_entry **out, int *n, char *dir, size_t dn) {
  *out = NULL;
  *n = 0;
  char d[4096], path[4200];
  int rc = find_dir(d, sizeof d);
  if (rc) return rc;
  if (dir) snprintf(dir, dn, "%s", d);
  snprintf(path, sizeof path, "%s/manifest.json", d);
  json_error_t err;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  if (!root) return mbsr_error(MBSR_EFORMAT, "%s:%d: %s", path, err.line, err.text);
  json_t *ms = json_object_get(root, "models");
  const char *fmt = json_string_value(json_object_get(root, "format"));
  if (!fmt || strcmp(fmt, "mbsr-models") || !json_is_array(ms)) {
    json_decref(root);
    return mbsr_error(MBSR_EFORMAT, "%s: not an mbsr model manifest (format \"mbsr-models\", a \"models\" list)", path);
  }
  size_t k = json_array_size(ms);
  mbsr_model_entry *e = calloc(k + 1, sizeof *e);
  if (!e) {
    json_decref(root);
    return mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < k; i++) {
    entry_from(json_array_get(ms, i), d, &e[i]);
    if (!e[i].name[0] || !e[i].file[0] || strlen(e[i].sha256) != 64) {
      free(e);
      json_decref(root);
      return mbsr_error(MBSR_EFORMAT, "%s: model %zu lacks a name, file or sha256", path, i + 1);
    }
  }
  json_decref(root);
  *out = e;
  *n = (int)k;
  return MBSR_OK;
}

int mbsr_model_resolve(const char *name_or_path, char *path, size_t n, mbsr_model_entry *entry) {
  if (entry) memset(entry, 0, sizeof *entry);
  if (strchr(name_or_path, '/') || mbsr_file_exists(name_or_path)) { /* a checkpoint file */
    if (!mbsr_file_exists(name_or_path)) return mbsr_error(MBSR_EIO, "%s: no such checkpoint file", name_or_path);
    snprintf(path, n, "%s", name_or_path);
    return MBSR_OK;
  }
  mbsr_model_entry *es = NULL;
  int ne = 0, rc = mbsr_models_list(&es, &ne, NULL, 0);
  if (rc) return mbsr_error_prefix(rc, "model '%s': ", name_or_path);
  int hit = -1;
  char names[2048] = "";
  for (int i = 0; i < ne; i++) {
    if (!strcmp(es[i].name, name_or_path)) hit = i;
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", es[i].name);
  }
  if (hit < 0) {
    free(es);
    return mbsr_error(MBSR_EINVAL, "no model named '%s' (shipped models: %s; or give a checkpoint file)", name_or_path, names);
  }
  char hex[65];
  int64_t bytes;
  rc = mbsr_sha256_file(es[hit].file, hex, &bytes);
  if (!rc && strcmp(hex, es[hit].sha256))
    rc = mbsr_error(MBSR_EFORMAT, "%s: sha256 %s does not match the manifest's %s (corrupt or replaced model file)", es[hit].file,
                    hex, es[hit].sha256);
  if (!rc) {
    snprintf(path, n, "%s", es[hit].file);
    if (entry) *entry = es[hit];
  }
  free(es);
  return rc;
}

int mbsr_models_add(const char *dir, const char *name, const char *ckpt, const char *description, const char *cv) {
  for (const char *c = name; *c; c++)
    if (!(*c == '-' || *c == '_' || *c == '.' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z')))
      return mbsr_error(MBSR_EINVAL, "model name '%s': use lower-case letters, digits, '-', '_' and '.'", name);
  if (!*name) return mbsr_error(MBSR_EINVAL, "empty model name");
  mbsr_model *m = NULL;
  int rc = mbsr_checkpoint_load(ckpt, 1, 5, 5, 5, &m, NULL);
  if (rc) return rc;
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  const mbsr_model_config *c = mbsr_model_get_config(m);
  char file[4200], man[4200], hex[65];
  int64_t bytes = 0;
  snprintf(file, sizeof file, "%s/%s.h5", dir, name);
  snprintf(man, sizeof man, "%s/manifest.json", dir);
  if (!k->known || !(k->lr_vox_mm[0] > 0)) rc = mbsr_error(MBSR_EINVAL, "%s: no SR contract with a training pair: not shippable", ckpt);
  if (!rc) rc = mbsr_mkdir_p(dir);
  if (!rc) rc = mbsr_checkpoint_export(m, file);
  if (!rc) rc = mbsr_sha256_file(file, hex, &bytes);
  json_t *root = NULL;
  if (!rc && mbsr_file_exists(man)) {
    json_error_t err;
    root = json_load_file(man, JSON_REJECT_DUPLICATES, &err);
    if (!root) rc = mbsr_error(MBSR_EFORMAT, "%s:%d: %s", man, err.line, err.text);
  }
  if (!rc && !root) root = json_pack("{s:s, s:i, s:[]}", "format", "mbsr-models", "version", 1, "models");
  json_t *ms = root ? json_object_get(root, "models") : NULL;
  if (!rc && !json_is_array(ms)) rc = mbsr_error(MBSR_EFORMAT, "%s: no \"models\" list", man);
  if (!rc) {
    json_t *e = json_object(), *norm = json_object();
    json_object_set_new(e, "name", json_string(name));
    json_object_set_new(e, "file", json_sprintf("%s.h5", name));
    json_object_set_new(e, "sha256", json_string(hex));
    json_object_set_new(e, "bytes", json_integer(bytes));
    json_object_set_new(e, "description", json_string(description ? description : ""));
    const double lmax = fmax(k->lr_vox_mm[0], fmax(k->lr_vox_mm[1], k->lr_vox_mm[2])); /* per-axis pairs: the largest (lr_vox_mm has all) */
    json_object_set_new(e, "pair_um", json_pack("[i,i]", (int)lround(lmax * 1000), (int)lround(k->hr_vox_mm[0] * 1000)));
    json_object_set_new(e, "lr_vox_mm", json_pack("[f,f,f]", k->lr_vox_mm[0], k->lr_vox_mm[1], k->lr_vox_mm[2]));
    json_object_set_new(e, "hr_vox_mm", json_pack("[f,f,f]", k->hr_vox_mm[0], k->hr_vox_mm[1], k->hr_vox_mm[2]));
    json_object_set_new(e, "architecture", json_pack("{s:s, s:i, s:i, s:b}", "arch", mbsr_arch_name(c->arch), "channels", c->channels,
                                                     "blocks", c->blocks, "global_residual", c->global_residual));
    json_object_set_new(norm, "percentiles", json_pack("[f,f]", k->norm_plo, k->norm_phi));
    json_object_set_new(norm, "of", json_string("the input up-sampled onto the HR grid (Keys); x -> clip((x - lo)/(hi - lo), 0, 1)"));
    json_object_set_new(e, "normalisation", norm);
    json_t *tr = k->training[0] ? json_loads(k->training, 0, NULL) : NULL;
    json_object_set_new(e, "training", tr ? tr : json_null());
    json_object_set_new(e, "cross_validation", cv ? json_string(cv) : json_null());
    json_object_set_new(e, "mbsr_version", json_string(MBSR_VERSION));
    size_t i;
    json_t *v;
    json_array_foreach(ms, i, v) if (json_is_string(json_object_get(v, "name")) && !strcmp(json_string_value(json_object_get(v, "name")), name)) break;
    if (i < json_array_size(ms)) json_array_set_new(ms, i, e);
    else json_array_append_new(ms, e);
    char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *full = txt ? malloc(strlen(txt) + 2) : NULL;
    if (full) sprintf(full, "%s\n", txt);
    rc = full ? mbsr_write_text_atomic(man, full) : mbsr_error(MBSR_ENOMEM, "out of memory");
    free(full);
    free(txt);
  }
  json_decref(root);
  mbsr_model_free(m);
  return rc;
}
