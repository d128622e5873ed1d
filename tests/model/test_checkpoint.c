/* HDF5 checkpoints: exact round trip (parameters, Adam moments and steps, trainer meta), the
 * architecture check with a message saying what differs, truncated/corrupt files as one-line
 * errors that leave the model untouched, atomic writes, and readability by h5dump and h5py.
 * Integrity: a flipped byte in a stored weight is a checksum error naming the file and tensor;
 * checkpoints without checksums (older mbsr) stay readable; NaN weights are refused. Failed writes
 * (MBSR_FAULT_WRITE, and a real full tmpfs when root): one error naming the file, no temporary,
 * no HDF5 object left open, the previous checkpoint intact. */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/core.h"
#include "mbsr/model.h"
#include "mbsr_test.h"
#include "../data/fault_util.h"

static mbsr_model *small(mbsr_arch arch, int ch, int blocks) {
  mbsr_model_config c;
  mbsr_model_config_default(&c, arch);
  c.channels = ch;
  c.blocks = blocks;
  c.ccnn_c1 = ch;
  c.ccnn_c2 = ch / 2 + 1;
  c.disc_channels = ch;
  c.disc_blocks = 1;
  c.global_residual = 1;
  mbsr_model *m = NULL;
  MT_ASSERT_OK(mbsr_model_create(&c, 2, 7, 7, 7, &m));
  mbsr_model_init(m, 5);
  return m;
}

static void train_a_bit(mbsr_model *m, int steps) {
  size_t nv = 2 * 343;
  float *x = mbsr_alloc(sizeof(float) * nv), *t = mbsr_alloc(sizeof(float) * nv);
  for (size_t i = 0; i < nv; i++) {
    x[i] = (float)((i * 7919) % 101) / 101.0f;
    t[i] = (float)((i * 104729) % 97) / 97.0f;
  }
  mbsr_adam_config a;
  mbsr_adam_config_default(&a);
  a.lr = 2e-3f;
  for (int s = 0; s < steps; s++) CU_ASSERT(mbsr_model_train_step(m, x, t, 2, &a) >= 0);
  mbsr_free(x);
  mbsr_free(t);
}

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", mbsr_test_tmpdir(), name); }

static void roundtrip(mbsr_arch arch) {
  mbsr_model *m = small(arch, 6, 2);
  train_a_bit(m, 3);
  char p[4096];
  path_in_tmp(p, sizeof p, arch == MBSR_ARCH_GAN ? "gan.h5" : "resnet.h5");
  mbsr_ckpt_meta meta = {.step = 42, .epoch = 7, .best_epoch = 5, .bad_epochs = 2, .best_val = 0.125, .last_val = 0.25,
                         .seed = 0xfeedbeefcafeULL};
  snprintf(meta.info, sizeof meta.info, "{\"data\": \"x.h5\"}");
  MT_ASSERT_OK(mbsr_checkpoint_save(m, p, &meta));
  mbsr_model *r = NULL;
  mbsr_ckpt_meta got;
  MT_ASSERT_OK(mbsr_checkpoint_load(p, 2, 7, 7, 7, &r, &got));
  size_t np = mbsr_model_num_params(m);
  MT_ASSERT_INT_EQ(mbsr_model_num_params(r), np);
  CU_ASSERT(memcmp(mbsr_model_params(m), mbsr_model_params(r), sizeof(float) * np) == 0);
  MT_ASSERT_INT_EQ(mbsr_model_adam_steps(r), 3);
  MT_ASSERT_INT_EQ(got.step, 42);
  MT_ASSERT_INT_EQ(got.epoch, 7);
  MT_ASSERT_INT_EQ(got.best_epoch, 5);
  MT_ASSERT_INT_EQ(got.bad_epochs, 2);
  MT_ASSERT_NEAR(got.best_val, 0.125, 0);
  MT_ASSERT_NEAR(got.last_val, 0.25, 0);
  CU_ASSERT(got.seed == meta.seed);
  CU_ASSERT_STRING_EQUAL(got.info, meta.info);
  MT_ASSERT_INT_EQ(mbsr_model_get_config(r)->arch, arch);
  /* same Adam state: one more identical step gives the same parameters. Not bitwise: the conv
   * weight-gradient kernels sum per-thread partials in a scheduling-dependent order with 2+
   * threads (rounding-level differences); a lost Adam state would move parameters by ~lr = 2e-3 */
  train_a_bit(m, 1);
  train_a_bit(r, 1);
  double worst = 0;
  for (size_t i = 0; i < np; i++) worst = fmax(worst, fabs(mbsr_model_params(m)[i] - mbsr_model_params(r)[i]));
  MT_ASSERT_NEAR(worst, 0.0, 1e-5);
  mbsr_model_free(r);
  mbsr_model_free(m);
}
static void test_roundtrip_resnet(void) { roundtrip(MBSR_ARCH_RESNET); }
static void test_roundtrip_gan(void) { roundtrip(MBSR_ARCH_GAN); }

static void test_mismatch(void) {
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1), *b = small(MBSR_ARCH_RESNET, 8, 2), *c = small(MBSR_ARCH_CCNN, 8, 0);
  char p[4096];
  path_in_tmp(p, sizeof p, "small.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  size_t np = mbsr_model_num_params(b);
  float *keep = malloc(sizeof(float) * np);
  memcpy(keep, mbsr_model_params(b), sizeof(float) * np);
  MT_ASSERT_INT_EQ(mbsr_checkpoint_load_into(b, p, NULL), MBSR_EMISMATCH);
  printf("\n  %s\n", mbsr_last_error());
  CU_ASSERT(strstr(mbsr_last_error(), "has resnet channels=4 blocks=1") != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "model has resnet channels=8 blocks=2") != NULL);
  CU_ASSERT(memcmp(keep, mbsr_model_params(b), sizeof(float) * np) == 0);
  MT_ASSERT_INT_EQ(mbsr_checkpoint_load_into(c, p, NULL), MBSR_EMISMATCH);
  printf("  %s\n", mbsr_last_error());
  CU_ASSERT(strstr(mbsr_last_error(), "model has ccnn") != NULL);
  free(keep);
  mbsr_model_free(a);
  mbsr_model_free(b);
  mbsr_model_free(c);
}

static void test_truncated(void) {
  mbsr_model *a = small(MBSR_ARCH_RESNET, 8, 2);
  char p[4096], q[4096], g[4096];
  path_in_tmp(p, sizeof p, "full.h5");
  path_in_tmp(q, sizeof q, "trunc.h5");
  path_in_tmp(g, sizeof g, "garbage.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  /* cut the file to 60 % */
  FILE *f = fopen(p, "rb");
  CU_ASSERT_FATAL(f != NULL);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)sz);
  CU_ASSERT_FATAL(fread(buf, 1, (size_t)sz, f) == (size_t)sz);
  fclose(f);
  f = fopen(q, "wb");
  fwrite(buf, 1, (size_t)(sz * 6 / 10), f);
  fclose(f);
  f = fopen(g, "wb");
  fwrite("this is not HDF5\n", 1, 17, f);
  fclose(f);
  free(buf);
  size_t np = mbsr_model_num_params(a);
  float *keep = malloc(sizeof(float) * np);
  memcpy(keep, mbsr_model_params(a), sizeof(float) * np);
  const char *files[3] = {q, g, "/nonexistent/ckpt.h5"};
  for (int i = 0; i < 3; i++) {
    int rc = mbsr_checkpoint_load_into(a, files[i], NULL);
    CU_ASSERT(rc < 0);
    printf("\n  %s -> %s", files[i], mbsr_last_error());
    CU_ASSERT(strchr(mbsr_last_error(), '\n') == NULL);
    CU_ASSERT(strlen(mbsr_last_error()) > 10);
    mbsr_model *r = NULL;
    CU_ASSERT(mbsr_checkpoint_load(files[i], 1, 7, 7, 7, &r, NULL) < 0);
    CU_ASSERT(r == NULL);
  }
  printf("\n");
  CU_ASSERT(memcmp(keep, mbsr_model_params(a), sizeof(float) * np) == 0);
  /* saving into a missing directory fails cleanly */
  CU_ASSERT(mbsr_checkpoint_save(a, "/nonexistent-dir/x.h5", NULL) < 0);
  free(keep);
  mbsr_model_free(a);
}

/* Atomic write: no temporary left behind; an existing checkpoint is replaced only when complete. */
static void test_atomic(void) {
  char dir[4096], p[4200];
  snprintf(dir, sizeof dir, "%s/atomic", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_mkdir_p(dir));
  snprintf(p, sizeof p, "%s/ck.h5", dir);
  mbsr_model *a = small(MBSR_ARCH_CCNN, 4, 0);
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' || strstr(e->d_name, "tmp")) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  MT_ASSERT_INT_EQ(n, 1);
  mbsr_model_free(a);
}

/* Reproducible bytes: the same model saved twice, more than a second apart (HDF5's object times have a
 * resolution of one second), gives identical files, so a shipped model's sha256 follows its content. */
static void test_same_bytes(void) {
  char p1[4200], p2[4200];
  snprintf(p1, sizeof p1, "%s/same1.h5", mbsr_test_tmpdir());
  snprintf(p2, sizeof p2, "%s/same2.h5", mbsr_test_tmpdir());
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1);
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p1, NULL));
  sleep(2);
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p2, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("cmp -s '%s' '%s'", p1, p2), 0);
  mbsr_model_free(a);
}

static void test_h5dump_h5py(void) {
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1);
  char p[4096], out[4096];
  path_in_tmp(p, sizeof p, "dump.h5");
  path_in_tmp(out, sizeof out, "dump.txt");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  if (mbsr_test_sh("command -v h5dump >/dev/null") == 0) {
    MT_ASSERT_INT_EQ(mbsr_test_sh("h5dump -H '%s' > '%s'", p, out), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'DATASET \"conv0.weight\"' '%s' && grep -q 'ATTRIBUTE \"arch\"' '%s'", out, out), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("h5dump -d /params/conv0.bias '%s' > /dev/null", p), 0);
  } else {
    mbsr_test_skip("h5dump not installed");
  }
  if (mbsr_test_sh("/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null") == 0) {
    char script[4096];
    const char *src = getenv("MBSR_SOURCE_DIR");
    snprintf(script, sizeof script, "%s/tests/fixtures/gen_nn.py", src ? src : ".");
    MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 '%s' --check-h5 '%s' > '%s'", script, p, out), 0);
    MT_ASSERT_INT_EQ(mbsr_test_sh("grep -q 'params/conv0.weight shape (3, 3, 3, 1, 4)' '%s'", out), 0);
    /* h5py's sum of conv0.weight equals ours */
    size_t off, cnt;
    mbsr_model_tensor(a, 0, &off, &cnt);
    double s = 0;
    for (size_t i = 0; i < cnt; i++) s += mbsr_model_params(a)[off + i];
    FILE *f = fopen(out, "r");
    char line[512];
    double hs = NAN;
    while (f && fgets(line, sizeof line, f)) {
      const char *k = strstr(line, " sum ");
      if (k && strstr(line, "conv0.weight")) hs = atof(k + 5);
    }
    if (f) fclose(f);
    MT_ASSERT_NEAR(hs, s, 1e-6);
  } else {
    mbsr_test_skip("python3 h5py not installed");
  }
  mbsr_model_free(a);
}

static void test_checksum_flipped_weight(void) {
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1);
  char p[4096];
  path_in_tmp(p, sizeof p, "flip.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  haddr_t addr = 0;
  hsize_t size = 0;
  int nf = 0;
  MT_ASSERT_INT_EQ(chunk_of(p, "/params/conv0.weight", 0, &addr, &size, &nf), 0);
  MT_ASSERT_INT_EQ(nf, 1); /* Fletcher32 */
  MT_ASSERT_INT_EQ(size, 3 * 3 * 3 * 1 * 4 * 4 + 4); /* the weights + the 4-byte checksum */
  /* one bit of one weight (the 8th float) */
  MT_ASSERT_INT_EQ(flip_byte(p, (long)addr + 30, 0x10), 0);
  size_t np = mbsr_model_num_params(a);
  float *keep = malloc(sizeof(float) * np);
  memcpy(keep, mbsr_model_params(a), sizeof(float) * np);
  int rc = mbsr_checkpoint_load_into(a, p, NULL);
  printf("\n  flipped bit -> %s\n", mbsr_last_error());
  MT_ASSERT_INT_EQ(rc, MBSR_ECHECKSUM);
  CU_ASSERT(strstr(mbsr_last_error(), p) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "/params/conv0.weight") != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "checksum") != NULL);
  CU_ASSERT(memcmp(keep, mbsr_model_params(a), sizeof(float) * np) == 0); /* untouched */
  mbsr_model *r = NULL;
  MT_ASSERT_INT_EQ(mbsr_checkpoint_load(p, 1, 7, 7, 7, &r, NULL), MBSR_ECHECKSUM);
  CU_ASSERT(r == NULL);
  /* a flipped byte in the attributes (object header checksums): an error too, never a silent load */
  char q[4096];
  path_in_tmp(q, sizeof q, "flip_attr.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, q, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("grep -c 'mbsr-checkpoint' '%s' > /dev/null", q), 0);
  MT_ASSERT_INT_EQ(mbsr_test_sh("off=$(grep -abo 'mbsr-checkpoint' '%s' | head -1 | cut -d: -f1) && "
                                "printf 'X' | dd of='%s' bs=1 seek=$((off + 5)) conv=notrunc status=none",
                                q, q),
                   0);
  rc = mbsr_checkpoint_load(q, 1, 7, 7, 7, &r, NULL);
  printf("  flipped attribute byte -> %s\n", mbsr_last_error());
  CU_ASSERT(rc < 0);
  CU_ASSERT(r == NULL);
  CU_ASSERT(strstr(mbsr_last_error(), q) != NULL);
  MT_ASSERT_INT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  free(keep);
  mbsr_model_free(a);
}

/* A checkpoint as older mbsr wrote it (contiguous datasets, no filter, the earliest object format):
 * still readable, same weights. Made from a new one by h5repack. */
static void test_old_checkpoint_without_checksums(void) {
  if (mbsr_test_sh("command -v h5repack > /dev/null") != 0) {
    mbsr_test_skip("h5repack not installed");
    return;
  }
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1);
  char p[4096], q[4096];
  path_in_tmp(p, sizeof p, "new.h5");
  path_in_tmp(q, sizeof q, "old.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("h5repack -f NONE -l CONTI '%s' '%s'", p, q), 0);
  haddr_t addr;
  hsize_t size;
  int nf = -1;
  CU_ASSERT(chunk_of(q, "/params/conv0.weight", 0, &addr, &size, &nf) < 0); /* not chunked */
  mbsr_model *r = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(q, 1, 7, 7, 7, &r, NULL));
  CU_ASSERT(memcmp(mbsr_model_params(a), mbsr_model_params(r), sizeof(float) * mbsr_model_num_params(a)) == 0);
  mbsr_model_free(r);
  mbsr_model_free(a);
}

/* Non-finite weights (a diverged run): refused with the file's name. */
static void test_nan_weights_refused(void) {
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1);
  mbsr_model_params(a)[3] = NAN;
  char p[4096];
  path_in_tmp(p, sizeof p, "nan.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  mbsr_model *r = NULL;
  MT_ASSERT_INT_EQ(mbsr_checkpoint_load(p, 1, 7, 7, 7, &r, NULL), MBSR_ENONFINITE);
  CU_ASSERT(strstr(mbsr_last_error(), p) != NULL);
  CU_ASSERT(r == NULL);
  mbsr_model_free(a);
}

/* A corrupt header declaring a huge network is refused before anything is allocated for it (found by
 * the checkpoint fuzzer: 4096 channels would have made mbsr_model_create allocate gigabytes). */
static void test_declared_size_checked(void) {
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1);
  char p[4096];
  path_in_tmp(p, sizeof p, "huge.h5");
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  MT_ASSERT_INT_EQ(mbsr_test_sh("/usr/bin/python3 -c \"import h5py, numpy; f = h5py.File('%s', 'r+'); "
                                "f.attrs.modify('channels', numpy.int64(4096)); f.attrs.modify('blocks', numpy.int64(900))\"", p),
                   0);
  mbsr_model *r = NULL;
  MT_ASSERT_INT_EQ(mbsr_checkpoint_load(p, 1, 7, 7, 7, &r, NULL), MBSR_EFORMAT);
  printf("\n  %s\n", mbsr_last_error());
  CU_ASSERT(strstr(mbsr_last_error(), "declares") != NULL && strstr(mbsr_last_error(), p) != NULL);
  CU_ASSERT(r == NULL);
  mbsr_model_free(a);
}

/* Injected write failures at both points of a save: one error naming the file, no temporary, no
 * HDF5 object left open, the previous checkpoint intact; with the fault gone the save succeeds. */
static void test_fault_injected_save(void) {
  char dir[4096], p[4200];
  snprintf(dir, sizeof dir, "%s/fault", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_mkdir_p(dir));
  snprintf(p, sizeof p, "%s/last.h5", dir);
  mbsr_model *a = small(MBSR_ARCH_RESNET, 4, 1), *b = small(MBSR_ARCH_RESNET, 4, 1);
  train_a_bit(b, 1); /* other weights */
  MT_ASSERT_OK(mbsr_checkpoint_save(a, p, NULL));
  /* the image write (h5), then the fsync + rename (file) */
  const char *spec[3] = {"h5:1", "file:1", "any:2"};
  for (int i = 0; i < 3; i++) {
    setenv("MBSR_FAULT_WRITE", spec[i], 1);
    mbsr_fault_reset();
    int rc = mbsr_checkpoint_save(b, p, NULL);
    printf("\n  MBSR_FAULT_WRITE=%s -> %d: %s", spec[i], rc, mbsr_last_error());
    CU_ASSERT(rc < 0);
    CU_ASSERT(strstr(mbsr_last_error(), p) != NULL);
    CU_ASSERT(strstr(mbsr_last_error(), "No space left on device") != NULL);
    CU_ASSERT(strchr(mbsr_last_error(), '\n') == NULL);
    MT_ASSERT_INT_EQ(count_tmp(dir), 0);
    MT_ASSERT_INT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    /* the previous checkpoint is intact */
    mbsr_model *r = NULL;
    MT_ASSERT_OK(mbsr_checkpoint_load(p, 1, 7, 7, 7, &r, NULL));
    CU_ASSERT(memcmp(mbsr_model_params(a), mbsr_model_params(r), sizeof(float) * mbsr_model_num_params(a)) == 0);
    mbsr_model_free(r);
  }
  printf("\n");
  unsetenv("MBSR_FAULT_WRITE");
  mbsr_fault_reset();
  MT_ASSERT_OK(mbsr_checkpoint_save(b, p, NULL)); /* space freed: it completes */
  mbsr_model *r = NULL;
  MT_ASSERT_OK(mbsr_checkpoint_load(p, 1, 7, 7, 7, &r, NULL));
  CU_ASSERT(memcmp(mbsr_model_params(b), mbsr_model_params(r), sizeof(float) * mbsr_model_num_params(b)) == 0);
  mbsr_model_free(r);
  mbsr_model_free(a);
  mbsr_model_free(b);
}

/* A real full disk (a 64 KiB tmpfs; root only, skipped otherwise): the save fails with ENOSPC
 * naming the file, HDF5 keeps no half-closed file (the crash at exit of finding 1), no temporary. */
static void test_full_tmpfs_save(void) {
  if (geteuid() != 0) {
    mbsr_test_skip("not root: no tmpfs mount (MBSR_FAULT_WRITE covers the logic)");
    return;
  }
  char dir[4096], p[4200];
  snprintf(dir, sizeof dir, "%s/tmpfs", mbsr_test_tmpdir());
  MT_ASSERT_OK(mbsr_mkdir_p(dir));
  if (mbsr_test_sh("mount -t tmpfs -o size=64k mbsr-test '%s' 2>/dev/null", dir) != 0) {
    mbsr_test_skip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)");
    return;
  }
  snprintf(p, sizeof p, "%s/big.h5", dir);
  mbsr_model *a = small(MBSR_ARCH_RESNET, 16, 2); /* ~60k params: 3 x 240 KB with Adam moments */
  int rc = mbsr_checkpoint_save(a, p, NULL);
  printf("\n  full tmpfs -> %d: %s\n", rc, mbsr_last_error());
  CU_ASSERT(rc < 0);
  CU_ASSERT(strstr(mbsr_last_error(), p) != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "No space left on device") != NULL);
  MT_ASSERT_INT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  MT_ASSERT_INT_EQ(count_tmp(dir), 0);
  CU_ASSERT(!mbsr_file_exists(p));
  mbsr_test_sh("umount '%s'", dir);
  mbsr_model_free(a);
}

int main(void) {
  const mbsr_test_case cases[] = {
      {"roundtrip_resnet", test_roundtrip_resnet},
      {"roundtrip_gan", test_roundtrip_gan},
      {"architecture_mismatch", test_mismatch},
      {"truncated_and_corrupt", test_truncated},
      {"atomic_write", test_atomic},
      {"same_model_same_bytes", test_same_bytes},
      {"h5dump_and_h5py", test_h5dump_h5py},
      {"checksum_flipped_weight", test_checksum_flipped_weight},
      {"old_checkpoint_without_checksums_readable", test_old_checkpoint_without_checksums},
      {"nan_weights_refused", test_nan_weights_refused},
      {"declared_size_checked", test_declared_size_checked},
      {"fault_injected_save", test_fault_injected_save},
      {"full_tmpfs_save", test_full_tmpfs_save},
      {NULL, NULL},
  };
  return mbsr_test_main("checkpoint", cases);
}
