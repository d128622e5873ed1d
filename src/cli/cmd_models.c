/* mbsr models: the shipped models of models/manifest.json (see src/data/models.c). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "mbsr/cli.h"
#include "mbsr/data.h"

static void usage(void) {
  printf("usage: mbsr models [--json] [--quiet]\n"
         "       mbsr models --add NAME --from CKPT [--dir DIR] [--description TEXT] [--cv TEXT]\n"
         "\n"
         "Lists the shipped models: name, resolution pair, file and what they were trained on. Apply one with\n"
         "`mbsr apply --model NAME IN OUT`. The manifest is models/manifest.json, found in $MBSR_MODELS,\n"
         "<prefix>/share/mbsr/models or the source tree.\n"
         "  --json   the manifest's entries as JSON lines (name, file, sha256, pair, voxel sizes, description)\n"
         "  --quiet  no info lines on stderr (warnings and errors stay)\n"
         "  --add NAME --from CKPT   ship CKPT as NAME: DIR/NAME.h5 (inference-only: no optimiser state) and its\n"
         "           manifest entry (sha256, pair, architecture, intensity contract, training data); DIR defaults\n"
         "           to models; --cv TEXT records its cross-validated performance\n");
}

int mbsr_cmd_models(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, 'j'},          {"add", required_argument, 0, 'a'},
                                       {"from", required_argument, 0, 'f'},    {"dir", required_argument, 0, 'd'},
                                       {"description", required_argument, 0, 'D'}, {"cv", required_argument, 0, 'c'},
                                       {"help", no_argument, 0, 'h'},          {"quiet", no_argument, 0, MBSR_CLI_OPT_QUIET},
                                       {0, 0, 0, 0}};
  int json = 0, c;
  const char *add = NULL, *from = NULL, *dir_arg = "models", *desc = NULL, *cv = NULL;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'j': json = 1; break;
      case 'a': add = optarg; break;
      case 'f': from = optarg; break;
      case 'd': dir_arg = optarg; break;
      case 'D': desc = optarg; break;
      case 'c': cv = optarg; break;
      case 'h': usage(); return 0;
      default:
        if (mbsr_cli_common("models", c, optarg)) return 2;
    }
  }
  if (optind < argc) return mbsr_cli_usage_error("models", "unexpected argument '%s'", argv[optind]);
  if (add || from) {
    if (!add || !from) return mbsr_cli_usage_error("models", "--add NAME needs --from CKPT");
    if (mbsr_models_add(dir_arg, add, from, desc, cv)) return mbsr_cli_fail("models");
    mbsr_info("models: %s/%s.h5 and its entry in %s/manifest.json", dir_arg, add, dir_arg);
    return 0;
  }
  mbsr_model_entry *e = NULL;
  int n = 0;
  char dir[4096];
  if (mbsr_models_list(&e, &n, dir, sizeof dir)) return mbsr_cli_fail("models");
  if (!json) printf("%d model(s) in %s/manifest.json\n%-14s %-9s %-22s %s\n", n, dir, "NAME", "PAIR (um)", "LR -> HR voxel (mm)",
                    "DESCRIPTION");
  for (int i = 0; i < n; i++) {
    if (json) {
      json_t *o = json_object();
      json_object_set_new(o, "name", mbsr__cli_json_str(e[i].name));
      json_object_set_new(o, "file", mbsr__cli_json_str(e[i].file));
      json_object_set_new(o, "sha256", mbsr__cli_json_str(e[i].sha256));
      json_object_set_new(o, "pair_um", json_pack("[i,i]", e[i].lr_um, e[i].hr_um));
      json_object_set_new(o, "lr_vox_mm", mbsr__cli_json_nums(e[i].lr_vox_mm, 3));
      json_object_set_new(o, "hr_vox_mm", mbsr__cli_json_nums(e[i].hr_vox_mm, 3));
      json_object_set_new(o, "description", mbsr__cli_json_str(e[i].description));
      if (mbsr__cli_json_emit(o, 6, NULL)) {
        free(e);
        return mbsr_cli_fail("models");
      }
    } else {
      char pair[64], vox[96];
      const double *l = e[i].lr_vox_mm;
      if (l[0] == l[1] && l[1] == l[2]) { /* isotropic */
        snprintf(pair, sizeof pair, "%d->%d", e[i].lr_um, e[i].hr_um);
        snprintf(vox, sizeof vox, "%g -> %g", l[0], e[i].hr_vox_mm[0]);
      } else { /* per-axis LR voxels */
        snprintf(pair, sizeof pair, "%.0fx%.0fx%.0f->%d", l[0] * 1000, l[1] * 1000, l[2] * 1000, e[i].hr_um);
        snprintf(vox, sizeof vox, "%gx%gx%g -> %g", l[0], l[1], l[2], e[i].hr_vox_mm[0]);
      }
      printf("%-14s %-9s %-22s %s\n", e[i].name, pair, vox, e[i].description);
    }
  }
  free(e);
  return 0;
}
