/* Downloads with libcurl, built to be a good client of a remote archive:
 *  - connect timeout and a read (low-speed) timeout: < 1 byte/s for read_timeout seconds aborts;
 *  - bounded retries with exponential backoff on transient failures (connection errors, timeouts,
 *    cut transfers, HTTP 408/429/5xx); other HTTP errors (404, ...) fail at once;
 *  - data goes to "<final>.part"; a retry or a later run continues it with "Range: bytes=N-"
 *    (a server that answers 200 instead of 206 restarts the file from byte 0);
 *  - size check against Content-Length / Content-Range, SHA-256 (OpenSSL EVP) against an expected
 *    value when one is known, then an atomic rename into place.
 * A local path or file:// URL (a directory mirror) goes through the same .part/size/sha/rename path. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mbsr/fetch.h"

#define MAX_MEM_BODY ((size_t)256 << 20)

void mbsr_http_opts_default(mbsr_http_opts *o) {
  o->connect_timeout = 10;
  o->read_timeout = 30;
  o->retries = 4;
  o->backoff = 1;
}

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static int is_remote(const char *url) { return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8); }
static const char *local_path(const char *url) { return !strncasecmp(url, "file://", 7) ? url + 7 : url; }

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static double backoff_delay(const mbsr_http_opts *o, int retry /* 0-based */) {
  double d = o->backoff;
  for (int i = 0; i < retry && d < 60; i++) d *= 2;
  return d > 60 ? 60 : d;
}

int mbsr_sha256_file(const char *path, char hex[65], int64_t *bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    fclose(f);
    EVP_MD_CTX_free(ctx);
    return mbsr_error(MBSR_EIO, "%s: OpenSSL SHA-256 unavailable", path);
  }
  size_t bufn = (size_t)1 << 20;
  unsigned char *buf = malloc(bufn);
  int64_t total = 0;
  int rc = buf ? 0 : mbsr_error(MBSR_ENOMEM, "%s: out of memory", path);
  size_t k;
  while (rc == 0 && (k = fread(buf, 1, bufn, f)) > 0) {
    EVP_DigestUpdate(ctx, buf, k);
    total += (int64_t)k;
  }
  if (rc == 0 && ferror(f)) rc = mbsr_error(MBSR_EIO, "%s: read error", path);
  unsigned char md[32];
  unsigned mdn = 0;
  EVP_DigestFinal_ex(ctx, md, &mdn);
  EVP_MD_CTX_free(ctx);
  free(buf);
  fclose(f);
  if (rc) return rc;
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  if (bytes) *bytes = total;
  return 0;
}

/* ------------------------------------------------------------------ one HTTP attempt */
typedef struct {
  FILE *f;            /* file sink, or NULL for memory */
  char *mem;          /* memory sink */
  size_t mem_len, mem_cap;
  int64_t offset;     /* bytes already present when the request was made (Range start) */
  int64_t written;    /* body bytes stored in this attempt */
  long status;        /* from the last status line seen */
  int64_t content_length, range_start, range_total;
  int body_started;
  int abort_reason;   /* 1 range mismatch, 2 disk write, 3 memory cap, 4 read timeout */
  double read_timeout, last_t; /* no byte for read_timeout seconds aborts */
  char etag[256], last_modified[128]; /* validators of the last response */
  const char *if_range;               /* validator to send with a Range request, or NULL */
  curl_off_t last_now;
  char errbody[200];
  size_t errlen;
} attempt;

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
  attempt *a = ud;
  size_t n = sz * nm;
  char line[512];
  size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
  memcpy(line, p, k);
  line[k] = 0;
  if (!strncmp(line, "HTTP/", 5)) { /* a new response (redirects, 100-continue): reset */
    const char *sp = strchr(line, ' ');
    a->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    a->content_length = a->range_start = a->range_total = -1;
    a->etag[0] = a->last_modified[0] = 0;
  } else if (!strncasecmp(line, "ETag:", 5) || !strncasecmp(line, "Last-Modified:", 14)) {
    int is_etag = line[0] == 'E' || line[0] == 'e';
    char *v = line + (is_etag ? 5 : 14);
    while (*v == ' ' || *v == '\t') v++;
    size_t l = strlen(v);
    while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' ')) v[--l] = 0;
    if (is_etag && strncmp(v, "W/", 2) != 0) snprintf(a->etag, sizeof a->etag, "%s", v); /* If-Range needs a strong one */
    if (!is_etag) snprintf(a->last_modified, sizeof a->last_modified, "%s", v);
  } else if (!strncasecmp(line, "Content-Length:", 15)) {
    a->content_length = strtoll(line + 15, NULL, 10);
  } else if (!strncasecmp(line, "Content-Range:", 14)) {
    const char *q = line + 14;
    while (*q == ' ') q++;
    if (!strncasecmp(q, "bytes", 5)) q += 5;
    while (*q == ' ') q++;
    if (*q == '*') a->range_start = -1;
    else a->range_start = strtoll(q, NULL, 10);
    const char *sl = strchr(q, '/');
    if (sl && sl[1] != '*') a->range_total = strtoll(sl + 1, NULL, 10);
  }
  return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  attempt *a = ud;
  size_t n = sz * nm;
  if (a->status < 200 || a->status >= 300) { /* keep the start of an error page for the message */
    size_t room = sizeof a->errbody - 1 - a->errlen;
    size_t k = n < room ? n : room;
    memcpy(a->errbody + a->errlen, p, k);
    a->errlen += k;
    a->errbody[a->errlen] = 0;
    return n;
  }
  if (!a->body_started) {
    a->body_started = 1;
    if (a->status == 206) {
      if (a->range_start != a->offset) { a->abort_reason = 1; return 0; }
    } else if (a->offset > 0) { /* the server ignored Range: start over */
      if (a->f) {
        if (fflush(a->f) != 0 || ftruncate(fileno(a->f), 0) != 0 || fseeko(a->f, 0, SEEK_SET) != 0) {
          a->abort_reason = 2;
          return 0;
        }
      }
      a->offset = 0;
    }
  }
  if (a->f) {
    if (fwrite(p, 1, n, a->f) != n) { a->abort_reason = 2; return 0; }
  } else {
    if (a->mem_len + n > MAX_MEM_BODY) { a->abort_reason = 3; return 0; }
    if (a->mem_len + n + 1 > a->mem_cap) {
      size_t nc = a->mem_cap ? a->mem_cap : 65536;
      while (nc < a->mem_len + n + 1) nc *= 2;
      char *m = realloc(a->mem, nc);
      if (!m) { a->abort_reason = 3; return 0; }
      a->mem = m;
      a->mem_cap = nc;
    }
    memcpy(a->mem + a->mem_len, p, n);
    a->mem_len += n;
  }
  a->written += (int64_t)n;
  return n;
}

/* The read timeout: libcurl's LOW_SPEED averages over a window of seconds (a few bytes then
 * silence passes for long), so the stall clock is kept here: no new byte for read_timeout s
 * (including the wait for the response) aborts the attempt. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  attempt *a = ud;
  double now = mbsr_now();
  if (dlnow != a->last_now) {
    a->last_now = dlnow;
    a->last_t = now;
  } else if (now - a->last_t > a->read_timeout) {
    a->abort_reason = 4;
    return 1;
  }
  return 0;
}

typedef enum { ATT_DONE, ATT_RETRY, ATT_FATAL } att_outcome;

/* Runs one request; classifies the result; on RETRY/FATAL records the message. */
static att_outcome run_attempt(const char *url, const mbsr_http_opts *o, attempt *a) {
  pthread_once(&g_curl_once, curl_init_once);
  CURL *c = curl_easy_init();
  if (!c) { mbsr_error(MBSR_ENET, "%s: curl_easy_init failed", url); return ATT_FATAL; }
  char errbuf[CURL_ERROR_SIZE] = "";
  char range[64];
  a->status = 0;
  a->content_length = a->range_start = a->range_total = -1;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "mbsr/" MBSR_VERSION " (libcurl)");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  long cto = (long)(o->connect_timeout * 1000);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cto > 0 ? cto : 1L);
  a->read_timeout = o->read_timeout > 0 ? o->read_timeout : 1;
  a->last_t = mbsr_now();
  a->last_now = 0;
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, a);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
  struct curl_slist *hdrs = NULL;
  if (a->offset > 0) {
    snprintf(range, sizeof range, "%lld-", (long long)a->offset);
    curl_easy_setopt(c, CURLOPT_RANGE, range);
    if (a->if_range && a->if_range[0]) {
      char h[320];
      snprintf(h, sizeof h, "If-Range: %s", a->if_range);
      hdrs = curl_slist_append(hdrs, h);
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    }
  }
  CURLcode cr = curl_easy_perform(c);
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  if (a->f) fflush(a->f);
  int64_t have = a->offset + a->written;

  if (cr == CURLE_WRITE_ERROR && a->abort_reason) {
    if (a->abort_reason == 1) {
      mbsr_error(MBSR_ENET, "%s: server resumed at byte %lld, asked for %lld", url, (long long)a->range_start,
                 (long long)a->offset);
      return ATT_RETRY; /* caller restarts from 0 */
    }
    if (a->abort_reason == 3) { mbsr_error(MBSR_ERANGE, "%s: answer larger than 256 MiB", url); return ATT_FATAL; }
    mbsr_error(MBSR_EIO, "%s: cannot write the partial file: %s", url, strerror(errno));
    return ATT_FATAL;
  }
  if (cr == CURLE_ABORTED_BY_CALLBACK && a->abort_reason == 4) {
    mbsr_error(MBSR_ENET, "%s: timed out: no data for %g s (%lld bytes received)", url, a->read_timeout,
               (long long)a->written);
    return ATT_RETRY;
  }
  if (cr != CURLE_OK) {
    int retry = cr == CURLE_OPERATION_TIMEDOUT || cr == CURLE_COULDNT_CONNECT || cr == CURLE_PARTIAL_FILE ||
                cr == CURLE_RECV_ERROR || cr == CURLE_SEND_ERROR || cr == CURLE_GOT_NOTHING ||
                cr == CURLE_COULDNT_RESOLVE_HOST || cr == CURLE_COULDNT_RESOLVE_PROXY || cr == CURLE_SSL_CONNECT_ERROR ||
                cr == CURLE_HTTP2 || cr == CURLE_HTTP2_STREAM;
    const char *what = cr == CURLE_OPERATION_TIMEDOUT ? "timed out" : cr == CURLE_PARTIAL_FILE ? "connection cut" : "";
    mbsr_error(MBSR_ENET, "%s: %s%s%s (%lld bytes received)", url, what, what[0] ? ": " : "",
               errbuf[0] ? errbuf : curl_easy_strerror(cr), (long long)a->written);
    return retry ? ATT_RETRY : ATT_FATAL;
  }
  if (a->status == 416) {
    if (a->range_total >= 0 && a->range_total == a->offset) return ATT_DONE; /* already complete */
    a->offset = -1; /* caller restarts from 0 */
    mbsr_error(MBSR_ENET, "%s: HTTP 416 for a resume at byte %lld", url, (long long)have);
    return ATT_RETRY;
  }
  if (a->status < 200 || a->status >= 300) {
    int retry = a->status >= 500 || a->status == 408 || a->status == 429;
    char snippet[80] = "";
    size_t j = 0;
    for (size_t i = 0; i < a->errlen && j < sizeof snippet - 1; i++)
      snippet[j++] = (a->errbody[i] == '\n' || a->errbody[i] == '\r' || a->errbody[i] == '\t') ? ' ' : a->errbody[i];
    while (j > 0 && snippet[j - 1] == ' ') j--;
    snippet[j] = 0;
    mbsr_error(MBSR_ENET, "%s: HTTP %ld%s%s", url, a->status, snippet[0] ? ": " : "", snippet);
    return retry ? ATT_RETRY : ATT_FATAL;
  }
  int64_t total = a->status == 206 ? a->range_total : a->content_length;
  if (a->status == 200 && a->content_length >= 0) total = a->content_length; /* offset was reset */
  if (total >= 0 && have != total) {
    mbsr_error(MBSR_ETRUNC, "%s: received %lld of %lld bytes", url, (long long)have, (long long)total);
    return have < total ? ATT_RETRY : ATT_FATAL;
  }
  return ATT_DONE;
}

/* ------------------------------------------------------------------ memory GET */
static int read_local_file(const char *path, char **body, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return mbsr_error(MBSR_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || (size_t)st.st_size > MAX_MEM_BODY) {
    fclose(f);
    return mbsr_error(MBSR_ERANGE, "%s: missing or larger than 256 MiB", path);
  }
  char *b = malloc((size_t)st.st_size + 1);
  if (!b) { fclose(f); return mbsr_error(MBSR_ENOMEM, "%s: out of memory", path); }
  size_t k = fread(b, 1, (size_t)st.st_size, f);
  fclose(f);
  if (k != (size_t)st.st_size) { free(b); return mbsr_error(MBSR_EIO, "%s: short read", path); }
  b[k] = 0;
  *body = b;
  *len = k;
  return 0;
}

int mbsr_http_get(const char *url, const mbsr_http_opts *o, char **body, size_t *len) {
  *body = NULL;
  *len = 0;
  if (!is_remote(url)) return read_local_file(local_path(url), body, len);
  for (int k = 0;; k++) {
    attempt a;
    memset(&a, 0, sizeof a);
    att_outcome r = run_attempt(url, o, &a);
    if (r == ATT_DONE) {
      if (!a.mem) a.mem = malloc(1);
      if (!a.mem) return mbsr_error(MBSR_ENOMEM, "%s: out of memory", url);
      a.mem[a.mem_len] = 0;
      *body = a.mem;
      *len = a.mem_len;
      return 0;
    }
    free(a.mem);
    if (r == ATT_FATAL || k >= o->retries) {
      if (k > 0) return mbsr_error_prefix(MBSR_ENET, "after %d attempts: ", k + 1);
      return MBSR_ENET;
    }
    sleep_s(backoff_delay(o, k));
  }
}

/* ------------------------------------------------------------------ file download */
static int64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Local "download": copy src from the .part's current size onwards (the same resume logic). */
static att_outcome copy_local(const char *src, const char *part, int64_t *transferred) {
  int in = open(src, O_RDONLY);
  if (in < 0) { mbsr_error(MBSR_EIO, "%s: cannot open: %s", src, strerror(errno)); return ATT_FATAL; }
  struct stat st;
  fstat(in, &st);
  if (!S_ISREG(st.st_mode)) { close(in); mbsr_error(MBSR_EIO, "%s: not a regular file", src); return ATT_FATAL; }
  int64_t have = file_size(part);
  if (have < 0 || have > (int64_t)st.st_size) have = 0;
  int out = open(part, O_WRONLY | O_CREAT, 0644);
  if (out < 0 || ftruncate(out, have) != 0 || lseek(out, have, SEEK_SET) < 0 || lseek(in, have, SEEK_SET) < 0) {
    mbsr_error(MBSR_EIO, "%s: cannot write: %s", part, strerror(errno));
    if (out >= 0) close(out);
    close(in);
    return ATT_FATAL;
  }
  char buf[1 << 16];
  ssize_t k;
  att_outcome r = ATT_DONE;
  while ((k = read(in, buf, sizeof buf)) > 0) {
    if (write(out, buf, (size_t)k) != k) { mbsr_error(MBSR_EIO, "%s: write error: %s", part, strerror(errno)); r = ATT_FATAL; break; }
    *transferred += k;
  }
  if (k < 0) { mbsr_error(MBSR_EIO, "%s: read error: %s", src, strerror(errno)); r = ATT_FATAL; }
  close(in);
  close(out);
  return r;
}

int mbsr_http_download(const char *url, const char *final_path, const char *expect_sha256, const mbsr_http_opts *o,
                       mbsr_http_result *res) {
  mbsr_http_result dummy;
  if (!res) res = &dummy;
  memset(res, 0, sizeof *res);
  double t0 = mbsr_now();
  char part[4200];
  if (snprintf(part, sizeof part, "%s.part", final_path) >= (int)sizeof part)
    return mbsr_error(MBSR_ERANGE, "%s: path too long", final_path);
  char vpath[4200];
  snprintf(vpath, sizeof vpath, "%s.validator.part", final_path);
  int remote = is_remote(url);
  int fresh_retry_done = 0;
  int rc = 0;
  for (int k = 0;; k++) {
    att_outcome r;
    int64_t have = file_size(part);
    if (have < 0) have = 0;
    if (have > 0 && !remote) res->resumed = 1;
    res->attempts++;
    if (remote) {
      attempt a;
      memset(&a, 0, sizeof a);
      a.offset = have;
      char validator[256] = "";
      if (have > 0) {
        FILE *vf = fopen(vpath, "r");
        if (vf) {
          if (!fgets(validator, sizeof validator, vf)) validator[0] = 0;
          validator[strcspn(validator, "\r\n")] = 0;
          fclose(vf);
        }
        a.if_range = validator;
      }
      a.f = fopen(part, have > 0 ? "r+b" : "wb");
      if (a.f && have > 0) fseeko(a.f, 0, SEEK_END);
      if (!a.f) return mbsr_error(MBSR_EIO, "%s: cannot create: %s", part, strerror(errno));
      r = run_attempt(url, o, &a);
      res->http_status = a.status;
      res->transferred += a.written;
      if (a.status == 206 && a.written > 0) res->resumed = 1; /* a 200 answer restarted the file instead */
      if (fclose(a.f) != 0 && r == ATT_DONE) {
        mbsr_error(MBSR_EIO, "%s: write error: %s", part, strerror(errno));
        r = ATT_FATAL;
      }
      if (a.offset < 0 || a.abort_reason == 1) unlink(part); /* unusable for a resume */
      if (a.status == 200 && a.written > 0) { /* a new file started: remember its validator */
        const char *v = a.etag[0] ? a.etag : a.last_modified;
        FILE *vf = v[0] ? fopen(vpath, "w") : NULL;
        if (vf) { fprintf(vf, "%s\n", v); fclose(vf); }
        else unlink(vpath);
      }
    } else {
      r = copy_local(local_path(url), part, &res->transferred);
    }
    if (r == ATT_DONE) {
      rc = mbsr_sha256_file(part, res->sha256, &res->bytes);
      if (rc) break;
      if (expect_sha256 && expect_sha256[0] && strcasecmp(expect_sha256, res->sha256) != 0) {
        unlink(part);
        rc = mbsr_error(MBSR_ECHECKSUM, "%s: sha256 mismatch: got %s, expected %s", url, res->sha256, expect_sha256);
        /* a resumed file may carry a stale prefix: one fresh download before giving up */
        if (res->resumed && !fresh_retry_done) {
          fresh_retry_done = 1;
          res->resumed = 0;
          continue;
        }
        break;
      }
      rc = mbsr_commit_file(part, final_path);
      break;
    }
    if (file_size(part) <= 0) { unlink(part); unlink(vpath); } /* nothing to resume */
    if (r == ATT_FATAL || k >= o->retries) {
      rc = MBSR_ENET;
      if (k > 0) mbsr_error_prefix(rc, "after %d attempts: ", k + 1);
      break;
    }
    sleep_s(backoff_delay(o, k));
  }
  if (file_size(part) < 0) unlink(vpath); /* committed or discarded: the validator goes too */
  res->seconds = mbsr_now() - t0;
  return rc;
}
