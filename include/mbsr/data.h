/* mbsr data: volumes -> LR/HR patch pairs in ONE parallel HDF5 file (`mbsr prep`), and the
 * batch reader the trainer uses.
 *
 * File layout (all patches float32, [N, p, p, p], p = patch edge, x fastest like volumes):
 *   /                       attrs: mbsr_version, seed, patch, patches_per_volume, base_um,
 *                                  split (text: the rule and counts), n_subjects, n_failed,
 *                                  norm ("percentile"), norm_percentiles [2] (the intensity
 *                                  contract of image.h: every patch pair of a subject and pair is
 *                                  clip((x - lo)/(hi - lo), 0, 1) with lo, hi those percentiles of
 *                                  the subject's Keys-upsampled LR volume on the HR grid)
 *   /subjects               [S] strings: subject names (sorted input order = subject index)
 *   /subject_split          [S] int32: 0 train, 1 val, 2 test
 *   /sources                [S] strings: the input files
 *   /failed                 [F] strings: "<subject>: <message>" of inputs that failed (the rank
 *                           that processed it is in the run log and mbsr_prep_summary.failures)
 *   /pairs/<LR>-<HR>/       attrs: lr_um, hr_um, lr_vox_mm[3], hr_vox_mm[3], factor, interp
 *                           (group name = mbsr_res_pair_name: "400-200", or "100x100x400-100" for a pair with
 *                           per-axis LR voxels; such a pair, and any pair made with a slice profile other than
 *                           boxcar, adds lr_um3 [3] and profile ("boxcar" | "gaussian"); lr_um is then the
 *                           largest LR voxel and factor the largest factor. Without lr_um3: isotropic, boxcar)
 *   /pairs/<LR>-<HR>/norm_lo_hi  [S,2] float64: each subject's lo, hi (NaN: the subject failed)
 *   /pairs/<LR>-<HR>/<split>/{input,target}  [N,p,p,p] float32 (input = Keys-upsampled LR)
 *   /pairs/<LR>-<HR>/<split>/subject         [N] int32 subject index of each patch
 *   /pairs/<LR>-<HR>/<split>/center          [N,3] int32 patch centre (i,j,k) on the HR grid
 *   /pairs/<LR>-<HR>/<split>/crc32           [N] uint32 CRC-32 (zlib) of each row: its p^3 input
 *                           values, its p^3 target values (float32 little-endian), its subject and
 *                           its centre (int32); verified by mbsr_patchset_read on every patch
 *                           (absent in files of older mbsr: read without the check)
 *                           attrs: cubic_mse (mean over patches of voxel-mean (input-target)^2),
 *                                  n_patches, n_subjects
 * Integrity: the small datasets (/subjects, /sources, /failed, /subject_split, norm_lo_hi) carry a
 * "crc32" attribute of their values (/subjects verified on open); the file uses the HDF5 1.8+ object
 * format, whose object headers (all attributes) are checksummed by HDF5 itself. No HDF5 filter: see
 * src/data/prep.c for why parallel filtered writes are avoided. Root attribute "checksums" says so.
 * Patch order inside a dataset: by subject index, then by sampling order: the file content does
 * not depend on the number of ranks that wrote it. */
#ifndef MBSR_DATA_H
#define MBSR_DATA_H

#include <mpi.h>
#include <stdint.h>

#include "mbsr/model.h"
#include "mbsr/volume.h"

#define MBSR_MAX_RES 8
#define MBSR_MAX_PAIRS 16
#define MBSR_SPLITS 3 /* train, val, test */

/* A resolution pair: the LR voxel per array axis (i, j, k) and the isotropic HR voxel (the HR grid is the
 * base grid's multiple), in um; every lr_um[a] / hr_um a positive integer, at least one > 1.
 * Named "400-200" when isotropic (the LR voxel 400 um on every axis: the names patch files, checkpoints
 * and experiment results always had), "<li>x<lj>x<lk>-<hr>" otherwise (e.g. "100x100x400-100": a slice
 * thickness 4 x the in-plane voxel along k). The slice profile of the degradation is not part of the pair:
 * it is one per prep run (mbsr_prep_config.profile) and recorded in the patch file and the contract, so
 * one file never holds two pairs of the same name made with different profiles. */
typedef struct {
  int lr_um[3]; /* e.g. 200,200,200 (isotropic) or 100,100,400 */
  int hr_um;    /* e.g. 100 */
} mbsr_res_pair;
#define MBSR_PAIR_NAME_MAX 48
/* "400-200" or "100x100x400-100" -> *p; MBSR_EINVAL with a one-line message naming the text when it is
 * malformed, a factor lr/hr is not a positive integer, or no factor exceeds 1. */
int mbsr_res_pair_parse(const char *s, mbsr_res_pair *p);
/* The same checks on a pair built in code (the message names the pair). */
int mbsr_res_pair_check(const mbsr_res_pair *p);
/* The name (see above) into buf (MBSR_PAIR_NAME_MAX is enough); returns buf. */
const char *mbsr_res_pair_name(const mbsr_res_pair *p, char *buf, size_t n);
/* 1 when the LR voxel is the same on every axis. */
int mbsr_res_pair_isotropic(const mbsr_res_pair *p);
int mbsr_res_pair_equal(const mbsr_res_pair *a, const mbsr_res_pair *b);
/* The isotropic pair lr-hr. */
mbsr_res_pair mbsr_res_pair_iso(int lr_um, int hr_um);
/* The largest LR voxel (um) / per-axis factor lr_um[a] / hr_um. */
int mbsr_res_pair_lr_max(const mbsr_res_pair *p);

typedef struct {
  const char *out;        /* FILE.h5 (final name; written to a temporary name, renamed when complete) */
  const char *inputs;     /* a directory (NIfTI/NRRD files and TIFF-stack directories) or a manifest
                           * (text/TSV: first column a path, relative to the manifest; '#' comments) */
  int base_um;            /* resolution every input is first brought to (0 = the finest HR of the pairs) */
  int npairs;
  mbsr_res_pair pairs[MBSR_MAX_PAIRS]; /* "--res 25:50,100,200,400" = all consecutive pairs */
                          /* (a pair's HR: the base block-averaged by hr_um / base_um; its LR: that HR degraded
                           * by lr_um[a] / hr_um per axis with `profile` -- for boxcar computed as the base
                           * block-averaged by lr_um[a] / base_um, the same block average) */
  int patch;              /* patch edge in HR voxels: 21 */
  int patches_per_volume; /* per subject and pair: 200 */
  int split[MBSR_SPLITS]; /* percentages train,val,test: 80,10,10 */
  int test_subjects;      /* > 0: exactly K test subjects (overrides split[2]) */
  uint64_t seed;          /* 1 */
  const char *eval_dir;   /* NULL = do not write the test subjects' volumes (intensities as read) */
  int eval_all;           /* 1: write every subject's volumes to eval_dir (cross-validation) */
  mbsr_read_opts read_opts; /* TIFF geometry (0 = the AF individual brain's 40,40,50 um, "RIA") */
  double norm_plo, norm_phi; /* intensity-contract percentiles: 0.1, 99.9 (0, 100 = min/max, the paper's) */
  double mask_thr;        /* < 0: Otsu; else a threshold on the HR volume normalised by its own percentiles */
  int chunk_patches;      /* HDF5 chunk = this many patches: 4 */
  int progress;           /* one line per volume on rank 0 */
  /* Self-supervised through-plane pairs (mbsr_selfsup_pair): each input is its own training data, all
   * inputs on one voxel size (the first input's; others fail as inputs); res/pairs/base are not used:
   * ONE pair, named "<i>x<j>x<k>-<in-plane>" in um of the acquired voxel (e.g. 2500x2500x10000-2500),
   * half of each subject's patches with one in-plane axis degraded, half with the other. */
  int self_supervised;    /* 0 */
  int slice_axis;         /* -1: the axis with the largest voxel */
  mbsr_profile profile;   /* slice profile of the degradation (every LR volume, self-supervised or not): boxcar */
} mbsr_prep_config;

void mbsr_prep_config_default(mbsr_prep_config *c);
/* The tag of a resolution level in eval_dir file names ("<subject>_<tag>.nii.gz", "<subject>_<tag>_mask.nii.gz"):
 * "400um" (isotropic), "100x100x400um" (per-axis), with "_gaussian" appended when degraded with that profile. */
const char *mbsr_eval_level_name(const int um[3], mbsr_profile p, char *buf, size_t n);
/* "25:50,100,200,400" -> base 25, pairs 50-25,100-50,200-100,400-200; "200-100,100x100x400-100" -> pairs
 * (mbsr_res_pair_parse each). */
int mbsr_prep_parse_res(mbsr_prep_config *c, const char *spec);
int mbsr_prep_parse_pairs(mbsr_prep_config *c, const char *spec);

typedef struct {
  int n_subjects, n_failed;
  int n_split[MBSR_SPLITS];                        /* subjects per split */
  int64_t n_patches[MBSR_MAX_PAIRS][MBSR_SPLITS];  /* patches per pair and split */
  double cubic_mse[MBSR_MAX_PAIRS][MBSR_SPLITS];
  double seconds;
  char failures[4096]; /* "<subject> (rank R): <message>; ..." (the file's /failed omits the rank) */
} mbsr_prep_summary;

/* Collective over comm. Returns 0 when the file was written (even if some inputs failed:
 * summary->n_failed says how many, and the file lists them), or a negative code (same message on
 * every rank, naming the rank at fault and the file; that rank's code, MBSR_EPEER on the others).
 * Every write round and the final flush are agreed across ranks before the next collective; on a
 * failure every HDF5 handle is closed (none is left for MPI_Finalize), the temporary removed. */
int mbsr_prep_run(const mbsr_prep_config *c, MPI_Comm comm, mbsr_prep_summary *summary);

/* Agree on status across comm (call before a collective that follows per-rank work): returns 0 if
 * every rank passed rc == 0; otherwise every rank returns a negative code (its own rc, or
 * MBSR_EPEER) with the message "rank R: <R's message>" of the lowest failing rank R. */
int mbsr_mpi_agree(MPI_Comm comm, int rc);

/* Remove "<dir>/.tmp-<pid>-<n>-<base>" temporaries (any base when NULL) whose writer process is
 * gone (a run killed while writing); returns how many were removed. Same-host pids only. */
int mbsr_clean_stale_tmp(const char *dir, const char *base);

/* ---- self-supervised through-plane pairs (src/data/selfsup.c) ----
 * From one acquired thick-slice volume acq (slice axis slice_axis, thickness F x the in-plane voxel, F an
 * integer >= 2): target = acq with its slice axis Keys-upsampled by F (mbsr_upsample_factor); input = the
 * target with in-plane axis degrade_axis degraded by F with the slice profile (mbsr_downsample) and
 * Keys-upsampled back (a remainder of that axis cropped from both). Both are then permuted (world space
 * kept) to the order (degrade_axis, the other in-plane axis, slice_axis): the network restores axis 0.
 * mbsr_selfsup_factor: F of v for that slice axis (both in-plane voxels must give the same F; *factor
 * must be 0 on entry). */
int mbsr_selfsup_factor(const mbsr_volume *v, int slice_axis, int *factor);
int mbsr_selfsup_pair(const mbsr_volume *acq, int slice_axis, int degrade_axis, mbsr_profile p, mbsr_volume **input,
                      mbsr_volume **target);

/* ---- the input list ---- */
typedef struct {
  int n;
  char **paths; /* sorted by subject name */
  char **names; /* subject names: file/dir base name without extension */
} mbsr_input_list;
int mbsr_input_list_load(const char *dir_or_manifest, mbsr_input_list *out);
void mbsr_input_list_free(mbsr_input_list *l);

/* ---- shipped models (models/manifest.json; see src/data/models.c for where it is looked for) ---- */
typedef struct {
  char name[64];            /* e.g. "af-200-100" */
  char file[4096];          /* the checkpoint (inference-only) */
  char sha256[65];
  char description[512];
  int lr_um, hr_um;         /* the pair */
  double lr_vox_mm[3], hr_vox_mm[3];
} mbsr_model_entry;
/* Every model of the manifest (free(*entries)); dir (may be NULL) = where the manifest was found. */
int mbsr_models_list(mbsr_model_entry **entries, int *n, char *dir, size_t dn);
/* A checkpoint path as is, or a model name looked up in the manifest, its sha256 verified; the path
 * into path, the manifest entry (zeroed for a plain path) into entry (may be NULL). */
int mbsr_model_resolve(const char *name_or_path, char *path, size_t n, mbsr_model_entry *entry);
/* Ship a trained checkpoint: DIR/NAME.h5 (inference-only export) and its entry in DIR/manifest.json
 * (created or updated; an entry of the same name is replaced): sha256, pair, architecture, contract,
 * training data, and the cross-validation text given. */
int mbsr_models_add(const char *dir, const char *name, const char *ckpt, const char *description, const char *cv);

/* ---- batch reader (serial HDF5 reads; every rank opens the file itself) ---- */
typedef struct mbsr_patchset mbsr_patchset;
/* pair "200-100", split "train" | "val" | "test". Checks the shapes: input and target [N,p,p,p] alike,
 * subject [N], center [N,3], crc32 [N] (MBSR_EMISMATCH naming the file and datasets otherwise). */
int mbsr_patchset_open(const char *path, const char *pair, const char *split, mbsr_patchset **out);
void mbsr_patchset_close(mbsr_patchset *ps);
int64_t mbsr_patchset_count(const mbsr_patchset *ps);
int mbsr_patchset_patch(const mbsr_patchset *ps); /* patch edge */
double mbsr_patchset_cubic_mse(const mbsr_patchset *ps);
/* Subject index (into the file's /subjects) of every patch of the set: n = count entries. */
const int32_t *mbsr_patchset_subject_of(const mbsr_patchset *ps);
/* Subject names of the file (S of them, owned by ps). */
int mbsr_patchset_subjects(const mbsr_patchset *ps, const char *const **names);
/* The intensity contract and pair geometry the file's patches of `pair` were made with (image.h,
 * model.h): percentiles, voxel sizes, patch, interpolation; training summary left empty.
 * MBSR_EFORMAT naming the file when it predates the contract. */
int mbsr_patchset_contract(const mbsr_patchset *ps, mbsr_sr_contract *k);
/* Read patches idx[0..n) into in/target (n * p^3 floats each, in idx order); MBSR_ECHECKSUM naming
 * the file, group and patch when a patch does not match its CRC-32. */
int mbsr_patchset_read(mbsr_patchset *ps, const int64_t *idx, int n, float *in, float *target);

#endif
