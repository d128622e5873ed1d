/* The AF data of a sweep, one group per base grid: the cohort (the phantom generated on first use),
 * the manifest of the volumes usable at that grid (one brain in a cross-validation: its two halves),
 * the split by subject, and the prep file with the evaluation volumes, whose name carries a hash of
 * everything that determines its content (so cells and array tasks share it, and a change makes a
 * new one).
 *
 * Grids (data.base_um): one grid for every pair, or 0 = each pair's HR grid, so that a volume serves
 * every pair whose HR voxels are not finer than its own (a 100 um template serves 200-100 and
 * 400-200, not 100-50). Collective over MPI_COMM_WORLD: rank 0 writes the manifest, every rank reads it. */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

int mbsr__cohort_dir(const char *data, char *out, size_t n) {
  char af[2400];
  int rc = mbsr_pathf(af, sizeof af, "%s/af", data);
  if (!rc && mbsr_is_dir(af)) return mbsr_pathf(out, n, "%s", af);
  return rc ? rc : mbsr_pathf(out, n, "%s", data);
}

int mbsr__base_for(const mbsr_exp_scale *s, int hr_um) { return s->base_um > 0 ? s->base_um : hr_um; }

int mbsr__is_cv(const mbsr_exp_scale *s) { return !strcmp(s->cv, "loso"); }

mbsr_profile mbsr__exp_profile(const mbsr_exp_scale *s) {
  mbsr_profile p = MBSR_PROFILE_BOXCAR;
  if (mbsr_profile_parse(s->profile, &p)) mbsr_error_clear(); /* validated by mbsr_exp_load */
  return p;
}

const char *mbsr__pair_level(const mbsr_exp_scale *s, const mbsr_res_pair *p, int lr, char *buf, size_t n) {
  const int hr[3] = {p->hr_um, p->hr_um, p->hr_um};
  return mbsr_eval_level_name(lr ? p->lr_um : hr, lr ? mbsr__exp_profile(s) : MBSR_PROFILE_BOXCAR, buf, n);
}

/* Generate the phantom cohort unless complete (SYNTHETIC-COHORT.txt is written last). Concurrent
 * array tasks serialise on DIR.lock; the cohort is deterministic, so who generates does not matter. */
static int ensure_phantom(const mbsr_exp_scale *s, const char *dir) {
  char marker[2400], lk[2400];
  int rc = mbsr_pathf(marker, sizeof marker, "%s/SYNTHETIC-COHORT.txt", dir);
  if (!rc) rc = mbsr_pathf(lk, sizeof lk, "%s.lock", dir);
  if (rc || mbsr_file_exists(marker)) return rc;
  int fd = mbsr__lock_file(lk);
  if (fd < 0) return fd;
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

/* The volumes of the cohort usable at base_mm (masks excluded; a real volume coarser than the grid
 * is left out with a warning; at most nmax in name order): their indices into use[], their count. */
static int usable_volumes(const mbsr_input_list *in, int nmax, int real, double base_mm, const mbsr_read_opts *ro, int *use) {
  int nu = 0;
  for (int i = 0; i < in->n && nu < nmax; i++) {
    if (strstr(in->names[i], "mask")) continue;
    if (real) {
      mbsr_volume *v = NULL;
      if (mbsr_volume_read(in->paths[i], ro, &v)) {
        mbsr_warn("sweep: %s: %s: left out", in->paths[i], mbsr_last_error());
        continue;
      }
      double vmax = fmax(v->vox[0], fmax(v->vox[1], v->vox[2]));
      mbsr_volume_free(v);
      if (vmax > base_mm * 1.001) {
        mbsr_info("sweep: %s: voxels of %.3g mm are coarser than the %.3g mm grid: not used at this grid", in->paths[i], vmax, base_mm);
        continue;
      }
    }
    use[nu++] = i;
  }
  return nu;
}

/* One brain: its two halves along the longest axis (written to halves_dir once) are the subjects of
 * a within-brain design; manifest lines appended to t. */
static int halves_manifest(const char *path, const char *name, const char *halves_dir, double base_mm, const mbsr_read_opts *ro,
                           mbsr__sbuf *t) {
  mbsr_volume *v = NULL;
  int rc = mbsr_mkdir_p(halves_dir);
  if (!rc) rc = mbsr_volume_read(path, ro, &v);
  for (int h = 0; h < 2 && !rc; h++) {
    char hp[4096], hname[512], d[80];
    rc = mbsr_pathf(hname, sizeof hname, "%s-half%c", name, 'A' + h);
    if (!rc) rc = mbsr_pathf(hp, sizeof hp, "%s/%s.nii.gz", halves_dir, hname);
    if (!rc && !mbsr_file_exists(hp)) {
      int a = mbsr__longest_axis(v);
      int64_t n = mbsr__dimof(v, a);
      mbsr_volume *c = mbsr__crop_axis(v, a, h ? n / 2 : 0, h ? n : n / 2);
      snprintf(d, sizeof d, "%.40s half %c (real data)", name, 'A' + h);
      rc = c ? mbsr_exp_write_nifti_desc(hp, c, d) : mbsr_error(MBSR_ENOMEM, "%s: out of memory", hp);
      mbsr_volume_free(c);
    }
    char *ab = rc ? NULL : mbsr__abspath(hp);
    if (!rc && !ab) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", hp);
    if (!rc) mbsr__sb_add(t, "%s\t%s\n", ab, hname);
    free(ab);
  }
  mbsr_volume_free(v);
  if (!rc)
    mbsr_warn("sweep: one usable volume at %.3g mm (%s): its two halves are the folds (a within-brain design: one brain, "
              "no inference to other brains)", base_mm, path);
  return rc;
}

/* Rank 0: the manifest of the cohort volumes usable at base_mm (usable_volumes; with
 * cv and ONE usable volume, its halves). *count: the number of subjects. */
static int write_manifest(const char *src, const char *path, int nmax, int real, int cv, double base_mm, const char *halves_dir,
                          const mbsr_read_opts *ro, int *count) {
  mbsr_input_list in;
  int rc = mbsr_input_list_load(src, &in);
  if (rc) return rc;
  int *use = calloc((size_t)in.n + 1, sizeof *use), nu = 0;
  mbsr__sbuf t = {0};
  if (!use) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", src);
  if (!rc) nu = usable_volumes(&in, nmax, real, base_mm, ro, use);
  if (!rc && cv && nu == 1) {
    rc = halves_manifest(in.paths[use[0]], in.names[use[0]], halves_dir, base_mm, ro, &t);
    nu = 2;
  } else {
    for (int i = 0; i < nu && !rc; i++) {
      char *ab = mbsr__abspath(in.paths[use[i]]);
      if (!ab) rc = mbsr_error(MBSR_ENOMEM, "%s: out of memory", src);
      else mbsr__sb_add(&t, "%s\t%s\n", ab, in.names[use[i]]);
      free(ab);
    }
  }
  *count = nu;
  if (!rc && !nu) rc = mbsr_error(MBSR_EINVAL, "%s: no usable input volumes at %.3g mm", src, base_mm);
  const char *text = rc ? NULL : mbsr__sb_text(&t, path);
  if (!rc) rc = text ? mbsr_write_text_atomic(path, text) : MBSR_ENOMEM;
  mbsr__sb_free(&t);
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

void mbsr__af_groups_free(sweep_ctx *x) {
  for (int i = 0; i < x->ngroups; i++) group_free(&x->groups[i]);
  x->ngroups = 0;
}

/* The AF pairs of the experiment prepared at base_um. */
static void group_pairs(const mbsr_experiment *e, int base_um, mbsr_prep_config *pc) {
  pc->npairs = 0;
  for (int c = 0; c < e->n_cells; c++) {
    const mbsr_exp_cell *cl = &e->cells[c];
    const mbsr_res_pair *pr[2] = {&cl->train_pair, &cl->test_pair};
    for (int t = 0; t < 2; t++) {
      if ((t == 0 ? cl->train_data : cl->test_data) != MBSR_DS_AF || mbsr__base_for(&e->s, pr[t]->hr_um) != base_um) continue;
      int dup = 0;
      for (int q = 0; q < pc->npairs; q++) dup |= mbsr_res_pair_equal(&pc->pairs[q], pr[t]);
      if (!dup && pc->npairs < MBSR_MAX_PAIRS) pc->pairs[pc->npairs++] = *pr[t];
    }
  }
}

/* The preparation of one group, step by step. */
typedef struct {
  const mbsr_experiment *e;
  const mbsr_sweep_opts *o;
  const sweep_ctx *x;
  int base_um, cv, want, have;
  char man[2400], halves[2400];
  mbsr_prep_config pc;
} group_plan;

/* Rank 0: the cohort (the phantom generated when needed) and its manifest; then every rank knows `have`. */
static int plan_manifest(group_plan *plan) {
  const mbsr_exp_scale *s = &plan->e->s;
  const char *cohort = plan->x->cohort;
  int rc = 0;
  if (mbsr__rank0()) {
    const int real = plan->o->data || strcmp(s->cohort, "phantom");
    rc = mbsr_mkdir_p(cohort);
    if (!rc && !strcmp(s->cohort, "phantom") && !plan->o->data) rc = ensure_phantom(s, cohort);
    if (!rc) rc = write_manifest(cohort, plan->man, plan->want, real, plan->cv, plan->base_um / 1000.0, plan->halves, &plan->pc.read_opts, &plan->have);
    if (!rc && !plan->cv && plan->have < 2)
      rc = mbsr_error(MBSR_EINVAL, "%s: %d usable volume(s) at %d um: a held-out test needs 2 or more (or data.cv: loso)", cohort,
                      plan->have, plan->base_um);
    if (!rc && !plan->cv && plan->have < plan->want)
      mbsr_warn("sweep: %s has %d volumes at %d um, fewer than n_train + n_test = %d: %d test and %d training subjects", cohort,
                plan->have, plan->base_um, plan->want, (plan->have + 2) / 3, plan->have - (plan->have + 2) / 3);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) return rc;
  MPI_Bcast(&plan->have, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return 0;
}

/* Every rank: the subjects, as prep will name and order them, and their brains. */
static int read_subjects(const char *man, int have, af_group *g) {
  mbsr_input_list in;
  int rc = mbsr_input_list_load(man, &in);
  if (rc) return rc;
  g->subjects = calloc((size_t)in.n + 1, sizeof *g->subjects);
  g->brains = calloc((size_t)in.n + 1, sizeof *g->brains);
  for (int i = 0; i < in.n && g->subjects && g->brains; i++) {
    char b[256];
    mbsr__brain_of(in.names[i], b, sizeof b);
    g->subjects[i] = strdup(in.names[i]), g->brains[i] = strdup(b);
    if (!g->subjects[i] || !g->brains[i]) break;
    g->n_subjects = i + 1;
  }
  mbsr_input_list_free(&in);
  if (g->n_subjects != have) {
    group_free(g);
    return mbsr_error(MBSR_ENOMEM, "sweep: reading %s failed", man);
  }
  return 0;
}

/* The split (cv: every subject in training, folds leave one out; its volumes for evaluation) and the
 * prep parameters. */
static void plan_split(group_plan *plan, af_group *g) {
  const mbsr_exp_scale *s = &plan->e->s;
  mbsr_prep_config *pc = &plan->pc;
  const int have = plan->have;
  int n_val = 0;
  if (plan->cv) {
    g->n_test = have;
    pc->split[0] = 100, pc->split[1] = 0, pc->split[2] = 0;
    pc->eval_all = 1;
  } else {
    g->n_test = have >= plan->want ? s->n_test : (have + 2) / 3;
    int n_tr = have - g->n_test;
    n_val = n_tr >= 2 ? (int)lround(s->val_fraction * n_tr) : 0;
    if (n_val < 1 && n_tr >= 2 && s->val_fraction > 0) n_val = 1;
    pc->split[1] = n_val ? (int)ceil(100.0 * n_val / have) : 0;
    pc->split[2] = 0;
    pc->split[0] = 100 - pc->split[1];
    pc->test_subjects = g->n_test;
  }
  int maxs = 0;
  for (int i = 0; i < s->n_samples; i++) maxs = s->samples[i] > maxs ? s->samples[i] : maxs;
  const int n_train_subj = plan->cv ? (have > 1 ? have - 1 : 1) : have - g->n_test - n_val;
  pc->inputs = plan->man;
  pc->base_um = plan->base_um;
  pc->patch = s->patch;
  pc->patches_per_volume = (maxs + n_train_subj - 1) / (n_train_subj > 0 ? n_train_subj : 1);
  pc->seed = s->seed;
  pc->norm_plo = s->norm_pct[0], pc->norm_phi = s->norm_pct[1];
  pc->profile = mbsr__exp_profile(s);
  pc->progress = 1;
  group_pairs(plan->e, plan->base_um, pc);
}

/* The hash of everything that determines the prep file's content. */
static uint64_t plan_hash(const group_plan *plan) {
  const mbsr_prep_config *pc = &plan->pc;
  uint64_t h = MBSR__FNV_SEED;
  FILE *mf = fopen(plan->man, "r");
  if (mf) {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, mf) > 0) h = mbsr__fnv_str(h, line);
    free(line);
    fclose(mf);
  }
  h = mbsr__fnv(h, &pc->base_um, sizeof pc->base_um);
  for (int q = 0; q < pc->npairs; q++) { /* an isotropic pair as the {lr, hr} of older mbsr: the same file names */
    char pn[MBSR_PAIR_NAME_MAX];
    const int old[2] = {pc->pairs[q].lr_um[0], pc->pairs[q].hr_um};
    h = mbsr_res_pair_isotropic(&pc->pairs[q]) ? mbsr__fnv(h, old, sizeof old) : mbsr__fnv_str(h, mbsr_res_pair_name(&pc->pairs[q], pn, sizeof pn));
  }
  h = mbsr__fnv(h, &pc->patch, sizeof pc->patch);
  h = mbsr__fnv(h, &pc->patches_per_volume, sizeof pc->patches_per_volume);
  h = mbsr__fnv(h, pc->split, sizeof pc->split);
  h = mbsr__fnv(h, &pc->test_subjects, sizeof pc->test_subjects);
  h = mbsr__fnv(h, &pc->eval_all, sizeof pc->eval_all);
  h = mbsr__fnv(h, &pc->seed, sizeof pc->seed);
  h = mbsr__fnv(h, &pc->norm_plo, sizeof pc->norm_plo);
  h = mbsr__fnv(h, &pc->norm_phi, sizeof pc->norm_phi);
  if (pc->profile != MBSR_PROFILE_BOXCAR) h = mbsr__fnv_str(h, mbsr_profile_name(pc->profile)); /* boxcar: as before */
  return h;
}

int mbsr__af_group(const mbsr_experiment *e, const mbsr_sweep_opts *o, sweep_ctx *x, int base_um, af_group **out) {
  for (int i = 0; i < x->ngroups; i++)
    if (x->groups[i].base_um == base_um) return *out = &x->groups[i], 0;
  if (x->ngroups >= (int)(sizeof x->groups / sizeof *x->groups))
    return mbsr_error(MBSR_ERANGE, "sweep: more than %d base grids", (int)(sizeof x->groups / sizeof *x->groups));
  group_plan *plan = calloc(1, sizeof *plan);
  if (!plan) return mbsr_error(MBSR_ENOMEM, "sweep: out of memory");
  plan->e = e, plan->o = o, plan->x = x, plan->base_um = base_um, plan->cv = mbsr__is_cv(&e->s);
  plan->want = plan->cv ? 1 << 20 : e->s.n_train + e->s.n_test;
  mbsr_prep_config_default(&plan->pc);
  int rc = mbsr_pathf(plan->man, sizeof plan->man, "%s/data/cohort-%dum.txt", x->dir, base_um);
  if (!rc) rc = mbsr_pathf(plan->halves, sizeof plan->halves, "%s/data/halves-%dum", x->dir, base_um);
  rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  if (!rc) rc = plan_manifest(plan);
  af_group *g = &x->groups[x->ngroups];
  memset(g, 0, sizeof *g);
  g->base_um = base_um;
  if (!rc) rc = mbsr_mpi_agree(MPI_COMM_WORLD, read_subjects(plan->man, plan->have, g));
  if (!rc) {
    plan_split(plan, g);
    char stem[2300];
    rc = mbsr_pathf(stem, sizeof stem, "%s/data/af-%dum-%016llx", x->dir, base_um, (unsigned long long)plan_hash(plan));
    if (!rc) rc = mbsr_pathf(g->h5, sizeof g->h5, "%s.h5", stem);
    if (!rc) rc = mbsr_pathf(g->eval, sizeof g->eval, "%s-eval", stem);
    plan->pc.out = g->h5;
    plan->pc.eval_dir = g->eval;
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  }
  if (!rc) {
    char what[3000];
    snprintf(what, sizeof what, "sweep: prep %d subjects at %d um (%s), %d pair(s), %d patches per volume -> %s", plan->have, base_um,
             plan->cv ? "cross-validation: every subject is a fold" : "fixed split", plan->pc.npairs, plan->pc.patches_per_volume, g->h5);
    rc = mbsr__prep_or_reuse(&plan->pc, NULL, what);
  }
  free(plan);
  if (rc) {
    group_free(g);
    return rc;
  }
  x->ngroups++;
  *out = g;
  return 0;
}

int mbsr__af_eval_subjects(const af_group *g, const char *level, int *idx) {
  int n = 0;
  for (int i = 0; i < g->n_subjects; i++) {
    char p[4096];
    int rc = mbsr_pathf(p, sizeof p, "%s/%s_%s.nii.gz", g->eval, g->subjects[i], level);
    if (rc) return rc;
    if (mbsr_file_exists(p)) idx[n++] = i;
  }
  return n;
}
