/* mbsr apply: super-resolve a volume with a trained model (a shipped model by name, or a checkpoint),
 * under the model's SR contract (model.h): the input's voxel size is checked against the model's LR
 * grid, the intensity normalisation comes from the model, the output is in the input's units and on
 * the HR grid; a JSON sidecar (BIDS-derivatives style) records the provenance. With --ensemble K or
 * several models: the mean of test-time flips x models and a voxel-wise standard deviation beside it
 * (mbsr_apply_ensemble), OUT, its sidecar and the sd written as a set. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "cli_sidecar.h"
#include "mbsr/cli.h"
#include "mbsr/data.h"
#include "mbsr/fetch.h"
#include "mbsr/image.h"
#include "mbsr/model.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr apply --model NAME|CKPT[,NAME|CKPT...] IN OUT [options]     (or --in IN --out OUT)\n"
          "\n"
          "Super-resolves IN (a low-resolution volume on the model's LR grid) onto the model's HR grid and\n"
          "writes OUT (NIfTI-1 float32, in IN's intensity units) and OUT's JSON sidecar (.json: sources, model,\n"
          "sha256, parameters). The intensity normalisation is the model's own (its SR contract): no flag.\n"
          "A self-supervised through-plane model (mbsr prep --self-supervised) needs no other flag either: IN\n"
          "is the thick-slice volume, OUT is on IN's grid with the slice axis at the in-plane spacing, the mean\n"
          "of 2 x K members (the slice axis moved to the axis the network restores, in both in-plane orders,\n"
          "x K flips of --ensemble); the sidecar's ThroughPlane object lists them.\n"
          "\n"
          "  --model NAME|CKPT  a shipped model (mbsr models lists them) or a checkpoint from mbsr train;\n"
          "                     several, comma-separated: an ensemble of models (writes the sd, see --ensemble)\n"
          "  --like HR_GRID     target grid = the dims and affine of this volume (its voxels are not used)\n"
          "  --factor F         target grid = IN up-sampled by F (integer, or Fi,Fj,Fk)\n"
          "                     (neither: the factor of the model's pair per array axis, LR voxel / HR voxel:\n"
          "                     1,1,4 for a 100x100x400-100 model)\n"
          "  --upsampled        IN is already on the target grid (up-sampled by the model's interpolation)\n"
          "  --volume N         of a 4-D IN, the volume to super-resolve (0-based; required when IN has several)\n"
          "  --force            run although IN's voxel size differs from the model's LR grid (checked per array\n"
          "                     axis: an anisotropic model refuses an input whose thick axis is another one)\n"
          "  --max-mb M         memory for the network's tiles (default 2048); tiles overlap by twice the\n"
          "                     network's receptive radius, so the result equals one whole-volume pass\n"
          "  --tile P           largest tile edge in voxels (default: as large as --max-mb allows; was --patch,\n"
          "                     deprecated)\n"
          "  --batch B          tiles per forward pass (default 1)\n"
          "  --ensemble K       uncertainty: K test-time axis flips (1..8, identity first; bit order i, j, ij, k,\n"
          "                     ik, jk, ijk) per model; OUT = the mean of flips x models, and the voxel-wise\n"
          "                     population standard deviation of the members goes to --sd-out\n"
          "  --sd-out FILE      the standard deviation (with --ensemble or several models; default OUT's stem\n"
          "                     + _sd.nii.gz); OUT, its sidecar and FILE are written as a set\n"
          "  --precision fp32|bf16  fp32 (default), or bf16 where the CPU has it (see mbsr bench --precision)\n"
          "  --threads N        OpenMP threads (default: OMP_NUM_THREADS or every core)\n"
          "  --quiet            no progress or info lines on stderr (warnings and errors stay)\n");
}

/* IN's voxel size against the model's LR (or, --upsampled, HR) grid: 2 % per array axis (a model of a
 * pair with per-axis LR voxels, e.g. 100x100x400-100, expects its thick axis where it was trained). */
static int check_grid(const mbsr_volume *v, const double want[3], const char *in, const char *model, const char *what) {
  if (want[0] <= 0) return 0; /* the checkpoint does not record its pair */
  for (int a = 0; a < 3; a++)
    if (fabs(v->vox[a] - want[a]) > 0.02 * want[a])
      return mbsr_error(MBSR_EMISMATCH,
                        "%s: voxel size %.4g mm along array axis %c (%.4g x %.4g x %.4g mm), but model %s expects its %s grid of "
                        "%.4g x %.4g x %.4g mm (resample or reorient the input, or --force)",
                        in, v->vox[a], "ijk"[a], v->vox[0], v->vox[1], v->vox[2], model, what, want[0], want[1], want[2]);
  return 0;
}

/* The sidecar's JSON text (malloc'd) into *txt. */
static int sidecar_json(const char *in, const char *model_arg, const char *ckpt, const mbsr_model_entry *me, const mbsr_model *m,
                        const mbsr_volume *lr, const mbsr_volume *sr, const mbsr_apply_plan *pl, const char *prec, int forced,
                        json_t *ens, json_t *tp, char **txt) {
  const mbsr_sr_contract *k = mbsr_model_get_contract(m);
  const mbsr_model_config *c = mbsr_model_get_config(m);
  char hex[65] = "";
  int64_t bytes = 0;
  int rc = mbsr_sha256_file(ckpt, hex, &bytes);
  if (rc) {
    json_decref(ens);
    json_decref(tp);
    return rc;
  }
  /* the provenance every sidecar carries (cli_sidecar.h), then the model and its parameters */
  json_t *o = mbsr__cli_provenance("Super-resolution by mbsr apply: the input up-sampled onto the HR grid, corrected by a "
                                   "network trained on optical (auto-fluorescence) imaging",
                                   in, lr, sr, 1),
         *mod = json_object(), *par = json_object();
  json_object_set_new(mod, "Name", json_string(me->name[0] ? me->name : model_arg));
  json_object_set_new(mod, "File", json_string(ckpt));
  json_object_set_new(mod, "Sha256", json_string(hex));
  json_object_set_new(mod, "Architecture", json_string(mbsr_arch_name(c->arch)));
  json_object_set_new(mod, "Channels", json_integer(c->channels));
  json_object_set_new(mod, "Blocks", json_integer(c->blocks));
  json_object_set_new(mod, "GlobalResidual", json_boolean(c->global_residual));
  json_object_set_new(mod, "TrainedLRVoxelSizeMm", json_pack("[f,f,f]", k->lr_vox_mm[0], k->lr_vox_mm[1], k->lr_vox_mm[2]));
  json_object_set_new(mod, "TrainedHRVoxelSizeMm", json_pack("[f,f,f]", k->hr_vox_mm[0], k->hr_vox_mm[1], k->hr_vox_mm[2]));
  json_object_set_new(mod, "TrainedSliceProfile", json_string(mbsr_profile_name(k->profile))); /* of the LR degradation */
  json_t *tr = k->training[0] ? json_loads(k->training, 0, NULL) : NULL;
  json_object_set_new(mod, "TrainingData", tr ? tr : json_null());
  json_object_set_new(o, "Model", mod);
  json_object_set_new(par, "Interpolation", json_string(mbsr_interp_name(k->interp)));
  json_object_set_new(par, "NormalisationPercentiles", json_pack("[f,f]", k->norm_plo, k->norm_phi));
  json_object_set_new(par, "Normalisation", json_string("x -> clip((x - lo)/(hi - lo), 0, 1), lo/hi = the percentiles of the "
                                                        "up-sampled input; output = x + (hi - lo) * (network - clip(...))"));
  json_object_set_new(par, "TileVoxels", json_pack("[i,i,i]", pl->tile[0], pl->tile[1], pl->tile[2]));
  json_object_set_new(par, "TileOverlapVoxels", json_integer(pl->overlap));
  json_object_set_new(par, "Precision", json_string(prec));
  json_object_set_new(par, "VoxelCheckOverridden", json_boolean(forced));
  json_object_set_new(o, "Parameters", par);
  if (ens) json_object_set_new(o, "Ensemble", ens);
  if (tp) json_object_set_new(o, "ThroughPlane", tp);
  json_object_set_new(o, "InputVoxelSizeMm", json_pack("[f,f,f]", lr->vox[0], lr->vox[1], lr->vox[2]));
  json_object_set_new(o, "VoxelSizeMm", json_pack("[f,f,f]", sr->vox[0], sr->vox[1], sr->vox[2]));
  *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  return *txt ? MBSR_OK : mbsr_error(MBSR_ENOMEM, "out of memory");
}

/* OUT.nii(.gz) -> OUT_sd.nii.gz */
static int sd_default_path(const char *out, char *buf, size_t n) {
  size_t l = strlen(out);
  if (l > 7 && !strcmp(out + l - 7, ".nii.gz")) l -= 7;
  else if (l > 4 && !strcmp(out + l - 4, ".nii")) l -= 4;
  return mbsr_pathf(buf, n, "%.*s_sd.nii.gz", (int)l, out);
}

typedef struct {
  const char *model, *in, *out, *like, *prec_name, *sd_out;
  int f[3], have_factor, upsampled, force, ensemble;
  mbsr_precision prec;
  mbsr_apply_opts ao;
} apply_args;

/* The options and positionals into a; 0 or the usage-error status 2. */
static int parse(int argc, char **argv, apply_args *a) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},   {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'},     {"like", required_argument, 0, 'l'},
                                       {"factor", required_argument, 0, 'f'},  {"upsampled", no_argument, 0, 'u'},
                                       {"force", no_argument, 0, 'F'},         {"max-mb", required_argument, 0, 'M'},
                                       {"tile", required_argument, 0, 'p'},    {"batch", required_argument, 0, 'b'},
                                       {"precision", required_argument, 0, 'P'}, {"help", no_argument, 0, 'h'},
                                       {"ensemble", required_argument, 0, 'e'}, {"sd-out", required_argument, 0, 's'},
                                       MBSR_CLI_VOLUME_OPT, MBSR_CLI_COMMON_OPTS, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    int rc = 0;
    switch (c) {
      case 'm': a->model = optarg; break;
      case 'i': a->in = optarg; break;
      case 'o': a->out = optarg; break;
      case 'l': a->like = optarg; break;
      case 'f':
        if (mbsr_cli_parse_int3(optarg, a->f)) return mbsr_cli_usage_error("apply", "--factor: %s", mbsr_last_error());
        a->have_factor = 1;
        break;
      case 'u': a->upsampled = 1; break;
      case 'F': a->force = 1; break;
      case 'M': rc = mbsr_cli_double("apply", "--max-mb", optarg, 16, 1e12, &a->ao.max_mb); break;
      case 'p': rc = mbsr_cli_int("apply", "--tile", optarg, 3, 4096, &a->ao.patch); break;
      case 'b': rc = mbsr_cli_int("apply", "--batch", optarg, 1, 64, &a->ao.batch); break;
      case 'e': rc = mbsr_cli_int("apply", "--ensemble", optarg, 1, 8, &a->ensemble); break;
      case 's': a->sd_out = optarg; break;
      case 'P':
        if (!strcmp(optarg, "fp32")) a->prec = MBSR_PREC_FP32;
        else if (!strcmp(optarg, "bf16")) a->prec = MBSR_PREC_BF16;
        else return mbsr_cli_usage_error("apply", "--precision wants fp32 or bf16, got '%s'", optarg);
        a->prec_name = optarg;
        break;
      case MBSR_CLI_OPT_QUIET: a->ao.progress = 0; rc = mbsr_cli_common("apply", c, optarg); break;
      case 'h': usage(stdout); return -1;
      default: rc = mbsr_cli_common("apply", c, optarg);
    }
    if (rc) return 2;
  }
  if (mbsr_cli_in_out("apply", argc, argv, optind, &a->in, &a->out)) return 2;
  if (!a->model) return mbsr_cli_usage_error("apply", "--model NAME|CKPT is required");
  if ((a->like != NULL) + a->have_factor + a->upsampled > 1) return mbsr_cli_usage_error("apply", "give one of --like, --factor, --upsampled");
  return 0;
}

/* The factor of the model's training pair (LR voxel / HR voxel), when neither --like nor --factor
 * nor --upsampled is given. */
static int model_factor(const mbsr_sr_contract *k, const char *ckpt, int f[3]) {
  if (!(k->lr_vox_mm[0] > 0 && k->hr_vox_mm[0] > 0))
    return mbsr_error(MBSR_EINVAL, "%s records no training pair: give --factor F or --like HR_GRID", ckpt);
  for (int a = 0; a < 3; a++) {
    f[a] = (int)lround(k->lr_vox_mm[a] / k->hr_vox_mm[a]);
    if (f[a] < 1 || fabs(f[a] * k->hr_vox_mm[a] - k->lr_vox_mm[a]) > 1e-3 * k->lr_vox_mm[a])
      return mbsr_error(MBSR_EINVAL, "%s: its pair %g -> %g mm is not an integer factor: give --like HR_GRID", ckpt, k->lr_vox_mm[a],
                        k->hr_vox_mm[a]);
  }
  return MBSR_OK;
}

#define MAX_MODELS 16

/* The models of --model (comma-separated): resolved, loaded, each checked against IN's grid. */
typedef struct {
  int n;
  char names[MAX_MODELS][1024], ckpt[MAX_MODELS][4096];
  mbsr_model_entry me[MAX_MODELS];
  mbsr_model *m[MAX_MODELS];
} model_set;

static int split_models(const char *arg, model_set *ms) {
  ms->n = 0;
  for (const char *p = arg;;) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == 0 || l >= sizeof ms->names[0]) return mbsr_cli_usage_error("apply", "--model: empty or too long name in '%s'", arg);
    if (ms->n == MAX_MODELS) return mbsr_cli_usage_error("apply", "--model: more than %d models", MAX_MODELS);
    snprintf(ms->names[ms->n++], sizeof ms->names[0], "%.*s", (int)l, p);
    if (!e) return 0;
    p = e + 1;
  }
}

static int load_models(model_set *ms, const apply_args *a, const mbsr_volume *lr) {
  int rc = 0;
  for (int i = 0; i < ms->n && !rc; i++) {
    rc = mbsr_model_resolve(ms->names[i], ms->ckpt[i], sizeof ms->ckpt[i], &ms->me[i]);
    if (!rc) rc = mbsr_checkpoint_load(ms->ckpt[i], 1, 5, 5, 5, &ms->m[i], NULL);
    const mbsr_sr_contract *k = rc ? NULL : mbsr_model_get_contract(ms->m[i]);
    if (!rc && !a->force)
      rc = check_grid(lr, a->upsampled ? k->hr_vox_mm : k->lr_vox_mm, a->in, ms->names[i], a->upsampled ? "HR" : "LR");
    if (!rc && a->prec != MBSR_PREC_FP32) rc = mbsr_model_set_precision(ms->m[i], a->prec);
  }
  return rc;
}

/* The sidecar's "Ensemble" object. */
static json_t *ensemble_json(const model_set *ms, int flips, const char *sd_path) {
  json_t *e = json_object(), *mods = json_array();
  for (int i = 0; i < ms->n; i++) {
    char hex[65] = "";
    int64_t bytes = 0;
    if (mbsr_sha256_file(ms->ckpt[i], hex, &bytes)) hex[0] = 0;
    json_array_append_new(mods, json_pack("{s:s,s:s,s:s}", "Name", ms->me[i].name[0] ? ms->me[i].name : ms->names[i], "File",
                                          ms->ckpt[i], "Sha256", hex));
  }
  json_object_set_new(e, "Models", mods);
  json_object_set_new(e, "FlipsPerModel", json_integer(flips));
  json_object_set_new(e, "Flips", json_string("axis-flip bit masks 0..K-1 (bit 0 reverses i, bit 1 j, bit 2 k), identity first"));
  json_object_set_new(e, "Members", json_integer((json_int_t)ms->n * flips));
  json_object_set_new(e, "Output", json_string("the voxel-wise mean of the members (each flipped back)"));
  json_object_set_new(e, "StandardDeviation", mbsr__cli_json_str(sd_path));
  json_object_set_new(e, "StandardDeviationDefinition", json_string("voxel-wise population sd of the members: "
                                                                    "sqrt(sum (x - mean)^2 / members)"));
  return e;
}

/* The sidecar's "ThroughPlane" object (a self-supervised through-plane model). */
static json_t *through_plane_json(const int f[3], int flips, int nmodels) {
  int s = 0;
  for (int a = 0; a < 3; a++)
    if (f[a] > 1) s = a;
  json_t *t = json_object(), *mem = json_array();
  for (int i = 0; i < 2 * flips; i++) {
    int perm[3], fl;
    mbsr_through_plane_member(s, i, perm, &fl);
    json_array_append_new(mem, json_pack("{s:[i,i,i],s:i}", "Axes", perm[0], perm[1], perm[2], "Reversed", fl));
  }
  json_object_set_new(t, "SliceAxis", json_integer(s));
  json_object_set_new(t, "Factor", json_integer(f[s]));
  json_object_set_new(t, "Method", json_string("self-supervised (in-plane axes degraded to the slice thickness in training): the input "
                                               "Keys-upsampled along the slice axis; each member moves the slice axis to array axis 0 "
                                               "(the axis the network restores), applies the network and moves it back; OUT = the mean"));
  json_object_set_new(t, "Members", mem);
  json_object_set_new(t, "MembersTotal", json_integer((json_int_t)2 * flips * nmodels));
  return t;
}

/* Run the model(s) on lr onto the chosen grid: plain apply, or the ensemble (sd != NULL); a through-plane
 * model always runs its members (sd only when asked for). */
static int run_apply(const model_set *ms, const apply_args *a, const mbsr_volume *lr, const mbsr_volume *grid, int ens,
                     mbsr_volume **sr, mbsr_volume **sd) {
  if (mbsr_model_get_contract(ms->m[0])->through_plane) {
    mbsr_apply_opts o = a->ao;
    o.flips = a->ensemble > 0 ? a->ensemble : 1;
    mbsr_volume *dummy = NULL;
    int rc = mbsr_apply_through_plane(ms->m, ms->n, lr, a->f, &o, sr, sd ? sd : &dummy);
    mbsr_volume_free(dummy);
    return rc;
  }
  if (ens) {
    mbsr_apply_opts o = a->ao;
    o.flips = a->ensemble > 0 ? a->ensemble : 1;
    return mbsr_apply_ensemble(ms->m, ms->n, lr, grid, a->have_factor ? a->f : NULL, &o, sr, sd);
  }
  if (grid) return mbsr_apply(ms->m[0], lr, grid, &a->ao, sr);
  if (a->have_factor) return mbsr_apply_factor(ms->m[0], lr, a->f, &a->ao, sr);
  return mbsr_apply_upsampled(ms->m[0], lr, &a->ao, sr);
}

int mbsr_cmd_apply(int argc, char **argv) {
  apply_args a = {.prec_name = "fp32", .prec = MBSR_PREC_FP32};
  mbsr_apply_opts_default(&a.ao);
  int prc = parse(argc, argv, &a);
  if (prc) return prc < 0 ? 0 : prc;
  static model_set ms;
  memset(&ms, 0, sizeof ms);
  if (split_models(a.model, &ms)) return 2;
  const int ens = a.ensemble > 0 || ms.n > 1;
  if (a.sd_out && !ens) return mbsr_cli_usage_error("apply", "--sd-out needs --ensemble K or several models");
  char final[4096], sdp[4096];
  if (mbsr_volume_output_path(a.out, final, sizeof final)) return mbsr_cli_fail("apply");
  if (ens && (a.sd_out ? mbsr_volume_output_path(a.sd_out, sdp, sizeof sdp) : sd_default_path(final, sdp, sizeof sdp)))
    return mbsr_cli_fail("apply");

  double t0 = mbsr_now();
  mbsr_volume *lr = NULL, *grid = NULL, *sr = NULL, *sd = NULL;
  int rc = mbsr_volume_read(a.in, mbsr_cli_volume(&(mbsr_read_opts){0}), &lr);
  if (!rc) rc = mbsr_volume_check_finite(lr, a.in);
  if (!rc) rc = load_models(&ms, &a, lr);
  if (!rc && a.like) rc = mbsr_volume_read(a.like, &(mbsr_read_opts){.volume_given = 1}, &grid); /* only its grid is used */
  const int tp = !rc && mbsr_model_get_contract(ms.m[0])->through_plane;
  if (tp && (a.like || a.upsampled))
    rc = mbsr_error(MBSR_EINVAL, "%s is a through-plane model: it up-samples the slice axis of IN itself (no --like or --upsampled; "
                    "--factor or the model's pair)", ms.names[0]);
  if (!rc && !a.like && !a.have_factor && !a.upsampled)
    a.have_factor = !(rc = model_factor(mbsr_model_get_contract(ms.m[0]), ms.ckpt[0], a.f));
  mbsr_apply_plan pl;
  memset(&pl, 0, sizeof pl);
  double t1 = mbsr_now();
  if (!rc) rc = run_apply(&ms, &a, lr, grid, ens, &sr, ens ? &sd : NULL);
  double t2 = mbsr_now();
  if (!rc) rc = mbsr_apply_plan_for(ms.m[0], (const int64_t[3]){sr->nx, sr->ny, sr->nz}, &a.ao, &pl);
  char *json = NULL;
  if (!rc)
    rc = sidecar_json(a.in, ms.names[0], ms.ckpt[0], &ms.me[0], ms.m[0], lr, sr, &pl, a.prec_name, a.force,
                      ens ? ensemble_json(&ms, a.ensemble > 0 ? a.ensemble : 1, sdp) : NULL,
                      tp ? through_plane_json(a.f, a.ensemble > 0 ? a.ensemble : 1, ms.n) : NULL, &json);
  if (!rc) rc = mbsr__cli_write_set(final, &sr, 1, json, ens ? sdp : NULL, sd); /* OUT, sidecar, sd: a set */
  free(json);
  if (!rc)
    mbsr_info("apply: %s (%s%s) %lldx%lldx%lld -> %s %lldx%lldx%lld, voxel %.4g x %.4g x %.4g mm%s%s; network %.2f s, total %.2f s",
              a.in, ms.me[0].name[0] ? ms.me[0].name : mbsr_arch_name(mbsr_model_get_config(ms.m[0])->arch), ms.n > 1 ? ", ..." : "",
              (long long)lr->nx, (long long)lr->ny, (long long)lr->nz, final, (long long)sr->nx, (long long)sr->ny, (long long)sr->nz,
              sr->vox[0], sr->vox[1], sr->vox[2], ens ? ", sd -> " : "", ens ? sdp : "", t2 - t1, mbsr_now() - t0);
  mbsr_volume_free(lr);
  mbsr_volume_free(grid);
  mbsr_volume_free(sr);
  mbsr_volume_free(sd);
  for (int i = 0; i < ms.n; i++) mbsr_model_free(ms.m[i]);
  return rc ? mbsr_cli_fail("apply") : 0;
}
