/* Structure-aware inputs for the HDF5 readers (see h5edit.h). */
#include "h5edit.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct {
  char obj[256], name[128]; /* attribute `name` of object `obj` ("/" = root) */
} attr_ref;

typedef struct {
  uint8_t *bytes;
  size_t n;
  char objs[256][256]; /* every group and dataset below the root */
  int isds[256];
  int nobj;
  attr_ref attrs[512];
  int nattr;
} tmpl;

static tmpl g_t[8];
static int g_nt = -1;

typedef struct {
  const uint8_t *p;
  size_t n;
} rd;
static uint8_t u8(rd *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}
static uint64_t u64(rd *r) {
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = x << 8 | u8(r);
  return x;
}
static double f64(rd *r) {
  uint64_t b = u64(r);
  double x;
  memcpy(&x, &b, sizeof x);
  return x;
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
  tmpl *t = op;
  (void)loc, (void)info;
  if (t->nattr < 512) {
    snprintf(t->attrs[t->nattr].obj, sizeof t->attrs[0].obj, "%s", t->objs[255]); /* the object being listed */
    snprintf(t->attrs[t->nattr].name, sizeof t->attrs[0].name, "%s", name);
    t->nattr++;
  }
  return 0;
}

static void list_attrs(hid_t f, tmpl *t, const char *obj) {
  hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
  if (o < 0) return;
  snprintf(t->objs[255], sizeof t->objs[255], "%s", obj);
  hsize_t idx = 0;
  H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, attr_cb, t);
  H5Oclose(o);
}

static herr_t obj_cb(hid_t loc, const char *name, const H5O_info_t *info, void *op) {
  tmpl *t = op;
  (void)loc;
  if (!strcmp(name, ".") || t->nobj >= 250) return 0;
  snprintf(t->objs[t->nobj], sizeof t->objs[0], "/%s", name);
  t->isds[t->nobj] = info->type == H5O_TYPE_DATASET;
  t->nobj++;
  return 0;
}

static int load_template(tmpl *t, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  t->bytes = malloc((size_t)n);
  if (!t->bytes || fread(t->bytes, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    return -1;
  }
  fclose(f);
  t->n = (size_t)n;
  hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (h < 0) return -1;
  H5Ovisit2(h, H5_INDEX_NAME, H5_ITER_NATIVE, obj_cb, t, H5O_INFO_BASIC);
  int nobj = t->nobj;
  list_attrs(h, t, "/");
  for (int i = 0; i < nobj; i++) list_attrs(h, t, t->objs[i]);
  H5Fclose(h);
  return 0;
}

static void init(void) {
  if (g_nt >= 0) return;
  g_nt = 0;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  const char *dir = getenv("MBSR_FUZZ_TEMPLATES");
  const char *list = getenv("MBSR_FUZZ_TEMPLATE_NAMES");
  if (!dir || !list) {
    fprintf(stderr, "h5edit: set MBSR_FUZZ_TEMPLATES (a directory) and MBSR_FUZZ_TEMPLATE_NAMES (a,b,...): "
                    "tests/fuzz/run.sh does\n");
    abort();
  }
  char names[1024], path[4096];
  snprintf(names, sizeof names, "%s", list);
  for (char *save = NULL, *tok = strtok_r(names, ",", &save); tok && g_nt < 8; tok = strtok_r(NULL, ",", &save)) {
    snprintf(path, sizeof path, "%s/%s", dir, tok);
    if (load_template(&g_t[g_nt], path)) {
      fprintf(stderr, "h5edit: cannot load template %s\n", path);
      abort();
    }
    g_nt++;
  }
  if (!g_nt) abort();
}

/* Replace attribute a of t with one of the given type and values (file type = memory type). */
static void attr_replace(hid_t f, const attr_ref *a, hid_t type, int len, const void *vals) {
  hid_t o = H5Oopen(f, a->obj, H5P_DEFAULT);
  if (o < 0) return;
  if (H5Aexists(o, a->name) > 0) H5Adelete(o, a->name);
  hsize_t d = (hsize_t)len;
  hid_t sp = len == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
  hid_t at = H5Acreate2(o, a->name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (at >= 0) {
    H5Awrite(at, type, vals);
    H5Aclose(at);
  }
  H5Sclose(sp);
  H5Oclose(o);
}

static const char *pick_ds(const tmpl *t, rd *r) {
  int nds = 0;
  for (int i = 0; i < t->nobj; i++) nds += t->isds[i];
  if (!nds) return NULL;
  int k = u8(r) % nds;
  for (int i = 0; i < t->nobj; i++)
    if (t->isds[i] && k-- == 0) return t->objs[i];
  return NULL;
}

static void apply_ops(hid_t f, const tmpl *t, rd *r) {
  for (int nop = 0; nop < 24 && r->n > 0; nop++) {
    int op = u8(r) % 8;
    const attr_ref *a = t->nattr ? &t->attrs[u8(r) % t->nattr] : NULL;
    switch (op) {
      case 0: { /* numeric attribute: type, length 1..4, values */
        if (!a) break;
        int ty = u8(r) % 4, len = 1 + u8(r) % 4;
        int64_t iv[4];
        double dv[4];
        int32_t i32[4];
        uint8_t b[4];
        for (int i = 0; i < len; i++) {
          uint64_t x = u64(r);
          iv[i] = (int64_t)x;
          memcpy(&dv[i], &x, 8);
          i32[i] = (int32_t)x;
          b[i] = (uint8_t)x;
        }
        if (ty == 0) attr_replace(f, a, H5T_NATIVE_INT64, len, iv);
        else if (ty == 1) attr_replace(f, a, H5T_NATIVE_DOUBLE, len, dv);
        else if (ty == 2) attr_replace(f, a, H5T_NATIVE_INT32, len, i32);
        else attr_replace(f, a, H5T_NATIVE_UINT8, len, b);
        break;
      }
      case 1: { /* string attribute: length 0..255, bytes, padding */
        if (!a) break;
        int len = u8(r), pad = u8(r) % 3;
        char s[257] = {0};
        for (int i = 0; i < len; i++) s[i] = (char)u8(r);
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, (size_t)len + (pad == 0));
        H5Tset_strpad(st, pad == 0 ? H5T_STR_NULLTERM : pad == 1 ? H5T_STR_NULLPAD : H5T_STR_SPACEPAD);
        attr_replace(f, a, st, 1, s);
        H5Tclose(st);
        break;
      }
      case 2: { /* delete an attribute */
        if (!a) break;
        hid_t o = H5Oopen(f, a->obj, H5P_DEFAULT);
        if (o >= 0) {
          if (H5Aexists(o, a->name) > 0) H5Adelete(o, a->name);
          H5Oclose(o);
        }
        break;
      }
      case 3: { /* delete a group or dataset */
        if (!t->nobj) break;
        const char *o = t->objs[u8(r) % t->nobj];
        if (H5Lexists(f, o, H5P_DEFAULT) > 0) H5Ldelete(f, o, H5P_DEFAULT);
        break;
      }
      case 4: { /* replace a dataset: rank 0..5, dims 0..11, type, values from the input */
        const char *ds = pick_ds(t, r);
        if (!ds) break;
        int rank = u8(r) % 6, ty = u8(r) % 5;
        hsize_t dims[5];
        size_t nel = 1;
        for (int i = 0; i < rank; i++) nel *= (dims[i] = u8(r) % 12);
        if (nel > (1 << 15)) break;
        if (H5Lexists(f, ds, H5P_DEFAULT) > 0) H5Ldelete(f, ds, H5P_DEFAULT);
        hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t st = -1, mt;
        if (ty == 4) {
          st = H5Tcopy(H5T_C_S1);
          H5Tset_size(st, 8);
        }
        mt = ty == 0 ? H5T_NATIVE_FLOAT : ty == 1 ? H5T_NATIVE_DOUBLE : ty == 2 ? H5T_NATIVE_INT32 : ty == 3 ? H5T_NATIVE_INT64 : st;
        hid_t d = H5Dcreate2(f, ds, mt, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) {
          size_t es = H5Tget_size(mt);
          uint8_t *buf = calloc(nel ? nel : 1, es);
          for (size_t i = 0; buf && i < nel * es; i++) buf[i] = u8(r);
          if (buf && nel) H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
          free(buf);
          H5Dclose(d);
        }
        if (st >= 0) H5Tclose(st);
        H5Sclose(sp);
        break;
      }
      case 5:   /* fill a dataset with NaN, Inf, a huge value or a value from the input */
      case 7: { /* or poke one element */
        const char *ds = pick_ds(t, r);
        if (!ds || H5Lexists(f, ds, H5P_DEFAULT) <= 0) break;
        int kind = u8(r) % 4;
        double v = kind == 0 ? NAN : kind == 1 ? INFINITY : kind == 2 ? -1e300 : f64(r);
        uint64_t at = u64(r);
        hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
        if (d < 0) break;
        hid_t sp = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        hid_t dt = H5Dget_type(d);
        int is_str = dt >= 0 && H5Tget_class(dt) == H5T_STRING;
        if (dt >= 0) H5Tclose(dt);
        if (n > 0 && n <= (1 << 20) && !is_str) {
          if (op == 5) {
            double *buf = malloc(sizeof(double) * (size_t)n);
            for (hssize_t i = 0; buf && i < n; i++) buf[i] = v;
            if (buf) H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            free(buf);
          } else if (H5Sget_simple_extent_ndims(sp) == 1) {
            hsize_t c = at % (hsize_t)n, one = 1;
            hid_t ms = H5Screate_simple(1, &one, NULL);
            if (H5Sselect_elements(sp, H5S_SELECT_SET, 1, &c) >= 0) H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, sp, H5P_DEFAULT, &v);
            H5Sclose(ms);
          }
        }
        H5Sclose(sp);
        H5Dclose(d);
        break;
      }
      case 6: { /* a new attribute with a name from the input (unknown keys) */
        if (!t->nobj) break;
        attr_ref na;
        snprintf(na.obj, sizeof na.obj, "%s", u8(r) & 1 ? "/" : t->objs[u8(r) % t->nobj]);
        int len = 1 + u8(r) % 12;
        for (int i = 0; i < len; i++) na.name[i] = (char)('a' + u8(r) % 26);
        na.name[len] = 0;
        int64_t v = (int64_t)u64(r);
        attr_replace(f, &na, H5T_NATIVE_INT64, 1, &v);
        break;
      }
    }
  }
}

int h5edit_make(const uint8_t *data, size_t size, char *path, size_t pn) {
  init();
  if (getenv("MBSR_FUZZ_RAW_HDF5")) return fuzz_write("in.h5", data, size, 0, path, pn);
  rd r = {data, size};
  const tmpl *t = &g_t[u8(&r) % g_nt];
  if (fuzz_write("in.h5", t->bytes, t->n, 0, path, pn)) return -1;
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return -1;
  apply_ops(f, t, &r);
  H5Fclose(f);
  return 0;
}

void h5edit_assert_closed(const char *who) {
  ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open) {
    fprintf(stderr, "%s: %zd HDF5 objects left open by the reader\n", who, open);
    abort();
  }
}
