/* Measured convolution algorithm choice, cached per CPU model (issue 12).
 *
 * `mbsr bench --tune` times every algorithm of each pass (forward, input gradient, weight gradient) of the
 * conv shapes of a network on this CPU: the direct kernels in both blockings (wide and narrow
 * output-channel register blocks, mbsr__conv_row.narrow) and every Winograd tile (all within the 1e-5
 * accuracy bound, tests/nn/test_winograd.c); the fastest per shape and pass goes into a small TSV file:
 *
 *   # mbsr conv tuning 1
 *   # cpu<TAB><mbsr_cpu_model()>
 *   # threads<TAB>2
 *   isa  pass  cin  cout  voxels  algo  ms_direct  ms_wino2x2x2  ms_wino2x2x3  ms_wino2x3x3  ms_wino3x3x3
 *   ms_direct-narrow
 *
 * Under MBSR_CONV_ALGO=auto (the default) mbsr__wino_pick asks mbsr__tune_lookup first: the entry of the
 * same ISA, pass and channel counts whose voxel count (n*d*h*w) is nearest, within a factor of 4; any
 * other shape falls back to the fixed rule in winograd.c. The file is read once per process, and only
 * when its cpu line is this CPU's: ranks on nodes of one kind read the same file and pick the same
 * algorithms, and a run is reproducible as long as the file is kept. Where it is:
 *   MBSR_TUNE_FILE (a path; "none" turns tuning off), else $XDG_CACHE_HOME/mbsr/conv-tune.tsv, else
 *   $HOME/.cache/mbsr/conv-tune.tsv. A file of another CPU is ignored (and replaced by the next --tune). */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/nn.h"
#include "winograd.h"

#define TUNE_MAX 256

typedef struct {
  char isa[16];
  int pass, cin, cout;
  long vox;
  int algo;         /* mbsr_conv_algo */
  double ms[MBSR_CONV_NALGO]; /* per algorithm; NAN: not timed */
} tune_entry;

static tune_entry g_tab[TUNE_MAX];
static int g_n;
static char g_path[4096];
static int g_state; /* 0 none, 1 loaded from g_path, 2 tuned in this process */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int tune_path(char *buf, size_t n) {
  const char *e = getenv("MBSR_TUNE_FILE");
  if (e && *e) return strcmp(e, "none") ? mbsr_pathf(buf, n, "%s", e) : MBSR_EINVAL;
  const char *x = getenv("XDG_CACHE_HOME");
  if (x && *x) return mbsr_pathf(buf, n, "%s/mbsr/conv-tune.tsv", x);
  const char *h = getenv("HOME");
  if (h && *h) return mbsr_pathf(buf, n, "%s/.cache/mbsr/conv-tune.tsv", h);
  return MBSR_EINVAL;
}

static int algo_parse(const char *s) {
  for (int a = 0; a < MBSR_CONV_NALGO; a++)
    if (!strcmp(s, mbsr_conv_algo_name((mbsr_conv_algo)a))) return a;
  return -1;
}

/* Reads g_path; a missing file, a file of another CPU or a malformed line leaves the table empty. */
static void load_once(void) {
  if (tune_path(g_path, sizeof g_path)) { /* MBSR_TUNE_FILE=none, or no home */
    mbsr_error_clear();
    g_path[0] = 0;
    return;
  }
  FILE *f = fopen(g_path, "r");
  if (!f) return;
  char line[512], cpu[512] = "";
  int n = 0, ok = 1;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!strncmp(line, "# cpu\t", 6)) snprintf(cpu, sizeof cpu, "%s", line + 6);
    if (line[0] == '#' || !strncmp(line, "isa\t", 4) || !line[0]) continue;
    tune_entry t;
    char alg[32];
    if (n == TUNE_MAX || sscanf(line, "%15s %d %d %d %ld %31s", t.isa, &t.pass, &t.cin, &t.cout, &t.vox, alg) != 6 ||
        (t.algo = algo_parse(alg)) < 0 || t.pass < 0 || t.pass > 2) {
      ok = 0;
      break;
    }
    for (int a = 0; a < MBSR_CONV_NALGO; a++) t.ms[a] = NAN;
    g_tab[n++] = t;
  }
  fclose(f);
  if (ok && !strcmp(cpu, mbsr_cpu_model())) g_n = n, g_state = 1;
  else if (!ok) mbsr_warn("conv tuning: %s is malformed; ignored (run mbsr bench --tune again)", g_path);
}

int mbsr__tune_lookup(const mbsr_conv3d_dims *s, int pass, const char *isa) {
  pthread_once(&g_once, load_once);
  const long vox = (long)s->n * s->d * s->h * s->w;
  int best = -1;
  double bd = log(4.0) + 1e-9;
  for (int i = 0; i < g_n; i++) {
    const tune_entry *t = &g_tab[i];
    if (t->pass != pass || t->cin != s->cin || t->cout != s->cout || strcmp(t->isa, isa)) continue;
    const double d = fabs(log((double)vox / (double)t->vox));
    if (d < bd) bd = d, best = i;
  }
  return best < 0 ? -3 : g_tab[best].algo;
}

const char *mbsr_conv_tune_source(void) {
  pthread_once(&g_once, load_once);
  return g_state ? g_path : NULL;
}

static const char *force_name(int a) {
  static const char *n[MBSR_CONV_NALGO] = {"direct", "wino222", "wino223", "wino233", "wino333", "direct-narrow"};
  return n[a];
}

static void fill(float *p, size_t n, uint64_t seed) {
  mbsr_rng *r = mbsr_rng_new(seed);
  for (size_t i = 0; i < n; i++) p[i] = (float)mbsr_rng_uniform(r);
  mbsr_rng_free(r);
}

void mbsr_conv_bufs_free(mbsr_conv_bufs *c) {
  float *all[] = {c->x, c->y, c->g, c->w, c->b, c->dx, c->dw, c->db, c->ws};
  for (int i = 0; i < 9; i++) mbsr_free(all[i]);
  memset(c, 0, sizeof *c);
}

int mbsr_conv_bufs_alloc(mbsr_conv_bufs *c, const mbsr_conv3d_dims *s, size_t ws_floats) {
  memset(c, 0, sizeof *c);
  c->s = *s;
  c->ni = (size_t)s->n * s->d * s->h * s->w * s->cin;
  c->no = (size_t)s->n * s->od * s->oh * s->ow * s->cout;
  c->nw = (size_t)27 * s->cin * s->cout;
  if (!ws_floats) ws_floats = mbsr_conv3d_workspace_floats(s, omp_get_max_threads());
  c->x = mbsr_alloc(c->ni * 4), c->y = mbsr_alloc(c->no * 4), c->g = mbsr_alloc(c->no * 4);
  c->w = mbsr_alloc(c->nw * 4), c->b = mbsr_alloc((size_t)s->cout * 4), c->dx = mbsr_alloc(c->ni * 4);
  c->dw = mbsr_alloc(c->nw * 4), c->db = mbsr_alloc((size_t)s->cout * 4), c->ws = mbsr_alloc(ws_floats * 4);
  if (!c->x || !c->y || !c->g || !c->w || !c->b || !c->dx || !c->dw || !c->db || !c->ws) {
    mbsr_conv_bufs_free(c);
    return mbsr_error(MBSR_ENOMEM, "out of memory for a %d->%d conv at batch %d of %dx%dx%d", s->cin, s->cout, s->n,
                      s->d, s->h, s->w);
  }
  fill(c->x, c->ni, 1), fill(c->g, c->no, 2), fill(c->w, c->nw, 3), fill(c->b, (size_t)s->cout, 4);
  return MBSR_OK; /* (mbsr_alloc zeroes: the gradients start at 0) */
}

int mbsr_conv_tune_shape(const mbsr_conv3d_dims *s0, int need_dx, int reps, double ms[3][MBSR_CONV_NALGO], mbsr_conv_algo best[3]) {
  pthread_once(&g_once, load_once);
  mbsr_conv3d_dims s = *s0;
  const char *isa = strncmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "avx512", 6) ? "avx2" : "avx512";
  const int prev = mbsr__conv3d_algo_setting();
  size_t nws = 0;
  int ok[MBSR_CONV_NALGO];
  for (int a = 0; a < MBSR_CONV_NALGO; a++) { /* which algorithms apply, and the largest workspace among them */
    mbsr__conv3d_force_algo(force_name(a));
    ok[a] = mbsr_conv3d_algo(&s, 0) == (mbsr_conv_algo)a;
    size_t w = mbsr_conv3d_workspace_floats(&s, omp_get_max_threads());
    if (w > nws) nws = w;
  }
  mbsr_conv_bufs c;
  int rc = mbsr_conv_bufs_alloc(&c, &s, nws);
  if (rc) goto done;
  for (int p = 0; p < 3; p++) {
    double bestms = INFINITY;
    best[p] = MBSR_CONV_DIRECT;
    for (int a = 0; a < MBSR_CONV_NALGO; a++) ms[p][a] = NAN;
    if (p == 1 && !need_dx) continue;
    /* the narrow blocking computes anything differently only with more output channels (of this pass)
     * than its block */
    const int pass_cout = p == 1 ? s.cin : s.cout;
    const int narrow_differs = !strncmp(mbsr_conv3d_kernel_name(MBSR_PREC_FP32), "avx", 3) &&
                               pass_cout > (!strcmp(isa, "avx512") ? MBSR__CO_BLOCK_AVX512 : MBSR__CO_BLOCK_AVX2) / 2;
    /* rounds over the algorithms (a change of load hits them all alike), one warm-up round; the best of
     * reps rounds per algorithm */
    for (int r = -1; r < reps; r++)
      for (int a = 0; a < MBSR_CONV_NALGO; a++) {
        if (!ok[a] || (a == MBSR_CONV_DIRECT_NARROW && !narrow_differs)) continue;
        mbsr__conv3d_force_algo(force_name(a));
        const double t0 = mbsr_now();
        if (p == 0) mbsr_conv3d_forward(c.y, c.x, c.w, c.b, &s, c.ws);
        else if (p == 1) mbsr_conv3d_backward(c.dx, NULL, NULL, c.g, c.x, c.w, &s, c.ws);
        else mbsr_conv3d_backward(NULL, c.dw, c.db, c.g, c.x, c.w, &s, c.ws);
        const double dt = (mbsr_now() - t0) * 1e3;
        if (r >= 0 && !(dt >= ms[p][a])) ms[p][a] = dt; /* NAN on the first timed round */
      }
    for (int a = 0; a < MBSR_CONV_NALGO; a++)
      if (ok[a] && !isnan(ms[p][a]) && ms[p][a] < bestms) bestms = ms[p][a], best[p] = (mbsr_conv_algo)a;
    /* record (replace an entry of the same key) */
    const long vox = (long)s.n * s.d * s.h * s.w;
    int i = 0;
    while (i < g_n && !(g_tab[i].pass == p && g_tab[i].cin == s.cin && g_tab[i].cout == s.cout && g_tab[i].vox == vox &&
                        !strcmp(g_tab[i].isa, isa)))
      i++;
    if (i == TUNE_MAX) continue;
    if (i == g_n) g_n++;
    tune_entry *t = &g_tab[i];
    snprintf(t->isa, sizeof t->isa, "%s", isa);
    t->pass = p, t->cin = s.cin, t->cout = s.cout, t->vox = vox, t->algo = best[p];
    memcpy(t->ms, ms[p], sizeof t->ms);
    g_state = 2;
  }
  mbsr_conv_bufs_free(&c);
done:
  mbsr__conv3d_algo_restore(prev);
  return rc;
}

int mbsr_conv_tune_save(const char *path) {
  pthread_once(&g_once, load_once);
  char def[4096];
  if (!path) {
    if (tune_path(def, sizeof def)) return mbsr_error(MBSR_EINVAL, "conv tuning: no place for the file (set MBSR_TUNE_FILE)");
    path = def;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", def);
    char *sl = strrchr(dir, '/');
    if (sl && sl != dir) {
      *sl = 0;
      int rc = mbsr_mkdir_p(dir);
      if (rc) return rc;
    }
  }
  size_t cap = 256 + (size_t)g_n * 160, len = 0;
  char *txt = malloc(cap);
  if (!txt) return mbsr_error(MBSR_ENOMEM, "out of memory");
  len += (size_t)snprintf(txt + len, cap - len, "# mbsr conv tuning 1\n# cpu\t%s\n# threads\t%d\n", mbsr_cpu_model(),
                          omp_get_max_threads());
  len += (size_t)snprintf(txt + len, cap - len, "isa\tpass\tcin\tcout\tvoxels\talgo");
  for (int a = 0; a < MBSR_CONV_NALGO; a++)
    len += (size_t)snprintf(txt + len, cap - len, "\tms_%s", mbsr_conv_algo_name((mbsr_conv_algo)a));
  for (int i = 0; i < g_n && len < cap; i++) {
    const tune_entry *t = &g_tab[i];
    len += (size_t)snprintf(txt + len, cap - len, "\n%s\t%d\t%d\t%d\t%ld\t%s", t->isa, t->pass, t->cin, t->cout, t->vox,
                            mbsr_conv_algo_name((mbsr_conv_algo)t->algo));
    for (int a = 0; a < MBSR_CONV_NALGO && len < cap; a++)
      len += (size_t)snprintf(txt + len, cap - len, "\t%.3f", t->ms[a]);
  }
  if (len < cap) len += (size_t)snprintf(txt + len, cap - len, "\n");
  int rc = mbsr_write_text_atomic(path, txt);
  free(txt);
  if (!rc) snprintf(g_path, sizeof g_path, "%s", path);
  return rc;
}
