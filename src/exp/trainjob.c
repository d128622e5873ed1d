/* Train a network unless a finished one exists: models/<arch>_<pair>_n<samples>[_ft][_<tag>]-<hash>/,
 * the hash over every training parameter, so that cells with the same training share a network and
 * a change trains a new one. FINISHED (written last, with the run's summary) marks a finished run;
 * an unfinished one is restarted from scratch (same seeds -> the weights of an uninterrupted run).
 * Concurrent array tasks serialise on DIR.lock. Collective over MPI_COMM_WORLD. */
#include <mpi.h>
#include <unistd.h>

#include "exp_internal.h"
#include "mbsr/train.h"

static void model_config(const mbsr_exp_scale *s, const char *arch, mbsr_model_config *mc) {
  mbsr_arch a = MBSR_ARCH_RESNET;
  mbsr_arch_parse(arch, &a);
  mbsr_model_config_default(mc, a);
  mc->channels = s->channels;
  mc->blocks = s->blocks;
  mc->global_residual = s->global_residual;
  mc->ccnn_c1 = s->ccnn_c1;
  mc->ccnn_c2 = s->ccnn_c2;
  mc->disc_channels = s->disc_channels;
  mc->disc_blocks = s->disc_blocks;
  mc->gan_lambda = (float)s->gan_lambda;
}

static void train_config(const mbsr_exp_scale *s, const mbsr_sweep_opts *o, const train_job *j, mbsr_train_config *tc) {
  mbsr_train_config_default(tc);
  model_config(s, j->arch, &tc->model);
  mbsr_adam_config_default(&tc->adam);
  tc->adam.lr = (float)s->lr;
  tc->data = j->h5;
  tc->pair = j->pair;
  tc->batch = s->batch;
  tc->epochs = j->epochs;
  tc->patience = s->patience;
  tc->max_patches = j->samples;
  tc->steps_per_epoch = j->init ? 0 : s->steps_per_epoch;
  tc->seed = s->seed;
  tc->ckpt_every = 0;
  tc->init = j->init;
  tc->finetune_last = j->init ? j->finetune_last : -1;
  tc->exclude_subjects = j->exclude;
  tc->augment = s->augment;
  tc->init_glorot = s->init_glorot;
  tc->threads = o->threads;
  tc->progress = 1;
}

static uint64_t job_hash(const train_job *j, const mbsr_train_config *tc) {
  uint64_t h = MBSR__FNV_SEED;
  h = mbsr__fnv_str(h, j->arch);
  h = mbsr__fnv(h, &tc->model, sizeof tc->model);
  h = mbsr__fnv(h, &tc->adam, sizeof tc->adam);
  h = mbsr__fnv_str(h, j->h5);
  h = mbsr__fnv_str(h, j->pair);
  h = mbsr__fnv(h, &j->samples, sizeof j->samples);
  const int64_t v[8] = {tc->batch, tc->epochs, tc->patience, (int64_t)tc->seed, tc->steps_per_epoch, tc->augment, tc->init_glorot,
                        j->finetune_last};
  h = mbsr__fnv(h, v, sizeof v);
  h = mbsr__fnv_str(h, j->init ? j->init : "");
  return mbsr__fnv_str(h, j->exclude ? j->exclude : "");
}

/* Rank 0, the lock held: restart an unfinished run from scratch. */
static int forget_unfinished(const train_job *j, const char *mdir) {
  char p[2800];
  const char *ck[2] = {"last.h5", "best.h5"};
  for (int i = 0; i < 2; i++) {
    int rc = mbsr_pathf(p, sizeof p, "%s/%s", mdir, ck[i]);
    if (rc) return rc;
    unlink(p);
  }
  mbsr_info("sweep: training %s on %s pair %s, %d patches%s%s%s -> %s", j->arch, j->h5, j->pair, j->samples,
            j->init ? " (fine-tuning)" : "", j->exclude ? ", leaving out " : "", j->exclude ? j->exclude : "", mdir);
  return 0;
}

int mbsr__train_or_reuse(const mbsr_experiment *e, const mbsr_sweep_opts *o, const sweep_ctx *x, const train_job *j, char *ckpt,
                         size_t n) {
  mbsr_train_config tc;
  train_config(&e->s, o, j, &tc);
  char mdir[2600], fin[2700], lk[2700];
  int rc = mbsr_pathf(mdir, sizeof mdir, "%s/models/%s_%s_n%d%s%s%s-%016llx", x->dir, j->arch, j->pair, j->samples,
                      j->init ? "_ft" : "", j->tag ? "_" : "", j->tag ? j->tag : "", (unsigned long long)job_hash(j, &tc));
  if (!rc) rc = mbsr_pathf(fin, sizeof fin, "%s/FINISHED", mdir);
  if (!rc) rc = mbsr_pathf(lk, sizeof lk, "%s.lock", mdir);
  tc.out = mdir;
  int fd = -1, done = 0;
  if (!rc && mbsr__rank0()) {
    rc = mbsr_mkdir_p(mdir);
    if (!rc && (fd = mbsr__lock_file(lk)) < 0) rc = fd;
    if (!rc) done = mbsr_file_exists(fin);
    if (!rc && !done) rc = forget_unfinished(j, mdir);
  }
  if ((rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc))) {
    if (mbsr__rank0()) mbsr__unlock_file(fd);
    return rc;
  }
  MPI_Bcast(&done, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (done) {
    if (mbsr__rank0()) mbsr_info("sweep: reusing the finished checkpoint in %s", mdir);
  } else {
    mbsr_train_summary sum;
    rc = mbsr_train_run(&tc, MPI_COMM_WORLD, &sum);
    if (!rc && mbsr__rank0()) {
      char txt[512];
      snprintf(txt, sizeof txt, "steps %lld epochs %lld best_val %.6g cubic_val %.6g best_epoch %lld stopped_early %d\n",
               (long long)sum.steps, (long long)sum.epochs, sum.best_val, sum.cubic_val, (long long)sum.best_epoch,
               sum.stopped_early);
      rc = mbsr_write_text_atomic(fin, txt);
    }
    rc = mbsr_mpi_agree(MPI_COMM_WORLD, rc);
  }
  if (mbsr__rank0()) mbsr__unlock_file(fd);
  if (rc) return rc;
  if ((rc = mbsr_pathf(ckpt, n, "%s/best.h5", mdir))) return rc;
  return mbsr_file_exists(ckpt) ? 0 : mbsr_pathf(ckpt, n, "%s/last.h5", mdir);
}
