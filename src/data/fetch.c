/* mbsr fetch: list AMBCA experiments through the Allen RMA API, select N with a seeded rule,
 * download each experiment's ImagesResampledTo25MicronARA archive (and optional reference
 * volumes), find the red (auto-fluorescence) channel in it and convert it to NIfTI.
 * Ranks take items round-robin, in rounds: after each round the results are gathered on rank 0,
 * which prints one progress line per item and rewrites the manifest atomically.
 * Facts about the API: ../shared/docs/allen-api.md. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "mbsr/fetch.h"
#include "mbsr/volume.h"

/* Published checksums (allen-api.md). */
static const struct {
  const char *id, *sha256;
} g_known_sha[] = {
    {"average_template_25", "e4a2b483e842b4c8c1b5452d940ea59e14bc1ebaa38fe6a9c3bacac6db2a8f4b"},
    {"annotation_25", "c620cbcc562183e4dcd40250d440130501781f74b41de35b1c1bdabace290c42"},
};

static const char *known_sha(const char *id) {
  for (size_t i = 0; i < sizeof g_known_sha / sizeof *g_known_sha; i++)
    if (!strcmp(g_known_sha[i].id, id)) return g_known_sha[i].sha256;
  return NULL;
}

void mbsr_fetch_opts_default(mbsr_fetch_opts *o) {
  memset(o, 0, sizeof *o);
  o->n = 100;
  o->seed = 1;
  o->wildtype_only = 1;
  mbsr_http_opts_default(&o->http);
}

/* ------------------------------------------------------------------ URLs */
int mbsr_fetch_list_url(const char *base, int wildtype_only, char *url, size_t n) {
  int w;
  if (wildtype_only)
    w = snprintf(url, n,
                 "%s/api/v2/data/query.json?q=service::mouse_connectivity_injection_structure"
                 "[injection_structures$eqgrey][primary_structure_only$eqtrue][transgenic_lines$eq0]",
                 base);
  else
    w = snprintf(url, n,
                 "%s/api/v2/data/query.json?q=model::SectionDataSet,rma::criteria,[failed$eqfalse],"
                 "products[id$in5,31],rma::options[num_rows$eq'all'][count$eqfalse]",
                 base);
  return (w < 0 || (size_t)w >= n) ? mbsr_error(MBSR_ERANGE, "URL too long") : 0;
}

int mbsr_fetch_wkf_url(const char *base, int64_t id, char *url, size_t n) {
  int w = snprintf(url, n,
                   "%s/api/v2/data/query.json?q=model::WellKnownFile,rma::criteria,"
                   "well_known_file_type[name$eq'ImagesResampledTo25MicronARA'][attachable_id$eq%lld]",
                   base, (long long)id);
  return (w < 0 || (size_t)w >= n) ? mbsr_error(MBSR_ERANGE, "URL too long") : 0;
}

static int is_url(const char *s) { return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8); }

int mbsr_fetch_mirror_url(const char *mirror, const char *url, char *out, size_t n) {
  const char *path = url;
  if (is_url(url)) {
    const char *h = strstr(url, "://") + 3;
    path = strchr(h, '/');
    if (!path) path = "/";
  }
  size_t ml = strlen(mirror);
  while (ml > 1 && mirror[ml - 1] == '/') ml--;
  int w = snprintf(out, n, "%.*s%s", (int)ml, mirror, path);
  return (w < 0 || (size_t)w >= n) ? mbsr_error(MBSR_ERANGE, "%s: mirrored URL too long", url) : 0;
}

/* ------------------------------------------------------------------ listing and selection */
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* An RMA answer: {"success": true, "msg": [...]}; on failure msg is a string. */
static int rma_msg(const char *json, size_t len, mbsr_json **root, const mbsr_json **msg) {
  int rc = mbsr_json_parse(json, len, root);
  if (rc) return mbsr_error_prefix(rc, "RMA answer: ");
  const mbsr_json *ok = mbsr_json_get(*root, "success");
  const mbsr_json *m = mbsr_json_get(*root, "msg");
  if (!mbsr_json_bool(ok, 0)) {
    const char *why = mbsr_json_str(m);
    rc = mbsr_error(MBSR_EFORMAT, "RMA answer: success is not true%s%s", why ? ": " : "", why ? why : "");
  } else if (!m || mbsr_json_kind(m) != MBSR_JSON_ARRAY) {
    rc = mbsr_error(MBSR_EFORMAT, "RMA answer: no \"msg\" array");
  }
  if (rc) {
    mbsr_json_free(*root);
    *root = NULL;
    return rc;
  }
  *msg = m;
  return 0;
}

int mbsr_fetch_parse_list(const char *json, size_t len, int wildtype_only, int64_t **ids_out, int *n_out) {
  mbsr_json *root;
  const mbsr_json *msg;
  int rc = rma_msg(json, len, &root, &msg);
  if (rc) return rc;
  size_t nm = mbsr_json_len(msg);
  int64_t *ids = malloc((nm + 1) * sizeof *ids);
  if (!ids) { mbsr_json_free(root); return mbsr_error(MBSR_ENOMEM, "fetch: out of memory"); }
  int n = 0;
  for (size_t i = 0; i < nm; i++) {
    const mbsr_json *row = mbsr_json_at(msg, i);
    int64_t id;
    if (mbsr_json_int64(mbsr_json_get(row, "id"), &id) != 0) {
      rc = mbsr_error(MBSR_EFORMAT, "RMA answer: row %zu has no integer \"id\"", i);
      break;
    }
    if (wildtype_only) { /* defence in depth: the service was asked for transgenic_lines=0 */
      const char *tl = mbsr_json_str(mbsr_json_get(row, "transgenic-line"));
      if (!tl) tl = mbsr_json_str(mbsr_json_get(row, "transgenic_line"));
      if (tl && tl[0]) continue;
    }
    ids[n++] = id;
  }
  mbsr_json_free(root);
  if (rc) { free(ids); return rc; }
  qsort(ids, (size_t)n, sizeof *ids, cmp_i64);
  int u = 0;
  for (int i = 0; i < n; i++)
    if (u == 0 || ids[i] != ids[u - 1]) ids[u++] = ids[i];
  *ids_out = ids;
  *n_out = u;
  return 0;
}

int mbsr_fetch_select(const int64_t *ids, int nids, int n, uint64_t seed, int64_t *out) {
  if (n > nids) n = nids;
  int64_t *perm = malloc(((size_t)nids + 1) * sizeof *perm);
  if (!perm) return mbsr_error(MBSR_ENOMEM, "fetch: out of memory");
  memcpy(perm, ids, (size_t)nids * sizeof *perm);
  qsort(perm, (size_t)nids, sizeof *perm, cmp_i64);
  mbsr_rng *r = mbsr_rng_new(seed);
  if (!r) { free(perm); return mbsr_error(MBSR_ENOMEM, "fetch: out of memory"); }
  /* forward Fisher-Yates: position i takes a uniform pick among the remaining; prefix-stable */
  for (int i = 0; i < n && i < nids - 1; i++) {
    int j = i + (int)mbsr_rng_uint(r, (uint64_t)(nids - i));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  mbsr_rng_free(r);
  memcpy(out, perm, (size_t)n * sizeof *out);
  free(perm);
  return n;
}

/* ------------------------------------------------------------------ channel detection */
static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcasecmp(s + a - b, suf);
}

static const char *vol_ext(const char *name) {
  static const char *exts[] = {".mhd", ".nrrd", ".nhdr", ".nii.gz", ".nii", NULL};
  for (int i = 0; exts[i]; i++)
    if (has_suffix(name, exts[i])) return exts[i];
  return NULL;
}

/* 0 = none, 1 = red/auto-fluorescence, 2 = green, 3 = blue */
static int channel_of(const char *name) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  char low[256];
  size_t n = 0;
  for (; base[n] && n < sizeof low - 1; n++) low[n] = (char)tolower((unsigned char)base[n]);
  low[n] = 0;
  const char *e = vol_ext(low);
  if (e) low[n - strlen(e)] = 0;
  int found = 0;
  char *save = NULL;
  for (char *tok = strtok_r(low, "_-. ", &save); tok; tok = strtok_r(NULL, "_-. ", &save)) {
    int c = 0;
    char word[64];
    snprintf(word, sizeof word, "%s", tok);
    size_t wl = strlen(word);
    /* "ch1", "chan01", "channel1", "c1": the trailing number names the channel */
    size_t d = wl;
    while (d > 0 && isdigit((unsigned char)word[d - 1])) d--;
    if (d < wl && d > 0) {
      int num = atoi(word + d);
      word[d] = 0;
      if (!strcmp(word, "ch") || !strcmp(word, "chan") || !strcmp(word, "channel") || !strcmp(word, "c"))
        c = (num >= 1 && num <= 3) ? num : 0;
      else if (!strcmp(word, "red")) c = 1; /* "red25" */
      else if (!strcmp(word, "green")) c = 2;
      else if (!strcmp(word, "blue")) c = 3;
    } else if (!strcmp(word, "red") || !strcmp(word, "r") || !strcmp(word, "autofluorescence") ||
               !strcmp(word, "autofluo") || !strcmp(word, "af") || !strcmp(word, "background")) {
      c = 1;
    } else if (!strcmp(word, "green") || !strcmp(word, "g") || !strcmp(word, "gfp") || !strcmp(word, "signal")) {
      c = 2;
    } else if (!strcmp(word, "blue") || !strcmp(word, "b") || !strcmp(word, "dapi")) {
      c = 3;
    }
    if (c && found && c != found) return 0; /* contradictory name */
    if (c) found = c;
  }
  return found;
}

static int is_junk_entry(const char *name) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  return !strncmp(name, "__MACOSX/", 9) || base[0] == '.' || base[0] == 0;
}

int mbsr_fetch_find_red(const char *const *names, int n) {
  int pick = -1, nred = 0, nvol = 0;
  char seen[900] = "";
  size_t sl = 0;
  for (int i = 0; i < n; i++) {
    if (is_junk_entry(names[i]) || !vol_ext(names[i])) continue;
    nvol++;
    if (sl < sizeof seen - 80) sl += (size_t)snprintf(seen + sl, sizeof seen - sl, "%s%s", sl ? ", " : "", names[i]);
    if (channel_of(names[i]) == 1) {
      nred++;
      pick = i;
    }
  }
  if (nred == 1) return pick;
  if (nvol == 0) {
    sl = 0;
    for (int i = 0; i < n && sl < sizeof seen - 80; i++)
      sl += (size_t)snprintf(seen + sl, sizeof seen - sl, "%s%s", sl ? ", " : "", names[i]);
    return mbsr_error(MBSR_EFORMAT, "no volume (.mhd/.nrrd/.nhdr/.nii[.gz]) in the archive; entries: %s",
                      seen[0] ? seen : "(none)");
  }
  if (nred == 0)
    return mbsr_error(MBSR_EFORMAT, "no auto-fluorescence (red) channel in the archive; volumes: %s", seen);
  return mbsr_error(MBSR_EFORMAT, "%d candidates for the red channel, refusing to guess; volumes: %s", nred, seen);
}

/* ------------------------------------------------------------------ archive -> NIfTI */
static int extract_entry(zip_t *z, zip_int64_t idx, const char *dst) {
  zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)idx, 0);
  if (!zf) return mbsr_error(MBSR_EFORMAT, "cannot open zip entry %s: %s", zip_get_name(z, (zip_uint64_t)idx, 0), zip_strerror(z));
  FILE *f = fopen(dst, "wb");
  if (!f) {
    zip_fclose(zf);
    return mbsr_error(MBSR_EIO, "%s: cannot create: %s", dst, strerror(errno));
  }
  char buf[1 << 16];
  zip_int64_t k;
  int rc = 0;
  while ((k = zip_fread(zf, buf, sizeof buf)) > 0)
    if (fwrite(buf, 1, (size_t)k, f) != (size_t)k) { rc = mbsr_error(MBSR_EIO, "%s: write error", dst); break; }
  if (k < 0 && !rc) rc = mbsr_error(MBSR_ECHECKSUM, "zip entry %s: corrupt data: %s", zip_get_name(z, (zip_uint64_t)idx, 0), zip_file_strerror(zf));
  zip_fclose(zf);
  if (fclose(f) != 0 && !rc) rc = mbsr_error(MBSR_EIO, "%s: write error", dst);
  return rc;
}

/* The detached data file named by a .mhd (ElementDataFile) or .nhdr ("data file:"), or "" if the
 * header is self-contained. */
static int detached_data_name(const char *hdr_path, int is_mhd, char *out, size_t n) {
  out[0] = 0;
  FILE *f = fopen(hdr_path, "r");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open", hdr_path);
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char *v = NULL;
    if (is_mhd && !strncmp(line, "ElementDataFile", 15)) v = strchr(line, '=');
    else if (!is_mhd && (!strncmp(line, "data file:", 10) || !strncmp(line, "datafile:", 9))) v = strchr(line, ':');
    if (!v) {
      if (!is_mhd && line[0] == '\n') break; /* end of an attached NRRD header */
      continue;
    }
    v++;
    while (*v == ' ' || *v == '\t') v++;
    size_t l = strlen(v);
    while (l > 0 && (v[l - 1] == '\n' || v[l - 1] == '\r' || v[l - 1] == ' ')) v[--l] = 0;
    if (strcasecmp(v, "LOCAL") != 0) snprintf(out, n, "%s", v);
    break;
  }
  fclose(f);
  return 0;
}

static void remove_tree_flat(const char *dir, char names[][1024], int nn) {
  char p[8192];
  for (int i = 0; i < nn; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    unlink(p);
  }
  rmdir(dir);
}

int mbsr_fetch_convert_archive(const char *zip_path, const char *out_nii, char *used, size_t used_n) {
  if (used && used_n) used[0] = 0;
  int zerr = 0;
  zip_t *z = zip_open(zip_path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
  if (!z) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, zerr);
    int rc = mbsr_error(MBSR_ECHECKSUM, "%s: not a readable ZIP: %s", zip_path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return rc;
  }
  zip_int64_t ne = zip_get_num_entries(z, 0);
  const char **names = calloc((size_t)(ne > 0 ? ne : 1), sizeof *names);
  if (!names) { zip_close(z); return mbsr_error(MBSR_ENOMEM, "fetch: out of memory"); }
  for (zip_int64_t i = 0; i < ne; i++) {
    names[i] = zip_get_name(z, (zip_uint64_t)i, 0);
    if (!names[i]) names[i] = "";
  }
  int rc = mbsr_fetch_find_red(names, (int)ne);
  if (rc < 0) {
    mbsr_error_prefix(rc, "%s: ", zip_path);
    free(names);
    zip_close(z);
    return rc;
  }
  zip_int64_t red = rc;
  rc = 0;
  char rname[1024]; /* names[] dies with zip_close */
  snprintf(rname, sizeof rname, "%s", names[red]);
  if (used) snprintf(used, used_n, "%s", rname);
  /* scratch directory next to the output (same filesystem), removed whatever happens */
  char scratch[4200];
  const char *slash = strrchr(out_nii, '/');
  snprintf(scratch, sizeof scratch, "%.*s.unzip-%ld-%d", slash ? (int)(slash - out_nii + 1) : 0, out_nii, (long)getpid(),
           (int)red);
  char made[2][1024];
  int nmade = 0;
  if (mkdir(scratch, 0755) != 0 && errno != EEXIST) {
    free(names);
    zip_close(z);
    return mbsr_error(MBSR_EIO, "%s: cannot create: %s", scratch, strerror(errno));
  }
  const char *rbase = strrchr(rname, '/');
  rbase = rbase ? rbase + 1 : rname;
  char hdr[4200 + 1024];
  snprintf(hdr, sizeof hdr, "%s/%s", scratch, rbase);
  snprintf(made[nmade++], sizeof made[0], "%s", rbase);
  rc = extract_entry(z, red, hdr);
  const char *ext = vol_ext(rname);
  if (!rc && (!strcasecmp(ext, ".mhd") || !strcasecmp(ext, ".nhdr"))) {
    char data[512];
    rc = detached_data_name(hdr, !strcasecmp(ext, ".mhd"), data, sizeof data);
    if (!rc && data[0]) {
      if (strchr(data, '/') || strchr(data, '%') || strchr(data, ' ') || !strcmp(data, "LIST")) {
        rc = mbsr_error(MBSR_EUNSUPPORTED, "%s: %s: data file '%s' (lists, patterns and sub-directories are not supported)",
                        zip_path, rname, data);
      } else {
        char want[1024];
        snprintf(want, sizeof want, "%.*s%s", (int)(rbase - rname), rname, data);
        zip_int64_t di = zip_name_locate(z, want, ZIP_FL_NOCASE);
        if (di < 0) {
          rc = mbsr_error(MBSR_EFORMAT, "%s: %s names data file %s, which is not in the archive", zip_path, rname, want);
        } else {
          char dpath[4800];
          snprintf(dpath, sizeof dpath, "%s/%s", scratch, data);
          snprintf(made[nmade++], sizeof made[0], "%s", data);
          rc = extract_entry(z, di, dpath);
        }
      }
    }
  }
  free(names);
  zip_close(z);
  if (!rc) {
    mbsr_volume *v = NULL;
    /* .mhd straight to the MetaImage reader (src/io/mhd.c, what mbsr_volume_read dispatches to) */
    rc = !strcasecmp(ext, ".mhd") ? mbsr_mhd_read(hdr, &v) : mbsr_volume_read(hdr, NULL, &v);
    if (rc) mbsr_error_prefix(rc, "%s: red channel %s: ", zip_path, rname);
    else {
      rc = mbsr_volume_write(out_nii, v);
      mbsr_volume_free(v);
    }
  }
  remove_tree_flat(scratch, made, nmade);
  if (rc) unlink(out_nii); /* never a half product under the final name */
  return rc;
}

/* ------------------------------------------------------------------ items */
enum { K_EXPERIMENT = 0, K_TEMPLATE = 1, K_ANNOTATION = 2 };

typedef struct {
  mbsr_manifest_row row; /* planned row: id, kind, file, output; previous bytes/sha/status */
  int64_t exp_id;
  int kind;
} item;

typedef struct {
  mbsr_manifest_row row;
  int64_t transferred;
  double seconds;
  int valid, skipped, failed, rank;
} result;

static void join(char *dst, size_t n, const char *dir, const char *rel) { snprintf(dst, n, "%s/%s", dir, rel); }

/* Resolve where a canonical Allen URL is fetched from. */
static int route(const mbsr_fetch_opts *o, const char *canonical, int is_query, char *out, size_t n) {
  const char *base = is_query ? (o->api ? o->api : o->mirror) : (o->mirror ? o->mirror : NULL);
  if (!base && !is_query && o->api && !strncmp(canonical, MBSR_ALLEN_API, strlen(MBSR_ALLEN_API))) base = o->api;
  if (!base) {
    snprintf(out, n, "%s", canonical);
    return 0;
  }
  return mbsr_fetch_mirror_url(base, canonical, out, n);
}

/* Is the previous row's download still intact on disk? */
static int file_matches(const char *out_dir, const mbsr_manifest_row *r) {
  if (!r->file[0] || r->bytes < 0 || strlen(r->sha256) != 64) return 0; /* set only by a verified download */
  char p[4400], hex[65];
  int64_t bytes;
  join(p, sizeof p, out_dir, r->file);
  struct stat st;
  if (stat(p, &st) != 0 || (int64_t)st.st_size != r->bytes) return 0;
  if (mbsr_sha256_file(p, hex, &bytes) != 0) return 0;
  return !strcmp(hex, r->sha256) && bytes == r->bytes;
}

static void set_msg(mbsr_manifest_row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_msg(mbsr_manifest_row *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof r->message, fmt, ap);
  va_end(ap);
}

static void fail_row(result *res, int rank, const char *what) {
  res->failed = 1;
  snprintf(res->row.status, sizeof res->row.status, "failed");
  set_msg(&res->row, "rank %d: %s: %s", rank, what, mbsr_last_error()[0] ? mbsr_last_error() : "failed");
}

static void process_item(const mbsr_fetch_opts *o, const item *it, int rank, result *res) {
  double t0 = mbsr_now();
  memset(res, 0, sizeof *res);
  res->valid = 1;
  res->rank = rank;
  res->row = it->row;
  mbsr_manifest_row *r = &res->row;
  char fpath[4400], opath[4400];
  join(fpath, sizeof fpath, o->out_dir, r->file);
  join(opath, sizeof opath, o->out_dir, r->output);
  const char *expect = known_sha(r->id);
  mbsr_error_clear();

  int have_file = file_matches(o->out_dir, r) && (!expect || !strcmp(expect, r->sha256));
  if (have_file && mbsr_file_exists(opath)) {
    res->skipped = 1;
    set_msg(r, "rank %d: already complete (size and sha256 verified)", rank);
    res->seconds = mbsr_now() - t0;
    return;
  }
  mbsr_http_result hr;
  memset(&hr, 0, sizeof hr);
  if (!have_file) {
    unlink(fpath); /* a final-named file that does not match the manifest is not trusted */
    char url[sizeof it->row.url];
    if (it->kind == K_EXPERIMENT) {
      char canon[1024], q[2048];
      char *body = NULL;
      size_t len = 0;
      mbsr_fetch_wkf_url(MBSR_ALLEN_API, it->exp_id, canon, sizeof canon);
      int rc = route(o, canon, 1, q, sizeof q);
      if (!rc) rc = mbsr_http_get(q, &o->http, &body, &len);
      if (rc) { fail_row(res, rank, "well-known-file query"); goto out; }
      mbsr_json *root = NULL;
      const mbsr_json *msg = NULL;
      rc = rma_msg(body, len, &root, &msg);
      free(body);
      if (rc) { fail_row(res, rank, "well-known-file query"); goto out; }
      const char *link = mbsr_json_str(mbsr_json_get(mbsr_json_at(msg, 0), "download_link"));
      if (!link || !link[0]) {
        mbsr_json_free(root);
        mbsr_error(MBSR_EFORMAT, "no ImagesResampledTo25MicronARA file listed for experiment %lld", (long long)it->exp_id);
        fail_row(res, rank, "well-known-file query");
        goto out;
      }
      snprintf(canon, sizeof canon, "%s%s%s", is_url(link) ? "" : MBSR_ALLEN_API, link[0] == '/' || is_url(link) ? "" : "/", link);
      mbsr_json_free(root);
      rc = route(o, canon, 0, url, sizeof url);
      if (rc) { fail_row(res, rank, "download"); goto out; }
    } else {
      snprintf(url, sizeof url, "%s", r->url);
    }
    snprintf(r->url, sizeof r->url, "%s", url);
    int rc = mbsr_http_download(url, fpath, expect, &o->http, &hr);
    res->transferred = hr.transferred;
    if (rc) {
      r->bytes = -1;
      r->sha256[0] = 0;
      fail_row(res, rank, "download");
      goto out;
    }
    r->bytes = hr.bytes;
    snprintf(r->sha256, sizeof r->sha256, "%s", hr.sha256);
  }
  if (it->kind == K_EXPERIMENT) {
    char used[512];
    int rc = mbsr_fetch_convert_archive(fpath, opath, used, sizeof used);
    if (rc == MBSR_ECHECKSUM) { /* a damaged archive: drop it so that the next run downloads it again */
      unlink(fpath);
      r->bytes = -1;
      r->sha256[0] = 0;
      mbsr_error_prefix(rc, "archive removed: ");
    }
    if (rc) {
      fail_row(res, rank, "conversion");
      goto out;
    }
    snprintf(r->status, sizeof r->status, "ok");
    if (have_file) set_msg(r, "rank %d: archive verified; converted red channel %s", rank, used);
    else
      set_msg(r, "rank %d: downloaded in %d attempt(s)%s; converted red channel %s", rank, hr.attempts,
              hr.resumed ? ", resumed" : "", used);
  } else {
    snprintf(r->status, sizeof r->status, "ok");
    set_msg(r, "rank %d: downloaded in %d attempt(s)%s%s", rank, hr.attempts, hr.resumed ? ", resumed" : "",
            expect ? ", sha256 matches the published value" : "");
  }
out:
  if (res->failed && it->kind == K_EXPERIMENT) unlink(opath); /* the manifest says failed: no product */
  res->seconds = mbsr_now() - t0;
}

/* ------------------------------------------------------------------ driver */
static void human_bytes(double b, char *buf, size_t n) {
  const char *u[] = {"B", "kB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1000 && i < 4) { b /= 1000; i++; }
  snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static int mkdirs(const char *out) {
  const char *subs[] = {"", "/archives", "/af25", "/reference"};
  char p[4200];
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", out, subs[i]);
    int rc = mbsr_mkdir_p(p);
    if (rc) return rc;
  }
  return 0;
}

/* Rank 0: list, select, build the item table. */
static int plan(const mbsr_fetch_opts *o, mbsr_manifest *man, item **items_out, int *n_out) {
  int rc = mkdirs(o->out_dir);
  if (rc) return rc;
  char mpath[4200];
  join(mpath, sizeof mpath, o->out_dir, "manifest.tsv");
  rc = mbsr_manifest_read(mpath, man);
  if (rc) return rc;
  int64_t *sel = NULL;
  int nsel = 0;
  if (o->n > 0) {
    char canon[1024], url[2048];
    char *body = NULL;
    size_t len = 0;
    mbsr_fetch_list_url(MBSR_ALLEN_API, o->wildtype_only, canon, sizeof canon);
    rc = route(o, canon, 1, url, sizeof url);
    if (!rc) rc = mbsr_http_get(url, &o->http, &body, &len);
    if (rc) return mbsr_error_prefix(rc, "listing experiments: ");
    int64_t *ids = NULL;
    int nids = 0;
    rc = mbsr_fetch_parse_list(body, len, o->wildtype_only, &ids, &nids);
    free(body);
    if (rc) return mbsr_error_prefix(rc, "%s: ", url);
    sel = malloc(((size_t)o->n + 1) * sizeof *sel);
    if (!sel) { free(ids); return mbsr_error(MBSR_ENOMEM, "fetch: out of memory"); }
    nsel = mbsr_fetch_select(ids, nids, o->n, o->seed, sel);
    free(ids);
    if (nsel < 0) { free(sel); return nsel; }
    if (nsel == 0) {
      free(sel);
      return mbsr_error(MBSR_EFORMAT, "listing experiments: %s returned no experiment", url);
    }
    if (nsel < o->n) mbsr_warn("fetch: only %d experiments match the selection, %d asked", nsel, o->n);
    mbsr_info("fetch: %d experiments listed, %d selected (%s, seed %llu)", nids, nsel,
              o->wildtype_only ? "wild-type" : "any", (unsigned long long)o->seed);
  }
  int nres = o->n_templates ? o->n_templates : (o->annotations ? 1 : 0);
  int defres[1] = {25};
  const int *res = o->n_templates ? o->templates : defres;
  int ntot = nsel + (o->n_templates ? o->n_templates : 0) + (o->annotations ? nres : 0);
  item *items = calloc((size_t)ntot + 1, sizeof *items);
  if (!items) { free(sel); return mbsr_error(MBSR_ENOMEM, "fetch: out of memory"); }
  int k = 0;
  for (int i = 0; i < nsel; i++, k++) {
    item *it = &items[k];
    it->kind = K_EXPERIMENT;
    it->exp_id = sel[i];
    snprintf(it->row.id, sizeof it->row.id, "%lld", (long long)sel[i]);
    snprintf(it->row.kind, sizeof it->row.kind, "experiment");
    snprintf(it->row.file, sizeof it->row.file, "archives/%lld_ImagesResampledTo25MicronARA.zip", (long long)sel[i]);
    snprintf(it->row.output, sizeof it->row.output, "af25/%lld%s", (long long)sel[i], MBSR_AF_SUFFIX);
  }
  free(sel);
  for (int kind = K_TEMPLATE; kind <= K_ANNOTATION; kind++) {
    if (kind == K_TEMPLATE && !o->n_templates) continue;
    if (kind == K_ANNOTATION && !o->annotations) continue;
    for (int i = 0; i < nres; i++, k++) {
      item *it = &items[k];
      it->kind = kind;
      char canon[512];
      if (kind == K_TEMPLATE) {
        snprintf(it->row.id, sizeof it->row.id, "average_template_%d", res[i]);
        snprintf(canon, sizeof canon, "%s/informatics-archive/current-release/mouse_ccf/average_template/average_template_%d.nrrd",
                 MBSR_ALLEN_DOWNLOAD, res[i]);
      } else {
        snprintf(it->row.id, sizeof it->row.id, "annotation_%d", res[i]);
        snprintf(canon, sizeof canon, "%s/informatics-archive/current-release/mouse_ccf/annotation/ccf_2017/annotation_%d.nrrd",
                 MBSR_ALLEN_DOWNLOAD, res[i]);
      }
      snprintf(it->row.kind, sizeof it->row.kind, kind == K_TEMPLATE ? "template" : "annotation");
      rc = route(o, canon, 0, it->row.url, sizeof it->row.url);
      if (rc) { free(items); return rc; }
      snprintf(it->row.file, sizeof it->row.file, "reference/%s.nrrd", it->row.id);
      snprintf(it->row.output, sizeof it->row.output, "%s", it->row.file);
    }
  }
  /* previous state of each item: what is on disk is judged against it */
  for (int i = 0; i < k; i++) {
    mbsr_manifest_row *old = mbsr_manifest_find(man, items[i].row.id);
    mbsr_manifest_row *r = &items[i].row;
    if (old && !strcmp(old->file, r->file)) {
      r->bytes = old->bytes;
      snprintf(r->sha256, sizeof r->sha256, "%s", old->sha256);
      snprintf(r->status, sizeof r->status, "%s", old->status);
      if (!r->url[0]) snprintf(r->url, sizeof r->url, "%s", old->url);
    } else {
      r->bytes = -1;
      snprintf(r->status, sizeof r->status, "pending");
      if ((rc = mbsr_manifest_put(man, r))) { free(items); return rc; }
    }
  }
  *items_out = items;
  *n_out = k;
  return 0;
}

int mbsr_fetch_run(const mbsr_fetch_opts *o, MPI_Comm comm, mbsr_fetch_summary *sum) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(sum, 0, sizeof *sum);
  mbsr_manifest man;
  memset(&man, 0, sizeof man);
  item *items = NULL;
  int nitems = 0, rc = 0;
  char mpath[4200];
  join(mpath, sizeof mpath, o->out_dir, "manifest.tsv");
  if (rank == 0) {
    rc = plan(o, &man, &items, &nitems);
    if (!rc) rc = mbsr_manifest_write(mpath, &man);
  }
  /* agree on the plan before anything else */
  int st[2] = {rc, nitems};
  if (MPI_Bcast(st, 2, MPI_INT, 0, comm) != MPI_SUCCESS) return mbsr_error(MBSR_EMPI, "fetch: MPI_Bcast failed");
  if (st[0]) {
    if (rank != 0) mbsr_error(MBSR_EPEER, "fetch: rank 0 could not plan the run");
    free(items);
    mbsr_manifest_free(&man);
    return st[0] < 0 ? st[0] : MBSR_EPEER;
  }
  nitems = st[1];
  /* every rank must see rank 0's directory (a shared filesystem), or its files would be lost */
  int blind = !mbsr_file_exists(mpath), nblind = 0;
  MPI_Allreduce(&blind, &nblind, 1, MPI_INT, MPI_SUM, comm);
  if (nblind) {
    free(items);
    mbsr_manifest_free(&man);
    if (blind) return mbsr_error(MBSR_EIO, "fetch: %s is not visible on this rank: --out must be on a filesystem shared by all ranks", mpath);
    return mbsr_error(MBSR_EPEER, "fetch: %d rank(s) cannot see %s (--out must be shared by all ranks)", nblind, mpath);
  }
  if (rank != 0) items = calloc((size_t)nitems + 1, sizeof *items);
  if (!items) return mbsr_error(MBSR_ENOMEM, "fetch: item table");
  MPI_Bcast(items, (int)((size_t)nitems * sizeof *items), MPI_BYTE, 0, comm);

  result *all = rank == 0 ? calloc((size_t)size, sizeof *all) : NULL;
  int done = 0, failed = 0, skipped = 0;
  int64_t bytes = 0;
  double t0 = mbsr_now();
  int rounds = (nitems + size - 1) / size;
  for (int rd = 0; rd < rounds; rd++) {
    int i = rd * size + rank;
    result mine;
    memset(&mine, 0, sizeof mine);
    if (i < nitems) process_item(o, &items[i], rank, &mine);
    if (MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, comm) != MPI_SUCCESS) {
      rc = mbsr_error(MBSR_EMPI, "fetch: MPI_Gather failed");
      break;
    }
    if (rank != 0) continue;
    for (int p = 0; p < size; p++) {
      result *res = &all[p];
      if (!res->valid) continue;
      done++;
      failed += res->failed;
      skipped += res->skipped;
      bytes += res->transferred;
      mbsr_manifest_put(&man, &res->row);
      double el = mbsr_now() - t0;
      char eta[32], elb[32], hb[32], rb[32];
      mbsr_format_duration(done < nitems ? el / done * (nitems - done) : 0, eta, sizeof eta);
      mbsr_format_duration(el, elb, sizeof elb);
      human_bytes((double)res->transferred, hb, sizeof hb);
      human_bytes(res->seconds > 0 ? (double)res->transferred / res->seconds : 0, rb, sizeof rb);
      if (!o->quiet)
        mbsr_info("fetch: [%d/%d] %-20s %-7s %s in %.1f s (%s/s)  elapsed %s ETA %s%s%s", done, nitems, res->row.id,
                  res->failed ? "FAILED" : res->skipped ? "skipped" : "ok", hb, res->seconds, rb, elb, eta,
                  res->failed ? "  " : "", res->failed ? res->row.message : "");
    }
    int wrc = mbsr_manifest_write(mpath, &man);
    if (wrc) mbsr_warn("fetch: %s", mbsr_last_error());
  }
  int tot[4] = {done, failed, skipped, rc};
  MPI_Bcast(tot, 4, MPI_INT, 0, comm);
  MPI_Bcast(&bytes, 1, MPI_INT64_T, 0, comm);
  sum->items = tot[0];
  sum->failed = tot[1];
  sum->skipped = tot[2];
  sum->bytes = bytes;
  if (rank == 0) {
    char hb[32];
    human_bytes((double)bytes, hb, sizeof hb);
    mbsr_info("fetch: %d of %d items failed (%d downloaded or converted, %d already complete, %s transferred); manifest %s",
              sum->failed, nitems, nitems - sum->failed - sum->skipped, sum->skipped, hb, mpath);
  }
  free(all);
  free(items);
  mbsr_manifest_free(&man);
  return tot[3];
}
