/* Cells on MRI / human data (transfer, human experiments). */
#include "exp_internal.h"

int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, const char *dir, const char *cohort,
                         const mbsr_exp_cell *c) {
  (void)o, (void)dir, (void)cohort;
  return mbsr_error(MBSR_EUNSUPPORTED, "%s: cell %s: MRI/human cells are not implemented yet", e->path, c->name);
}

int mbsr__report_extra_figures(const mbsr_experiment *e, const char *dir, char figs[][256], int *nf, int max) {
  (void)e, (void)dir, (void)figs, (void)nf, (void)max;
  return 0;
}
