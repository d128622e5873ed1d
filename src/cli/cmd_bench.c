/* mbsr bench: time the paper's networks (ResNet, cCNN) on 21^3 patches — forward, training step
 * (forward + backward + Adam through the model API), GFLOP/s, fraction of the FMA peak measured on the
 * spot, per-layer conv times, peak memory — and, with --peer, the identical PyTorch models
 * (experiments/bench/torch_peer.py) in the same run, printing the ratio torch_time / mbsr_time.
 * --conv times one 64->64 conv on 8x64x21^3 (forward, forward+backward) instead.
 * A benchmark, not a test: times are medians of --repeats runs after --warmup runs. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mbsr/cli.h"
#include "mbsr/model.h"
#include "mbsr/nn.h"
#include "cli_json.h"

#define MAXB 8

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr bench [--arch resnet|ccnn|gan|all] [--batch 1,8] [--threads N] [--precision fp32|bf16]\n"
          "                  [--conv] [--peer] [--repeats R] [--warmup W] [--size S] [--no-layers]\n"
          "                  [--python EXE] [--peer-script PATH] [--out FILE.json] [--tune[=FILE]]\n"
          "  --arch         network(s) to time (default all: resnet then ccnn; paper widths; gan: the GAN step,\n"
          "                 mbsr only, no peer)\n"
          "  --batch        comma-separated batch sizes (default 1,8)\n"
          "  --threads      OpenMP threads for mbsr and the peer (default: OMP_NUM_THREADS or all cores)\n"
          "  --precision    conv arithmetic (default fp32; bf16 needs AVX512_BF16)\n"
          "  --conv         time one 64->64 3x3x3 conv on 8x64x21^3 (forward, forward+backward) instead\n"
          "  --peer         also run the PyTorch peer (experiments/bench/torch_peer.py) and print ratios\n"
          "                 torch_time / mbsr_time (> 1: mbsr is faster)\n"
          "  --repeats      timed runs per measurement, the median is reported (default 5)\n"
          "  --warmup       untimed runs first (default 1)\n"
          "  --size         patch edge (default 21)\n"
          "  --no-layers    skip the per-layer conv breakdown\n"
          "  --python       interpreter for the peer (default /usr/bin/python3: Debian's python3-torch)\n"
          "  --peer-script  path of torch_peer.py (default: found via $MBSR_SOURCE_DIR, ./, or the binary)\n"
          "  --out FILE     also write the results as JSON (--model, --prec, --json: the earlier spellings)\n"
          "  --tune[=FILE]  measure every conv algorithm (direct, each Winograd tile) of each pass of the\n"
          "                 --arch networks' layer shapes at the --batch sizes and --size, and record the\n"
          "                 fastest per shape and pass for this CPU model in FILE (default: MBSR_TUNE_FILE,\n"
          "                 else ~/.cache/mbsr/conv-tune.tsv), which training and apply then use; prints\n"
          "                 the times and exits. Run it once per node type, with the threads jobs use\n"
          "Run it as one process (under mpirun only rank 0 times, the others wait). On a shared machine set\n"
          "OMP_WAIT_POLICY=passive (the peer inherits the environment). MBSR_CONV_ALGO=auto|direct|winograd|\n"
          "direct-narrow|wino222|wino223|wino233|wino333 chooses the conv algorithm (auto: the tuning file's\n"
          "measured choice, else a fixed rule; direct-narrow: the direct kernels with half-width output-channel\n"
          "blocks),\n"
          "MBSR_CONV_KERNEL the kernel family; the per-layer lines name what each pass ran (forward/input\n"
          "gradient/weight gradient).\n");
}

typedef struct {
  int model_mode; /* 0 resnet, 1 ccnn, 2 all (resnet, ccnn), 3 gan */
  int batches[8], nbatch;
  int threads, repeats, warmup, size, peer, conv, layers, tune;
  mbsr_precision prec;
  const char *python, *script, *json, *tune_file;
} bench_opts;

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double vmin(const double *v, int n) {
  double m = v[0];
  for (int i = 1; i < n; i++)
    if (v[i] < m) m = v[i];
  return m;
}

static void fill(float *p, size_t n, uint64_t seed) {
  mbsr_rng *r = mbsr_rng_new(seed);
  for (size_t i = 0; i < n; i++) p[i] = (float)mbsr_rng_uniform(r);
  mbsr_rng_free(r);
}

/* ---- per-layer conv timing: the model's conv layers, grouped by shape, called directly ---- */
typedef struct {
  const char *name;     /* the group's first layer */
  mbsr_conv3d_dims dims;
  int count, need_dinp;
  int calls;            /* forward (and backward) calls per training step: GAN discriminator 3, else 1 */
} layer_spec;

/* The model's conv layers (mbsr_model_conv_layer) grouped by shape; at most max groups. */
static int model_layers(const mbsr_model *m, layer_spec *L, int max) {
  int n = 0, gen = 0;
  const int nl = mbsr_model_conv_layer(m, 0, NULL, NULL);
  for (int i = 0; i < nl; i++) {
    const char *name;
    mbsr_conv3d_dims d;
    mbsr_model_conv_layer(m, i, &name, &d);
    const int disc = !strncmp(name, "disc.", 5);
    if (!disc) gen++;
    /* the network's first conv needs no input gradient (the discriminator's does: the generator's
     * step back-propagates through it) */
    const int need = !(i == 0);
    int k = 0;
    for (; k < n; k++)
      if (L[k].dims.cin == d.cin && L[k].dims.cout == d.cout && L[k].dims.stride == d.stride && L[k].dims.d == d.d &&
          L[k].need_dinp == need && L[k].calls == (disc ? 3 : 1))
        break;
    if (k == n) {
      if (n == max) continue;
      L[n++] = (layer_spec){name, d, 0, need, disc ? 3 : 1};
    }
    L[k].count++;
  }
  (void)gen;
  return n;
}

typedef struct {
  double fwd_ms, bwd_ms; /* per call */
} layer_time;

static int time_layer(const layer_spec *l, int B, int reps, int warm, layer_time *t) {
  mbsr_conv3d_dims s = l->dims;
  s.n = B;
  mbsr_conv_bufs c;
  int rc = mbsr_conv_bufs_alloc(&c, &s, 0);
  if (rc) return rc;
  double tf[64] = {0}, tb[64] = {0};
  for (int r = -warm; r < reps; r++) {
    double t0 = mbsr_now();
    mbsr_conv3d_forward(c.y, c.x, c.w, c.b, &s, c.ws);
    double t1 = mbsr_now();
    mbsr_conv3d_backward(l->need_dinp ? c.dx : NULL, c.dw, c.db, c.g, c.x, c.w, &s, c.ws);
    double t2 = mbsr_now();
    if (r >= 0) tf[r] = (t1 - t0) * 1e3, tb[r] = (t2 - t1) * 1e3;
  }
  t->fwd_ms = vmin(tf, reps); /* best of: the breakdown is about the kernels, not the machine's load */
  t->bwd_ms = vmin(tb, reps);
  mbsr_conv_bufs_free(&c);
  return MBSR_OK;
}

/* "wino2x3x3/wino2x3x3/wino2x2x3": the algorithm of each pass (forward / input gradient / weight gradient)
 * at batch B. */
static void algos_of(const layer_spec *l, int B, char *buf, size_t n) {
  mbsr_conv3d_dims s = l->dims;
  s.n = B;
  snprintf(buf, n, "%s/%s/%s", mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 0)),
           l->need_dinp ? mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 1)) : "-", mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 2)));
}

static void loadavg(char *buf, size_t n) {
  FILE *f = fopen("/proc/loadavg", "r");
  double a = -1, b = -1, c = -1;
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3) a = b = c = -1;
    fclose(f);
  }
  snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
}

/* ---- the peer: torch_peer.py --serve in a child process, asked for one timed run at a time so that
 * mbsr and PyTorch runs alternate and see the same machine load ---- */
typedef struct {
  pid_t pid;
  FILE *to, *from;
  char version[256];
} peer;

static const char *find_script(const char *given, char *buf, size_t n) {
  if (given) return given;
  const char *src = getenv("MBSR_SOURCE_DIR");
  char exe[4096];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[k > 0 ? k : 0] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  const char *cand[3] = {NULL, "experiments/bench/torch_peer.py", NULL};
  char c0[4400], c2[4400];
  if (src) snprintf(c0, sizeof c0, "%s/experiments/bench/torch_peer.py", src), cand[0] = c0;
  snprintf(c2, sizeof c2, "%s/../../experiments/bench/torch_peer.py", exe), cand[2] = c2; /* build-x/bin/mbsr */
  for (int i = 0; i < 3; i++)
    if (cand[i] && access(cand[i], R_OK) == 0) {
      snprintf(buf, n, "%s", cand[i]);
      return buf;
    }
  return NULL;
}

static int peer_start(const bench_opts *o, peer *p) {
  char sbuf[4096], th[16];
  const char *script = find_script(o->script, sbuf, sizeof sbuf);
  if (!script) return mbsr_error(MBSR_EIO, "experiments/bench/torch_peer.py not found (use --peer-script)");
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return mbsr_error(MBSR_EIO, "peer: pipe failed");
  snprintf(th, sizeof th, "%d", o->threads);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return mbsr_error(MBSR_EIO, "peer: fork failed");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    setenv("OMP_NUM_THREADS", th, 1);
    execlp(o->python, o->python, script, "--serve", "--threads", th, (char *)NULL);
    fprintf(stderr, "mbsr bench: cannot run %s %s\n", o->python, script);
    _exit(127);
  }
  close(in[0]), close(out[1]);
  p->pid = pid;
  p->to = fdopen(in[1], "w");
  p->from = fdopen(out[0], "r");
  char line[256];
  if (!p->to || !p->from || !fgets(line, sizeof line, p->from) || strncmp(line, "ready", 5))
    return mbsr_error(MBSR_EIO, "peer: %s %s --serve did not start (is python3-torch installed?)", o->python, script);
  line[strcspn(line, "\n")] = 0;
  snprintf(p->version, sizeof p->version, "%s", line + 6);
  return MBSR_OK;
}

static void peer_stop(peer *p) {
  if (!p->pid) return;
  if (p->to) fputs("quit\n", p->to), fclose(p->to);
  if (p->from) fclose(p->from);
  int st;
  waitpid(p->pid, &st, 0);
  p->pid = 0;
}

/* Send one request; for fwd/step fill t[0] (NCDHW) and t[1] (channels-last) wall ms, t[2], t[3] the
 * same as process CPU ms. */
static int peer_ask(peer *p, const char *req, double t[4]) {
  char line[512];
  usleep(30000); /* likewise for mbsr's threads before the peer's run */
  fprintf(p->to, "%s\n", req);
  fflush(p->to);
  if (!fgets(line, sizeof line, p->from)) return mbsr_error(MBSR_EIO, "peer: no answer to '%s'", req);
  line[strcspn(line, "\n")] = 0;
  if (!strncmp(line, "error", 5)) return mbsr_error(MBSR_EIO, "peer: '%s': %s", req, line);
  if (t && sscanf(line, "%lf %lf %lf %lf", &t[0], &t[1], &t[2], &t[3]) != 4)
    return mbsr_error(MBSR_EIO, "peer: bad answer '%s'", line);
  usleep(30000); /* let the peer's OpenMP threads stop spinning before mbsr's next timed run (and vice versa) */
  return MBSR_OK;
}

/* Medians per format; the peer is credited with its faster format. */
typedef struct {
  double f[2][64], s[2][64], fc[2][64], sc[2][64]; /* wall and CPU ms per format and run */
} peer_times;

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}
static double peer_best(double v[2][64], int n, const char **fmt, int use_min) {
  double a = use_min ? vmin(v[0], n) : median(v[0], n), b = use_min ? vmin(v[1], n) : median(v[1], n);
  *fmt = a <= b ? "ncdhw" : "channels_last";
  return a <= b ? a : b;
}

static double maxrss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

/* The FMA peak is re-measured before each result and the best so far used: a measurement taken while
 * the machine is busy would understate it. */
static double update_peak(const bench_opts *o, double *peak) {
  double p = mbsr_cpu_fma_peak_gflops(o->threads, 0.2);
  if (p > *peak) *peak = p;
  printf("  (FMA peak, best measurement so far: %.0f GFLOP/s)\n", *peak);
  return *peak;
}

/* ---- JSON record (Jansson; written to --out only: stdout carries the human table) ---- */
static void jnum(json_t *o, const char *k, double v) { json_object_set_new(o, k, mbsr__cli_json_num(v)); }
static void jstr(json_t *o, const char *k, const char *v) { json_object_set_new(o, k, mbsr__cli_json_str(v)); }
static void jint(json_t *o, const char *k, int v) { json_object_set_new(o, k, json_integer(v)); }

/* max |a - b| / max |b| over n values */
static double rel_maxdiff(const float *a, const float *b, size_t n) {
  double e = 0, m = 0;
  for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i])), m = fmax(m, fabs((double)b[i]));
  return e / m;
}

/* The peer's medians and bests against mbsr's (f: forward, s: step or forward+backward), printed and
 * recorded under `skey` ("step" or "fwdbwd"). */
static void report_peer(const bench_opts *o, peer_times *pt, const double mb[4], double mbsr_cpu, const char *slabel,
                        const char *skey, json_t *j) {
  const char *ff, *sf, *x, *cf;
  double pf = peer_best(pt->f, o->repeats, &ff, 0), ps = peer_best(pt->s, o->repeats, &sf, 0);
  double pfm = peer_best(pt->f, o->repeats, &x, 1), psm = peer_best(pt->s, o->repeats, &x, 1);
  double pcs = peer_best(pt->sc, o->repeats, &cf, 0);
  printf("  torch forward %8.1f ms (best %.1f) (%s) | %s %8.1f ms (best %.1f) (%s)\n", pf, pfm, ff, slabel, ps, psm, sf);
  printf("  ratio torch/mbsr (medians): forward %.2f, %s %.2f   (bests: %.2f, %.2f)\n", pf / mb[0], slabel, ps / mb[1],
         pfm / mb[2], psm / mb[3]);
  printf("  CPU time of a %s (all threads, medians): mbsr %.1f ms, torch %.1f ms (%s) -> ratio %.2f\n", slabel, mbsr_cpu,
         pcs, cf, pcs / mbsr_cpu);
  char k[64];
  jnum(j, "peer_forward_ms", pf), jstr(j, "peer_forward_format", ff), jnum(j, "ratio_forward", pf / mb[0]);
  snprintf(k, sizeof k, "peer_%s_ms", skey), jnum(j, k, ps);
  snprintf(k, sizeof k, "peer_%s_format", skey), jstr(j, k, sf);
  snprintf(k, sizeof k, "ratio_%s", skey), jnum(j, k, ps / mb[1]);
  snprintf(k, sizeof k, "peer_%s_best_ms", skey), jnum(j, k, psm);
  snprintf(k, sizeof k, "ratio_%s_best", skey), jnum(j, k, psm / mb[3]);
  snprintf(k, sizeof k, "%s_cpu_ms", skey), jnum(j, k, mbsr_cpu);
  snprintf(k, sizeof k, "peer_%s_cpu_ms", skey), jnum(j, k, pcs);
  snprintf(k, sizeof k, "ratio_%s_cpu", skey), jnum(j, k, pcs / mbsr_cpu);
}

/* ---- one 64->64 conv ---- */
static int conv_alloc(const bench_opts *o, mbsr_conv_bufs *c) {
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, 8, o->size, o->size, o->size, 64, 64, 1);
  s.prec = o->prec;
  return mbsr_conv_bufs_alloc(c, &s, mbsr_conv3d_workspace_floats(&s, o->threads));
}

/* Accuracy of a non-fp32 mode against the fp32 kernels: output, input gradient, weight gradient. */
static void conv_accuracy(mbsr_conv_bufs *c, double acc[3]) {
  float *y32 = mbsr_alloc(c->no * 4), *dx0 = mbsr_alloc(c->ni * 4), *dx32 = mbsr_alloc(c->ni * 4);
  float *dw0 = mbsr_alloc(c->nw * 4), *dw32 = mbsr_alloc(c->nw * 4);
  if (y32 && dx0 && dx32 && dw0 && dw32) {
    mbsr_conv3d_dims s32 = c->s;
    s32.prec = MBSR_PREC_FP32;
    mbsr_conv3d_forward(c->y, c->x, c->w, c->b, &c->s, c->ws);
    mbsr_conv3d_forward(y32, c->x, c->w, c->b, &s32, c->ws);
    mbsr_conv3d_backward(dx0, dw0, NULL, c->g, c->x, c->w, &c->s, c->ws);
    mbsr_conv3d_backward(dx32, dw32, NULL, c->g, c->x, c->w, &s32, c->ws);
    acc[0] = rel_maxdiff(c->y, y32, c->no), acc[1] = rel_maxdiff(dx0, dx32, c->ni), acc[2] = rel_maxdiff(dw0, dw32, c->nw);
  }
  mbsr_free(y32), mbsr_free(dx0), mbsr_free(dx32), mbsr_free(dw0), mbsr_free(dw32);
}

static int bench_conv(const bench_opts *o, double *peakp, peer *pp, json_t *doc) {
  mbsr_conv_bufs c;
  int rc = conv_alloc(o, &c);
  if (!rc && pp) rc = peer_ask(pp, "conv", NULL);
  double tf[64] = {0}, tb[64] = {0}, cb[64] = {0};
  peer_times pt;
  for (int r = -o->warmup; r < o->repeats && !rc; r++) {
    double c0 = cpu_ms(), t0 = mbsr_now();
    mbsr_conv3d_forward(c.y, c.x, c.w, c.b, &c.s, c.ws);
    double t1 = mbsr_now();
    mbsr_conv3d_backward(c.dx, c.dw, c.db, c.g, c.x, c.w, &c.s, c.ws);
    double t2 = mbsr_now(), c1 = cpu_ms();
    double pf[4], pb[4];
    if (pp && ((rc = peer_ask(pp, "fwd", pf)) || (rc = peer_ask(pp, "step", pb)))) break;
    if (r < 0) continue;
    tf[r] = (t1 - t0) * 1e3, tb[r] = (t2 - t0) * 1e3, cb[r] = c1 - c0;
    if (pp)
      for (int k = 0; k < 2; k++) pt.f[k][r] = pf[k], pt.s[k][r] = pb[k], pt.fc[k][r] = pf[2 + k], pt.sc[k][r] = pb[2 + k];
  }
  double acc[3] = {-1, -1, -1};
  if (!rc && o->prec != MBSR_PREC_FP32) conv_accuracy(&c, acc);
  const mbsr_conv3d_dims s = c.s;
  mbsr_conv_bufs_free(&c);
  if (rc) return rc;
  json_t *j = json_object();
  if (acc[0] >= 0) {
    printf("accuracy against the fp32 kernels (max |diff| / max |fp32|, uniform [0,1) data): output %.2e, input "
           "gradient %.2e, weight gradient %.2e\n",
           acc[0], acc[1], acc[2]);
    json_object_set_new(doc, "accuracy_vs_fp32", json_pack("{s:f,s:f,s:f}", "output", acc[0], "dinp", acc[1], "dweight", acc[2]));
  }
  const double mb[4] = {median(tf, o->repeats), median(tb, o->repeats), vmin(tf, o->repeats), vmin(tb, o->repeats)};
  const double gf = 2.0 * 64 * 64 * 27 * (double)s.n * s.d * s.h * s.w / 1e9, peak = update_peak(o, peakp);
  printf("conv 64->64 3x3x3 on 8x64x%d^3 (%.2f GFLOP forward), %s; algorithms forward %s, input gradient %s, weight "
         "gradient %s:\n",
         o->size, gf, mbsr_conv3d_kernel_name(o->prec), mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 0)),
         mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 1)), mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 2)));
  printf("  mbsr  forward          %8.1f ms (best %.1f)  %6.0f GFLOP/s  %5.1f %% of fp32 peak\n", mb[0], mb[2],
         gf / mb[0] * 1e3, 100 * gf / mb[0] * 1e3 / peak);
  printf("  mbsr  forward+backward %8.1f ms (best %.1f)  %6.0f GFLOP/s  %5.1f %% of fp32 peak\n", mb[1], mb[3],
         3 * gf / mb[1] * 1e3, 100 * 3 * gf / mb[1] * 1e3 / peak);
  jnum(j, "forward_ms", mb[0]), jnum(j, "fwdbwd_ms", mb[1]), jnum(j, "forward_gflop", gf);
  if (pp) report_peer(o, &pt, mb, median(cb, o->repeats), "forward+backward", "fwdbwd", j);
  json_object_set_new(doc, "conv", j);
  return MBSR_OK;
}

/* ---- a whole model through the model API, then its conv layers alone ---- */
typedef struct {
  double tf[64], ts[64], cs[64]; /* forward and step wall ms, step CPU ms, per timed run */
  peer_times pt;
  double acc; /* this precision's forward against fp32 with the same weights; -1 for fp32 */
} model_times;

static int time_model(const bench_opts *o, mbsr_model *m, int B, peer *pp, model_times *mt) {
  const int S = o->size;
  size_t nv = (size_t)B * S * S * S;
  float *in = mbsr_alloc(nv * 4), *tg = mbsr_alloc(nv * 4), *out = mbsr_alloc(nv * 4);
  int rc = !in || !tg || !out ? mbsr_error(MBSR_ENOMEM, "out of memory (batch %d of %d^3)", B, S) : MBSR_OK;
  if (!rc) fill(in, nv, 5), fill(tg, nv, 6);
  mbsr_adam_config adam;
  mbsr_adam_config_default(&adam);
  mt->acc = -1;
  for (int r = -o->warmup; r < o->repeats && !rc; r++) {
    double pf[4], ps[4];
    double t0 = mbsr_now();
    rc = mbsr_model_forward(m, in, B, out);
    double t1 = mbsr_now();
    if (rc || (pp && (rc = peer_ask(pp, "fwd", pf)))) break;
    double c2 = cpu_ms(), t2 = mbsr_now();
    double loss = mbsr_model_train_step(m, in, tg, B, &adam);
    double t3 = mbsr_now(), c3 = cpu_ms();
    if (!(loss >= 0)) {
      rc = mbsr_error(MBSR_ENONFINITE, "training step failed (loss %g): %s", loss, mbsr_last_error());
      break;
    }
    if (pp && (rc = peer_ask(pp, "step", ps))) break;
    if (r < 0) continue;
    mt->tf[r] = (t1 - t0) * 1e3, mt->ts[r] = (t3 - t2) * 1e3, mt->cs[r] = c3 - c2;
    if (pp)
      for (int k = 0; k < 2; k++)
        mt->pt.f[k][r] = pf[k], mt->pt.s[k][r] = ps[k], mt->pt.fc[k][r] = pf[2 + k], mt->pt.sc[k][r] = ps[2 + k];
  }
  if (!rc && o->prec != MBSR_PREC_FP32) { /* after the timed steps, the same weights */
    float *o32 = mbsr_alloc(nv * 4);
    if (o32 && !mbsr_model_forward(m, in, B, out) && !mbsr_model_set_precision(m, MBSR_PREC_FP32) &&
        !mbsr_model_forward(m, in, B, o32) && !mbsr_model_set_precision(m, o->prec))
      mt->acc = rel_maxdiff(out, o32, nv);
    mbsr_free(o32);
  }
  mbsr_free(in), mbsr_free(tg), mbsr_free(out);
  return rc;
}

/* Each conv layer shape of m timed alone, its algorithms and its share of the best step. */
static int report_layers(const bench_opts *o, const mbsr_model *m, mbsr_arch arch, int B, double stepmn, json_t *j) {
  layer_spec L[16];
  int nl = model_layers(m, L, 16), rc = MBSR_OK;
  double lsum = 0;
  printf("    per layer shape (best of runs; algorithms: forward/input gradient/weight gradient; %s):\n",
         arch == MBSR_ARCH_GAN ? "a GAN step runs the generator once and the discriminator 3 times" : "one call a step");
  json_t *ja = json_array();
  for (int i = 0; i < nl && !rc; i++) {
    layer_time t = {0, 0};
    if ((rc = time_layer(&L[i], B, o->repeats < 3 ? o->repeats : 3, 1, &t))) break;
    const mbsr_conv3d_dims *d = &L[i].dims;
    double lf = 2.0 * 27 * d->cin * d->cout * (double)B * d->od * d->oh * d->ow / 1e9;
    double per = L[i].count * L[i].calls * (t.fwd_ms + t.bwd_ms);
    char al[64], shape[48];
    algos_of(&L[i], B, al, sizeof al);
    printf("    %-17s x%-2d %3d->%-3d s%d %-31s fwd %7.2f ms (%5.0f GFLOP/s)  bwd %7.2f ms (%5.0f GFLOP/s)%s  per "
           "step %7.1f ms = %4.1f %% of the best step\n",
           L[i].name, L[i].count * L[i].calls, d->cin, d->cout, d->stride, al, t.fwd_ms, lf / t.fwd_ms * 1e3, t.bwd_ms,
           (L[i].need_dinp ? 2 : 1) * lf / t.bwd_ms * 1e3, L[i].need_dinp ? "" : " no dX", per, 100 * per / stepmn);
    lsum += per;
    snprintf(shape, sizeof shape, "%d->%d s%d", d->cin, d->cout, d->stride);
    json_t *jl = json_object();
    jstr(jl, "layer", L[i].name), jstr(jl, "shape", shape), jint(jl, "count", L[i].count);
    jint(jl, "calls_per_step", L[i].calls), jstr(jl, "algorithms", al), jnum(jl, "forward_ms", t.fwd_ms);
    jnum(jl, "backward_ms", t.bwd_ms), jnum(jl, "share_of_step", per / stepmn);
    json_array_append_new(ja, jl);
  }
  json_object_set_new(j, "layers", ja);
  if (!rc)
    printf("    convs alone (best of runs): %.1f ms; the rest of the best step (activations, residual adds, loss, "
           "Adam, copies) ~%.1f ms (%.0f %%)\n",
           lsum, stepmn - lsum, 100 * (stepmn - lsum) / stepmn);
  return rc;
}

static int bench_model(const bench_opts *o, mbsr_arch arch, int B, double *peakp, peer *pp, json_t *models) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, arch);
  mbsr_model *m = NULL;
  int rc = mbsr_model_create(&cfg, B, o->size, o->size, o->size, &m);
  if (rc) return rc;
  mbsr_model_init(m, 42);
  const char *name = mbsr_arch_name(arch);
  if (arch == MBSR_ARCH_GAN) pp = NULL; /* the peer has no GAN */
  if (o->prec != MBSR_PREC_FP32) rc = mbsr_model_set_precision(m, o->prec);
  if (!rc && pp) {
    char req[64];
    snprintf(req, sizeof req, "model %s %d %d", name, B, o->size);
    rc = peer_ask(pp, req, NULL);
  }
  model_times *mt = rc ? NULL : calloc(1, sizeof *mt);
  if (!rc && !mt) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  if (!rc) rc = time_model(o, m, B, pp, mt);
  if (!rc) {
    const double mb[4] = {median(mt->tf, o->repeats), median(mt->ts, o->repeats), vmin(mt->tf, o->repeats),
                          vmin(mt->ts, o->repeats)};
    const double peak = update_peak(o, peakp), gfl = mbsr_model_forward_flops(m) * B / 1e9, rss = maxrss_mb();
    const double gfs_f = gfl / mb[0] * 1e3, gfs_s = 3 * gfl / mb[1] * 1e3;
    printf("%s batch %d  (%.2f GFLOP forward, a training step counted as 3x)\n", name, B, gfl);
    printf("  mbsr  forward %8.1f ms (best %.1f) %5.0f GFLOP/s %5.1f %% of fp32 peak | train step %8.1f ms (best "
           "%.1f) %5.0f GFLOP/s %5.1f %% | maxrss %.0f MB\n",
           mb[0], mb[2], gfs_f, 100 * gfs_f / peak, mb[1], mb[3], gfs_s, 100 * gfs_s / peak, rss);
    json_t *j = json_object();
    jstr(j, "model", name), jint(j, "batch", B), jnum(j, "forward_ms", mb[0]), jnum(j, "step_ms", mb[1]);
    jnum(j, "step_best_ms", mb[3]), jnum(j, "forward_gflop", gfl), jnum(j, "maxrss_mb", rss);
    if (mt->acc >= 0) {
      printf("  accuracy: network output against fp32 with the same weights, max |diff| / max |fp32|: %.2e\n", mt->acc);
      jnum(j, "output_accuracy_vs_fp32", mt->acc);
    }
    if (pp) report_peer(o, &mt->pt, mb, median(mt->cs, o->repeats), "train step", "step", j);
    if (o->layers) rc = report_layers(o, m, arch, B, mb[3], j);
    json_array_append_new(models, j);
  }
  fflush(stdout); /* long runs: show each model as it finishes */
  free(mt);
  mbsr_model_free(m);
  return rc;
}

static int parse_batches(const char *arg, bench_opts *o) {
  o->nbatch = 0;
  const char *s = arg;
  char *end;
  while (*s && o->nbatch < 8) {
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 4096 || (*end && *end != ',')) return mbsr_cli_usage_error("bench", "--batch: bad list '%s'", arg);
    o->batches[o->nbatch++] = (int)v;
    s = *end == ',' ? end + 1 : end;
  }
  return o->nbatch ? 0 : mbsr_cli_usage_error("bench", "--batch: empty list");
}

static int parse_int(const char *flag, const char *arg, int lo, int hi, int *v) {
  char *end;
  long x = strtol(arg, &end, 10);
  if (end == arg || *end || x < lo || x > hi) return mbsr_cli_usage_error("bench", "%s: %d..%d, not '%s'", flag, lo, hi, arg);
  *v = (int)x;
  return 0;
}

/* Returns 0, 2 (usage error, printed) or -1 (--help printed: exit 0). */
static int parse_opts(int argc, char **argv, bench_opts *o) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},   {"batch", required_argument, 0, 'b'},
                                       {"threads", required_argument, 0, 't'}, {"prec", required_argument, 0, 'p'},
                                       {"conv", no_argument, 0, 'c'},          {"peer", no_argument, 0, 'P'},
                                       {"repeats", required_argument, 0, 'r'}, {"warmup", required_argument, 0, 'w'},
                                       {"size", required_argument, 0, 's'},    {"no-layers", no_argument, 0, 'L'},
                                       {"python", required_argument, 0, 'y'},  {"peer-script", required_argument, 0, 'S'},
                                       {"json", required_argument, 0, 'j'},    {"help", no_argument, 0, 'h'},
                                       /* the one vocabulary (docs/user/cli.md); the spellings above stay */
                                       {"arch", required_argument, 0, 'm'},    {"precision", required_argument, 0, 'p'},
                                       {"out", required_argument, 0, 'j'},     {"tune", optional_argument, 0, 'T'},
                                       {0, 0, 0, 0}};
  static const char *const archs[] = {"resnet", "ccnn", "all", "gan"};
  int c, rc = 0;
  optind = 1;
  opterr = 0; /* our own one-line message */
  while (!rc && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'm':
        rc = 2;
        for (int a = 0; a < 4; a++)
          if (!strcmp(optarg, archs[a])) o->model_mode = a, rc = 0;
        if (rc) rc = mbsr_cli_usage_error("bench", "--arch: resnet, ccnn, gan or all, not '%s'", optarg);
        break;
      case 'b': rc = parse_batches(optarg, o); break;
      case 't': rc = parse_int("--threads", optarg, 1, 1024, &o->threads); break;
      case 'p':
        if (!strcmp(optarg, "fp32")) o->prec = MBSR_PREC_FP32;
        else if (!strcmp(optarg, "bf16")) o->prec = MBSR_PREC_BF16;
        else rc = mbsr_cli_usage_error("bench", "--precision: fp32 or bf16, not '%s'", optarg);
        break;
      case 'c': o->conv = 1; break;
      case 'P': o->peer = 1; break;
      case 'r': rc = parse_int("--repeats", optarg, 1, 64, &o->repeats); break;
      case 'w': rc = parse_int("--warmup", optarg, 0, 64, &o->warmup); break;
      case 's': rc = parse_int("--size", optarg, 3, 256, &o->size); break;
      case 'L': o->layers = 0; break;
      case 'y': o->python = optarg; break;
      case 'S': o->script = optarg; break;
      case 'j': o->json = optarg; break;
      case 'T': o->tune = 1, o->tune_file = optarg; break;
      case 'h': usage(stdout); return -1;
      default: return mbsr_cli_usage_error("bench", "unknown option or missing value: '%s'", argv[optind - 1]);
    }
  }
  if (!rc && optind < argc) rc = mbsr_cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
  return rc;
}

/* The header lines and the run's record: threads, kernels, FMA peak, CPU, load, algorithm choice. */
static json_t *bench_header(const bench_opts *o, double peak) {
  printf("mbsr bench: %d threads, conv kernels %s, FMA peak measured now %.0f GFLOP/s (fp32), median of %d "
         "runs after %d warm-up\n",
         o->threads, mbsr_conv3d_kernel_name(o->prec), peak, o->repeats, o->warmup);
  char la[64];
  loadavg(la, sizeof la);
  const char *alg = getenv("MBSR_CONV_ALGO"), *wp = getenv("OMP_WAIT_POLICY");
  const char *tf = mbsr_conv_tune_source();
  printf("CPU: %s; load average at start %s; MBSR_CONV_ALGO=%s; conv tuning file: %s\n", mbsr_cpu_model(), la,
         alg ? alg : "(unset: auto)", tf ? tf : "none (auto = the fixed rule)");
  printf("OMP_WAIT_POLICY=%s (the peer inherits it; 'passive' helps a lot when the machine is shared)\n",
         wp ? wp : "(unset: libgomp spins a while at barriers)");
  json_t *doc = json_object();
  jint(doc, "threads", o->threads), jstr(doc, "kernel", mbsr_conv3d_kernel_name(o->prec)), jnum(doc, "fma_peak_gflops", peak);
  jint(doc, "repeats", o->repeats), jint(doc, "size", o->size), jstr(doc, "cpu", mbsr_cpu_model());
  jstr(doc, "loadavg_start", la), jstr(doc, "conv_algo", alg ? alg : "auto");
  jstr(doc, "conv_tune_file", tf ? tf : "");
  return doc;
}

/* --tune: every algorithm of each pass of each layer shape, the fastest recorded for this CPU model. */
static int bench_tune(const bench_opts *o) {
  const mbsr_arch archs[3] = {MBSR_ARCH_RESNET, MBSR_ARCH_CCNN, MBSR_ARCH_GAN};
  int a0 = o->model_mode == 1 ? 1 : o->model_mode == 3 ? 2 : 0, a1 = o->model_mode == 0 ? 0 : o->model_mode == 3 ? 2 : 1;
  static const char *pass_name[3] = {"forward", "input gradient", "weight gradient"};
  int rc = MBSR_OK, shapes = 0;
  const double t0 = mbsr_now();
  printf("conv tuning: %d threads, best of %d runs per algorithm and pass (ms; '-': not applicable)\n", o->threads,
         o->repeats);
  int wid[MBSR_CONV_NALGO]; /* column widths: the name's, at least 9 */
  printf("  %-24s %-15s", "shape", "pass");
  for (int v = 0; v < MBSR_CONV_NALGO; v++) {
    const int len = (int)strlen(mbsr_conv_algo_name((mbsr_conv_algo)v));
    wid[v] = len > 9 ? len : 9;
    printf(" %*s", wid[v], mbsr_conv_algo_name((mbsr_conv_algo)v));
  }
  printf("  chosen\n");
  for (int a = a0; a <= a1 && !rc; a++)
    for (int k = 0; k < o->nbatch && !rc; k++) {
      mbsr_model_config cfg;
      mbsr_model_config_default(&cfg, archs[a]);
      mbsr_model *m = NULL;
      const int B = o->batches[k];
      if ((rc = mbsr_model_create(&cfg, B, o->size, o->size, o->size, &m))) break;
      layer_spec L[16];
      const int nl = model_layers(m, L, 16);
      for (int i = 0; i < nl && !rc; i++) {
        mbsr_conv3d_dims s = L[i].dims;
        s.n = B;
        double ms[3][MBSR_CONV_NALGO];
        mbsr_conv_algo best[3];
        if ((rc = mbsr_conv_tune_shape(&s, L[i].need_dinp, o->repeats, ms, best))) break;
        shapes++;
        for (int p = 0; p < 3; p++) {
          if (p == 1 && !L[i].need_dinp) continue;
          char shape[48];
          snprintf(shape, sizeof shape, "%d->%d %dx%d^3", s.cin, s.cout, B, s.d);
          printf("  %-24s %-15s", p ? "" : shape, pass_name[p]);
          for (int v = 0; v < MBSR_CONV_NALGO; v++) {
            if (isnan(ms[p][v])) printf(" %*s", wid[v], "-");
            else printf(" %*.2f", wid[v], ms[p][v]);
          }
          printf("  %s\n", mbsr_conv_algo_name(best[p]));
        }
      }
      mbsr_model_free(m);
    }
  if (!rc) rc = mbsr_conv_tune_save(o->tune_file);
  if (!rc)
    printf("conv tuning: %d shapes in %.1f s, recorded for '%s' in %s\n", shapes, mbsr_now() - t0, mbsr_cpu_model(),
           mbsr_conv_tune_source());
  return rc;
}

static int bench_run(const bench_opts *o, double peak, json_t *doc) {
  peer pr = {0}, *pp = NULL;
  int rc = MBSR_OK;
  if (o->peer && !(rc = peer_start(o, &pr))) {
    pp = &pr;
    printf("peer: PyTorch %s (experiments/bench/torch_peer.py), both memory formats timed and the faster one "
           "credited; runs alternate with mbsr's\n",
           pr.version);
    jstr(doc, "peer", "pytorch"), jstr(doc, "peer_version", pr.version);
  }
  if (!rc && o->conv) {
    rc = bench_conv(o, &peak, pp, doc);
  } else if (!rc) {
    const mbsr_arch archs[3] = {MBSR_ARCH_RESNET, MBSR_ARCH_CCNN, MBSR_ARCH_GAN};
    int a0 = o->model_mode == 1 ? 1 : o->model_mode == 3 ? 2 : 0, a1 = o->model_mode == 0 ? 0 : o->model_mode == 3 ? 2 : 1;
    json_t *models = json_array();
    json_object_set_new(doc, "models", models);
    for (int a = a0; a <= a1 && !rc; a++)
      for (int k = 0; k < o->nbatch && !rc; k++) rc = bench_model(o, archs[a], o->batches[k], &peak, pp, models);
  }
  peer_stop(&pr);
  char la[64];
  loadavg(la, sizeof la);
  printf("load average at the end %s\n", la);
  jstr(doc, "loadavg_end", la);
  return rc;
}

int mbsr_cmd_bench(int argc, char **argv) {
  bench_opts o = {.model_mode = 2, .batches = {1, 8}, .nbatch = 2, .threads = omp_get_max_threads(), .repeats = 5,
                  .warmup = 1, .size = 21, .layers = 1, .prec = MBSR_PREC_FP32, .python = "/usr/bin/python3"};
  if (access(o.python, X_OK) != 0) o.python = "python3";
  int rc = parse_opts(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  if (mbsr_cli_mpi_active() && mbsr_log_rank() != 0) return 0; /* one timing process; other ranks idle */
  omp_set_num_threads(o.threads);
  if (o.tune) return bench_tune(&o) ? mbsr_cli_fail("bench") : 0;
  if (!mbsr_conv3d_precision_available(o.prec)) {
    mbsr_error(MBSR_EUNSUPPORTED, "--precision bf16: no bf16 conv kernel on this CPU (needs AVX512_BF16)");
    return mbsr_cli_fail("bench");
  }
  double peak = mbsr_cpu_fma_peak_gflops(o.threads, 0.3);
  json_t *doc = bench_header(&o, peak);
  if (peak <= 0) peak = 1;
  rc = bench_run(&o, peak, doc);
  if (!rc && o.json) rc = mbsr__cli_json_save(doc, 6, o.json);
  json_decref(doc);
  return rc ? mbsr_cli_fail("bench") : 0;
}
