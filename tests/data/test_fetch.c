/* mbsr fetch: unit tests (JSON, selection, channel detection, mirror mapping, manifest, MetaImage
 * reader) and end-to-end fault injection against tests/support/http_fixture_server.py on
 * 127.0.0.1: HTTP 500 (transient and permanent), a connection cut mid-body (resumed with Range),
 * a stalled server (read timeout), a wrong checksum, a ZIP without the red channel, mirrors,
 * re-runs that skip complete items. Nothing here contacts any address but 127.0.0.1. */
#include <stdarg.h>
#include <zlib.h>

#include "fetch_fixture_server.h"
#include "mbsr/volume.h"

static char g_tmp[4096];

/* Run the CLI; output to <tmp>/<tag>.out; returns the exit status. */
static int run_fetch(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_fetch(const char *tag, const char *fmt, ...) {
  char args[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  return mbsr_test_sh("'%s' fetch %s > '%s/%s.out' 2>&1", mbsr_test_bin(), args, g_tmp, tag);
}

static int out_has(const char *tag, const char *needle) {
  char p[4200];
  snprintf(p, sizeof p, "%s/%s.out", g_tmp, tag);
  int c = fx_count(p, needle);
  if (!c) {
    char *b = fx_read(p);
    fprintf(stderr, "  [%s] output lacks \"%s\":\n%s\n", tag, needle, b ? b : "(none)");
    free(b);
  }
  return c;
}

static void outdir(const char *tag, char *buf, size_t n) { snprintf(buf, n, "%s/%s", g_tmp, tag); }

/* Fixture experiments: id -> layout index of the red values (see make_fetch_fixtures.py). */
static int layout_of(const char *id) {
  if (!strcmp(id, "112229814")) return 1; /* zraw */
  if (!strcmp(id, "126862385")) return 2; /* nrrd */
  return 0;                               /* mhd */
}

static void check_af(const char *out, const char *id) {
  char p[4200];
  snprintf(p, sizeof p, "%s/af25/%s_af25.nii.gz", out, id);
  mbsr_volume *v = NULL;
  int rc = mbsr_volume_read(p, NULL, &v);
  MT_ASSERT_INT_EQ(rc, 0);
  if (rc) { fprintf(stderr, "  %s: %s\n", p, mbsr_last_error()); return; }
  MT_ASSERT_INT_EQ(v->nx, 12);
  MT_ASSERT_INT_EQ(v->ny, 10);
  MT_ASSERT_INT_EQ(v->nz, 8);
  int lay = layout_of(id), bad = 0;
  for (int k = 0; k < 8; k++)
    for (int j = 0; j < 10; j++)
      for (int i = 0; i < 12; i++)
        bad += v->data[i + 12 * (j + 10 * k)] != (float)(1000 + i + 20 * j + 300 * k + 7 * lay);
  MT_ASSERT_INT_EQ(bad, 0);
  /* 25 um LPS grid -> 0.025 mm, x and y flipped to RAS */
  MT_ASSERT_NEAR(v->affine[0][0], -0.025, 1e-9);
  MT_ASSERT_NEAR(v->affine[1][1], -0.025, 1e-9);
  MT_ASSERT_NEAR(v->affine[2][2], 0.025, 1e-9);
  mbsr_volume_free(v);
}

/* ------------------------------------------------------------------ units */
static void test_json(void) {
  const char *t = "{\"success\": true, \"msg\": [{\"id\": 156198187, \"s\": \"a\\\"b\\u00b5\\ud83d\\ude00\\n\", "
                  "\"x\": -1.5e3, \"n\": null, \"b\": false, \"big\": 9007199254740993}], \"e\": {}}";
  mbsr_json *j = NULL;
  MT_ASSERT_OK(mbsr_json_parse(t, strlen(t), &j));
  const mbsr_json *row = mbsr_json_at(mbsr_json_get(j, "msg"), 0);
  int64_t id = 0;
  MT_ASSERT_OK(mbsr_json_int64(mbsr_json_get(row, "id"), &id));
  MT_ASSERT_INT_EQ(id, 156198187);
  MT_ASSERT_OK(mbsr_json_int64(mbsr_json_get(row, "big"), &id));
  MT_ASSERT_INT_EQ(id, 9007199254740993LL); /* exact: not through a double */
  CU_ASSERT_STRING_EQUAL(mbsr_json_str(mbsr_json_get(row, "s")), "a\"b\xc2\xb5\xf0\x9f\x98\x80\n");
  CU_ASSERT(mbsr_json_kind(mbsr_json_get(row, "n")) == MBSR_JSON_NULL);
  MT_ASSERT_INT_EQ(mbsr_json_bool(mbsr_json_get(row, "b"), 1), 0);
  MT_ASSERT_INT_EQ(mbsr_json_bool(mbsr_json_get(j, "success"), 0), 1);
  CU_ASSERT(mbsr_json_int64(mbsr_json_get(row, "x"), &id) == 0 && id == -1500);
  MT_ASSERT_INT_EQ(mbsr_json_len(mbsr_json_get(j, "e")), 0);
  CU_ASSERT(mbsr_json_get(j, "missing") == NULL);
  mbsr_json_free(j);
  const char *bad[] = {"{\"a\": }", "[1, 2", "{\"a\" 1}", "\"abc", "[1] x", "{\"a\": tru}", "", "[\"\\q\"]", NULL};
  for (int i = 0; bad[i]; i++) {
    int rc = mbsr_json_parse(bad[i], strlen(bad[i]), &j);
    if (rc != MBSR_EFORMAT) fprintf(stderr, "  accepted bad JSON #%d: %s\n", i, bad[i]);
    CU_ASSERT(rc == MBSR_EFORMAT);
  }
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  CU_ASSERT(mbsr_json_parse(deep, 200, &j) == MBSR_EFORMAT); /* depth limit */
}

static void test_list_and_select(void) {
  const char *ans = "{\"success\":true,\"msg\":[{\"id\":5,\"transgenic-line\":\"\"},{\"id\":3,\"transgenic-line\":\"Cre\"},"
                    "{\"id\":9,\"transgenic-line\":\"\"},{\"id\":1},{\"id\":5,\"transgenic-line\":\"\"}]}";
  int64_t *ids = NULL;
  int n = 0;
  MT_ASSERT_OK(mbsr_fetch_parse_list(ans, strlen(ans), 1, &ids, &n));
  MT_ASSERT_INT_EQ(n, 3); /* Cre row dropped, duplicate merged, sorted */
  CU_ASSERT(ids[0] == 1 && ids[1] == 5 && ids[2] == 9);
  free(ids);
  MT_ASSERT_OK(mbsr_fetch_parse_list(ans, strlen(ans), 0, &ids, &n));
  MT_ASSERT_INT_EQ(n, 4);
  free(ids);
  const char *fail = "{\"success\":false,\"msg\":\"Data Access error\"}";
  CU_ASSERT(mbsr_fetch_parse_list(fail, strlen(fail), 0, &ids, &n) == MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "Data Access error") != NULL);

  int64_t pool[50], a[50], b[50], c[10];
  for (int i = 0; i < 50; i++) pool[i] = 1000 + 7 * (49 - i); /* unsorted input */
  MT_ASSERT_INT_EQ(mbsr_fetch_select(pool, 50, 50, 42, a), 50);
  MT_ASSERT_INT_EQ(mbsr_fetch_select(pool, 50, 50, 42, b), 50);
  CU_ASSERT(memcmp(a, b, sizeof a) == 0); /* deterministic */
  MT_ASSERT_INT_EQ(mbsr_fetch_select(pool, 50, 10, 42, c), 10);
  CU_ASSERT(memcmp(a, c, sizeof c) == 0); /* prefix-stable */
  int64_t s1[50];
  memcpy(s1, a, sizeof s1);
  int perm_ok = 1, moved = 0;
  for (int i = 0; i < 50; i++) {
    int found = 0;
    for (int k = 0; k < 50; k++) found += s1[k] == pool[i];
    perm_ok &= found == 1;
    moved += a[i] != 1000 + 7 * i;
  }
  CU_ASSERT(perm_ok);    /* a permutation of the input */
  CU_ASSERT(moved > 10); /* and actually shuffled */
  MT_ASSERT_INT_EQ(mbsr_fetch_select(pool, 50, 50, 43, b), 50);
  CU_ASSERT(memcmp(a, b, sizeof a) != 0); /* the seed matters */
  MT_ASSERT_INT_EQ(mbsr_fetch_select(pool, 5, 100, 1, b), 5); /* n > available */
}

static void test_find_red(void) {
  const char *a[] = {"resampled_green.mhd", "resampled_green.raw", "resampled_red.mhd", "resampled_red.raw", "resampled_blue.mhd"};
  MT_ASSERT_INT_EQ(mbsr_fetch_find_red(a, 5), 2);
  const char *b[] = {"x/ch2.nrrd", "x/ch1.nrrd", "x/ch3.nrrd"};
  MT_ASSERT_INT_EQ(mbsr_fetch_find_red(b, 3), 1);
  const char *c[] = {"__MACOSX/._red.mhd", "Red_25um.nii.gz", "Green_25um.nii.gz"};
  MT_ASSERT_INT_EQ(mbsr_fetch_find_red(c, 3), 1);
  const char *d[] = {"green.mhd", "green.raw", "blue.mhd", "blue.raw"};
  CU_ASSERT(mbsr_fetch_find_red(d, 4) == MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "no auto-fluorescence (red) channel") != NULL);
  CU_ASSERT(strstr(mbsr_last_error(), "green.mhd") != NULL);
  const char *e[] = {"red.mhd", "channel1.nrrd"};
  CU_ASSERT(mbsr_fetch_find_red(e, 2) == MBSR_EFORMAT); /* ambiguous: refuse to guess */
  const char *f[] = {"readme.txt", "data.bin"};
  CU_ASSERT(mbsr_fetch_find_red(f, 2) == MBSR_EFORMAT);
  CU_ASSERT(strstr(mbsr_last_error(), "no volume") != NULL);
  const char *g[] = {"background_af.mhd", "signal_gfp.mhd"};
  MT_ASSERT_INT_EQ(mbsr_fetch_find_red(g, 2), 0);
  const char *h[] = {"red_green_overlay.mhd", "ch4.mhd"}; /* contradictory / unknown names */
  CU_ASSERT(mbsr_fetch_find_red(h, 2) == MBSR_EFORMAT);
}

static void test_mirror_and_manifest(void) {
  char u[1024];
  MT_ASSERT_OK(mbsr_fetch_mirror_url("http://127.0.0.1:8/", "http://api.brain-map.org/api/v2/x?q=a[b]", u, sizeof u));
  CU_ASSERT_STRING_EQUAL(u, "http://127.0.0.1:8/api/v2/x?q=a[b]");
  MT_ASSERT_OK(mbsr_fetch_mirror_url("/m/dir", "http://download.alleninstitute.org/informatics-archive/a.nrrd", u, sizeof u));
  CU_ASSERT_STRING_EQUAL(u, "/m/dir/informatics-archive/a.nrrd");
  char lu[1024];
  MT_ASSERT_OK(mbsr_fetch_list_url("B", 1, lu, sizeof lu));
  CU_ASSERT(strstr(lu, "transgenic_lines$eq0") != NULL && !strncmp(lu, "B/api/v2/data/query.json?q=service::", 36));
  MT_ASSERT_OK(mbsr_fetch_wkf_url("B", 156198187, lu, sizeof lu));
  CU_ASSERT_STRING_EQUAL(lu, "B/api/v2/data/query.json?q=model::WellKnownFile,rma::criteria,well_known_file_type"
                             "[name$eq'ImagesResampledTo25MicronARA'][attachable_id$eq156198187]");

  char p[4200];
  snprintf(p, sizeof p, "%s/m.tsv", g_tmp);
  mbsr_manifest m = {0}, r2;
  mbsr_manifest_row row;
  memset(&row, 0, sizeof row);
  snprintf(row.id, sizeof row.id, "42");
  snprintf(row.kind, sizeof row.kind, "experiment");
  snprintf(row.message, sizeof row.message, "tab\there\nnewline");
  row.bytes = 1234567890123LL;
  snprintf(row.status, sizeof row.status, "ok");
  MT_ASSERT_OK(mbsr_manifest_put(&m, &row));
  snprintf(row.id, sizeof row.id, "43");
  row.bytes = -1;
  MT_ASSERT_OK(mbsr_manifest_put(&m, &row));
  snprintf(row.status, sizeof row.status, "failed");
  MT_ASSERT_OK(mbsr_manifest_put(&m, &row)); /* replace, not append */
  MT_ASSERT_INT_EQ(m.n, 2);
  MT_ASSERT_OK(mbsr_manifest_write(p, &m));
  MT_ASSERT_OK(mbsr_manifest_read(p, &r2));
  MT_ASSERT_INT_EQ(r2.n, 2);
  MT_ASSERT_INT_EQ(r2.rows[0].bytes, 1234567890123LL);
  MT_ASSERT_INT_EQ(r2.rows[1].bytes, -1);
  CU_ASSERT_STRING_EQUAL(r2.rows[1].status, "failed");
  CU_ASSERT_STRING_EQUAL(r2.rows[0].message, "tab here newline");
  mbsr_manifest_free(&m);
  mbsr_manifest_free(&r2);
  FILE *f = fopen(p, "w");
  fprintf(f, "%s\nonly\ttwo\n", MBSR_MANIFEST_HEADER);
  fclose(f);
  CU_ASSERT(mbsr_manifest_read(p, &r2) == MBSR_EFORMAT);
  snprintf(p, sizeof p, "%s/absent.tsv", g_tmp);
  MT_ASSERT_OK(mbsr_manifest_read(p, &r2));
  MT_ASSERT_INT_EQ(r2.n, 0);
}

/* ------------------------------------------------------------------ MetaImage reader */
static void write_bytes(const char *p, const void *b, size_t n) {
  FILE *f = fopen(p, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
}

static void test_mhd_reader(void) {
  enum { NX = 5, NY = 4, NZ = 3, N = NX * NY * NZ };
  uint16_t u[N];
  for (int i = 0; i < N; i++) u[i] = (uint16_t)(3 * i + 1);
  char h[4200], r[4200];
  /* 1: uint16 LE, 25 um, permuted direction, origin */
  snprintf(r, sizeof r, "%s/a.raw", g_tmp);
  write_bytes(r, u, sizeof u);
  snprintf(h, sizeof h, "%s/a.mhd", g_tmp);
  FILE *f = fopen(h, "w");
  fprintf(f, "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
             "TransformMatrix = 0 1 0 1 0 0 0 0 1\nOffset = 100 200 300\nElementSpacing = 25 50 25\n"
             "DimSize = %d %d %d\nElementType = MET_USHORT\nElementDataFile = a.raw\n", NX, NY, NZ);
  fclose(f);
  mbsr_volume *v = NULL;
  MT_ASSERT_OK(mbsr_mhd_read(h, &v));
  MT_ASSERT_INT_EQ(v->nx, NX);
  MT_ASSERT_INT_EQ(v->nz, NZ);
  MT_ASSERT_NEAR(v->data[7], 22, 0);
  MT_ASSERT_NEAR(v->src_max, 3 * (N - 1) + 1, 0);
  /* axis 0 runs along LPS y (0.025 mm) -> RAS -y; axis 1 along LPS x (0.05 mm) -> RAS -x */
  MT_ASSERT_NEAR(v->affine[1][0], -0.025, 1e-12);
  MT_ASSERT_NEAR(v->affine[0][1], -0.050, 1e-12);
  MT_ASSERT_NEAR(v->affine[2][2], 0.025, 1e-12);
  MT_ASSERT_NEAR(v->affine[0][3], -0.1, 1e-12);
  MT_ASSERT_NEAR(v->affine[1][3], -0.2, 1e-12);
  MT_ASSERT_NEAR(v->affine[2][3], 0.3, 1e-12);
  MT_ASSERT_NEAR(v->vox[0], 0.025, 1e-12);
  MT_ASSERT_NEAR(v->vox[1], 0.05, 1e-12);
  mbsr_volume_free(v);

  /* 2: float32 big-endian, zlib-compressed .zraw, mm spacing */
  float fl[N];
  unsigned char be[N * 4];
  for (int i = 0; i < N; i++) {
    fl[i] = 0.5f * (float)i - 3.f;
    uint32_t w;
    memcpy(&w, &fl[i], 4);
    be[4 * i] = (unsigned char)(w >> 24); be[4 * i + 1] = (unsigned char)(w >> 16);
    be[4 * i + 2] = (unsigned char)(w >> 8); be[4 * i + 3] = (unsigned char)w;
  }
  unsigned char comp[N * 8];
  uLongf cl = sizeof comp;
  CU_ASSERT_FATAL(compress2(comp, &cl, be, sizeof be, 6) == Z_OK);
  snprintf(r, sizeof r, "%s/b.zraw", g_tmp);
  write_bytes(r, comp, cl);
  snprintf(h, sizeof h, "%s/b.mhd", g_tmp);
  f = fopen(h, "w");
  fprintf(f, "ObjectType = Image\nNDims = 3\nBinaryData = True\nElementByteOrderMSB = True\nCompressedData = True\n"
             "CompressedDataSize = %lu\nElementSpacing = 0.1 0.1 0.2\nDimSize = %d %d %d\nElementType = MET_FLOAT\n"
             "ElementDataFile = b.zraw\n", (unsigned long)cl, NX, NY, NZ);
  fclose(f);
  MT_ASSERT_OK(mbsr_mhd_read(h, &v));
  int bad = 0;
  for (int i = 0; i < N; i++) bad += v->data[i] != fl[i];
  MT_ASSERT_INT_EQ(bad, 0);
  MT_ASSERT_NEAR(v->affine[0][0], -0.1, 1e-12);
  MT_ASSERT_NEAR(v->affine[2][2], 0.2, 1e-12);
  mbsr_volume_free(v);

  /* 3: errors name the file: truncated data, multi-channel, missing data file */
  snprintf(r, sizeof r, "%s/c.raw", g_tmp);
  write_bytes(r, u, sizeof u - 10);
  snprintf(h, sizeof h, "%s/c.mhd", g_tmp);
  f = fopen(h, "w");
  fprintf(f, "NDims = 3\nDimSize = %d %d %d\nElementType = MET_USHORT\nElementDataFile = c.raw\n", NX, NY, NZ);
  fclose(f);
  CU_ASSERT(mbsr_mhd_read(h, &v) == MBSR_ETRUNC);
  CU_ASSERT(strstr(mbsr_last_error(), "c.mhd") != NULL);
  f = fopen(h, "w");
  fprintf(f, "NDims = 3\nDimSize = 2 2 2\nElementNumberOfChannels = 3\nElementType = MET_UCHAR\nElementDataFile = c.raw\n");
  fclose(f);
  CU_ASSERT(mbsr_mhd_read(h, &v) == MBSR_EUNSUPPORTED);
  f = fopen(h, "w");
  fprintf(f, "NDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\nElementDataFile = nothere.raw\n");
  fclose(f);
  CU_ASSERT(mbsr_mhd_read(h, &v) == MBSR_EIO);
  /* 4: LOCAL data in one file (.mha style) */
  snprintf(h, sizeof h, "%s/d.mha", g_tmp);
  f = fopen(h, "wb");
  fprintf(f, "NDims = 3\nDimSize = %d %d %d\nElementType = MET_USHORT\nElementDataFile = LOCAL\n", NX, NY, NZ);
  fwrite(u, 1, sizeof u, f);
  fclose(f);
  MT_ASSERT_OK(mbsr_mhd_read(h, &v));
  MT_ASSERT_NEAR(v->data[N - 1], 3 * (N - 1) + 1, 0);
  mbsr_volume_free(v);
}

/* ------------------------------------------------------------------ end to end */
static void test_happy_path_and_rerun(void) {
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "happy", NULL) == 0);
  char out[4200];
  outdir("happy", out, sizeof out);
  double t0 = mbsr_now();
  int rc = run_fetch("happy1", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100 --annotations", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("happy1", "fetch: 0 of 7 items failed"));
  CU_ASSERT(out_has("happy1", "fetch: [7/7]"));
  CU_ASSERT(out_has("happy1", "/s)  elapsed"));
  CU_ASSERT(out_has("happy1", " ETA "));
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  const char *ids[] = {"100140756", "100141219", "112229814", "126862385", "156198187"};
  for (int i = 0; i < 5; i++) {
    CU_ASSERT_STRING_EQUAL(fx_status(out, ids[i], NULL, 0), "ok");
    check_af(out, ids[i]);
  }
  CU_ASSERT_STRING_EQUAL(fx_status(out, "180435652", NULL, 0), "absent"); /* Cre line: not selected */
  int downloads = fx_count(s.log, "well_known_file_download/");
  MT_ASSERT_INT_EQ(downloads, 5);

  /* re-run: everything verified and skipped, no download */
  rc = run_fetch("happy2", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100 --annotations", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("happy2", "0 of 7 items failed (0 downloaded or converted, 7 already complete"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "well_known_file_download/"), downloads);
  MT_ASSERT_INT_EQ(fx_count(s.log, "average_template_100"), 1);

  /* a corrupted archive and a deleted NIfTI: detected, repaired, the rest skipped */
  char p[4400];
  snprintf(p, sizeof p, "%s/archives/100141219_ImagesResampledTo25MicronARA.zip", out);
  FILE *f = fopen(p, "r+b");
  fseek(f, 100, SEEK_SET);
  fputc(0x5a ^ 0xff, f);
  fclose(f);
  snprintf(p, sizeof p, "%s/af25/156198187_af25.nii.gz", out);
  unlink(p);
  rc = run_fetch("happy3", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100 --annotations", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("happy3", "(2 downloaded or converted, 5 already complete"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "well_known_file_download/"), downloads + 1); /* only the corrupted one */
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  check_af(out, "156198187");
  check_af(out, "100141219");
  fx_server_stop(&s);
  fprintf(stderr, "  happy path + 2 re-runs: %.2f s\n", mbsr_now() - t0);
}

static void test_http_500(void) {
  const char *faults[] = {"well_known_file_download=500:2", "average_template_100=500", NULL};
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "e500", faults) == 0);
  char out[4200], msg[512];
  outdir("e500", out, sizeof out);
  int rc = run_fetch("e500a", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100 --retries 2 --backoff 0.05", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("e500a", "fetch: 1 of 6 items failed"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "-> 500"), 2 + 3); /* two transient, three on the template */
  CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_100", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "HTTP 500") != NULL && strstr(msg, "after 3 attempts") != NULL);
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  char p[4400];
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd", out);
  CU_ASSERT(!mbsr_file_exists(p));
  CU_ASSERT_STRING_EQUAL(fx_status(out, "100140756", NULL, 0), "ok"); /* the one that got two 500s */
  fx_server_stop(&s);
  /* the server recovers: only the failed item is fetched */
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "e500b", NULL) == 0);
  rc = run_fetch("e500b", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100 --retries 2 --backoff 0.05", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("e500b", "0 of 6 items failed (1 downloaded or converted, 5 already complete"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "GET "), 2); /* listing + the template */
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
}

static void test_cut_and_resume(void) {
  /* 100140756's archive is cut once mid-body: the retry continues it with Range */
  const char *faults[] = {"well_known_file_download/272821309=cut:1", "average_template_100=cut", NULL};
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "cut", faults) == 0);
  char out[4200], msg[512], p[4400], fx[4400], rq0[160];
  outdir("cut", out, sizeof out);
  int rc = run_fetch("cut1", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100 --retries 1 --backoff 0.05", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("cut1", "fetch: 1 of 6 items failed"));
  CU_ASSERT_STRING_EQUAL(fx_status(out, "100140756", msg, sizeof msg), "ok");
  CU_ASSERT(strstr(msg, "2 attempt(s), resumed") != NULL);
  CU_ASSERT(fx_count(s.log, "well_known_file_download/272821309 range=bytes=1518- fault=- -> 206 if-range=\"") == 1);
  check_af(out, "100140756");
  /* the template is cut on every attempt: failed, a .part of half the size kept for later */
  CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_100", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "connection cut") != NULL);
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd.part", out);
  snprintf(fx, sizeof fx, "%s/informatics-archive/current-release/mouse_ccf/average_template/average_template_100.nrrd",
           fx_server_root());
  int64_t full = fx_size(fx);
  int64_t half1 = full / 2, kept = half1 + (full - half1) / 2; /* cut, then the resume cut again */
  MT_ASSERT_INT_EQ(fx_size(p), kept);
  snprintf(rq0, sizeof rq0, "average_template_100.nrrd range=bytes=%lld- fault=cut -> 206", (long long)half1);
  MT_ASSERT_INT_EQ(fx_count(s.log, rq0), 1);
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
  /* a later run resumes the .part with Range and completes it */
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "cut2", NULL) == 0);
  rc = run_fetch("cut2", "--out '%s' --mirror %s --n 5 --seed 3 --templates 100", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  char rq[128];
  snprintf(rq, sizeof rq, "average_template_100.nrrd range=bytes=%lld- fault=- -> 206", (long long)kept);
  MT_ASSERT_INT_EQ(fx_count(s.log, rq), 1);
  CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_100", msg, sizeof msg), "ok");
  CU_ASSERT(strstr(msg, "resumed") != NULL);
  char h1[65], h2[65];
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd", out);
  MT_ASSERT_OK(mbsr_sha256_file(p, h1, NULL));
  MT_ASSERT_OK(mbsr_sha256_file(fx, h2, NULL));
  CU_ASSERT_STRING_EQUAL(h1, h2);
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
}

static void test_resume_server_ignores_range(void) {
  /* a .part exists but the server answers 200 with the whole file: restart from byte 0 */
  const char *faults[] = {"average_template_100=norange", NULL};
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "norange", faults) == 0);
  char out[4200], p[4400], fx[4400];
  outdir("norange", out, sizeof out);
  mbsr_mkdir_p(out);
  snprintf(p, sizeof p, "%s/reference", out);
  mbsr_mkdir_p(p);
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd.part", out);
  write_bytes(p, "garbage garbage garbage", 23);
  int rc = run_fetch("norange", "--out '%s' --mirror %s --n 0 --templates 100", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(fx_count(s.log, "range=bytes=23- fault=norange -> 200") == 1);
  char msg[512];
  CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_100", msg, sizeof msg), "ok");
  CU_ASSERT(strstr(msg, "resumed") == NULL); /* restarted from byte 0, not resumed */
  snprintf(fx, sizeof fx, "%s/informatics-archive/current-release/mouse_ccf/average_template/average_template_100.nrrd",
           fx_server_root());
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd", out);
  MT_ASSERT_INT_EQ(fx_size(p), fx_size(fx));
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
}

static void test_stale_part_if_range(void) {
  /* a .part left by an older version of the file: its validator no longer matches, the server
   * sends everything (If-Range), and the result is the current file, not a splice */
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "ifrange", NULL) == 0);
  char out[4200], p[4400], fx[4400];
  outdir("ifrange", out, sizeof out);
  snprintf(p, sizeof p, "%s/reference", out);
  mbsr_mkdir_p(p);
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd.part", out);
  char junk[100];
  memset(junk, 'j', sizeof junk);
  write_bytes(p, junk, sizeof junk);
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd.validator.part", out);
  write_bytes(p, "\"0123456789abcdef\"\n", 19);
  int rc = run_fetch("ifrange", "--out '%s' --mirror %s --n 0 --templates 100", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  MT_ASSERT_INT_EQ(fx_count(s.log, "range=bytes=100- fault=- -> 200 if-range=\"0123456789abcdef\""), 1);
  CU_ASSERT(!mbsr_file_exists(p)); /* validator gone with the part */
  char h1[65], h2[65];
  snprintf(fx, sizeof fx, "%s/informatics-archive/current-release/mouse_ccf/average_template/average_template_100.nrrd",
           fx_server_root());
  snprintf(p, sizeof p, "%s/reference/average_template_100.nrrd", out);
  MT_ASSERT_OK(mbsr_sha256_file(p, h1, NULL));
  MT_ASSERT_OK(mbsr_sha256_file(fx, h2, NULL));
  CU_ASSERT_STRING_EQUAL(h1, h2);
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
}

static void test_corrupt_archive_removed(void) {
  /* the server delivers a damaged ZIP (no checksum is published for archives): the item fails,
   * the archive is removed, and the next run downloads it again */
  fx_server s;
  char out[4200], msg[512], p[4400], src[4400], bad[4400];
  outdir("badzip", out, sizeof out);
  snprintf(src, sizeof src, "%s/api/v2/well_known_file_download/272821309", fx_server_root());
  /* a private server root whose archive for 100140756 is truncated */
  char root[4200];
  snprintf(root, sizeof root, "%s/badroot", g_tmp);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cp -r '%s' '%s'", fx_server_root(), root), 0);
  snprintf(bad, sizeof bad, "%s/api/v2/well_known_file_download/272821309", root);
  MT_ASSERT_INT_EQ(truncate(bad, 2000), 0);
  setenv("MBSR_FETCH_TEST_ROOT", root, 1);
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "badzip", NULL) == 0);
  unsetenv("MBSR_FETCH_TEST_ROOT");
  int rc = run_fetch("badzip", "--out '%s' --mirror %s --n 5 --seed 3", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT_STRING_EQUAL(fx_status(out, "100140756", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "archive removed") != NULL && strstr(msg, "not a readable ZIP") != NULL);
  snprintf(p, sizeof p, "%s/archives/100140756_ImagesResampledTo25MicronARA.zip", out);
  CU_ASSERT(!mbsr_file_exists(p));
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "badzip2", NULL) == 0);
  rc = run_fetch("badzip2", "--out '%s' --mirror %s --n 5 --seed 3", out, s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("badzip2", "(1 downloaded or converted, 4 already complete"));
  check_af(out, "100140756");
  fx_server_stop(&s);
}

static void test_slow_server(void) {
  const char *faults[] = {"well_known_file_download/272821310=stall", "attachable_id$eq156198187=hang", NULL};
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "slow", faults) == 0);
  char out[4200], msg[512];
  outdir("slow", out, sizeof out);
  double t0 = mbsr_now();
  int rc = run_fetch("slow", "--out '%s' --mirror %s --n 5 --seed 3 --timeout 1 --retries 1 --backoff 0.05", out, s.base);
  double el = mbsr_now() - t0;
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("slow", "fetch: 2 of 5 items failed"));
  /* body stalls after 10 bytes */
  CU_ASSERT_STRING_EQUAL(fx_status(out, "100141219", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "timed out") != NULL && strstr(msg, "after 2 attempts") != NULL);
  /* the query is accepted and never answered */
  CU_ASSERT_STRING_EQUAL(fx_status(out, "156198187", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "well-known-file query") != NULL && strstr(msg, "timed out") != NULL);
  fprintf(stderr, "  stalled servers: run took %.2f s (2 items x 2 attempts x 1 s read timeout)\n", el);
  CU_ASSERT(el >= 4.0 && el < 20.0); /* the timeouts fired, twice each (a stall lasts 60 s), nothing hung */
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  fx_server_stop(&s);
}

static void test_wrong_checksum(void) {
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "sha", NULL) == 0);
  char out[4200], msg[512], p[4400];
  outdir("sha", out, sizeof out);
  /* the fixture's average_template_25.nrrd cannot have the published SHA-256 */
  int rc = run_fetch("sha", "--out '%s' --mirror %s --n 0 --templates 25,100 --retries 0", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("sha", "fetch: 1 of 2 items failed"));
  CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_25", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "sha256 mismatch") != NULL &&
            strstr(msg, "e4a2b483e842b4c8c1b5452d940ea59e14bc1ebaa38fe6a9c3bacac6db2a8f4b") != NULL);
  snprintf(p, sizeof p, "%s/reference/average_template_25.nrrd", out);
  CU_ASSERT(!mbsr_file_exists(p));
  snprintf(p, sizeof p, "%s/reference/average_template_25.nrrd.part", out);
  CU_ASSERT(!mbsr_file_exists(p)); /* wrong content is not kept for a resume */
  CU_ASSERT_STRING_EQUAL(fx_status(out, "average_template_100", NULL, 0), "ok");
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  /* the HTTP layer itself: a right and a wrong expectation */
  char url[512], hex[65], fx[4400];
  snprintf(fx, sizeof fx, "%s/informatics-archive/current-release/mouse_ccf/average_template/average_template_100.nrrd",
           fx_server_root());
  MT_ASSERT_OK(mbsr_sha256_file(fx, hex, NULL));
  snprintf(url, sizeof url, "%s/informatics-archive/current-release/mouse_ccf/average_template/average_template_100.nrrd", s.base);
  mbsr_http_opts o;
  mbsr_http_opts_default(&o);
  o.retries = 0;
  mbsr_http_result r;
  snprintf(p, sizeof p, "%s/direct.nrrd", out);
  MT_ASSERT_OK(mbsr_http_download(url, p, hex, &o, &r));
  CU_ASSERT_STRING_EQUAL(r.sha256, hex);
  unlink(p);
  hex[0] = hex[0] == '0' ? '1' : '0';
  CU_ASSERT(mbsr_http_download(url, p, hex, &o, &r) == MBSR_ECHECKSUM);
  CU_ASSERT(!mbsr_file_exists(p));
  fx_server_stop(&s);
}

static void test_no_red_channel_select_any(void) {
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "any", NULL) == 0);
  char out[4200], msg[512];
  outdir("any", out, sizeof out);
  int rc = run_fetch("any", "--out '%s' --mirror %s --select any --n 7", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("any", "fetch: 1 of 7 items failed"));
  CU_ASSERT(out_has("any", "7 experiments listed, 7 selected (any"));
  CU_ASSERT_STRING_EQUAL(fx_status(out, "263780729", msg, sizeof msg), "failed");
  CU_ASSERT(strstr(msg, "no auto-fluorescence (red) channel") != NULL && strstr(msg, "resampled_green.mhd") != NULL);
  CU_ASSERT_STRING_EQUAL(fx_status(out, "180435652", NULL, 0), "ok"); /* Cre line, selected by 'any' */
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
  /* re-run: the verified archive is not downloaded again, the conversion fails again */
  int before = fx_count(s.log, "well_known_file_download/");
  rc = run_fetch("any2", "--out '%s' --mirror %s --select any --n 7", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("any2", "1 of 7 items failed (0 downloaded or converted, 6 already complete"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "well_known_file_download/"), before);
  fx_server_stop(&s);
}

static void test_mirror_dir(void) {
  /* a directory mirror for the files, queries still through --api */
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "mdir", NULL) == 0);
  char out[4200], mirror[4200];
  outdir("mdir", out, sizeof out);
  int rc = run_fetch("mdir", "--out '%s' --mirror '%s' --api %s --n 3 --seed 9 --templates 100", out, fx_server_root(), s.base);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("mdir", "fetch: 0 of 4 items failed"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "well_known_file_download/"), 0); /* files came from the directory */
  MT_ASSERT_INT_EQ(fx_count(s.log, "WellKnownFile"), 3);
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);

  /* a fully offline mirror: the query answers saved as files named like `wget -x -nH` does */
  outdir("mirror", mirror, sizeof mirror);
  MT_ASSERT_INT_EQ(mbsr_test_sh("cp -r '%s/.' '%s'", fx_server_root(), mirror), 0);
  mbsr_http_opts o;
  mbsr_http_opts_default(&o);
  char canon[1024], from[1024], to[8192];
  int64_t ids[] = {100140756, 100141219, 112229814, 126862385, 156198187};
  char qdir[4400];
  snprintf(qdir, sizeof qdir, "%s/api/v2/data", mirror);
  MT_ASSERT_OK(mbsr_mkdir_p(qdir));
  for (int i = -1; i < 5; i++) {
    if (i < 0) mbsr_fetch_list_url(MBSR_ALLEN_API, 1, canon, sizeof canon);
    else mbsr_fetch_wkf_url(MBSR_ALLEN_API, ids[i], canon, sizeof canon);
    mbsr_fetch_mirror_url(s.base, canon, from, sizeof from);
    mbsr_fetch_mirror_url(mirror, canon, to, sizeof to);
    char *body = NULL;
    size_t len = 0;
    MT_ASSERT_OK(mbsr_http_get(from, &o, &body, &len));
    FILE *wf = fopen(to, "wb");
    CU_ASSERT_FATAL(wf != NULL);
    fwrite(body, 1, len, wf);
    fclose(wf);
    free(body);
  }
  fx_server_stop(&s); /* nothing listens any more */
  outdir("offline", out, sizeof out);
  rc = run_fetch("offline", "--out '%s' --mirror '%s' --n 3 --seed 9 --templates 100 --retries 0", out, mirror);
  MT_ASSERT_INT_EQ(rc, 0);
  CU_ASSERT(out_has("offline", "fetch: 0 of 4 items failed"));
  MT_ASSERT_INT_EQ(fx_check_truth(out), 0);
}

static void test_listing_fails_and_usage(void) {
  const char *faults[] = {"mouse_connectivity_injection_structure=500", NULL};
  fx_server s;
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "listfail", faults) == 0);
  char out[4200];
  outdir("listfail", out, sizeof out);
  int rc = run_fetch("listfail", "--out '%s' --mirror %s --n 3 --retries 1 --backoff 0.05", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("listfail", "listing experiments"));
  CU_ASSERT(out_has("listfail", "HTTP 500"));
  MT_ASSERT_INT_EQ(fx_count(s.log, "-> 500"), 2);
  fx_server_stop(&s);
  /* an empty listing is an error, not a successful run of nothing */
  const char *empty[] = {"mouse_connectivity_injection_structure=empty", NULL};
  CU_ASSERT_FATAL(fx_server_start(&s, g_tmp, "listempty", empty) == 0);
  outdir("listempty", out, sizeof out);
  rc = run_fetch("listempty", "--out '%s' --mirror %s --n 3", out, s.base);
  MT_ASSERT_INT_EQ(rc, 1);
  CU_ASSERT(out_has("listempty", "returned no experiment"));
  fx_server_stop(&s);

  MT_ASSERT_INT_EQ(run_fetch("u1", "--out x --bogus"), 2);
  CU_ASSERT(out_has("u1", "unknown option '--bogus'"));
  CU_ASSERT(out_has("u1", "see: mbsr fetch --help"));
  MT_ASSERT_INT_EQ(run_fetch("u2", "--n 3"), 2);
  CU_ASSERT(out_has("u2", "--out DIR is required"));
  MT_ASSERT_INT_EQ(run_fetch("u3", "--out x --select mutant"), 2);
  MT_ASSERT_INT_EQ(run_fetch("u4", "--out x --templates 30"), 2);
  MT_ASSERT_INT_EQ(run_fetch("u5", "--out"), 2);
  CU_ASSERT(out_has("u5", "needs a value"));
  MT_ASSERT_INT_EQ(run_fetch("u6", "--help"), 0);
  CU_ASSERT(out_has("u6", "usage: mbsr fetch --out DIR"));
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fx_no_proxy();
  snprintf(g_tmp, sizeof g_tmp, "%s", mbsr_test_tmpdir());
  static const mbsr_test_case cases[] = {
      {"json parser", test_json},
      {"listing and seeded selection", test_list_and_select},
      {"red channel detection", test_find_red},
      {"mirror mapping and manifest", test_mirror_and_manifest},
      {"MetaImage reader", test_mhd_reader},
      {"happy path, re-run skips, repairs", test_happy_path_and_rerun},
      {"HTTP 500 transient and permanent", test_http_500},
      {"connection cut: resume with Range", test_cut_and_resume},
      {"server ignoring Range", test_resume_server_ignores_range},
      {"stale .part: If-Range restarts", test_stale_part_if_range},
      {"damaged ZIP removed, fetched again", test_corrupt_archive_removed},
      {"stalled server: read timeout", test_slow_server},
      {"wrong checksum", test_wrong_checksum},
      {"ZIP without red channel, --select any", test_no_red_channel_select_any},
      {"directory mirrors", test_mirror_dir},
      {"listing failure and usage errors", test_listing_fails_and_usage},
      {NULL, NULL}};
  return mbsr_test_main("fetch", cases);
}
