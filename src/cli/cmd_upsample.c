/* mbsr upsample IN OUT --like REF | --factor F [--interp keys|bspline|linear]
 * Up-sampling onto a target grid (REF's dims and affine, or the grid a block average by F came
 * from). keys (default, "cubic"): Keys a=-0.5 with MATLAB imresize's pixel-centre mapping and mirrored
 * border; bspline: cubic B-spline with scipy.ndimage's prefilter, geometric mapping, mode 'mirror';
 * linear: clamped. OUT keeps IN's world space (sform/qform codes) and gets a provenance sidecar
 * OUT.json. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "cli_sidecar.h"
#include "mbsr/cli.h"
#include "mbsr/image.h"
#include "mbsr/volume.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr upsample IN OUT (--like REF | --factor F|F,F,F) [--interp keys|bspline|linear] [--volume N]\n"
          "                    [--quiet] [--threads N]     (or --in IN --out OUT)\n"
          "  OUT           NIfTI-1 float32 with IN's sform/qform codes, and OUT.json beside it (provenance:\n"
          "                version, command line, input, parameters, output grid)\n"
          "  --like REF    the output has exactly REF's dims and affine (REF's voxels are not used);\n"
          "                the grid-to-grid map comes from the two affines and must be axis-aligned\n"
          "  --factor F    the grid that 'mbsr downsample --factor F' maps onto IN (dims n*F)\n"
          "  --interp      keys (default; alias cubic): Keys a=-0.5 = MATLAB imresize 'cubic' on block grids,\n"
          "                mirrored (half-sample) border\n"
          "                bspline: cubic B-spline, scipy.ndimage prefilter, geometric (affine) map, mode 'mirror'\n"
          "                (not scipy zoom's corner-aligned map: the result lands on the HR grid)\n"
          "                linear: trilinear, clamped at the border\n"
          "                (was --method, deprecated)\n"
          "  --volume N    of a 4-D IN, the volume to up-sample (0-based; required when IN has several)\n"
          "  --in IN --out OUT  the same as the positionals IN OUT\n"
          "  --quiet         no info lines on stderr (warnings and errors stay)\n"
          "  --threads N     OpenMP threads (default: OMP_NUM_THREADS or every core)\n");
}

int mbsr_cmd_upsample(int argc, char **argv) {
  static const struct option opts[] = {{"like", required_argument, 0, 'l'},
                                       {"factor", required_argument, 0, 'f'},
                                       {"interp", required_argument, 0, 'm'},
                                       {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       MBSR_CLI_VOLUME_OPT,
                                       MBSR_CLI_COMMON_OPTS,
                                       {0, 0, 0, 0}};
  const char *in = NULL, *out = NULL;
  int f[3] = {0, 0, 0}, c;
  const char *like = NULL;
  mbsr_interp method = MBSR_INTERP_KEYS;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'l': like = optarg; break;
      case 'f':
        if (mbsr_cli_parse_int3(optarg, f)) return mbsr_cli_usage_error("upsample", "--factor: %s", mbsr_last_error());
        break;
      case 'm':
        if (mbsr_interp_parse(optarg, &method)) return mbsr_cli_usage_error("upsample", "%s", mbsr_last_error());
        break;
      case 'i': in = optarg; break;
      case 'o': out = optarg; break;
      case 'h': usage(stdout); return 0;
      default:
        if (mbsr_cli_common("upsample", c, optarg)) return 2;
    }
  }
  if (mbsr_cli_in_out("upsample", argc, argv, optind, &in, &out)) return 2;
  if (!like == !f[0]) return mbsr_cli_usage_error("upsample", "give exactly one of --like REF and --factor F");
  char final[4096];
  if (mbsr_volume_output_path(out, final, sizeof final)) return mbsr_cli_fail("upsample");
  mbsr_volume *v = NULL, *ref = NULL, *u = NULL;
  mbsr_read_opts ro = {0}, grid_only = {.volume_given = 1}; /* REF: only its grid is used */
  int rc = mbsr_volume_read(in, mbsr_cli_volume(&ro), &v);
  if (!rc) rc = mbsr_volume_check_finite(v, in);
  if (!rc && like) rc = mbsr_volume_read(like, &grid_only, &ref);
  double t0 = mbsr_now();
  if (!rc) {
    rc = like ? mbsr_upsample_like(v, ref, method, &u) : mbsr_upsample_factor(v, f, method, &u);
    if (rc) mbsr_error_prefix(rc, like ? "%s onto the grid of %s: " : "%s: ", in, like);
  }
  double t1 = mbsr_now();
  if (!rc) {
    json_t *doc = mbsr__cli_provenance("Up-sampled by mbsr upsample (interpolation onto a finer grid)", in, v, u, 1);
    json_t *par = json_object();
    char abs_like[4096];
    if (like && !realpath(like, abs_like)) snprintf(abs_like, sizeof abs_like, "%s", like);
    json_object_set_new(par, "Interpolation", json_string(mbsr_interp_name(method)));
    json_object_set_new(par, "Like", like ? mbsr__cli_json_str(abs_like) : json_null());
    json_object_set_new(par, "Factor", like ? json_null() : json_pack("[i,i,i]", f[0], f[1], f[2]));
    json_object_set_new(doc, "Parameters", par);
    rc = mbsr__cli_write_with_sidecar(final, &u, 1, doc);
    json_decref(doc);
  }
  if (!rc)
    mbsr_info("%s (%lldx%lldx%lld) -> %s (%lldx%lldx%lld, %.4g x %.4g x %.4g mm), %s, %.1f ms", in, (long long)v->nx,
              (long long)v->ny, (long long)v->nz, final, (long long)u->nx, (long long)u->ny, (long long)u->nz,
              u->vox[0], u->vox[1], u->vox[2], mbsr_interp_name(method), (t1 - t0) * 1e3);
  mbsr_volume_free(v);
  mbsr_volume_free(ref);
  mbsr_volume_free(u);
  return rc ? mbsr_cli_fail("upsample") : 0;
}
