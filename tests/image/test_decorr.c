/* image/decorr: the decorrelation analysis against our own independent numpy re-implementation
 * (tests/fixtures/gen_decorr.py; NOT MATLAB output), the pieces of the algorithm (linspace, the
 * local-maximum rule, the 3-decimal truncation, the apodization mask), the sanity behaviours of
 * decorrelation.md, the volume summary and the CLI on the Allen template. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/core.h"
#include "mbsr/decorr.h"
#include "mbsr_test.h"

/* ------------------------------------------------------------ helpers */

static float *read_f32(const char *rel, int64_t n) {
  char p[4096];
  FILE *f = fopen(mbsr_test_fixture(rel, p, sizeof p), "rb");
  CU_ASSERT_FATAL(f != NULL);
  float *im = malloc(sizeof(float) * n);
  size_t got = fread(im, sizeof(float), n, f);
  fclose(f);
  MT_ASSERT_INT_EQ(got, n);
  return im;
}

/* read the next line of numbers into v (returns the count) */
static int read_line(FILE *f, double *v, int max) {
  char line[65536];
  do {
    if (!fgets(line, sizeof line, f)) return -1;
  } while (line[0] == '#');
  int n = 0;
  char *s = line, *end;
  while (n < max) {
    double x = strtod(s, &end);
    if (end == s) break;
    v[n++] = x;
    s = end;
  }
  return n;
}

/* Deterministic Gaussian white noise (Box-Muller on mbsr_rng). */
static void noise(float *im, int64_t n, uint64_t seed) {
  mbsr_rng *r = mbsr_rng_new(seed);
  for (int64_t k = 0; k < n; k++) im[k] = (float)mbsr_rng_normal(r, 1.0);
  mbsr_rng_free(r);
}

/* Periodic separable Gaussian blur (sigma in pixels), truncation at 4 sigma. */
static void blur(const float *in, float *out, int nx, int ny, double sigma) {
  int rad = (int)ceil(4 * sigma);
  double *w = malloc(sizeof(double) * (2 * rad + 1)), ws = 0;
  for (int k = -rad; k <= rad; k++) ws += w[k + rad] = exp(-0.5 * k * k / (sigma * sigma));
  float *tmp = malloc(sizeof(float) * nx * ny);
  for (int j = 0; j < ny; j++)
    for (int i = 0; i < nx; i++) {
      double a = 0;
      for (int k = -rad; k <= rad; k++) a += w[k + rad] * in[((i + k) % nx + nx) % nx + nx * j];
      tmp[i + nx * j] = (float)(a / ws);
    }
  for (int j = 0; j < ny; j++)
    for (int i = 0; i < nx; i++) {
      double a = 0;
      for (int k = -rad; k <= rad; k++) a += w[k + rad] * tmp[i + nx * (((j + k) % ny + ny) % ny)];
      out[i + nx * j] = (float)(a / ws);
    }
  free(w);
  free(tmp);
}

/* ------------------------------------------------------------ pieces */

static void test_linspace(void) {
  double y[7];
  mbsr_decorr_linspace(-1, 1, 7, y);
  MT_ASSERT_NEAR(y[0], -1, 0);
  MT_ASSERT_NEAR(y[3], 0, 0); /* exact middle for odd n */
  MT_ASSERT_NEAR(y[6], 1, 0);
  MT_ASSERT_NEAR(y[1], -1 + 2.0 / 6, 1e-16);
  double r[50];
  mbsr_decorr_linspace(0, 1, 50, r);
  MT_ASSERT_NEAR(r[49], 1, 0);
  MT_ASSERT_NEAR(r[1], 1.0 / 49, 1e-17);
  MT_ASSERT_NEAR(r[48], 48.0 / 49, 1e-16);
  mbsr_decorr_linspace(3, 5, 1, y); /* MATLAB: linspace(3,5,1) = 5 */
  MT_ASSERT_NEAR(y[0], 5, 0);
}

static void test_local_max(void) {
  /* a clear interior peak */
  static const double a[] = {0, 0.2, 0.5, 0.7, 0.6, 0.4, 0.3};
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(a, 7), 3);
  /* monotonically increasing: the last element is dropped until index 1 (0-based 0) remains */
  static const double b[] = {0, 0.1, 0.2, 0.3, 0.4};
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(b, 5), 0);
  /* a peak followed by a drop smaller than 0.0005 is not a local maximum; the earlier one with a
   * real drop after it is */
  static const double c[] = {0, 0.300, 0.250, 0.400, 0.4004, 0.4003};
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(c, 6), 1);
  /* drop of exactly 0.001 (the truncation step) counts */
  static const double d[] = {0, 0.5, 0.501, 0.500};
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(d, 4), 2);
  /* ties: the FIRST index of the maximum */
  static const double e[] = {0, 0.6, 0.6, 0.2};
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(e, 4), 1);
  /* the maximum at the end of an otherwise peaked curve: dropped, the interior peak wins */
  static const double f[] = {0, 0.5, 0.3, 0.2, 0.9};
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(f, 5), 1);
  MT_ASSERT_INT_EQ(mbsr_decorr_local_max(f, 1), 0);
}

static void test_trunc3(void) {
  MT_ASSERT_NEAR(mbsr_decorr_trunc3(0.12345, 1, 1), 0.123f, 0);
  MT_ASSERT_NEAR(mbsr_decorr_trunc3(0.9999, 1, 1), 0.999f, 0);
  MT_ASSERT_NEAR(mbsr_decorr_trunc3(-0.0001, 1, 1), -0.001f, 0); /* floor, not towards zero */
  MT_ASSERT_NEAR(mbsr_decorr_trunc3(3, 2, 3), 0.5f, 0);
  MT_ASSERT_NEAR(mbsr_decorr_trunc3(0, 0, 0), 0, 0); /* NaN -> 0 */
  MT_ASSERT_NEAR(mbsr_decorr_trunc3(0.05, 1, 1), 0.05f, 0);
}

static void test_apod_mask(void) {
  /* square 64: taper over 20 pixels per side, outermost 0, the 20th from the edge 1, interior 1;
   * (sin(-pi/2 + pi*k/19) + 1)/2 for k = 0..19 */
  double *m = malloc(sizeof(double) * 64 * 64);
  MT_ASSERT_OK(mbsr_decorr_apod_mask(64, 64, 20, MBSR_DECORR_APOD_MATLAB, m));
  for (int k = 0; k < 20; k++) {
    double t = (sin(-M_PI / 2 + M_PI * k / 19.0) + 1) / 2;
    MT_ASSERT_NEAR(m[k + 64 * 32], t, 1e-12);      /* along i, middle row */
    MT_ASSERT_NEAR(m[63 - k + 64 * 32], t, 1e-12); /* symmetric */
    MT_ASSERT_NEAR(m[32 + 64 * k], t, 1e-12);      /* along j */
  }
  MT_ASSERT_NEAR(m[0], 0, 1e-15);
  MT_ASSERT_NEAR(m[20 + 64 * 40], 1, 0);
  MT_ASSERT_NEAR(m[5 + 64 * 5], m[5 + 64 * 32] * m[32 + 64 * 5], 1e-15); /* outer product */
  free(m);
  /* non-square 50 x 71: per axis ("axis") the long side has its own 20-pixel taper; "matlab"
   * resizes the 50-long taper to 71 (wider taper, still 0 at the edge region and 1 inside) */
  double *ma = malloc(sizeof(double) * 50 * 71), *mm = malloc(sizeof(double) * 50 * 71);
  MT_ASSERT_OK(mbsr_decorr_apod_mask(50, 71, 20, MBSR_DECORR_APOD_AXIS, ma));
  MT_ASSERT_OK(mbsr_decorr_apod_mask(50, 71, 20, MBSR_DECORR_APOD_MATLAB, mm));
  for (int k = 0; k < 20; k++) {
    double t = (sin(-M_PI / 2 + M_PI * k / 19.0) + 1) / 2;
    MT_ASSERT_NEAR(ma[25 + 50 * k], t, 1e-12);
    MT_ASSERT_NEAR(mm[k + 50 * 35], t, 1e-12); /* the short side is the same in both */
  }
  MT_ASSERT_NEAR(ma[25 + 50 * 20], 1, 1e-15);
  CU_ASSERT(mm[25 + 50 * 20] < 1); /* resized taper reaches further in */
  MT_ASSERT_NEAR(mm[25 + 50 * 35], 1, 1e-15);
  CU_ASSERT(mm[25 + 50 * 0] < 0.01);
  free(ma);
  free(mm);
}

/* ------------------------------------------------------------ against the numpy reference */

static void test_numpy_reference(void) {
  char p[4096], line[1024];
  FILE *ex = fopen(mbsr_test_fixture("decorr/expected.csv", p, sizeof p), "r");
  CU_ASSERT_FATAL(ex != NULL);
  CU_ASSERT_FATAL(fgets(line, sizeof line, ex) != NULL); /* header */
  int ncurve_pts = 0, ncurve_diff = 0, nimg = 0;
  double maxdiff = 0;
  char name[128], mode[32];
  int nx, ny, nxo, nyo;
  double kc, A0, k0;
  while (fgets(line, sizeof line, ex) &&
         sscanf(line, "%127[^,],%d,%d,%31[^,],%lf,%lf,%lf,%d,%d", name, &nx, &ny, mode, &kc, &A0, &k0, &nxo, &nyo) == 9) {
    nimg++;
    char rel[256];
    snprintf(rel, sizeof rel, "decorr/%.*s.f32", (int)(strstr(name, "_axis") ? strstr(name, "_axis") - name : strlen(name)), name);
    float *im = read_f32(rel, (int64_t)nx * ny);
    mbsr_decorr_opts o;
    mbsr_decorr_opts_default(&o);
    o.apod = !strcmp(mode, "axis") ? MBSR_DECORR_APOD_AXIS : MBSR_DECORR_APOD_MATLAB;
    mbsr_decorr_curves *cv = mbsr_decorr_curves_new(50, 10);
    mbsr_decorr_result r;
    MT_ASSERT_OK(mbsr_decorr_2d(im, nx, ny, &o, &r, cv));
    fprintf(stderr, "  %-18s kcMax C %.6f numpy %.6f   A0 C %.3f numpy %.3f\n", name, r.kc_max, kc, r.A0, A0);
    MT_ASSERT_NEAR(r.kc_max, kc, 1e-7);
    MT_ASSERT_NEAR(r.A0, A0, 1e-7);
    MT_ASSERT_NEAR(r.k0, k0, 1e-7);
    MT_ASSERT_INT_EQ(r.nx, nxo);
    MT_ASSERT_INT_EQ(r.ny, nyo);
    snprintf(rel, sizeof rel, "decorr/%s_curves.txt", name);
    FILE *f = fopen(mbsr_test_fixture(rel, p, sizeof p), "r");
    CU_ASSERT_FATAL(f != NULL);
    double v[64];
    const double *mine[3] = {cv->r1, cv->d0, cv->r2};
    for (int c = 0; c < 3 + 21; c++) {
      int n = read_line(f, v, 64);
      MT_ASSERT_INT_EQ(n, 50);
      const double *m = c < 3 ? mine[c] : cv->d + (size_t)(c - 3) * 50;
      for (int k = 0; k < 50 && k < n; k++) {
        double dd = fabs(m[k] - v[k]);
        ncurve_pts++;
        if (dd > 1e-7) ncurve_diff++;
        if (dd > maxdiff) maxdiff = dd;
        /* values live on a 0.001 grid; one truncation step is the most a summation-order
         * difference can move a point */
        CU_ASSERT(dd <= 0.001 + 1e-6);
      }
    }
    fclose(f);
    mbsr_decorr_curves_free(cv);
    free(im);
  }
  fprintf(stderr, "  curves: %d points, %d differ (max |diff| %.4f)\n", ncurve_pts, ncurve_diff, maxdiff);
  CU_ASSERT(ncurve_diff <= ncurve_pts / 200); /* at most 0.5% of points one step apart */
  MT_ASSERT_INT_EQ(nimg, 5);
  fclose(ex);
}

/* ------------------------------------------------------------ sanity behaviours */

static double kc_of(const float *im, int nx, int ny) {
  mbsr_decorr_opts o;
  mbsr_decorr_opts_default(&o);
  mbsr_decorr_result r;
  MT_ASSERT_OK(mbsr_decorr_2d(im, nx, ny, &o, &r, NULL));
  return r.kc_max;
}

static void test_sanity(void) {
  const int n = 128;
  float *w = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
  noise(w, n * n, 7);
  mbsr_decorr_result r;
  /* Pure white noise has a flat spectrum: d0 and every high-pass curve rise monotonically up to
   * r = 1, so the local-maximum rule of step 7 finds no peak (index 1, amplitude 0) and step 10
   * gives kcMax = 0, A0 = 0. decorrelation.md expects "kcMax close to 1" here; that does not
   * follow from its own steps (see docs/readme/30-decorr-stats.md). Asserted as computed. */
  MT_ASSERT_OK(mbsr_decorr_2d(w, n, n, NULL, &r, NULL));
  fprintf(stderr, "  white noise: kcMax %.4f A0 %.3f\n", r.kc_max, r.A0);
  MT_ASSERT_NEAR(r.kc_max, 0, 0);
  MT_ASSERT_NEAR(r.A0, 0, 0);
  /* nearly white (sigma 0.8 px): content up to about Nyquist, kcMax close to 1 */
  blur(w, b, n, n, 0.8);
  double kc08 = kc_of(b, n, n);
  CU_ASSERT(kc08 > 0.9);
  /* the same noise blurred by increasing sigma: kcMax decreases monotonically */
  static const double sig[] = {0.8, 1.0, 1.2, 1.5, 1.8, 2.2, 2.7, 3.3, 4.0};
  double prev = 2;
  for (int s = 0; s < 9; s++) {
    blur(w, b, n, n, sig[s]);
    double kc = kc_of(b, n, n);
    fprintf(stderr, "  noise blurred sigma %.1f: kcMax %.4f\n", sig[s], kc);
    CU_ASSERT(kc < prev);
    CU_ASSERT(kc > 0);
    prev = kc;
  }
  /* signal (blurred noise pattern) + independent white noise (std 0.2 of the signal's): the
   * peak sits where the signal spectrum meets the noise floor; more blur, lower kcMax */
  float *nz = malloc(sizeof(float) * n * n), *sn = malloc(sizeof(float) * n * n);
  noise(nz, n * n, 99);
  prev = 2;
  static const double sig2[] = {1.0, 1.6, 2.5, 4.0};
  for (int s = 0; s < 4; s++) {
    blur(w, b, n, n, sig2[s]);
    double m, sd = 0, mean = 0;
    for (int k = 0; k < n * n; k++) mean += b[k];
    mean /= n * n;
    for (int k = 0; k < n * n; k++) sd += (b[k] - mean) * (b[k] - mean);
    sd = sqrt(sd / (n * n));
    for (int k = 0; k < n * n; k++) sn[k] = b[k] + (float)(0.2 * sd) * nz[k];
    MT_ASSERT_OK(mbsr_decorr_2d(sn, n, n, NULL, &r, NULL));
    m = r.kc_max;
    fprintf(stderr, "  signal sigma %.1f + noise: kcMax %.4f A0 %.3f\n", sig2[s], m, r.A0);
    CU_ASSERT(m < prev && m > 0);
    CU_ASSERT(r.A0 > 0.05);
    prev = m;
  }
  free(nz);
  free(sn);
  /* nearly white content, then block-averaged x2 and up-sampled: lower kcMax */
  blur(w, b, n, n, 0.8);
  double kc_orig = kc_of(b, n, n);
  float *u = malloc(sizeof(float) * n * n);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++) {
      /* 2x2 block average, then bilinear up-sampling at block centres (clamped) */
      double x = (i - 0.5) / 2.0, y = (j - 0.5) / 2.0;
      int x0 = (int)floor(x), y0 = (int)floor(y);
      double fx = x - x0, fy = y - y0, acc = 0;
      for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
          int bx = x0 + dx, by = y0 + dy;
          bx = bx < 0 ? 0 : bx >= n / 2 ? n / 2 - 1 : bx;
          by = by < 0 ? 0 : by >= n / 2 ? n / 2 - 1 : by;
          double bv = 0.25 * (b[2 * bx + n * 2 * by] + b[2 * bx + 1 + n * 2 * by] + b[2 * bx + n * (2 * by + 1)] +
                              b[2 * bx + 1 + n * (2 * by + 1)]);
          acc += bv * (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
        }
      u[i + n * j] = (float)acc;
    }
  double kc_down = kc_of(u, n, n);
  fprintf(stderr, "  original %.4f, block-averaged x2 + up-sampled %.4f\n", kc_orig, kc_down);
  CU_ASSERT(kc_down < kc_orig);
  CU_ASSERT(kc_down < 0.8);
  free(u);
  free(w);
  free(b);
}

static void test_errors(void) {
  float im[9] = {0};
  mbsr_decorr_result r;
  MT_ASSERT_INT_EQ(mbsr_decorr_2d(im, 2, 4, NULL, &r, NULL), MBSR_EINVAL);
  im[4] = NAN;
  MT_ASSERT_INT_EQ(mbsr_decorr_2d(im, 3, 3, NULL, &r, NULL), MBSR_ENONFINITE);
  im[4] = 0;
  MT_ASSERT_OK(mbsr_decorr_2d(im, 3, 3, NULL, &r, NULL)); /* constant image: no peak */
  MT_ASSERT_NEAR(r.kc_max, 0, 0);
  CU_ASSERT(isinf(r.resolution));
  mbsr_decorr_curves *cv = mbsr_decorr_curves_new(40, 10);
  MT_ASSERT_INT_EQ(mbsr_decorr_2d(im, 3, 3, NULL, &r, cv), MBSR_EINVAL); /* curves of another Nr */
  mbsr_decorr_curves_free(cv);
}

/* ------------------------------------------------------------ volumes */

static void test_volume(void) {
  /* 3 slices along z: background, blurred noise (sigma 0.8), strongly blurred noise (sigma 2) */
  const int n = 64;
  double vox[3] = {0.05, 0.05, 0.2};
  mbsr_volume *v = mbsr_volume_new(n, n, 3, vox, NULL);
  float *w = malloc(sizeof(float) * n * n);
  noise(w, n * n, 11);
  blur(w, v->data + n * n, n, n, 0.8);
  blur(w, v->data + 2 * n * n, n, n, 2.0);
  for (int k = n * n; k < 3 * n * n; k++) v->data[k] += 10;
  mbsr_decorr_opts o;
  mbsr_decorr_opts_default(&o);
  mbsr_decorr_summary *s = NULL;
  MT_ASSERT_OK(mbsr_decorr_volume(v, &o, &s));
  MT_ASSERT_INT_EQ(s->nslices, 3);
  MT_ASSERT_INT_EQ(s->nused, 2);
  MT_ASSERT_INT_EQ(s->used[0], 0);
  MT_ASSERT_NEAR(s->px, 0.05, 1e-12);
  /* the per-slice results equal the 2-D function on the same slices */
  for (int k = 1; k < 3; k++) {
    mbsr_decorr_result r;
    MT_ASSERT_OK(mbsr_decorr_2d(v->data + (size_t)k * n * n, n, n, &o, &r, NULL));
    MT_ASSERT_NEAR(s->slice[k].kc_max, r.kc_max, 0);
    MT_ASSERT_NEAR(s->slice[k].resolution, 2 * 0.05 / r.kc_max, 1e-12);
  }
  CU_ASSERT(s->slice[2].kc_max < s->slice[1].kc_max);
  MT_ASSERT_NEAR(s->kc_median, 0.5 * (s->slice[1].kc_max + s->slice[2].kc_max), 1e-12);
  mbsr_decorr_summary_free(s);
  /* along x the in-plane voxel sizes are 0.05 (rows, y) and 0.2 (columns, z): flagged, mean used;
   * slices are 64 x 3 (the smallest size accepted) */
  o.axis = 0;
  o.min_fg = 0;
  MT_ASSERT_OK(mbsr_decorr_volume(v, &o, &s));
  MT_ASSERT_INT_EQ(s->nused, 64);
  CU_ASSERT(s->px_anisotropic);
  MT_ASSERT_NEAR(s->px, 0.125, 1e-12);
  MT_ASSERT_INT_EQ(s->slice[5].nx, 63);
  MT_ASSERT_INT_EQ(s->slice[5].ny, 3);
  mbsr_decorr_summary_free(s);
  o.axis = 1;
  o.step = 10;
  MT_ASSERT_OK(mbsr_decorr_volume(v, &o, &s));
  MT_ASSERT_INT_EQ(s->nused, 7); /* slices 0, 10, ..., 60 */
  mbsr_decorr_summary_free(s);
  mbsr_volume_free(v);
  free(w);
}

static void test_cli_allen(void) {
  char path[4096], out[4096];
  if (!mbsr_test_data("af/allen_ccf_average_template_100um.nrrd", path, sizeof path)) return;
  snprintf(out, sizeof out, "%s/decorr.json", mbsr_test_tmpdir());
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s decorr %s --axis z --out %s > /dev/null", mbsr_test_bin(), path, out), 0);
  FILE *f = fopen(out, "r");
  CU_ASSERT_FATAL(f != NULL);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  const char *m = strstr(buf, "\"kc_median\": ");
  CU_ASSERT_FATAL(m != NULL);
  double kc = strtod(m + 13, NULL);
  const char *u = strstr(buf, "\"used\": ");
  CU_ASSERT_FATAL(u != NULL);
  long used = strtol(u + 8, NULL, 10);
  fprintf(stderr, "  Allen 100 um template along z: %ld slices used, median kcMax %.4f\n", used, kc);
  CU_ASSERT(used > 50 && used <= 114);
  CU_ASSERT(kc > 0.3 && kc <= 1.0);
  /* --curves adds the radii and d0 of each analysed slice */
  MT_ASSERT_INT_EQ(mbsr_test_sh("%s decorr %s --axis x --step 20 --curves --out %s > /dev/null", mbsr_test_bin(), path, out), 0);
  f = fopen(out, "r");
  CU_ASSERT_FATAL(f != NULL);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  CU_ASSERT(strstr(buf, "\"d0\": [0.0, ") != NULL); /* Jansson writes a real zero as 0.0 */
  CU_ASSERT(strstr(buf, "\"axis\": \"x\"") != NULL);
  CU_ASSERT(mbsr_test_sh("%s decorr %s --axis w", mbsr_test_bin(), path) == 2);
  CU_ASSERT(mbsr_test_sh("%s decorr /nonexistent.nii.gz", mbsr_test_bin()) == 1);
}

int main(void) {
  static const mbsr_test_case cases[] = {{"linspace", test_linspace},
                                         {"local_max", test_local_max},
                                         {"trunc3", test_trunc3},
                                         {"apod_mask", test_apod_mask},
                                         {"numpy_reference", test_numpy_reference},
                                         {"sanity", test_sanity},
                                         {"errors", test_errors},
                                         {"volume", test_volume},
                                         {"cli_allen", test_cli_allen},
                                         {NULL, NULL}};
  return mbsr_test_main("decorr", cases);
}
