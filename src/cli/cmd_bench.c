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

#define MAXB 8

static void usage(FILE *f) {
  fprintf(f,
          "usage: mbsr bench [--arch resnet|ccnn|gan|all] [--batch 1,8] [--threads N] [--precision fp32|bf16x3|bf16]\n"
          "                  [--conv] [--peer] [--repeats R] [--warmup W] [--size S] [--no-layers]\n"
          "                  [--python EXE] [--peer-script PATH] [--out FILE.json]\n"
          "  --arch         network(s) to time (default all: resnet then ccnn; paper widths; gan: the GAN step,\n"
          "                 mbsr only, no peer)\n"
          "  --batch        comma-separated batch sizes (default 1,8)\n"
          "  --threads      OpenMP threads for mbsr and the peer (default: OMP_NUM_THREADS or all cores)\n"
          "  --precision    conv arithmetic (default fp32; bf16 modes need a CPU that has them)\n"
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
          "Run it as one process (under mpirun only rank 0 times, the others wait). On a shared machine set\n"
          "OMP_WAIT_POLICY=passive (the peer inherits the environment). MBSR_CONV_ALGO=auto|direct|winograd|\n"
          "wino222|wino223|wino233 chooses the conv algorithm, MBSR_CONV_KERNEL the kernel family; the per-layer\n"
          "lines name what each pass ran (forward/input gradient/weight gradient).\n");
}

typedef struct {
  int model_mode; /* 0 resnet, 1 ccnn, 2 all (resnet, ccnn), 3 gan */
  int batches[8], nbatch;
  int threads, repeats, warmup, size, peer, conv, layers;
  mbsr_precision prec;
  const char *python, *script, *json;
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
  size_t nv = (size_t)B * s.d * s.h * s.w, no_ = (size_t)B * s.od * s.oh * s.ow;
  size_t ni = nv * s.cin, no = no_ * s.cout, nw = (size_t)27 * s.cin * s.cout;
  size_t nws = mbsr_conv3d_workspace_floats(&s, omp_get_max_threads());
  float *x = mbsr_alloc(ni * 4), *y = mbsr_alloc(no * 4), *g = mbsr_alloc(no * 4), *w = mbsr_alloc(nw * 4);
  float *b = mbsr_alloc(s.cout * 4), *dx = mbsr_alloc(ni * 4), *dw = mbsr_alloc(nw * 4), *db = mbsr_alloc(s.cout * 4);
  float *ws = mbsr_alloc(nws * 4);
  if (!x || !y || !g || !w || !b || !dx || !dw || !db || !ws) {
    float *all[] = {x, y, g, w, b, dx, dw, db, ws};
    for (int i = 0; i < 9; i++) mbsr_free(all[i]);
    return mbsr_error(MBSR_ENOMEM, "out of memory for a %d->%d conv at batch %d", s.cin, s.cout, B);
  }
  fill(x, ni, 1), fill(g, no, 2), fill(w, nw, 3);
  double tf[64] = {0}, tb[64] = {0};
  for (int r = -warm; r < reps; r++) {
    double t0 = mbsr_now();
    mbsr_conv3d_forward(y, x, w, b, &s, ws);
    double t1 = mbsr_now();
    mbsr_conv3d_backward(l->need_dinp ? dx : NULL, dw, db, g, x, w, &s, ws);
    double t2 = mbsr_now();
    if (r >= 0) tf[r] = (t1 - t0) * 1e3, tb[r] = (t2 - t1) * 1e3;
  }
  t->fwd_ms = vmin(tf, reps); /* best of: the breakdown is about the kernels, not the machine's load */
  t->bwd_ms = vmin(tb, reps);
  float *all[] = {x, y, g, w, b, dx, dw, db, ws};
  for (int i = 0; i < 9; i++) mbsr_free(all[i]);
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

/* ---- one 64->64 conv ---- */
static int bench_conv(const bench_opts *o, double *peakp, peer *pp, FILE *js) {
  const int B = 8, S = o->size, C = 64;
  mbsr_conv3d_dims s;
  mbsr_conv3d_dims_init(&s, B, S, S, S, C, C, 1);
  s.prec = o->prec;
  size_t nv = (size_t)B * S * S * S, na = nv * C, nw = (size_t)27 * C * C;
  float *x = mbsr_alloc(na * 4), *y = mbsr_alloc(na * 4), *g = mbsr_alloc(na * 4), *w = mbsr_alloc(nw * 4);
  float *b = mbsr_alloc(C * 4), *dx = mbsr_alloc(na * 4), *dw = mbsr_alloc(nw * 4), *db = mbsr_alloc(C * 4);
  float *ws = mbsr_alloc(mbsr_conv3d_workspace_floats(&s, o->threads) * 4);
  float *all[] = {x, y, g, w, b, dx, dw, db, ws};
  int rc = MBSR_OK;
  for (int i = 0; i < 9; i++)
    if (!all[i]) rc = mbsr_error(MBSR_ENOMEM, "out of memory");
  if (!rc) {
    fill(x, na, 1), fill(g, na, 2), fill(w, nw, 3);
    if (pp) rc = peer_ask(pp, "conv", NULL);
  }
  double tf[64] = {0}, tb[64] = {0}, cb[64] = {0};
  peer_times pt;
  for (int r = -o->warmup; r < o->repeats && !rc; r++) {
    double c0 = cpu_ms(), t0 = mbsr_now();
    mbsr_conv3d_forward(y, x, w, b, &s, ws);
    double t1 = mbsr_now();
    mbsr_conv3d_backward(dx, dw, db, g, x, w, &s, ws);
    double t2 = mbsr_now(), c1 = cpu_ms();
    double pf[4], pb[4];
    if (pp && ((rc = peer_ask(pp, "fwd", pf)) || (rc = peer_ask(pp, "step", pb)))) break;
    if (r < 0) continue;
    tf[r] = (t1 - t0) * 1e3, tb[r] = (t2 - t0) * 1e3, cb[r] = c1 - c0;
    if (pp)
      for (int k = 0; k < 2; k++) pt.f[k][r] = pf[k], pt.s[k][r] = pb[k], pt.fc[k][r] = pf[2 + k], pt.sc[k][r] = pb[2 + k];
  }
  double acc[3] = {-1, -1, -1}; /* output, input gradient, weight gradient */
  if (!rc && o->prec != MBSR_PREC_FP32) { /* accuracy of this mode against the fp32 kernels */
    float *y32 = mbsr_alloc(na * 4), *dx0 = mbsr_alloc(na * 4), *dx32 = mbsr_alloc(na * 4);
    float *dw0 = mbsr_alloc(nw * 4), *dw32 = mbsr_alloc(nw * 4);
    if (y32 && dx0 && dx32 && dw0 && dw32) {
      mbsr_conv3d_dims s32 = s;
      s32.prec = MBSR_PREC_FP32;
      mbsr_conv3d_forward(y, x, w, b, &s, ws);
      mbsr_conv3d_forward(y32, x, w, b, &s32, ws);
      mbsr_conv3d_backward(dx0, dw0, NULL, g, x, w, &s, ws);
      mbsr_conv3d_backward(dx32, dw32, NULL, g, x, w, &s32, ws);
      const float *lo[3] = {y, dx0, dw0}, *hi[3] = {y32, dx32, dw32};
      const size_t cnt[3] = {na, na, nw};
      for (int k = 0; k < 3; k++) {
        double e = 0, m = 0;
        for (size_t i = 0; i < cnt[k]; i++) e = fmax(e, fabs((double)lo[k][i] - hi[k][i])), m = fmax(m, fabs((double)hi[k][i]));
        acc[k] = e / m;
      }
    }
    mbsr_free(y32), mbsr_free(dx0), mbsr_free(dx32), mbsr_free(dw0), mbsr_free(dw32);
  }
  for (int i = 0; i < 9; i++) mbsr_free(all[i]);
  if (rc) return rc;
  if (acc[0] >= 0)
    printf("accuracy against the fp32 kernels (max |diff| / max |fp32|, uniform [0,1) data): output %.2e, input "
           "gradient %.2e, weight gradient %.2e\n",
           acc[0], acc[1], acc[2]);
  if (js && acc[0] >= 0)
    fprintf(js, ",\n \"accuracy_vs_fp32\": {\"output\": %.3e, \"dinp\": %.3e, \"dweight\": %.3e}", acc[0], acc[1], acc[2]);
  double fmn = vmin(tf, o->repeats), fbmn = vmin(tb, o->repeats);
  double f = median(tf, o->repeats), fb = median(tb, o->repeats);
  double gf = 2.0 * C * C * 27 * (double)nv / 1e9;
  const double peak = update_peak(o, peakp);
  printf("conv 64->64 3x3x3 on 8x64x%d^3 (%.2f GFLOP forward), %s; algorithms forward %s, input gradient %s, weight "
         "gradient %s:\n",
         S, gf, mbsr_conv3d_kernel_name(o->prec), mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 0)),
         mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 1)), mbsr_conv_algo_name(mbsr_conv3d_algo(&s, 2)));
  printf("  mbsr  forward          %8.1f ms (best %.1f)  %6.0f GFLOP/s  %5.1f %% of fp32 peak\n", f, fmn, gf / f * 1e3,
         100 * gf / f * 1e3 / peak);
  printf("  mbsr  forward+backward %8.1f ms (best %.1f)  %6.0f GFLOP/s  %5.1f %% of fp32 peak\n", fb, fbmn, 3 * gf / fb * 1e3,
         100 * 3 * gf / fb * 1e3 / peak);
  if (js) fprintf(js, ",\n \"conv\": {\"forward_ms\": %.3f, \"fwdbwd_ms\": %.3f, \"forward_gflop\": %.4f", f, fb, gf);
  if (pp) {
    const char *ff, *fbf, *x;
    double pf = peer_best(pt.f, o->repeats, &ff, 0), pfb = peer_best(pt.s, o->repeats, &fbf, 0);
    double pfm = peer_best(pt.f, o->repeats, &x, 1), pfbm = peer_best(pt.s, o->repeats, &x, 1);
    printf("  torch forward          %8.1f ms (best %.1f)  (%s)\n  torch forward+backward %8.1f ms (best %.1f)  (%s)\n", pf,
           pfm, ff, pfb, pfbm, fbf);
    printf("  ratio torch/mbsr (medians): forward %.2f, forward+backward %.2f   (bests: %.2f, %.2f)\n", pf / f,
           pfb / fb, pfm / fmn, pfbm / fbmn);
    const char *cf;
    double pcb = peer_best(pt.sc, o->repeats, &cf, 0), mcb = median(cb, o->repeats);
    printf("  CPU time of forward+backward (all threads, medians): mbsr %.1f ms, torch %.1f ms (%s) -> ratio %.2f\n",
           mcb, pcb, cf, pcb / mcb);
    if (js)
      fprintf(js, ", \"peer_forward_ms\": %.3f, \"peer_forward_format\": \"%s\", \"peer_fwdbwd_ms\": %.3f, "
                  "\"peer_fwdbwd_format\": \"%s\", \"ratio_forward\": %.3f, \"ratio_fwdbwd\": %.3f",
              pf, ff, pfb, fbf, pf / f, pfb / fb);
  }
  if (js) fprintf(js, "}");
  return MBSR_OK;
}

/* ---- a whole model through the model API, then its conv layers alone ---- */
static int bench_model(const bench_opts *o, mbsr_arch arch, int B, double *peakp, peer *pp, FILE *js, int *first) {
  mbsr_model_config cfg;
  mbsr_model_config_default(&cfg, arch);
  mbsr_model *m = NULL;
  const int S = o->size;
  int rc = mbsr_model_create(&cfg, B, S, S, S, &m);
  if (rc) return rc;
  mbsr_model_init(m, 42);
  if (o->prec != MBSR_PREC_FP32 && (rc = mbsr_model_set_precision(m, o->prec))) {
    mbsr_model_free(m);
    return rc;
  }
  size_t nv = (size_t)B * S * S * S;
  float *in = mbsr_alloc(nv * 4), *tg = mbsr_alloc(nv * 4), *out = mbsr_alloc(nv * 4);
  if (!in || !tg || !out) {
    mbsr_free(in), mbsr_free(tg), mbsr_free(out), mbsr_model_free(m);
    return mbsr_error(MBSR_ENOMEM, "out of memory");
  }
  fill(in, nv, 5), fill(tg, nv, 6);
  const char *name = mbsr_arch_name(arch);
  if (arch == MBSR_ARCH_GAN) pp = NULL; /* the peer has no GAN */
  if (pp) {
    char req[64];
    snprintf(req, sizeof req, "model %s %d %d", name, B, S);
    rc = peer_ask(pp, req, NULL);
  }
  mbsr_adam_config adam;
  mbsr_adam_config_default(&adam);
  double tf[64] = {0}, ts[64] = {0}, cs[64] = {0};
  peer_times pt;
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
    tf[r] = (t1 - t0) * 1e3, ts[r] = (t3 - t2) * 1e3, cs[r] = c3 - c2;
    if (pp)
      for (int k = 0; k < 2; k++) pt.f[k][r] = pf[k], pt.s[k][r] = ps[k], pt.fc[k][r] = pf[2 + k], pt.sc[k][r] = ps[2 + k];
  }
  double acc_model = -1; /* this precision's forward against fp32, same weights (after the timed steps) */
  if (!rc && o->prec != MBSR_PREC_FP32) {
    float *o32 = mbsr_alloc(nv * 4);
    if (o32 && !mbsr_model_forward(m, in, B, out) && !mbsr_model_set_precision(m, MBSR_PREC_FP32) &&
        !mbsr_model_forward(m, in, B, o32) && !mbsr_model_set_precision(m, o->prec)) {
      double e = 0, mx = 0;
      for (size_t i = 0; i < nv; i++) e = fmax(e, fabs((double)out[i] - o32[i])), mx = fmax(mx, fabs((double)o32[i]));
      acc_model = e / mx;
    }
    mbsr_free(o32);
  }
  mbsr_free(in), mbsr_free(tg), mbsr_free(out);
  if (rc) {
    mbsr_model_free(m);
    return rc;
  }

  double fwdmn = vmin(tf, o->repeats), stepmn = vmin(ts, o->repeats);
  double fwd = median(tf, o->repeats), step = median(ts, o->repeats);
  const double peak = update_peak(o, peakp);
  double gfl = mbsr_model_forward_flops(m) * B / 1e9, rss = maxrss_mb();
  double gfs_f = gfl / fwd * 1e3, gfs_s = 3 * gfl / step * 1e3;
  printf("%s batch %d  (%.2f GFLOP forward, a training step counted as 3x)\n", name, B, gfl);
  printf("  mbsr  forward %8.1f ms (best %.1f) %5.0f GFLOP/s %5.1f %% of fp32 peak | train step %8.1f ms (best "
         "%.1f) %5.0f GFLOP/s %5.1f %% | maxrss %.0f MB\n",
         fwd, fwdmn, gfs_f, 100 * gfs_f / peak, step, stepmn, gfs_s, 100 * gfs_s / peak, rss);
  if (acc_model >= 0)
    printf("  accuracy: network output against fp32 with the same weights, max |diff| / max |fp32|: %.2e\n", acc_model);
  if (js)
    fprintf(js,
            "%s\n  {\"model\": \"%s\", \"batch\": %d, \"forward_ms\": %.3f, \"step_ms\": %.3f, \"step_best_ms\": %.3f, "
            "\"forward_gflop\": %.4f, \"maxrss_mb\": %.1f",
            *first ? "" : ",", name, B, fwd, step, stepmn, gfl, rss);
  if (js && acc_model >= 0) fprintf(js, ", \"output_accuracy_vs_fp32\": %.3e", acc_model);
  *first = 0;
  if (pp) {
    const char *ff, *sf, *x;
    double pf = peer_best(pt.f, o->repeats, &ff, 0), ps = peer_best(pt.s, o->repeats, &sf, 0);
    double pfm = peer_best(pt.f, o->repeats, &x, 1), psm = peer_best(pt.s, o->repeats, &x, 1);
    printf("  torch forward %8.1f ms (best %.1f) (%s) | train step %8.1f ms (best %.1f) (%s)\n", pf, pfm, ff, ps, psm,
           sf);
    printf("  ratio torch/mbsr (medians): forward %.2f, train step %.2f   (bests: %.2f, %.2f)\n", pf / fwd, ps / step,
           pfm / fwdmn, psm / stepmn);
    const char *cf;
    double pcs = peer_best(pt.sc, o->repeats, &cf, 0), mcs = median(cs, o->repeats);
    printf("  CPU time of a train step (all threads, medians): mbsr %.1f ms, torch %.1f ms (%s) -> ratio %.2f\n", mcs,
           pcs, cf, pcs / mcs);
    if (js) fprintf(js, ", \"step_cpu_ms\": %.3f, \"peer_step_cpu_ms\": %.3f, \"ratio_step_cpu\": %.3f", mcs, pcs, pcs / mcs);
    if (js)
      fprintf(js, ", \"peer_forward_ms\": %.3f, \"peer_forward_format\": \"%s\", \"peer_step_ms\": %.3f, "
                  "\"peer_step_format\": \"%s\", \"ratio_forward\": %.3f, \"ratio_step\": %.3f, \"peer_step_best_ms\": %.3f, "
                  "\"ratio_step_best\": %.3f",
              pf, ff, ps, sf, pf / fwd, ps / step, psm, psm / stepmn);
  }
  if (o->layers) {
    layer_spec L[16];
    int nl = model_layers(m, L, 16);
    double lsum = 0;
    printf("    per layer shape (best of runs; algorithms: forward/input gradient/weight gradient; %s):\n",
           arch == MBSR_ARCH_GAN ? "a GAN step runs the generator once and the discriminator 3 times" : "one call a step");
    if (js) fprintf(js, ", \"layers\": [");
    for (int i = 0; i < nl && !rc; i++) {
      layer_time t = {0, 0};
      if ((rc = time_layer(&L[i], B, o->repeats < 3 ? o->repeats : 3, 1, &t))) break;
      const mbsr_conv3d_dims *d = &L[i].dims;
      double lf = 2.0 * 27 * d->cin * d->cout * (double)B * d->od * d->oh * d->ow / 1e9;
      double per = L[i].count * L[i].calls * (t.fwd_ms + t.bwd_ms);
      char al[64];
      algos_of(&L[i], B, al, sizeof al);
      printf("    %-17s x%-2d %3d->%-3d s%d %-31s fwd %7.2f ms (%5.0f GFLOP/s)  bwd %7.2f ms (%5.0f GFLOP/s)%s  per "
             "step %7.1f ms = %4.1f %% of the best step\n",
             L[i].name, L[i].count * L[i].calls, d->cin, d->cout, d->stride, al, t.fwd_ms, lf / t.fwd_ms * 1e3, t.bwd_ms,
             (L[i].need_dinp ? 2 : 1) * lf / t.bwd_ms * 1e3, L[i].need_dinp ? "" : " no dX", per, 100 * per / stepmn);
      lsum += per;
      if (js)
        fprintf(js,
                "%s{\"layer\": \"%s\", \"shape\": \"%d->%d s%d\", \"count\": %d, \"calls_per_step\": %d, "
                "\"algorithms\": \"%s\", \"forward_ms\": %.3f, \"backward_ms\": %.3f, \"share_of_step\": %.4f}",
                i ? ", " : "", L[i].name, d->cin, d->cout, d->stride, L[i].count, L[i].calls, al, t.fwd_ms, t.bwd_ms,
                per / stepmn);
    }
    if (js) fprintf(js, "]");
    if (!rc)
      printf("    convs alone (best of runs): %.1f ms; the rest of the best step (activations, residual adds, loss, "
             "Adam, copies) ~%.1f ms (%.0f %%)\n",
             lsum, stepmn - lsum, 100 * (stepmn - lsum) / stepmn);
  }
  if (js) fprintf(js, "}");
  fflush(stdout); /* long runs: show each model as it finishes */
  mbsr_model_free(m);
  return rc;
}

int mbsr_cmd_bench(int argc, char **argv) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},   {"batch", required_argument, 0, 'b'},
                                       {"threads", required_argument, 0, 't'}, {"prec", required_argument, 0, 'p'},
                                       {"conv", no_argument, 0, 'c'},          {"peer", no_argument, 0, 'P'},
                                       {"repeats", required_argument, 0, 'r'}, {"warmup", required_argument, 0, 'w'},
                                       {"size", required_argument, 0, 's'},    {"no-layers", no_argument, 0, 'L'},
                                       {"python", required_argument, 0, 'y'},  {"peer-script", required_argument, 0, 'S'},
                                       {"json", required_argument, 0, 'j'},    {"help", no_argument, 0, 'h'},
                                       /* the one vocabulary (docs/user/cli.md); the spellings above stay */
                                       {"arch", required_argument, 0, 'm'},    {"precision", required_argument, 0, 'p'},
                                       {"out", required_argument, 0, 'j'},     {0, 0, 0, 0}};
  bench_opts o = {.model_mode = 2, .batches = {1, 8}, .nbatch = 2, .threads = omp_get_max_threads(), .repeats = 5,
                  .warmup = 1, .size = 21, .layers = 1, .prec = MBSR_PREC_FP32, .python = "/usr/bin/python3"};
  if (access(o.python, X_OK) != 0) o.python = "python3";
  int c;
  optind = 1;
  opterr = 0; /* our own one-line message */
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    char *end;
    switch (c) {
      case 'm':
        if (!strcmp(optarg, "resnet")) o.model_mode = 0;
        else if (!strcmp(optarg, "ccnn")) o.model_mode = 1;
        else if (!strcmp(optarg, "all")) o.model_mode = 2;
        else if (!strcmp(optarg, "gan")) o.model_mode = 3;
        else return mbsr_cli_usage_error("bench", "--model: resnet, ccnn, gan or all, not '%s'", optarg);
        break;
      case 'b': {
        o.nbatch = 0;
        const char *s = optarg;
        while (*s && o.nbatch < 8) {
          long v = strtol(s, &end, 10);
          if (end == s || v < 1 || v > 4096) return mbsr_cli_usage_error("bench", "--batch: bad list '%s'", optarg);
          o.batches[o.nbatch++] = (int)v;
          s = *end == ',' ? end + 1 : end;
          if (*end && *end != ',') return mbsr_cli_usage_error("bench", "--batch: bad list '%s'", optarg);
        }
        if (!o.nbatch) return mbsr_cli_usage_error("bench", "--batch: empty list");
        break;
      }
      case 't':
        o.threads = (int)strtol(optarg, &end, 10);
        if (*end || o.threads < 1 || o.threads > 1024) return mbsr_cli_usage_error("bench", "--threads: bad '%s'", optarg);
        break;
      case 'p':
        if (!strcmp(optarg, "fp32")) o.prec = MBSR_PREC_FP32;
        else if (!strcmp(optarg, "bf16x3")) o.prec = MBSR_PREC_BF16X3;
        else if (!strcmp(optarg, "bf16")) o.prec = MBSR_PREC_BF16;
        else return mbsr_cli_usage_error("bench", "--prec: fp32, bf16x3 or bf16, not '%s'", optarg);
        break;
      case 'c': o.conv = 1; break;
      case 'P': o.peer = 1; break;
      case 'r':
        o.repeats = (int)strtol(optarg, &end, 10);
        if (*end || o.repeats < 1 || o.repeats > 64) return mbsr_cli_usage_error("bench", "--repeats: 1..64");
        break;
      case 'w':
        o.warmup = (int)strtol(optarg, &end, 10);
        if (*end || o.warmup < 0 || o.warmup > 64) return mbsr_cli_usage_error("bench", "--warmup: 0..64");
        break;
      case 's':
        o.size = (int)strtol(optarg, &end, 10);
        if (*end || o.size < 3 || o.size > 256) return mbsr_cli_usage_error("bench", "--size: 3..256");
        break;
      case 'L': o.layers = 0; break;
      case 'y': o.python = optarg; break;
      case 'S': o.script = optarg; break;
      case 'j': o.json = optarg; break;
      case 'h': usage(stdout); return 0;
      default: return mbsr_cli_usage_error("bench", "unknown option or missing value: '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) return mbsr_cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
  if (mbsr_cli_mpi_active() && mbsr_log_rank() != 0) return 0; /* one timing process; other ranks idle */
  omp_set_num_threads(o.threads);

  if (!mbsr_conv3d_precision_available(o.prec)) {
    mbsr_error(MBSR_EUNSUPPORTED, "--prec %s: no such conv kernel on this CPU (AMX: %s, AVX512_BF16: %s)",
               o.prec == MBSR_PREC_BF16 ? "bf16" : "bf16x3", mbsr_cpu_has_amx() ? "yes" : "no",
               mbsr_cpu_has_avx512bf16() ? "yes" : "no");
    return mbsr_cli_fail("bench");
  }

  double peak = mbsr_cpu_fma_peak_gflops(o.threads, 0.3);
  printf("mbsr bench: %d threads, conv kernels %s, FMA peak measured now %.0f GFLOP/s (fp32), median of %d "
         "runs after %d warm-up\n",
         o.threads, mbsr_conv3d_kernel_name(o.prec), peak, o.repeats, o.warmup);
  if (peak <= 0) peak = 1;
  char la[64];
  loadavg(la, sizeof la);
  const char *alg = getenv("MBSR_CONV_ALGO");
  printf("CPU: %s; load average at start %s; MBSR_CONV_ALGO=%s\n", mbsr_cpu_model(), la, alg ? alg : "(unset: auto)");
  const char *wp = getenv("OMP_WAIT_POLICY");
  printf("OMP_WAIT_POLICY=%s (the peer inherits it; 'passive' helps a lot when the machine is shared)\n",
         wp ? wp : "(unset: libgomp spins a while at barriers)");

  char tmp[4096];
  FILE *js = NULL;
  if (o.json) {
    if (mbsr_tmp_path(o.json, tmp, sizeof tmp) || !(js = fopen(tmp, "w"))) {
      mbsr_error(MBSR_EIO, "%s: cannot write", o.json);
      return mbsr_cli_fail("bench");
    }
    fprintf(js, "{\"threads\": %d, \"kernel\": \"%s\", \"fma_peak_gflops\": %.1f, \"repeats\": %d, \"size\": %d",
            o.threads, mbsr_conv3d_kernel_name(o.prec), peak, o.repeats, o.size);
    fprintf(js, ", \"cpu\": \"%s\", \"loadavg_start\": \"%s\", \"conv_algo\": \"%s\"", mbsr_cpu_model(), la,
            alg ? alg : "auto");
  }
  int rc = MBSR_OK;
  peer pr = {0}, *pp = NULL;
  if (o.peer) {
    rc = peer_start(&o, &pr);
    if (!rc) {
      pp = &pr;
      printf("peer: PyTorch %s (experiments/bench/torch_peer.py), both memory formats timed and the faster one "
             "credited; runs alternate with mbsr's\n",
             pr.version);
      if (js) fprintf(js, ", \"peer\": \"pytorch %s\"", pr.version);
    }
  }
  if (!rc && o.conv) {
    rc = bench_conv(&o, &peak, pp, js);
  } else if (!rc) {
    int first = 1;
    mbsr_arch archs[3] = {MBSR_ARCH_RESNET, MBSR_ARCH_CCNN, MBSR_ARCH_GAN};
    int a0 = o.model_mode == 1 ? 1 : o.model_mode == 3 ? 2 : 0, a1 = o.model_mode == 0 ? 0 : o.model_mode == 3 ? 2 : 1;
    if (js) fprintf(js, ",\n \"models\": [");
    for (int a = a0; a <= a1 && !rc; a++)
      for (int k = 0; k < o.nbatch && !rc; k++) rc = bench_model(&o, archs[a], o.batches[k], &peak, pp, js, &first);
    if (js) fprintf(js, "]");
  }
  peer_stop(&pr);
  loadavg(la, sizeof la);
  printf("load average at the end %s\n", la);
  if (js) fprintf(js, ",\n \"loadavg_end\": \"%s\"", la);
  if (js) {
    fprintf(js, "\n}\n");
    if (fclose(js) || rc) {
      mbsr_abandon_file(tmp);
      if (!rc) rc = mbsr_error(MBSR_EIO, "%s: write failed", o.json);
    } else if ((rc = mbsr_commit_file(tmp, o.json))) {
      mbsr_abandon_file(tmp);
    }
  }
  if (rc) return mbsr_cli_fail("bench");
  return 0;
}
