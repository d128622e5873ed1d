/* The NIfTI conventions end to end through the built CLI (fixtures: tests/fixtures/gen_nifti_meta.py;
 * nibabel checks: tests/core/cli_nifti_check.py with Debian's /usr/bin/python3):
 *  - the sform/qform codes (4 mni / 5 template), descrip and intent of IN survive convert, normalize
 *    and mask (same grid); upsample and downsample keep the codes and write mbsr's descrip;
 *  - info prints the codes with their names, scl_slope/scl_inter, descrip and intent (text, --json);
 *  - a 4-D IN: one-line error naming the file and the count without --volume; --volume 1 reads the
 *    second volume; convert keeps every volume (4-D out);
 *  - convert and upsample write OUT.json: valid JSON naming the input. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr_test.h"

#define PY "/usr/bin/python3"

static char g_fx[4096], g_check[4096];

static void setup(void) {
  const char *src = getenv("MBSR_SOURCE_DIR");
  snprintf(g_check, sizeof g_check, "%s/tests/core/cli_nifti_check.py", src ? src : ".");
  mbsr_test_fixture("io", g_fx, sizeof g_fx);
}

/* mbsr ARGS in the scratch directory, stdout/stderr into TAG.out/TAG.err; the exit status. */
static int run(const char *tag, const char *args) {
  setup();
  return mbsr_test_sh("cd '%s' && FX='%s' && '%s' %s > '%s.out' 2> '%s.err'", mbsr_test_tmpdir(), g_fx, mbsr_test_bin(), args,
                      tag, tag);
}

/* The nibabel check `args` (relative to the scratch directory); skipped visibly without nibabel. */
static void check(const char *args) {
  int st = mbsr_test_sh("cd '%s' && FX='%s' && " PY " '%s' %s", mbsr_test_tmpdir(), g_fx, g_check, args);
  if (st == 77 || st == 127) mbsr_test_skip("nibabel under " PY " is missing");
  else {
    if (st) fprintf(stderr, "  check failed: %s\n", args);
    MT_ASSERT_INT_EQ(st, 0);
  }
}

/* grep -qF TEXT in the scratch file NAME: 0 when found. */
static int has(const char *name, const char *text) {
  return mbsr_test_sh("grep -qF -- '%s' '%s/%s'", text, mbsr_test_tmpdir(), name);
}

static void test_codes_kept(void) {
  MT_ASSERT_INT_EQ(run("conv", "convert \"$FX/meta_mni.nii.gz\" conv.nii.gz"), 0);
  check("header conv.nii.gz 4 5 'mbsr fixture: template space' 1001");
  MT_ASSERT_INT_EQ(run("norm", "normalize \"$FX/meta_mni.nii.gz\" norm.nii"), 0);
  check("header norm.nii 4 5 'mbsr fixture: template space' 1001");
  MT_ASSERT_INT_EQ(run("mask", "mask \"$FX/meta_mni.nii.gz\" mask.nii"), 0);
  check("header mask.nii 4 5 'mbsr fixture: template space' 1001");
  MT_ASSERT_INT_EQ(run("up", "upsample \"$FX/meta_mni.nii.gz\" up.nii --factor 2"), 0);
  check("header up.nii 4 5 mbsr 0");
  MT_ASSERT_INT_EQ(run("down", "downsample \"$FX/meta_mni.nii.gz\" down.nii --factor 2"), 0);
  check("header down.nii 4 5 mbsr 0");
  /* mbsr reads its own outputs the same way */
  MT_ASSERT_INT_EQ(run("info_up", "info --json up.nii"), 0);
  CU_ASSERT(has("info_up.out", "\"sform_code\": 4, \"sform_name\": \"mni\", \"qform_code\": 5, \"qform_name\": \"template\"") == 0);
}

static void test_info(void) {
  MT_ASSERT_INT_EQ(run("info", "info \"$FX/meta_mni.nii.gz\""), 0);
  CU_ASSERT(has("info.out", "xform codes: sform 4 (mni), qform 5 (template)") == 0);
  CU_ASSERT(has("info.out", "scaling:     scl_slope 1, scl_inter 0") == 0);
  CU_ASSERT(has("info.out", "descrip:     \"mbsr fixture: template space\"") == 0);
  CU_ASSERT(has("info.out", "intent:      code 1001, name \"T2w\", p 1.5 2.5 3.5") == 0);
  CU_ASSERT(has("info.out", "units:       space mm, time ms") == 0);
  MT_ASSERT_INT_EQ(run("infoj", "info --json \"$FX/meta_mni.nii.gz\""), 0);
  CU_ASSERT(has("infoj.out", "\"scl_slope\": 1.0, \"scl_inter\": 0.0") == 0);
  CU_ASSERT(has("infoj.out", "\"descrip\": \"mbsr fixture: template space\"") == 0);
  CU_ASSERT(has("infoj.out", "\"intent\": {\"code\": 1001, \"name\": \"T2w\", \"p\": [1.5, 2.5, 3.5]}") == 0);
  /* a scaled file: the slope and intercept as in the header */
  MT_ASSERT_INT_EQ(run("infos", "info \"$FX/i16_scaled.nii\""), 0);
  CU_ASSERT(has("infos.out", "scaling:     scl_slope 0.5, scl_inter -10") == 0);
  /* a 4-D file: volume 0 described, the count shown */
  MT_ASSERT_INT_EQ(run("info4", "info \"$FX/meta_4d.nii.gz\""), 0);
  CU_ASSERT(has("info4.out", "volumes:     3 (volume 0 shown") == 0);
  MT_ASSERT_INT_EQ(run("info4b", "info --json --volume 2 \"$FX/meta_4d.nii.gz\""), 0);
  CU_ASSERT(has("info4b.out", "\"min\": 200.0") == 0);
}

static void test_4d(void) {
  static const char *cmds[] = {"upsample \"$FX/meta_4d.nii.gz\" e1.nii --factor 2", "normalize \"$FX/meta_4d.nii.gz\" e2.nii",
                               "mask \"$FX/meta_4d.nii.gz\" e3.nii", "downsample \"$FX/meta_4d.nii.gz\" e4.nii --factor 2",
                               "decorr \"$FX/meta_4d.nii.gz\""};
  char tag[32], err[64];
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
    snprintf(tag, sizeof tag, "e%zu", i);
    snprintf(err, sizeof err, "e%zu.err", i);
    MT_ASSERT_INT_EQ(run(tag, cmds[i]), 1);
    MT_ASSERT_INT_EQ(mbsr_test_sh("test $(wc -l < '%s/%s') -eq 1", mbsr_test_tmpdir(), err), 0);
    CU_ASSERT(has(err, "meta_4d.nii.gz: 4-D file with 3 volumes") == 0);
  }
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && ! ls e1.* e2.* e3.* e4.* 2>/dev/null | grep -v '\\.err$\\|\\.out$'", mbsr_test_tmpdir()), 0);
  /* --volume 1 = the second volume (values: volume 0 + 100) */
  MT_ASSERT_INT_EQ(run("v1", "convert --volume 1 \"$FX/meta_4d.nii.gz\" v1.nii"), 0);
  check("volume v1.nii \"$FX/meta_4d.nii.gz\" 1");
  MT_ASSERT_INT_EQ(run("v1i", "info --json v1.nii"), 0);
  CU_ASSERT(has("v1i.out", "\"min\": 100.0, \"max\": 445.0") == 0);
  /* upsample --volume 1 = upsample of that volume */
  MT_ASSERT_INT_EQ(run("u1", "upsample --volume 1 \"$FX/meta_4d.nii.gz\" u1.nii --factor 2"), 0);
  MT_ASSERT_INT_EQ(run("u1b", "upsample v1.nii u1b.nii --factor 2"), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && cmp u1.nii u1b.nii", mbsr_test_tmpdir()), 0);
  MT_ASSERT_INT_EQ(run("vbad", "normalize --volume 3 \"$FX/meta_4d.nii.gz\" vbad.nii"), 1);
  CU_ASSERT(has("vbad.err", "volume 3 asked for, but the file holds 3") == 0);
  MT_ASSERT_INT_EQ(run("vneg", "normalize --volume -1 \"$FX/meta_4d.nii.gz\" vneg.nii"), 2);
  /* convert without --volume: every volume, 4-D out, the TR and codes kept */
  MT_ASSERT_INT_EQ(run("all", "convert \"$FX/meta_4d.nii.gz\" all.nii.gz"), 0);
  check("same all.nii.gz \"$FX/meta_4d.nii.gz\"");
  check("header all.nii.gz 4 4 '4-D fixture' 0");
  MT_ASSERT_INT_EQ(run("alli", "info --json --volume 2 all.nii.gz"), 0);
  CU_ASSERT(has("alli.out", "\"volumes\": 3, \"volume\": 2") == 0);
}

static void test_sidecars(void) {
  MT_ASSERT_INT_EQ(run("sc", "convert \"$FX/meta_mni.nii.gz\" sc.nii.gz"), 0);
  check("sidecar sc.json \"$FX/meta_mni.nii.gz\" 6,5,4");
  MT_ASSERT_INT_EQ(run("su", "upsample \"$FX/meta_mni.nii.gz\" su --factor 2 --interp linear"), 0); /* .nii.gz appended */
  check("sidecar su.json \"$FX/meta_mni.nii.gz\" 12,10,8");
  CU_ASSERT(has("su.json", "\"Interpolation\": \"linear\"") == 0);
  CU_ASSERT(has("su.json", "\"CommandLine\": \"mbsr upsample ") == 0);
  MT_ASSERT_INT_EQ(run("s4", "convert \"$FX/meta_4d.nii.gz\" s4.nii"), 0);
  check("sidecar s4.json \"$FX/meta_4d.nii.gz\" 6,5,4");
  CU_ASSERT(has("s4.json", "\"Volumes\": 3") == 0);
  /* a failed write leaves neither the volume nor the sidecar */
  MT_ASSERT_INT_EQ(run("sf", "convert \"$FX/meta_mni.nii.gz\" nodir/sf.nii"), 1);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cd '%s' && ! ls -a | grep -q '^\\.tmp-\\|^sf\\.nii\\|^sf\\.json'", mbsr_test_tmpdir()), 0);
}

int main(void) {
  static const mbsr_test_case tc[] = {{"codes_kept", test_codes_kept},
                                      {"info", test_info},
                                      {"4d", test_4d},
                                      {"sidecars", test_sidecars},
                                      {NULL, NULL}};
  return mbsr_test_main("cli_nifti", tc);
}
