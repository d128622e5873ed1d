/* Internal helpers shared by the exp module's files (not a public API). */
#ifndef MBSR_EXP_INTERNAL_H
#define MBSR_EXP_INTERNAL_H

#include "mbsr/exp.h"

/* Write a text file atomically. */
int mbsr__exp_write_text(const char *path, const char *text);
/* A cell that trains or tests on MRI / human data (transfer, human experiments); sweep_mri.c. */
int mbsr__sweep_mri_cell(const mbsr_experiment *e, const mbsr_sweep_opts *o, const char *dir, const char *cohort,
                         const mbsr_exp_cell *c);

/* Figures only some experiments have (AF-vs-MRI scatter plots for transfer); appends file names. */
int mbsr__report_extra_figures(const mbsr_experiment *e, const char *dir, char figs[][256], int *nf, int max);

#endif
