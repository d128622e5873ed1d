/* mbsr model: the paper's networks (cCNN, ResNet, GAN) assembled from nn kernels, one contiguous
 * buffer each for parameters, gradients and both Adam moments; Glorot init; Adam; HDF5
 * checkpoints carrying the SR contract; whole-volume inference by exact tiles (no seams). */
#ifndef MBSR_MODEL_H
#define MBSR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mbsr/image.h"
#include "mbsr/nn.h"
#include "mbsr/volume.h"

typedef enum { MBSR_ARCH_CCNN = 0, MBSR_ARCH_RESNET = 1, MBSR_ARCH_GAN = 2 } mbsr_arch;
int mbsr_arch_parse(const char *s, mbsr_arch *out); /* "ccnn" | "resnet" | "gan" */
const char *mbsr_arch_name(mbsr_arch a);

typedef struct {
  mbsr_arch arch;
  int channels;        /* ResNet / generator width: 64 */
  int blocks;          /* residual blocks: 10 */
  int ccnn_c1, ccnn_c2;/* cCNN widths: 64, 32 */
  int global_residual; /* 1: output = input + network (common in SR ResNets); paper default 0 */
  int disc_channels;   /* GAN discriminator width: 64 */
  int disc_blocks;     /* GAN discriminator residual blocks: 10 */
  float gan_lambda;    /* generator loss = MSE + lambda * adversarial BCE: 1e-3 */
} mbsr_model_config;
void mbsr_model_config_default(mbsr_model_config *c, mbsr_arch arch);

typedef struct {
  float lr, beta1, beta2, eps; /* 1e-3, 0.9, 0.999, 1e-8 */
} mbsr_adam_config;
void mbsr_adam_config_default(mbsr_adam_config *a);

typedef struct mbsr_model mbsr_model;

/* Build for batches of up to max_batch single-channel patches of d x h x w voxels. Everything
 * (parameters, gradients, Adam m and v, activations, workspaces) is allocated here: a training
 * step allocates nothing. */
int mbsr_model_create(const mbsr_model_config *c, int max_batch, int d, int h, int w, mbsr_model **out);
void mbsr_model_free(mbsr_model *m);
const mbsr_model_config *mbsr_model_get_config(const mbsr_model *m);
void mbsr_model_init(mbsr_model *m, uint64_t seed); /* Glorot uniform weights, zero biases */
int mbsr_model_set_precision(mbsr_model *m, mbsr_precision p); /* error if the CPU lacks the mode (nn.h) */
/* Freeze all but the last k parameterised layers of the (generator) network; k < 0: all trainable. */
int mbsr_model_freeze_all_but_last(mbsr_model *m, int k);

/* The contiguous buffers (same length and tensor order). For the GAN: generator then discriminator. */
size_t mbsr_model_num_params(const mbsr_model *m);
float *mbsr_model_params(mbsr_model *m);
float *mbsr_model_grads(mbsr_model *m);
/* Named tensor views, e.g. "conv0.weight" shape (27*cin, cout) -> used by checkpoints. */
int mbsr_model_num_tensors(const mbsr_model *m);
const char *mbsr_model_tensor(const mbsr_model *m, int i, size_t *offset, size_t *count);
/* FLOPs of one forward pass of one patch (2*Cin*Cout*27 per output voxel per conv). */
double mbsr_model_forward_flops(const mbsr_model *m);
/* The conv layers, generator first (then, for the GAN, the discriminator): layer i's name ("conv0",
 * "block3.conv1", "disc.conv1", ...) and dims (n = the batch the model was built for, prec = the model's
 * precision). Returns the number of layers; fills nothing when i is out of range. For reports: with
 * mbsr_conv3d_algo, which algorithm each pass of each layer runs (mbsr bench). */
int mbsr_model_conv_layer(const mbsr_model *m, int i, const char **name, mbsr_conv3d_dims *dims);

/* Inference: out (B,D,H,W) = generator(in (B,D,H,W)), B <= max_batch. */
int mbsr_model_forward(mbsr_model *m, const float *in, int batch, float *out);

/* Training in phases, so a distributed trainer can all-reduce between backward and update.
 * cCNN/ResNet: 1 phase. GAN: 2 (0 = discriminator, 1 = generator), alternating.
 *  1. loss = mbsr_model_phase_grad(m, ph, in, target, batch, norm): zero the phase's gradient span,
 *     forward + backward. Loss and gradients are sums over the batch divided by `norm` (pass the
 *     GLOBAL batch size: summing gradients over ranks then gives the global mean).
 *  2. sum-all-reduce the phase's span [offset, offset+count) of mbsr_model_grads().
 *  3. mbsr_model_phase_update(m, ph, adam): Adam on that span (frozen layers untouched).
 * MSE is averaged over voxels (PyTorch MSELoss 'mean'). */
int mbsr_model_num_phases(const mbsr_model *m);
void mbsr_model_phase_span(const mbsr_model *m, int phase, size_t *offset, size_t *count);
double mbsr_model_phase_grad(mbsr_model *m, int phase, const float *in, const float *target, int batch, double norm);
int mbsr_model_phase_update(mbsr_model *m, int phase, const mbsr_adam_config *a);
/* All phases locally; returns the (generator) MSE loss before the update. */
double mbsr_model_train_step(mbsr_model *m, const float *in, const float *target, int batch,
                             const mbsr_adam_config *a);
/* Sum over the batch of per-patch MSE(generator(in), target) (divide by count yourself). */
double mbsr_model_eval_sse(mbsr_model *m, const float *in, const float *target, int batch);
int64_t mbsr_model_adam_steps(const mbsr_model *m);
/* The losses of the last phase_grad calls: generator MSE, lambda * adversarial BCE (GAN phase 1)
 * and the discriminator's BCE (GAN phase 0); 0 where not computed. */
void mbsr_model_last_losses(const mbsr_model *m, double *mse, double *adv, double *dloss);
/* The sizes the model was built for (any pointer may be NULL). */
void mbsr_model_patch_dims(const mbsr_model *m, int *max_batch, int *d, int *h, int *w);
/* Note: phase_grad and train_step return a NEGATIVE mbsr_err (as a double, message set) instead of
 * a loss when the batch holds NaN/Inf, or the loss becomes NaN/Inf; phase_update refuses
 * (MBSR_ENONFINITE, parameters untouched) when the gradient span holds NaN/Inf. */

/* ---- the SR contract: what a trained network expects of its input (stored in every checkpoint) ----
 * Intensities: see the intensity contract in image.h (percentiles norm_plo, norm_phi of the up-sampled
 * input; the same lo, hi map the HR target in training). Geometry: the pair the network was trained
 * on (voxel sizes per array axis), so that apply can refuse an input on another grid. */
typedef struct {
  int known;                   /* 0: a checkpoint from before the contract (apply refuses it) */
  double norm_plo, norm_phi;   /* 0.1, 99.9 */
  double lr_vox_mm[3], hr_vox_mm[3]; /* trained pair per array axis; 0 = not recorded */
  int patch;                   /* training patch edge; 0 = not recorded */
  mbsr_interp interp;          /* up-sampling that made the network input: Keys */
  char training[2048];         /* JSON summary of the training data ("" = none) */
  int through_plane;           /* 1: a self-supervised through-plane model (prep self_supervised): it restores
                                * array axis 0 of its input; lr_vox_mm = the acquired thick-slice voxel, hr_vox_mm
                                * = the same with the slice axis (the one axis where they differ) at the in-plane
                                * spacing. Apply runs it by mbsr_apply_through_plane. 0 otherwise */
  mbsr_profile profile;        /* slice profile that degraded the training LR volumes (the LR grid per axis is
                                * lr_vox_mm): boxcar (the block average; also every checkpoint that does not say) */
} mbsr_sr_contract;
void mbsr_sr_contract_default(mbsr_sr_contract *c); /* known, 0.1/99.9 percentiles, Keys, pair unknown */
/* A new model carries the default contract; training sets it from the patch file. */
const mbsr_sr_contract *mbsr_model_get_contract(const mbsr_model *m);
void mbsr_model_set_contract(mbsr_model *m, const mbsr_sr_contract *c);

/* ---- checkpoints (HDF5): one dataset per tensor (+ Adam m, v), attributes for architecture,
 * config, step, optimiser state, mbsr version; written to a temporary name and renamed.
 * Integrity: every tensor carries HDF5's Fletcher32 checksum and the object headers (attributes)
 * HDF5's metadata checksums; loading a corrupt one is MBSR_ECHECKSUM naming the file and tensor (or
 * the attributes), NaN/Inf weights MBSR_ENONFINITE. Checkpoints of older mbsr (no checksums) load.
 * A failed write (full disk) is an error naming the file; the temporary is removed. */
typedef struct {
  int64_t step, epoch, best_epoch, bad_epochs;
  double best_val, last_val;
  uint64_t seed;
  char info[2048]; /* free-form JSON the trainer keeps (run config, data file) */
} mbsr_ckpt_meta;
int mbsr_checkpoint_save(const mbsr_model *m, const char *path, const mbsr_ckpt_meta *meta);
/* Create a model from the checkpoint's stored config (sized for max_batch x d x h x w). */
int mbsr_checkpoint_load(const char *path, int max_batch, int d, int h, int w, mbsr_model **out,
                         mbsr_ckpt_meta *meta);
/* Load into an existing model; MBSR_EMISMATCH with a message saying what differs. */
int mbsr_checkpoint_load_into(mbsr_model *m, const char *path, mbsr_ckpt_meta *meta);
/* An inference-only checkpoint: architecture, parameters and the SR contract (no Adam moments, no
 * trainer state): what `mbsr models` ships. Loadable by mbsr_checkpoint_load (training cannot resume
 * from it). */
int mbsr_checkpoint_export(const mbsr_model *m, const char *path);

/* ---- whole-volume inference ----
 * The network runs on the LR volume up-sampled onto the target grid (the contract's interpolation),
 * mapped to its training scale by the contract's percentiles, in tiles whose margins are derived from
 * the network's receptive radius R: tiles overlap by 2R voxels and each output voxel is taken only
 * from tiles where it lies at least R voxels from every cut face, so the tiled result equals one
 * whole-volume pass (up to float summation order) for any network depth. Tiles are as large as
 * `max_mb` allows (the whole volume when it fits), which also makes the 2R overlap cheap. */
typedef struct {
  int patch;          /* largest tile edge in voxels; 0 = as large as max_mb allows */
  int batch;          /* tiles per forward pass: 1 */
  double max_mb;      /* memory for the network's activations and workspace, MiB: 2048 */
  int progress;       /* print a progress line */
  int flips;          /* mbsr_apply_ensemble: test-time flips per model, 1..8 (1 = none): 1 */
} mbsr_apply_opts;
void mbsr_apply_opts_default(mbsr_apply_opts *o);
/* SR of `lr` onto `grid` (dims + affine; grid's voxels unused): up-sample by the contract's
 * interpolation, normalise (mbsr_norm_fit on the up-sampled volume, the contract's percentiles), tiled
 * inference, map back to the input's intensity units: sr = x + (hi - lo) * (net - clip((x-lo)/(hi-lo)))
 * (= lo + (hi - lo) * net wherever x lies in [lo, hi]; where x was clipped, the network's correction is
 * added to x instead of replacing it). Refuses a model whose contract is unknown. */
int mbsr_apply(mbsr_model *m, const mbsr_volume *lr, const mbsr_volume *grid, const mbsr_apply_opts *o,
               mbsr_volume **out);
/* Same, for an input already on the target grid. */
int mbsr_apply_upsampled(mbsr_model *m, const mbsr_volume *up, const mbsr_apply_opts *o, mbsr_volume **out);
/* Same, onto the grid an integer up-sampling by f[3] gives (mbsr_upsample_factor). */
int mbsr_apply_factor(mbsr_model *m, const mbsr_volume *lr, const int f[3], const mbsr_apply_opts *o,
                      mbsr_volume **out);
/* The tiling mbsr_apply would use on a volume of n[3] voxels (i, j, k): tile edge per axis, overlap
 * and margin (both from the receptive radius), tiles per axis, and bytes it allocates. */
typedef struct {
  int tile[3], overlap, margin, count[3];
  double bytes;
} mbsr_apply_plan;
int mbsr_apply_plan_for(const mbsr_model *m, const int64_t n[3], const mbsr_apply_opts *o, mbsr_apply_plan *plan);

/* ---- uncertainty: an ensemble of test-time axis flips x models ----
 * Members: for each of the nmodels models (outer), the o->flips first of the 8 axis-flip masks in
 * bit order (bit 0 reverses i, bit 1 j, bit 2 k: identity, i, j, ij, k, ik, jk, ijk). A member flips the
 * up-sampled input, runs mbsr_apply_upsampled (the model's contract, exact tiling), and flips its
 * output back. *mean = the voxel-wise mean of the members (input units), *sd = their voxel-wise
 * POPULATION standard deviation (sum of squared deviations / members; Welford in double), both on the
 * target grid. One member (one model, flips 1) gives exactly mbsr_apply's volume and sd = 0.
 * Target grid: grid (its dims and affine), or the factor f, or neither (lr is already on the target
 * grid, as mbsr_apply_upsampled); the models must share the contract's interpolation. */
int mbsr_apply_ensemble(mbsr_model *const *models, int nmodels, const mbsr_volume *lr, const mbsr_volume *grid,
                        const int f[3], const mbsr_apply_opts *o, mbsr_volume **mean, mbsr_volume **sd);

/* ---- self-supervised through-plane SR (contract through_plane) ----
 * lr = the acquired thick-slice volume; f = the up-sampling, > 1 on exactly one axis (the slice axis s):
 * the target grid is mbsr_upsample_factor's (the slice axis at the in-plane spacing, affine consistent
 * with mbsr_downsample_block). The network restores array axis 0, so every member moves s there: per
 * model, the 2 * o->flips first axis transforms of mbsr_through_plane_member (member t: permutation
 * (s, a, b) for even t, (s, b, a) for odd t, a < b the in-plane axes; reversal mask t / 2 over the new
 * axes), each run by mbsr_apply_upsampled on the transformed up-sampled volume and transformed back.
 * *mean, *sd: voxel-wise mean and population sd of the members, as mbsr_apply_ensemble. A network that
 * returns its input gives exactly the up-sampled volume. */
void mbsr_through_plane_member(int slice_axis, int t, int perm[3], int *flips);
int mbsr_apply_through_plane(mbsr_model *const *models, int nmodels, const mbsr_volume *lr, const int f[3], const mbsr_apply_opts *o,
                             mbsr_volume **mean, mbsr_volume **sd);

#endif
