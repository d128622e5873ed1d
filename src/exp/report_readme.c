/* The README.md of an experiment's results: what the data are (synthetic or real, with their
 * sources), the design, the tables and figures, and how every number was made. */
#include <math.h>
#include <string.h>

#include "exp_internal.h"
#include "mbsr/version.h"

/* ## Data: the sources of the volumes the cells used. */
static void readme_data(const mbsr_experiment *e, const readme_input *in, mbsr__sbuf *rd) {
  const char *src = in->source;
  const int synth = in->synth;
  int uses_af = 0, mri = 0, human = 0;
  for (int c = 0; c < e->n_cells; c++) {
    uses_af |= e->cells[c].train_data == MBSR_DS_AF || e->cells[c].test_data == MBSR_DS_AF;
    mri |= e->cells[c].test_data == MBSR_DS_T2W || e->cells[c].test_data == MBSR_DS_FA;
    human |= e->cells[c].train_data == MBSR_DS_HUMAN_T1;
  }
  if (uses_af && synth)
    mbsr__sb_add(rd, "**SYNTHETIC.** The AF volumes are the mbsr phantom cohort (`mbsr phantom`): computer-generated, AF-like "
               "mouse-brain volumes (ellipsoid brain with cortical laminae, cerebellar folia, a folded hippocampal band, "
               "tracts, nuclei and ventricles; per-subject deformation, bias field and noise). They are NOT real mouse "
               "brains: the numbers below show that the pipeline works and how the methods compare on this phantom, "
               "not what they do on real data. Source: `%s`.\n\n",
           src);
  else if (uses_af)
    mbsr__sb_add(rd, "Real volumes: `%s`. Allen Mouse Brain Connectivity Atlas / CCFv3 average template: Wang et al., Cell "
               "181:936 (2020), © Allen Institute (https://connectivity.brain-map.org); individual STPT brain: brainglobe "
               "brainreg test data (BSD-3-Clause).\n\n",
           src);
  if (mri)
    mbsr__sb_add(rd, "MRI test data (real, `%s`): T2w = DSURQE ex-vivo T2-weighted consensus average resampled to 200 um in CCFv3 "
               "space, voxel-wise co-registered with the Allen AF template (MICe; Dorr et al. 2008, Steadman et al. 2014, "
               "Ullmann et al. 2013, Richards et al. 2011, Qiu et al. 2016; Allen Institute CCFv3, Wang et al. 2020); FA-like = "
               "quantitative anisotropy of the Duke CIVM ex-vivo diffusion template, 50 um (via Aswendt-Lab/AIDAmri). One "
               "volume (a population template) per contrast: the first half along its longest axis is the HR data for "
               "fine-tuning (+TL cells), the second half is evaluated in slabs — units of ONE brain, so no p-value.\n\n",
           e->s.mri_dir);
  if (human)
    mbsr__sb_add(rd, "Human training data (real): `%s` — Colin27 T1 ('ch2better', Holmes et al. 1998), shipped by Debian's "
               "mricron-data package; one brain, not the paper's 60 HCP subjects.\n\n",
           e->s.human_dir);
}

/* The design (fixed split or cross-validation) and what the number of brains allows. */
static void readme_design(const mbsr_experiment *e, const cell_stats *cs, const readme_input *in, mbsr__sbuf *rd) {
  const int synth = in->synth;
  int uses_af = 0;
  for (int c = 0; c < e->n_cells; c++) uses_af |= e->cells[c].train_data == MBSR_DS_AF || e->cells[c].test_data == MBSR_DS_AF;
  int maxn = 0, maxu = 0;
  for (int c = 0; c < e->n_cells; c++)
    if (cs[c].present) maxn = cs[c].n > maxn ? cs[c].n : maxn, maxu = cs[c].n_units > maxu ? cs[c].n_units : maxu;
  if (!strcmp(e->s.cv, "loso"))
    mbsr__sb_add(rd, "Design: leave-one-subject-out cross-validation (`data.cv: loso`): each subject of a pair's grid is the test "
               "subject of one fold and the network of that fold never saw it; a grid with one brain is cut into two halves "
               "(a within-brain design: 2 folds, 1 brain). Up to %d independent brain(s) and %d evaluated unit(s) per cell. "
               "For the cells of the largest training set a final network is trained on every subject (what a user would "
               "apply, e.g. the shipped models; its expected performance is the cross-validated one).\n\n",
           maxn, maxu);
  else
    mbsr__sb_add(rd, "Design: a fixed split by subject (prep's seeded split); up to %d independent test brain(s) per cell.\n\n", maxn);
  if (maxn < MBSR__MIN_BRAINS_FOR_TESTS && uses_af && !synth)
    mbsr__sb_add(rd, "**What %d brain(s) allow, and what they do not.** They allow an estimate, for each held-out brain, of how a "
               "network trained without it does on it — with two brains as different as an individual STPT brain and a "
               "population-average template, each fold is also a test of transfer between the two kinds of image — and "
               "the sign and size of each improvement. They do not allow a p-value or a confidence interval for mouse "
               "brains in general, a claim that the improvement holds for any other brain, or a ranking of training-set "
               "sizes beyond these folds. A row whose units are halves of one brain is a within-brain result: it says "
               "nothing across brains.\n\n",
           maxn);
}

/* ## How this was made: parameters, networks, contract, commands, evaluation, statistics. */
static void readme_how(const mbsr_experiment *e, const mbsr_report_opts *o, mbsr__sbuf *rd) {
  mbsr__sb_add(rd, "## How this was made\n\n");
  mbsr__sb_add(rd, "- Parameters (every key, defaults included): [`params.yaml`](params.yaml); experiment file `%s`, scale `%s`.\n", e->path,
         e->scale_name);
  mbsr__sb_add(rd, "- Networks: %s; %d channels x %d residual blocks%s (cCNN %d/%d; GAN discriminator %d x %d); %d^3 patches, batch %d, "
             "at most %d epochs%s%s (early-stopping patience %d%s), Adam lr %g, seed %llu%s%s; the checkpoint with the best "
             "validation loss is applied (the last one without validation data).\n",
         e->s.n_arch == 1 ? e->s.arch[0] : "see the cells", e->s.channels, e->s.blocks,
         e->s.global_residual ? " with a global residual (output = input + network; the output conv starts at zero unless "
                                "train.init_glorot)"
                              : "",
         e->s.ccnn_c1, e->s.ccnn_c2, e->s.disc_channels, e->s.disc_blocks, e->s.patch, e->s.batch, e->s.epochs,
         e->s.steps_per_epoch ? " of " : "", e->s.steps_per_epoch ? "train.steps_per_epoch steps" : "", e->s.patience,
         e->s.patience ? "" : " = off", e->s.lr, (unsigned long long)e->s.seed, e->s.augment ? "; training patches randomly flipped and axis-permuted" : "",
         e->s.init_glorot ? "; Glorot initialisation everywhere" : "");
  mbsr__sb_add(rd, "- Intensity contract: every network input is the Keys-upsampled LR volume mapped by clip((x - lo)/(hi - lo), 0, 1) "
             "with lo, hi its %g and %g percentiles — in prep (patches; the HR target with the same lo, hi), in this "
             "evaluation and in `mbsr apply` alike; the output is mapped back to the input's units.\n",
         e->s.norm_pct[0], e->s.norm_pct[1]);
  mbsr__sb_add(rd, "- Commands: `mbsr sweep %s --scale %s%s%s` then `%s`.\n", e->path, e->scale_name,
         o->results && strcmp(o->results, "results") ? " --results " : "", o->results && strcmp(o->results, "results") ? o->results : "",
         o->command ? o->command : "mbsr report");
  mbsr__sb_add(rd, "- Evaluation: per test unit, LR and HR are block averages of the unit's volume (intensities as read) on the "
             "pair's grids; cubic = Keys cubic convolution (a = -0.5, MATLAB imresize 'cubic') of LR onto the HR grid; the "
             "network runs through `mbsr_apply` (tiles with 2 x receptive-radius overlap: equal to one whole-volume pass). "
             "RMSE and PSNR (data range 1) over the brain-mask voxels, SSIM = 3-D Gaussian SSIM (sigma 1.5, scikit-image "
             "conventions) averaged over the brain mask, all on the contract scale; effective resolution = decorrelation "
             "analysis (Descloux et al. 2019) per slice, median, 2 px / kc.\n");
  mbsr__sb_add(rd, "- Statistics: the unit is an independent brain (units of one brain averaged first); with >= %d brains, paired "
             "two-sided t-test of the network against cubic per cell (R `t.test(x, y, paired = TRUE)`) with the 95 %% CI of "
             "the mean difference, Holm-adjusted across the cells (R `p.adjust(p, \"holm\")`); improvement %% = 100 "
             "(RMSE_cubic - RMSE_net) / RMSE_cubic per brain; Welch's ANOVA = R `oneway.test(var.equal = FALSE)`; all tests "
             "at full precision in [`stats.csv`](stats.csv); the table as CSV in [`table.csv`](table.csv) and as LaTeX "
             "(booktabs, one row per cell) in [`table.tex`](table.tex); p-values with 3 significant digits, < 0.001 below.\n",
         MBSR__MIN_BRAINS_FOR_TESTS);
  mbsr__sb_add(rd, "- Generated by mbsr %s.\n", MBSR_VERSION);
}

void mbsr__write_readme(const mbsr_experiment *e, const mbsr_report_opts *o, const cell_stats *cs, const readme_input *in,
                        mbsr__sbuf *rd) {
  const int synth = in->synth;
  mbsr__sb_add(rd, "# %s — %s scale%s\n\n", e->name, e->scale_name, synth ? " (SYNTHETIC phantom data)" : "");
  mbsr__sb_add(rd, "%s. Reproduces %s of Liang & Zhang, *Mouse brain MR super-resolution using a deep learning network trained "
                   "with optical imaging data*, Front. Radiol. 2023.\n\n",
               e->title, e->paper_ref[0] ? e->paper_ref : "an experiment");
  if (e->description[0]) mbsr__sb_add(rd, "%s\n\n", e->description);
  mbsr__sb_add(rd, "## Data\n\n");
  readme_data(e, in, rd);
  readme_design(e, cs, in, rd);
  const char *md = in->md;
  const double *r_corr = in->r_corr;
  char(*figs)[256] = in->figs;
  const int nf = in->nf;
  mbsr__sb_add(rd, "## Results\n\n%s\n", md);
  if (isfinite(r_corr[0]))
    mbsr__sb_add(rd, "AF vs T2w, voxel-wise Pearson r ([`correlation.csv`](correlation.csv)): **%.2f inside the brain mask** (the "
               "tissue contrast the network must transfer) and %.2f over the whole volume, background included (the "
               "brain/background step inflates it; the paper's 0.72 matches this whole-volume figure).\n\n",
           r_corr[0], r_corr[1]);
  for (int i = 0; i < nf; i++) {
    int stem = (int)strcspn(figs[i], ".");
    mbsr__sb_add(rd, "![%s](%s)\n\n", figs[i], figs[i]);
    mbsr__sb_add(rd, "`%.*s`: [PNG](%s), [PDF](%.*s.pdf), [SVG](%.*s.svg)\n\n", stem, figs[i], figs[i], stem, figs[i], stem, figs[i]);
  }
  if (nf > 0)
    mbsr__sb_add(rd, "Figures (each as PNG, PDF and SVG from one gnuplot script; scripts and data in `fig_src/`): "
                     "`fig_paired_*` cubic, then each cell's network that shares that cubic (same test pair, data and brains), "
                     "one line per brain, with 3 or more brains the dashed black line their mean (Figure 4 style; the cubic "
                     "of a test pair is drawn once); `fig_improvement` the improvement over cubic in RMSE against the number of training samples, one "
                     "line per resolution pair, each brain's value as a circle, bars the 95 %% CI of the mean where there are "
                     ">= %d brains (Figure 4B style; only when an experiment has several sample sizes); `fig_montage` LR "
                     "(nearest-neighbour on the HR grid), cubic, network output(s) and HR reference of the first test "
                     "subject, axial and coronal planes and a zoom into the red box, on the SR contract's scale with a grey "
                     "colour bar, and below the absolute errors |method - HR| with their own colour bar, scale bars in mm "
                     "from the voxel size (Figure 3 style); `fig_decorr` the decorrelation curves of the central axial "
                     "slice (Figure 6C style).\n\n",
                 MBSR__MIN_BRAINS_FOR_TESTS);
  readme_how(e, o, rd);
}
