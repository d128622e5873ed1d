/* Resolution pairs (data.h, mbsr_res_pair): one spelling for every place a pair is read or named: prep's
 * --pair / --res, the experiment files' pair lists, patch-file groups, cells and the report. */
#include <stdlib.h>
#include <string.h>

#include "mbsr/data.h"

mbsr_res_pair mbsr_res_pair_iso(int lr_um, int hr_um) { return (mbsr_res_pair){{lr_um, lr_um, lr_um}, hr_um}; }

int mbsr_res_pair_isotropic(const mbsr_res_pair *p) { return p->lr_um[0] == p->lr_um[1] && p->lr_um[1] == p->lr_um[2]; }

int mbsr_res_pair_equal(const mbsr_res_pair *a, const mbsr_res_pair *b) {
  return a->hr_um == b->hr_um && !memcmp(a->lr_um, b->lr_um, sizeof a->lr_um);
}

int mbsr_res_pair_lr_max(const mbsr_res_pair *p) {
  int m = p->lr_um[0];
  for (int a = 1; a < 3; a++)
    if (p->lr_um[a] > m) m = p->lr_um[a];
  return m;
}

const char *mbsr_res_pair_name(const mbsr_res_pair *p, char *buf, size_t n) {
  if (mbsr_res_pair_isotropic(p)) snprintf(buf, n, "%d-%d", p->lr_um[0], p->hr_um);
  else snprintf(buf, n, "%dx%dx%d-%d", p->lr_um[0], p->lr_um[1], p->lr_um[2], p->hr_um);
  return buf;
}

int mbsr_res_pair_check(const mbsr_res_pair *p) {
  char nm[MBSR_PAIR_NAME_MAX];
  mbsr_res_pair_name(p, nm, sizeof nm);
  if (p->hr_um < 1) return mbsr_error(MBSR_EINVAL, "pair %s: the HR voxel must be >= 1 um", nm);
  int coarser = 0;
  for (int a = 0; a < 3; a++) {
    if (p->lr_um[a] < p->hr_um || p->lr_um[a] % p->hr_um)
      return mbsr_error(MBSR_EINVAL, "pair %s: LR voxel %d um along axis %c is not a positive integer multiple of the HR %d um", nm,
                        p->lr_um[a], "ijk"[a], p->hr_um);
    coarser |= p->lr_um[a] > p->hr_um;
  }
  return coarser ? MBSR_OK : mbsr_error(MBSR_EINVAL, "pair %s: the LR voxel must be coarser than the HR along some axis", nm);
}

/* A positive integer of at most 100000 (um) at *s; end after it. */
static int um_at(const char *s, const char **end, int *v) {
  char *e;
  long x = strtol(s, &e, 10);
  if (e == s || *s == '-' || *s == '+' || *s == ' ' || x < 1 || x > 100000) return -1;
  *v = (int)x, *end = e;
  return 0;
}

int mbsr_res_pair_parse(const char *s, mbsr_res_pair *p) {
  const char *e = s;
  int v[3], k = 0;
  const char *t = s;
  for (;;) {
    if (um_at(t, &e, &v[k])) break;
    k++;
    if (*e == 'x' && k < 3) t = e + 1;
    else break;
  }
  int hr = 0;
  if ((k != 1 && k != 3) || *e != '-' || um_at(e + 1, &e, &hr) || *e)
    return mbsr_error(MBSR_EINVAL, "pair '%s': expected LR-HR or LRixLRjxLRk-HR in um (e.g. 400-200, 100x100x400-100)", s);
  mbsr_res_pair q = k == 1 ? mbsr_res_pair_iso(v[0], hr) : (mbsr_res_pair){{v[0], v[1], v[2]}, hr};
  int rc = mbsr_res_pair_check(&q);
  if (!rc) *p = q;
  return rc;
}
