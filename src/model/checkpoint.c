/* HDF5 checkpoints of a model: one float32 dataset per tensor under /params, /adam_m and /adam_v
 * (shape = the tensor's: conv weights (3,3,3,cin,cout), biases (cout), dense (cin,1)), and root
 * attributes for the architecture, the whole config (also as JSON), Adam's steps and
 * hyper-parameters, the trainer's mbsr_ckpt_meta fields and the mbsr version.
 *
 * Integrity: every tensor is one chunk with HDF5's Fletcher32 filter (a checksum of the payload,
 * verified by HDF5 on every read: a flipped byte is MBSR_ECHECKSUM naming the file and the tensor),
 * and the file uses the HDF5 1.8+ object format, whose object headers (attributes: architecture,
 * contract, trainer state) carry their own checksums. Checkpoints written before (contiguous
 * datasets, no filter) stay readable, without that protection. Non-finite weights are refused.
 *
 * Built in memory (HDF5's core driver, no backing store) and written by mbsr itself to a temporary
 * name, fsync'ed and renamed when complete; callers under MPI let only rank 0 save. HDF5 never
 * writes to disk here: HDF5 1.10 cannot close a file whose writes failed (the ID stays, and its
 * shutdown at exit or MPI_Finalize crashes on it), so a full disk must be met by our own write(),
 * which removes the temporary and reports the file. Loading checks the architecture first and
 * says what differs.
 * Every HDF5 return code is checked; HDF5's own error stack printing is silenced so a corrupt
 * file gives one line. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbsr/core.h"
#include "mbsr/model.h"
#include "model_internal.h"

#define CKPT_FORMAT "mbsr-checkpoint"
#define CKPT_FORMAT_VERSION 2 /* 2: the SR contract (contract_* attributes); 1 is read with an unknown contract */

/* ---- silence HDF5's automatic error printing for the duration of a call ---- */
typedef struct {
  H5E_auto2_t fn;
  void *data;
} h5quiet;
static void quiet_on(h5quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_off(const h5quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

/* ---- attribute helpers: 0, or MBSR_EHDF5 when the attribute is absent, of another shape or the
 * HDF5 call fails (the caller names the file and attribute) ---- */
static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, int n, const void *v) {
  hsize_t dims[1] = {(hsize_t)n};
  hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
  if (sp < 0) return MBSR_EHDF5;
  hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a < 0 || H5Awrite(a, mtype, v) < 0) ? MBSR_EHDF5 : 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return rc;
}
static int attr_i64(hid_t o, const char *name, int64_t v) { return attr_write(o, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &v); }
static int attr_f64(hid_t o, const char *name, double v) { return attr_write(o, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &v); }
static int attr_str(hid_t obj, const char *name, const char *s) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return MBSR_EHDF5;
  size_t len = strlen(s);
  H5Tset_size(t, len + 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a < 0 || H5Awrite(a, t, s) < 0) ? MBSR_EHDF5 : 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
  return rc;
}

static int attr_read_i64(hid_t obj, const char *name, int64_t *v) {
  if (H5Aexists(obj, name) <= 0) return MBSR_EHDF5;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return MBSR_EHDF5;
  hid_t sp = H5Aget_space(a);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  int64_t buf[4];
  int rc = (n < 1 || n > 4 || H5Aread(a, H5T_NATIVE_INT64, buf) < 0) ? MBSR_EHDF5 : 0;
  H5Aclose(a);
  if (!rc) *v = buf[0];
  return rc;
}
/* exactly n values of memory type mtype (MBSR_EHDF5 when absent or of another length) */
static int attr_read_n(hid_t obj, const char *name, hid_t mtype, void *v, int n) {
  if (H5Aexists(obj, name) <= 0) return MBSR_EHDF5;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return MBSR_EHDF5;
  hid_t sp = H5Aget_space(a);
  hssize_t k = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  int rc = (k != n || H5Aread(a, mtype, v) < 0) ? MBSR_EHDF5 : 0;
  H5Aclose(a);
  return rc;
}
static int attr_read_i64n(hid_t obj, const char *name, int64_t *v, int n) { return attr_read_n(obj, name, H5T_NATIVE_INT64, v, n); }
static int attr_read_f64n(hid_t obj, const char *name, double *v, int n) { return attr_read_n(obj, name, H5T_NATIVE_DOUBLE, v, n); }
static int attr_read_f64(hid_t obj, const char *name, double *v) { return attr_read_n(obj, name, H5T_NATIVE_DOUBLE, v, 1); }
static int attr_read_str(hid_t obj, const char *name, char *buf, size_t n) {
  if (H5Aexists(obj, name) <= 0) return MBSR_EHDF5;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return MBSR_EHDF5;
  hid_t ft = H5Aget_type(a);
  int rc = MBSR_EHDF5;
  if (H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
    size_t sz = H5Tget_size(ft);
    char *tmp = calloc(sz + 1, 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, sz);
    if (tmp && H5Aread(a, mt, tmp) >= 0) {
      snprintf(buf, n, "%s", tmp);
      rc = 0;
    }
    H5Tclose(mt);
    free(tmp);
  }
  H5Tclose(ft);
  H5Aclose(a);
  return rc;
}

/* The whole config as one JSON object (Jansson; malloc'd text, NULL when out of memory). */
static char *config_json(const mbsr_model_config *c) {
  json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f}", "arch", mbsr_arch_name(c->arch), "channels", c->channels,
                        "blocks", c->blocks, "ccnn_c1", c->ccnn_c1, "ccnn_c2", c->ccnn_c2, "global_residual", c->global_residual,
                        "disc_channels", c->disc_channels, "disc_blocks", c->disc_blocks, "gan_lambda", (double)c->gan_lambda);
  char *txt = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
  json_decref(o);
  return txt;
}

/* Every tensor: one chunk, Fletcher32. No object modification times (HDF5 records them by default):
 * the same weights give the same bytes, so a shipped model's sha256 changes only with its content. */
static int write_group(hid_t f, const char *group, const mbsr_model *m, const float *buf) {
  hid_t gpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gpl < 0 || H5Pset_obj_track_times(gpl, 0) < 0) {
    if (gpl >= 0) H5Pclose(gpl);
    return MBSR_EHDF5;
  }
  hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, gpl, H5P_DEFAULT);
  H5Pclose(gpl);
  if (g < 0) return MBSR_EHDF5;
  int rc = 0;
  for (int i = 0; i < m->ntensors && !rc; i++) {
    const mbsr__tensor *t = &m->tensors[i];
    hsize_t dims[5];
    for (int k = 0; k < t->ndim; k++) dims[k] = (hsize_t)t->shape[k];
    hid_t sp = H5Screate_simple(t->ndim, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    if (pl < 0 || H5Pset_chunk(pl, t->ndim, dims) < 0 || H5Pset_fletcher32(pl) < 0 || H5Pset_obj_track_times(pl, 0) < 0)
      rc = MBSR_EHDF5;
    hid_t ds = (sp < 0 || rc) ? -1 : H5Dcreate2(g, t->name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + t->off) < 0) rc = MBSR_EHDF5;
    if (!rc && buf == m->params) rc = attr_i64(ds, "trainable", *t->trainable);
    if (ds >= 0) H5Dclose(ds);
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
  }
  H5Gclose(g);
  return rc;
}

/* The SR contract as root attributes. */
static int write_contract(hid_t f, const mbsr_sr_contract *k) {
  int bad = 0;
  double pct[2] = {k->norm_plo, k->norm_phi};
  bad |= attr_str(f, "contract_norm", "percentile");
  bad |= attr_write(f, "contract_norm_percentiles", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pct);
  bad |= attr_write(f, "contract_lr_vox_mm", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, k->lr_vox_mm);
  bad |= attr_write(f, "contract_hr_vox_mm", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, k->hr_vox_mm);
  bad |= attr_i64(f, "contract_patch", k->patch);
  bad |= attr_str(f, "contract_interp", mbsr_interp_name(k->interp));
  bad |= attr_str(f, "contract_training", k->training);
  if (k->through_plane) bad |= attr_i64(f, "contract_through_plane", 1); /* only then: other checkpoints unchanged */
  if (k->profile != MBSR_PROFILE_BOXCAR) bad |= attr_str(f, "contract_profile", mbsr_profile_name(k->profile)); /* likewise */
  return bad;
}

/* The contract of an open checkpoint: known = 0 when absent (format 1). */
static int read_contract(hid_t f, const char *path, mbsr_sr_contract *k) {
  mbsr_sr_contract_default(k);
  char norm[32], interp[32];
  if (attr_read_str(f, "contract_norm", norm, sizeof norm)) {
    k->known = 0;
    return MBSR_OK;
  }
  double pct[2];
  int64_t patch = 0;
  if (strcmp(norm, "percentile") || attr_read_f64n(f, "contract_norm_percentiles", pct, 2) ||
      attr_read_f64n(f, "contract_lr_vox_mm", k->lr_vox_mm, 3) || attr_read_f64n(f, "contract_hr_vox_mm", k->hr_vox_mm, 3) ||
      attr_read_i64(f, "contract_patch", &patch) || attr_read_str(f, "contract_interp", interp, sizeof interp) ||
      mbsr_interp_parse(interp, &k->interp))
    return mbsr_error(MBSR_EFORMAT, "%s: incomplete or unknown SR contract attributes (contract_norm '%s')", path, norm);
  if (!(pct[0] >= 0 && pct[1] <= 100 && pct[0] < pct[1]))
    return mbsr_error(MBSR_EFORMAT, "%s: contract_norm_percentiles %g,%g out of range", path, pct[0], pct[1]);
  k->norm_plo = pct[0], k->norm_phi = pct[1], k->patch = (int)patch;
  attr_read_str(f, "contract_training", k->training, sizeof k->training);
  int64_t tp = 0;
  if (!attr_read_i64(f, "contract_through_plane", &tp)) k->through_plane = tp == 1;
  char prof[32];
  if (!attr_read_str(f, "contract_profile", prof, sizeof prof) && mbsr_profile_parse(prof, &k->profile))
    return mbsr_error(MBSR_EFORMAT, "%s: unknown contract_profile '%s'", path, prof);
  return MBSR_OK;
}

/* The image into tmp (our own writes: a full disk is an error here, never inside HDF5). */
static int write_image(const char *tmp, const char *path, const void *img, size_t n) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    int e = errno;
    return mbsr_error(MBSR_EIO, "%s: cannot create the checkpoint: %s", path, e == ENOENT ? "directory missing" : strerror(e));
  }
  const char *p = img;
  size_t done = 0;
  int e = 0;
  if (mbsr_fault_write("h5", path)) e = errno;
  while (!e && done < n) {
    ssize_t w = write(fd, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) e = w < 0 ? errno : EIO;
    else done += (size_t)w;
  }
  if (close(fd) != 0 && !e) e = errno;
  if (e) {
    unlink(tmp);
    return mbsr_error(MBSR_EIO, "%s: writing the checkpoint failed after %zu of %zu bytes: %s (temporary removed)", path, done, n,
                      strerror(e));
  }
  return MBSR_OK;
}

/* The in-memory file: HDF5's core driver allocates through these callbacks, and at H5Fclose hands
 * the final image (written by a normal close: superblock flags and checksums final) to us instead
 * of freeing it. (H5Fget_file_image on the open file is not used: HDF5 1.10.8 clears the superblock
 * v2 status flags in that copy without updating its checksum, so the copy cannot be opened.) */
typedef struct {
  void *img;  /* the image handed over at close */
  size_t cap; /* its allocated size (>= the file's end-of-file address) */
} mem_image;
static void *img_malloc(size_t n, H5FD_file_image_op_t op, void *u) {
  (void)op;
  void *p = malloc(n);
  if (p) ((mem_image *)u)->cap = n;
  return p;
}
static void *img_memcpy(void *d, const void *s, size_t n, H5FD_file_image_op_t op, void *u) {
  (void)op, (void)u;
  return memcpy(d, s, n);
}
static void *img_realloc(void *p, size_t n, H5FD_file_image_op_t op, void *u) {
  (void)op;
  void *q = realloc(p, n);
  if (q) ((mem_image *)u)->cap = n;
  return q;
}
static herr_t img_free(void *p, H5FD_file_image_op_t op, void *u) {
  mem_image *k = u;
  if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && p) {
    free(k->img);
    k->img = p;
  } else {
    free(p);
  }
  return 0;
}
static void *img_udata_copy(void *u) { return u; } /* shared by the property list copies */
static herr_t img_udata_free(void *u) {
  (void)u;
  return 0;
}

/* Length of the closed image: the end-of-file address of its superblock (version 2/3, 8-byte
 * offsets: the format of H5F_LIBVER_V18 and later); 0 when it is not such an image. */
static size_t image_length(const mem_image *k) {
  const unsigned char *b = k->img;
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (!b || k->cap < 48 || memcmp(b, sig, 8) || (b[8] != 2 && b[8] != 3) || b[9] != 8) return 0;
  uint64_t eof = 0;
  for (int i = 7; i >= 0; i--) eof = eof << 8 | b[28 + i];
  return eof >= 48 && eof <= k->cap ? (size_t)eof : 0;
}

static int save(const mbsr_model *m, const char *path, const mbsr_ckpt_meta *meta, int with_optimiser) {
  if (m->inference_only) return mbsr_error(MBSR_EINVAL, "%s: an inference-only model cannot be saved (save the model it was copied from)", path);
  char tmp[4096];
  int rc = mbsr_tmp_path(path, tmp, sizeof tmp);
  if (rc) return rc;
  h5quiet q;
  quiet_on(&q);
  /* in memory (core driver, no backing store); the 1.8+ object format: checksummed object headers
   * (readable by HDF5 >= 1.8 and h5py) */
  mem_image k = {NULL, 0};
  H5FD_file_image_callbacks_t cb = {img_malloc, img_memcpy, img_realloc, img_free, img_udata_copy, img_udata_free, &k};
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
      H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110) < 0) {
    if (fapl >= 0) H5Pclose(fapl);
    quiet_off(&q);
    return mbsr_error(MBSR_EHDF5, "%s: cannot set up the HDF5 file access property list", path);
  }
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE); /* the root group without modification times, too */
  if (fcpl >= 0 && H5Pset_obj_track_times(fcpl, 0) < 0) H5Pclose(fcpl), fcpl = -1;
  hid_t f = fcpl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
  if (fcpl >= 0) H5Pclose(fcpl);
  H5Pclose(fapl);
  if (f < 0) {
    quiet_off(&q);
    return mbsr_error(MBSR_EHDF5, "%s: cannot create the checkpoint in memory", path);
  }
  const mbsr_model_config *c = &m->cfg;
  mbsr_ckpt_meta zero;
  if (!meta) {
    memset(&zero, 0, sizeof zero);
    meta = &zero;
  }
  char *json = config_json(c);
  int bad = !json;
  bad |= attr_str(f, "format", CKPT_FORMAT);
  bad |= attr_i64(f, "format_version", CKPT_FORMAT_VERSION);
  bad |= attr_str(f, "mbsr_version", MBSR_VERSION);
  bad |= attr_str(f, "arch", mbsr_arch_name(c->arch));
  bad |= attr_i64(f, "channels", c->channels);
  bad |= attr_i64(f, "blocks", c->blocks);
  bad |= attr_i64(f, "ccnn_c1", c->ccnn_c1);
  bad |= attr_i64(f, "ccnn_c2", c->ccnn_c2);
  bad |= attr_i64(f, "global_residual", c->global_residual);
  bad |= attr_i64(f, "disc_channels", c->disc_channels);
  bad |= attr_i64(f, "disc_blocks", c->disc_blocks);
  bad |= attr_f64(f, "gan_lambda", c->gan_lambda);
  if (json) bad |= attr_str(f, "config", json);
  free(json);
  bad |= attr_str(f, "layout", "activations (N,D,H,W,C) channels-last; conv weight (kd,kh,kw,cin,cout); "
                               "dense weight (cin,cout); patch axes D,H,W = volume k,j,i");
  bad |= attr_i64(f, "num_params", (int64_t)m->num_params);
  int64_t pd[4] = {m->max_batch, m->d, m->h, m->w};
  bad |= attr_write(f, "built_for_batch_d_h_w", H5T_STD_I64LE, H5T_NATIVE_INT64, 4, pd);
  bad |= attr_write(f, "adam_steps", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, m->adam_t);
  bad |= attr_f64(f, "adam_lr", m->last_adam.lr);
  bad |= attr_f64(f, "adam_beta1", m->last_adam.beta1);
  bad |= attr_f64(f, "adam_beta2", m->last_adam.beta2);
  bad |= attr_f64(f, "adam_eps", m->last_adam.eps);
  bad |= attr_i64(f, "step", meta->step);
  bad |= attr_i64(f, "epoch", meta->epoch);
  bad |= attr_i64(f, "best_epoch", meta->best_epoch);
  bad |= attr_i64(f, "bad_epochs", meta->bad_epochs);
  bad |= attr_f64(f, "best_val", meta->best_val);
  bad |= attr_f64(f, "last_val", meta->last_val);
  bad |= attr_write(f, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &meta->seed);
  char info[sizeof meta->info + 1];
  snprintf(info, sizeof info, "%.*s", (int)sizeof meta->info, meta->info);
  bad |= attr_str(f, "info", info);
  bad |= attr_i64(f, "weights_only", !with_optimiser);
  bad |= attr_str(f, "checksums", "fletcher32 on every tensor (one chunk each); checksummed object headers");
  bad |= write_contract(f, mbsr_model_get_contract(m));
  if (!bad) bad |= write_group(f, "params", m, m->params);
  if (!bad && with_optimiser) bad |= write_group(f, "adam_m", m, m->adam_m);
  if (!bad && with_optimiser) bad |= write_group(f, "adam_v", m, m->adam_v);
  if (H5Fclose(f) < 0) bad = 1;
  quiet_off(&q);
  const size_t n = bad ? 0 : image_length(&k);
  rc = !n ? mbsr_error(MBSR_EHDF5, "%s: building the checkpoint in memory failed (HDF5 error or out of memory)", path)
          : write_image(tmp, path, k.img, n);
  free(k.img);
  if (!rc) rc = mbsr_commit_file(tmp, path);
  return rc;
}

int mbsr_checkpoint_save(const mbsr_model *m, const char *path, const mbsr_ckpt_meta *meta) {
  return save(m, path, meta, 1);
}

int mbsr_checkpoint_export(const mbsr_model *m, const char *path) { return save(m, path, NULL, 0); }

/* What HDF5's error stack says after a failed call: a filter (Fletcher32) refused the data
 * (H5E_PLINE, "data error detected by Fletcher32 checksum"), or a metadata checksum failed (object
 * headers of the 1.8+ format: the attributes). */
enum { H5ERR_FILTER = 1, H5ERR_CHECKSUM = 2 };
static herr_t h5err_cb(unsigned n, const H5E_error2_t *e, void *found) {
  (void)n;
  if (e->maj_num == H5E_PLINE || (e->desc && strstr(e->desc, "Fletcher32"))) *(int *)found |= H5ERR_FILTER;
  if (e->desc && strstr(e->desc, "checksum")) *(int *)found |= H5ERR_CHECKSUM;
  return 0;
}
static int h5_error_kind(void) {
  int found = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5err_cb, &found);
  return found;
}

/* Read the stored config. */
static int read_config(hid_t f, const char *path, mbsr_model_config *c) {
  char fmt[64], arch[32];
  if (H5Aexists(f, "format") < 0) {
    const int ck = h5_error_kind() & H5ERR_CHECKSUM;
    return mbsr_error(ck ? MBSR_ECHECKSUM : MBSR_EFORMAT, "%s: the root attributes are unreadable (%s)", path,
                      ck ? "metadata checksum mismatch: corrupt file" : "corrupt file");
  }
  if (attr_read_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, CKPT_FORMAT))
    return mbsr_error(MBSR_EFORMAT, "%s: not an mbsr checkpoint (no format=\"%s\" attribute)", path, CKPT_FORMAT);
  int64_t ver;
  if (attr_read_i64(f, "format_version", &ver) || ver > CKPT_FORMAT_VERSION)
    return mbsr_error(MBSR_EUNSUPPORTED, "%s: checkpoint format version %lld is newer than this mbsr reads (%d)", path,
                      (long long)ver, CKPT_FORMAT_VERSION);
  if (attr_read_str(f, "arch", arch, sizeof arch)) return mbsr_error(MBSR_EFORMAT, "%s: missing attribute 'arch'", path);
  mbsr_arch a;
  if (mbsr_arch_parse(arch, &a)) return mbsr_error(MBSR_EFORMAT, "%s: unknown architecture '%s'", path, arch);
  mbsr_model_config_default(c, a);
  struct {
    const char *name;
    int *dst;
  } ints[] = {{"channels", &c->channels},           {"blocks", &c->blocks},
              {"ccnn_c1", &c->ccnn_c1},             {"ccnn_c2", &c->ccnn_c2},
              {"global_residual", &c->global_residual}, {"disc_channels", &c->disc_channels},
              {"disc_blocks", &c->disc_blocks}};
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    int64_t v;
    if (attr_read_i64(f, ints[i].name, &v)) return mbsr_error(MBSR_EFORMAT, "%s: missing attribute '%s'", path, ints[i].name);
    *ints[i].dst = (int)v;
  }
  double lam;
  if (!attr_read_f64(f, "gan_lambda", &lam)) c->gan_lambda = (float)lam;
  return MBSR_OK;
}

static int open_ckpt(const char *path, hid_t *f) {
  *f = -1;
  if (!mbsr_file_exists(path)) return mbsr_error(MBSR_EIO, "%s: no such checkpoint file", path);
  if (H5Fis_hdf5(path) <= 0)
    return mbsr_error(MBSR_EFORMAT, "%s: not a readable HDF5 file (truncated or corrupt checkpoint?)", path);
  *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (*f < 0) return mbsr_error(MBSR_EFORMAT, "%s: cannot open as HDF5 (truncated or corrupt checkpoint?)", path);
  return MBSR_OK;
}

static int read_group(hid_t f, const char *path, const char *group, mbsr_model *m, float *buf, int required) {
  if (H5Lexists(f, group, H5P_DEFAULT) <= 0) {
    if (required) return mbsr_error(MBSR_EFORMAT, "%s: missing group /%s", path, group);
    memset(buf, 0, sizeof(float) * m->num_params);
    return MBSR_OK;
  }
  hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
  if (g < 0) return mbsr_error(MBSR_EFORMAT, "%s: cannot open group /%s", path, group);
  int rc = MBSR_OK;
  for (int i = 0; i < m->ntensors && !rc; i++) {
    const mbsr__tensor *t = &m->tensors[i];
    if (H5Lexists(g, t->name, H5P_DEFAULT) <= 0) {
      rc = mbsr_error(MBSR_EMISMATCH, "%s: tensor /%s/%s is missing", path, group, t->name);
      break;
    }
    hid_t ds = H5Dopen2(g, t->name, H5P_DEFAULT);
    if (ds < 0) {
      rc = mbsr_error(MBSR_EFORMAT, "%s: cannot open /%s/%s", path, group, t->name);
      break;
    }
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[8] = {0};
    int nd = H5Sget_simple_extent_ndims(sp);
    int same = nd == t->ndim;
    if (nd > 0 && nd <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)t->shape[k];
    if (!same) {
      char have[96] = "", want[96] = "";
      for (int k = 0; k < nd && k < 8; k++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", k ? "x" : "", (unsigned long long)dims[k]);
      for (int k = 0; k < t->ndim; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", k ? "x" : "", t->shape[k]);
      rc = mbsr_error(MBSR_EMISMATCH, "%s: /%s/%s has shape %s, the model expects %s", path, group, t->name, have, want);
    } else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + t->off) < 0) {
      rc = (h5_error_kind() & H5ERR_FILTER)
               ? mbsr_error(MBSR_ECHECKSUM, "%s: /%s/%s: Fletcher32 checksum mismatch: the stored weights are corrupt", path, group, t->name)
               : mbsr_error(MBSR_ETRUNC, "%s: cannot read /%s/%s (truncated or corrupt checkpoint?)", path, group, t->name);
    }
    H5Sclose(sp);
    H5Dclose(ds);
  }
  H5Gclose(g);
  return rc;
}

static int load_into_open(mbsr_model *m, hid_t f, const char *path, mbsr_ckpt_meta *meta) {
  mbsr_model_config c;
  int rc = read_config(f, path, &c);
  if (rc) return rc;
  if (!mbsr__config_equal(&c, &m->cfg)) {
    char a[256], b[256];
    mbsr__config_describe(&c, a, sizeof a);
    mbsr__config_describe(&m->cfg, b, sizeof b);
    return mbsr_error(MBSR_EMISMATCH, "checkpoint %s has %s, model has %s", path, a, b);
  }
  /* read into the model only after everything is known to be readable: params first into the
   * gradient buffer (scratch), then copy */
  if ((rc = read_group(f, path, "params", m, m->grads, 1))) return rc;
  float *mm = malloc(sizeof(float) * m->num_params * 2);
  if (!mm) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  if ((rc = read_group(f, path, "adam_m", m, mm, 0)) || (rc = read_group(f, path, "adam_v", m, mm + m->num_params, 0))) {
    free(mm);
    return rc;
  }
  if (!mbsr_all_finite(m->grads, m->num_params)) {
    free(mm);
    memset(m->grads, 0, sizeof(float) * m->num_params);
    return mbsr_error(MBSR_ENONFINITE, "%s: the checkpoint's weights hold NaN or Inf (corrupt or diverged run)", path);
  }
  mbsr_sr_contract k;
  if ((rc = read_contract(f, path, &k))) {
    free(mm);
    memset(m->grads, 0, sizeof(float) * m->num_params);
    return rc;
  }
  mbsr_model_set_contract(m, &k);
  memcpy(m->params, m->grads, sizeof(float) * m->num_params);
  memcpy(m->adam_m, mm, sizeof(float) * m->num_params * 2); /* adam_m and adam_v are adjacent */
  memset(m->grads, 0, sizeof(float) * m->num_params);
  free(mm);
  int64_t t[2] = {0, 0};
  attr_read_i64n(f, "adam_steps", t, 2);
  m->adam_t[0] = t[0];
  m->adam_t[1] = t[1];
  double v;
  if (!attr_read_f64(f, "adam_lr", &v)) m->last_adam.lr = (float)v;
  if (!attr_read_f64(f, "adam_beta1", &v)) m->last_adam.beta1 = (float)v;
  if (!attr_read_f64(f, "adam_beta2", &v)) m->last_adam.beta2 = (float)v;
  if (!attr_read_f64(f, "adam_eps", &v)) m->last_adam.eps = (float)v;
  m->cfg.gan_lambda = c.gan_lambda;
  if (meta) {
    memset(meta, 0, sizeof *meta);
    attr_read_i64(f, "step", &meta->step);
    attr_read_i64(f, "epoch", &meta->epoch);
    attr_read_i64(f, "best_epoch", &meta->best_epoch);
    attr_read_i64(f, "bad_epochs", &meta->bad_epochs);
    attr_read_f64(f, "best_val", &meta->best_val);
    attr_read_f64(f, "last_val", &meta->last_val);
    int64_t s;
    if (!attr_read_i64(f, "seed", &s)) meta->seed = (uint64_t)s;
    attr_read_str(f, "info", meta->info, sizeof meta->info);
  }
  return MBSR_OK;
}

int mbsr_checkpoint_load_into(mbsr_model *m, const char *path, mbsr_ckpt_meta *meta) {
  if (m->inference_only) return mbsr_error(MBSR_EINVAL, "%s: cannot load into an inference-only model (load, then copy)", path);
  h5quiet q;
  quiet_on(&q);
  hid_t f;
  int rc = open_ckpt(path, &f);
  if (!rc) {
    rc = load_into_open(m, f, path, meta);
    H5Fclose(f);
  }
  quiet_off(&q);
  return rc;
}

/* Parameters a config declares (3x3x3 convs, biases, the discriminator's dense layer): a corrupt
 * file must not make us allocate a network its bytes cannot hold (float32 parameters are stored
 * uncompressed, so the file holds at least 4 bytes per parameter). */
static double declared_params(const mbsr_model_config *c) {
  double p;
  if (c->arch == MBSR_ARCH_CCNN)
    p = 27.0 * c->ccnn_c1 + c->ccnn_c1 + 27.0 * c->ccnn_c1 * c->ccnn_c2 + c->ccnn_c2 + 27.0 * c->ccnn_c2 + 1;
  else
    p = 27.0 * c->channels + c->channels + c->blocks * 2.0 * (27.0 * c->channels * c->channels + c->channels) + 27.0 * c->channels + 1;
  if (c->arch == MBSR_ARCH_GAN)
    p += 2 * (27.0 * c->disc_channels + c->disc_channels) + 27.0 * c->disc_channels * c->disc_channels +
         c->disc_blocks * 2.0 * (27.0 * c->disc_channels * c->disc_channels + c->disc_channels) + c->disc_channels + 1;
  return p;
}

static int check_declared_size(hid_t f, const char *path, const mbsr_model_config *c) {
  hsize_t bytes = 0;
  if (H5Fget_filesize(f, &bytes) < 0) return mbsr_error(MBSR_EFORMAT, "%s: cannot read its size", path);
  const double need = 4.0 * declared_params(c);
  if (need > (double)bytes)
    return mbsr_error(MBSR_EFORMAT, "%s: its architecture declares %.0f parameters (%.0f bytes) but the file holds %llu bytes "
                                    "(truncated or corrupt checkpoint?)",
                      path, need / 4, need, (unsigned long long)bytes);
  return MBSR_OK;
}

int mbsr_checkpoint_load(const char *path, int max_batch, int d, int h, int w, mbsr_model **out,
                         mbsr_ckpt_meta *meta) {
  *out = NULL;
  h5quiet q;
  quiet_on(&q);
  hid_t f;
  int rc = open_ckpt(path, &f);
  if (rc) {
    quiet_off(&q);
    return rc;
  }
  mbsr_model_config c;
  rc = read_config(f, path, &c);
  mbsr_model *m = NULL;
  if (!rc) rc = check_declared_size(f, path, &c);
  if (!rc) rc = mbsr_model_create(&c, max_batch, d, h, w, &m);
  if (!rc) rc = load_into_open(m, f, path, meta);
  H5Fclose(f);
  quiet_off(&q);
  if (rc) {
    mbsr_model_free(m);
    return rc;
  }
  *out = m;
  return MBSR_OK;
}
