/* Helpers of the exp module: hashes and done markers of cells, file locks, volume crops, and the
 * evaluation of one unit (cubic, network, HR) on the SR contract's intensity scale. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/decorr.h"

int mbsr__rank0(void) { return mbsr_log_rank() == 0; }

uint64_t mbsr__fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
  return h;
}
uint64_t mbsr__fnv_str(uint64_t h, const char *s) { return mbsr__fnv(h, s, strlen(s) + 1); }

uint64_t mbsr__cell_key(const mbsr_experiment *e, int cell) {
  uint64_t h = mbsr__fnv(0xcbf29ce484222325ULL, &e->s, sizeof e->s);
  return mbsr__fnv(h, &e->cells[cell], sizeof e->cells[cell]);
}

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

int mbsr__longest_axis(const mbsr_volume *v) {
  int64_t n[3] = {v->nx, v->ny, v->nz};
  return n[1] > n[0] ? (n[2] > n[1] ? 2 : 1) : (n[2] > n[0] ? 2 : 0);
}

int64_t mbsr__dimof(const mbsr_volume *v, int a) { return a == 0 ? v->nx : a == 1 ? v->ny : v->nz; }

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

int mbsr__save_vol(const char *cdir, const char *what, const mbsr_volume *v, const char *desc) {
  char p[4096];
  snprintf(p, sizeof p, "%s/vol_%s.nii.gz", cdir, what);
  return mbsr_exp_write_nifti_desc(p, v, desc);
}

void mbsr__brain_of(const char *subject, char *brain, size_t n) {
  size_t l = strlen(subject);
  if (l > 6 && !strncmp(subject + l - 6, "-half", 5) && subject[l - 1] >= 'A' && subject[l - 1] <= 'Z')
    snprintf(brain, n, "%.*s", (int)(l - 6), subject);
  else
    snprintf(brain, n, "%s", subject);
}

void mbsr__rows_free(eval_rows *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
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

void mbsr__eval_apply_opts(const mbsr_exp_scale *s, mbsr_apply_opts *ao) {
  mbsr_apply_opts_default(ao);
  ao->max_mb = s->apply_max_mb;
  ao->progress = 0;
}

int mbsr__eval_unit(const mbsr_exp_scale *s, const mbsr_sr_contract *k, const mbsr_volume *cub, const mbsr_volume *sr,
                    const mbsr_volume *hr, const mbsr_volume *mask, const char *arch, const char *fold, const char *subject,
                    const char *brain, int crop_axis, int64_t c0, int64_t c1, eval_rows *out) {
  double lo, hi;
  int rc = mbsr_norm_fit(cub, k->norm_plo, k->norm_phi, &lo, &hi);
  if (rc) return mbsr_error_prefix(rc, "evaluating %s: ", subject);
  if (out->n + 3 > out->cap) {
    int cap = out->cap ? 2 * out->cap : 48;
    eval_row *nr = realloc(out->rows, sizeof *nr * (size_t)cap);
    if (!nr) return mbsr_error(MBSR_ENOMEM, "out of memory");
    out->rows = nr, out->cap = cap;
  }
  const mbsr_volume *meth[3] = {cub, sr, hr};
  const char *mname[3] = {"cubic", arch, "hr"};
  for (int w = 0; w < 3 && !rc; w++) {
    mbsr_volume *v = mbsr_volume_clone(meth[w]);
    if (!v) return mbsr_error(MBSR_ENOMEM, "out of memory");
    mbsr_norm_map(v->data, v->data, mbsr_volume_nvox(v), lo, hi);
    eval_row *r = &out->rows[out->n];
    memset(r, 0, sizeof *r);
    snprintf(r->fold, sizeof r->fold, "%s", fold);
    snprintf(r->subject, sizeof r->subject, "%s", subject);
    snprintf(r->brain, sizeof r->brain, "%s", brain);
    snprintf(r->method, sizeof r->method, "%s", mname[w]);
    /* the reference, mapped the same way, is the HR row itself for w == 2 */
    mbsr_volume *ref = w == 2 ? NULL : mbsr_volume_clone(hr);
    if (w != 2 && !ref) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
    if (ref) mbsr_norm_map(ref->data, ref->data, mbsr_volume_nvox(ref), lo, hi);
    if (!rc) rc = mbsr_metrics_compute(v, ref ? ref : v, mask, 1.0, &r->m);
    if (!rc) {
      mbsr_volume *cr = crop_axis >= 0 ? mbsr__crop_axis(v, crop_axis, c0, c1) : NULL;
      if (crop_axis >= 0 && !cr) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
      /* a slab: slices across it (along the cut axis) */
      if (!rc && mbsr__eff_res(s, cr ? cr : v, crop_axis, &r->kc, &r->res_um)) {
        mbsr_warn("sweep: %s %s: effective resolution not computed: %s", subject, mname[w], mbsr_last_error());
        r->kc = r->res_um = NAN;
      }
      mbsr_volume_free(cr);
    }
    mbsr_volume_free(ref);
    mbsr_volume_free(v);
    if (!rc) out->n++;
  }
  return rc;
}

int mbsr__write_metrics(const char *path, const mbsr_exp_cell *c, const eval_rows *r) {
  size_t cap = 256 + (size_t)r->n * 1024;
  char *t = malloc(cap);
  if (!t) return mbsr_error(MBSR_ENOMEM, "out of memory");
  size_t l = (size_t)snprintf(t, cap, "cell,fold,subject,brain,method,rmse,ssim,psnr,kc,res_um,n_vox\n");
  for (int i = 0; i < r->n; i++) {
    const eval_row *w = &r->rows[i];
    l += (size_t)snprintf(t + l, cap - l, "%s,%s,%s,%s,%s,%.9g,%.9g,%.9g,%.6g,%.6g,%lld\n", c->name, w->fold, w->subject, w->brain,
                          w->method, w->m.rmse, w->m.ssim, w->m.psnr, w->kc, w->res_um, (long long)w->m.n);
  }
  int rc = mbsr_write_text_atomic(path, t);
  free(t);
  return rc;
}
