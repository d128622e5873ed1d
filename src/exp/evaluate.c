/* The evaluation of one unit (a subject, a half, a slab) by cubic interpolation, the network and the
 * HR reference, on the SR contract's intensity scale; the rows of cells/<cell>/metrics.csv. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"
#include "mbsr/decorr.h"

void mbsr__rows_free(eval_rows *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
}

/* Effective resolution (decorrelation, median over slices along `axis`; < 0 = eval.decorr_axis). */
static int eff_res(const mbsr_exp_scale *s, const mbsr_volume *v, int axis, double *kc, double *res_um) {
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

static int rows_reserve(eval_rows *out, int more) {
  if (out->n + more <= out->cap) return 0;
  int cap = out->cap ? 2 * out->cap : 48;
  eval_row *nr = realloc(out->rows, sizeof *nr * (size_t)cap);
  if (!nr) return mbsr_error(MBSR_ENOMEM, "metrics rows: out of memory");
  out->rows = nr, out->cap = cap;
  return 0;
}

/* One method's row: v (already on the contract scale) against ref (NULL: v is the reference). */
static int eval_method(const mbsr_exp_scale *s, const mbsr_volume *v, const mbsr_volume *ref, const mbsr_volume *mask,
                       const eval_unit *u, const char *method, eval_row *r) {
  memset(r, 0, sizeof *r);
  snprintf(r->fold, sizeof r->fold, "%s", u->fold);
  snprintf(r->subject, sizeof r->subject, "%s", u->subject);
  snprintf(r->brain, sizeof r->brain, "%s", u->brain);
  snprintf(r->method, sizeof r->method, "%s", method);
  int rc = mbsr_metrics_compute(v, ref ? ref : v, mask, 1.0, &r->m);
  if (rc) return rc;
  mbsr_volume *cr = u->crop_axis >= 0 ? mbsr__crop_axis(v, u->crop_axis, u->c0, u->c1) : NULL;
  if (u->crop_axis >= 0 && !cr) return mbsr_error(MBSR_ENOMEM, "evaluating %s: out of memory", u->subject);
  /* a slab: slices across it (along the cut axis) */
  if (eff_res(s, cr ? cr : v, u->crop_axis, &r->kc, &r->res_um)) {
    mbsr_warn("sweep: %s %s: effective resolution not computed: %s", u->subject, method, mbsr_last_error());
    r->kc = r->res_um = NAN;
  }
  mbsr_volume_free(cr);
  return 0;
}

int mbsr__eval_unit(const mbsr_exp_scale *s, const mbsr_sr_contract *k, const mbsr_volume *cub, const mbsr_volume *sr,
                    const mbsr_volume *hr, const mbsr_volume *mask, const eval_unit *u, eval_rows *out) {
  double lo, hi;
  int rc = mbsr_norm_fit(cub, k->norm_plo, k->norm_phi, &lo, &hi);
  if (rc) return mbsr_error_prefix(rc, "evaluating %s: ", u->subject);
  if ((rc = rows_reserve(out, 3))) return rc;
  const mbsr_volume *meth[3] = {cub, sr, hr};
  const char *mname[3] = {"cubic", u->arch, "hr"};
  for (int w = 0; w < 3 && !rc; w++) {
    mbsr_volume *v = mbsr_volume_clone(meth[w]);
    /* the reference, mapped the same way, is the HR row itself for w == 2 */
    mbsr_volume *ref = w == 2 ? NULL : mbsr_volume_clone(hr);
    if (!v || (w != 2 && !ref)) rc = mbsr_error(MBSR_ENOMEM, "evaluating %s: out of memory", u->subject);
    if (!rc) {
      mbsr_norm_map(v->data, v->data, mbsr_volume_nvox(v), lo, hi);
      if (ref) mbsr_norm_map(ref->data, ref->data, mbsr_volume_nvox(ref), lo, hi);
      rc = eval_method(s, v, ref, mask, u, mname[w], &out->rows[out->n]);
    }
    mbsr_volume_free(ref);
    mbsr_volume_free(v);
    if (!rc) out->n++;
  }
  return rc;
}

int mbsr__write_metrics(const char *path, const mbsr_exp_cell *c, const eval_rows *r) {
  mbsr__sbuf t = {0};
  mbsr__sb_add(&t, "cell,fold,subject,brain,method,rmse,ssim,psnr,kc,res_um,n_vox\n");
  for (int i = 0; i < r->n; i++) {
    const eval_row *w = &r->rows[i];
    mbsr__sb_add(&t, "%s,%s,%s,%s,%s,%.9g,%.9g,%.9g,%.6g,%.6g,%lld\n", c->name, w->fold, w->subject, w->brain, w->method, w->m.rmse,
                 w->m.ssim, w->m.psnr, w->kc, w->res_um, (long long)w->m.n);
  }
  const char *text = mbsr__sb_text(&t, path);
  int rc = text ? mbsr_write_text_atomic(path, text) : MBSR_ENOMEM;
  mbsr__sb_free(&t);
  return rc;
}

int mbsr__save_vol(const char *cdir, const char *what, const mbsr_volume *v, const char *desc) {
  char p[4096];
  int rc = mbsr_pathf(p, sizeof p, "%s/vol_%s.nii.gz", cdir, what);
  return rc ? rc : mbsr_exp_write_nifti_desc(p, v, desc);
}
