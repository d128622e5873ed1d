/* mbsr train: MPI data-parallel training on a `mbsr prep` file. */
#include <getopt.h>
#include <mpi.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/train.h"

static void usage(void) {
  printf(
      "usage: mpirun -n P mbsr train --patches FILE.h5 --out DIR [options]\n"
      "\n"
      "Data-parallel training: each rank reads its share of every global batch, one MPI_Allreduce sums\n"
      "the gradients, every rank applies the same Adam update. Writes DIR/last.h5 (every K steps, each\n"
      "epoch and at the end), DIR/best.h5 (best validation loss), DIR/train.jsonl, DIR/config.json.\n"
      "\n"
      "  --patches FILE.h5        patches from `mbsr prep` (was --data, deprecated)\n"
      "  --pair LR-HR             resolution pair (default 200-100; per-axis LR voxels: e.g. 100x100x400-100)\n"
      "  --out DIR                output directory\n"
      "  --arch resnet|ccnn|gan   (default resnet)\n"
      "  --channels C --blocks B  ResNet/generator width and depth (default 64, 10)\n"
      "  --global-residual        output = input + network; the output conv starts at zero, so the network\n"
      "                           starts as its cubic input (--init-glorot: Glorot everywhere, the paper's)\n"
      "  --init-glorot            Glorot initialisation of every layer, the output conv included\n"
      "  --disc-channels C --disc-blocks B --gan-lambda X   GAN discriminator (64, 10) and adversarial weight (1e-3)\n"
      "  --batch N                GLOBAL batch (default 8), split over the ranks\n"
      "  --lr X                   Adam learning rate (default 1e-3)\n"
      "  --epochs N               at most N epochs (default 1000)\n"
      "  --patience N             early stopping after N epochs without val improvement (default 100, 0 = off)\n"
      "  --val-every N            validate every N epochs (default 1; patience counts validations)\n"
      "  --max-patches N          a seeded subset of N training patches\n"
      "  --steps-per-epoch N      (default ceil(patches / batch))\n"
      "  --max-steps N            stop with a checkpoint after N global steps in total\n"
      "  --seed S                 weights and per-epoch shuffles (default 1)\n"
      "  --ckpt-every K           steps between checkpoints (default 100)\n"
      "  --checksum-every K       steps between cross-rank weight checks (default 10)\n"
      "  --resume                 continue from DIR/last.h5 (starts fresh when there is none) with the\n"
      "                           checkpoint's network: --arch/--channels/--blocks/--global-residual/--disc-*/\n"
      "                           --gan-lambda may be left out; given, they must match the checkpoint\n"
      "  --init CKPT              start from these weights (transfer learning)\n"
      "  --finetune-last K        with --init: train only the last K layers\n"
      "  --exclude-subjects A,B   leave these subjects' patches out of training and validation\n"
      "                           (cross-validation: the held-out brain)\n"
      "  --augment                random flip per axis and axis permutation of each training patch pair\n"
      "  --time-limit S           stop cleanly with a checkpoint after S seconds\n"
      "  --threads N              OpenMP threads per rank (default: OMP_NUM_THREADS or every core)\n"
      "  --dry-run                print the plan (patches and memory per rank, FLOPs, measured time per\n"
      "                           epoch) and exit\n"
      "  --plan-patches N --plan-val M  with --dry-run: plan for N training (and M validation) patches\n"
      "  --quiet                  no per-epoch or info lines on stderr (warnings and errors stay)\n"
      "  --help\n");
}

/* The network options as typed: on --resume only these are compared with the checkpoint. */
typedef struct {
  mbsr_arch arch;
  int channels, blocks, disc_channels, disc_blocks, global_residual;
  double gan_lambda;
  unsigned given; /* MBSR_TRAIN_GIVEN_* */
} net_opts;

#define I64(flag, lo, dst) (rc = mbsr_cli_long("train", flag, arg, lo, LLONG_MAX, &v), dst = v, rc)
#define INT(flag, lo, dst) mbsr_cli_int("train", flag, arg, lo, INT_MAX, &dst)

/* One option into c / n; 0, or the usage-error status 2. */
static int option(int ch, const char *arg, mbsr_train_config *c, net_opts *n) {
  long long v = 0;
  int rc;
  double d;
  char *end;
  switch (ch) {
    case 'd': c->data = arg; return 0;
    case 'p': c->pair = arg; return 0;
    case 'o': c->out = arg; return 0;
    case 'a':
      if (mbsr_arch_parse(arg, &n->arch)) return mbsr_cli_usage_error("train", "%s", mbsr_last_error());
      return n->given |= MBSR_TRAIN_GIVEN_ARCH, 0;
    case 'C': return n->given |= MBSR_TRAIN_GIVEN_CHANNELS, INT("--channels", 1, n->channels);
    case 'B': return n->given |= MBSR_TRAIN_GIVEN_BLOCKS, INT("--blocks", 0, n->blocks);
    case 'g': return n->given |= MBSR_TRAIN_GIVEN_GLOBAL_RESIDUAL, n->global_residual = 1, 0;
    case 'D': return n->given |= MBSR_TRAIN_GIVEN_DISC_CHANNELS, INT("--disc-channels", 1, n->disc_channels);
    case 'E': return n->given |= MBSR_TRAIN_GIVEN_DISC_BLOCKS, INT("--disc-blocks", 0, n->disc_blocks);
    case 'L': return n->given |= MBSR_TRAIN_GIVEN_GAN_LAMBDA, mbsr_cli_double("train", "--gan-lambda", arg, 0, 1e30, &n->gan_lambda);
    case 'b': return INT("--batch", 1, c->batch);
    case 'l':
      if (mbsr_cli_double("train", "--lr", arg, 0, 1e30, &d) || !(d > 0)) return mbsr_cli_usage_error("train", "bad --lr '%s'", arg);
      return c->adam.lr = (float)d, 0;
    case 'e': return INT("--epochs", 1, c->epochs);
    case 'P': return INT("--patience", 0, c->patience);
    case 'v': return INT("--val-every", 1, c->val_every);
    case 'K': return INT("--checksum-every", 0, c->checksum_every);
    case 'f': return INT("--finetune-last", 0, c->finetune_last);
    case 'T': /* also sets OpenMP's thread count: the caller does, the library does not */
      return INT("--threads", 1, c->threads) || mbsr_cli_common("train", MBSR_CLI_OPT_THREADS, arg);
    case 'm': return I64("--max-patches", 1, c->max_patches);
    case 's': return I64("--steps-per-epoch", 1, c->steps_per_epoch);
    case 'M': return I64("--max-steps", 1, c->max_steps);
    case 'k': return I64("--ckpt-every", 0, c->ckpt_every);
    case 'N': return I64("--plan-patches", 1, c->plan_patches);
    case 'V': return I64("--plan-val", 1, c->plan_val_patches);
    case 'S':
      c->seed = strtoull(arg, &end, 10);
      return *end || !*arg ? mbsr_cli_usage_error("train", "bad --seed '%s'", arg) : 0;
    case 't': return mbsr_cli_double("train", "--time-limit", arg, 0, 1e30, &c->time_limit);
    case 'X':
      if (sscanf(arg, "%d:%d", &c->inject_fail_rank, &c->inject_fail_step) != 2)
        return mbsr_cli_usage_error("train", "bad --inject-fail '%s' (RANK:STEP)", arg);
      return 0;
    case 'r': c->resume = 1; return 0;
    case 'i': c->init = arg; return 0;
    case 'n': c->dry_run = 1; return 0;
    case 'G': c->init_glorot = 1; return 0;
    case 'x': c->exclude_subjects = arg; return 0;
    case 'A': c->augment = 1; return 0;
    case MBSR_CLI_OPT_QUIET: c->progress = 0; return mbsr_cli_common("train", ch, arg);
    default: return mbsr_cli_usage_error("train", "unknown or incomplete option");
  }
}
#undef I64
#undef INT

/* The model config: the defaults of --arch with the options typed. On --resume the network is the
 * checkpoint's: only the options actually typed are compared with it (a contradiction is refused),
 * the defaults never are. */
static void model_config(const net_opts *n, mbsr_train_config *c) {
  mbsr_model_config_default(&c->model, n->arch);
  c->model_given = n->given;
  if (n->given & MBSR_TRAIN_GIVEN_CHANNELS) c->model.channels = n->channels;
  if (n->given & MBSR_TRAIN_GIVEN_BLOCKS) c->model.blocks = n->blocks;
  c->model.global_residual = n->global_residual;
  if (n->given & MBSR_TRAIN_GIVEN_DISC_CHANNELS) c->model.disc_channels = n->disc_channels;
  if (n->given & MBSR_TRAIN_GIVEN_DISC_BLOCKS) c->model.disc_blocks = n->disc_blocks;
  if (n->given & MBSR_TRAIN_GIVEN_GAN_LAMBDA) c->model.gan_lambda = (float)n->gan_lambda;
}

int mbsr_cmd_train(int argc, char **argv) {
  static const struct option opts[] = {
      {"patches", required_argument, 0, 'd'},   {"pair", required_argument, 0, 'p'},
      {"out", required_argument, 0, 'o'},       {"arch", required_argument, 0, 'a'},
      {"channels", required_argument, 0, 'C'},  {"blocks", required_argument, 0, 'B'},
      {"global-residual", no_argument, 0, 'g'}, {"batch", required_argument, 0, 'b'},
      {"lr", required_argument, 0, 'l'},        {"epochs", required_argument, 0, 'e'},
      {"patience", required_argument, 0, 'P'},  {"max-patches", required_argument, 0, 'm'},
      {"steps-per-epoch", required_argument, 0, 's'}, {"max-steps", required_argument, 0, 'M'},
      {"seed", required_argument, 0, 'S'},      {"ckpt-every", required_argument, 0, 'k'},
      {"checksum-every", required_argument, 0, 'K'}, {"resume", no_argument, 0, 'r'},
      {"init", required_argument, 0, 'i'},      {"finetune-last", required_argument, 0, 'f'},
      {"time-limit", required_argument, 0, 't'}, {"threads", required_argument, 0, 'T'},
      {"dry-run", no_argument, 0, 'n'},         {"plan-patches", required_argument, 0, 'N'},
      {"plan-val", required_argument, 0, 'V'},  {"val-every", required_argument, 0, 'v'},
      {"inject-fail", required_argument, 0, 'X'}, {"disc-channels", required_argument, 0, 'D'},
      {"disc-blocks", required_argument, 0, 'E'}, {"gan-lambda", required_argument, 0, 'L'},
      {"quiet", no_argument, 0, MBSR_CLI_OPT_QUIET}, {"init-glorot", no_argument, 0, 'G'},
      {"exclude-subjects", required_argument, 0, 'x'}, {"augment", no_argument, 0, 'A'},
      {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
  mbsr_train_config c;
  mbsr_train_config_default(&c);
  net_opts n = {.arch = MBSR_ARCH_RESNET};
  opterr = 0;
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (ch == 'h') {
      if (mbsr_log_rank() == 0) usage();
      return 0;
    }
    if (ch == '?' || ch == ':') return mbsr_cli_usage_error("train", "unknown option '%s'", argv[optind - 1]);
    if (option(ch, optarg, &c, &n)) return 2;
  }
  if (optind < argc) return mbsr_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
  if (!c.data) return mbsr_cli_usage_error("train", "--patches FILE.h5 is required");
  if (!c.out && !c.dry_run) return mbsr_cli_usage_error("train", "--out DIR is required");
  if (c.finetune_last >= 0 && !c.init) return mbsr_cli_usage_error("train", "--finetune-last needs --init CKPT");
  model_config(&n, &c);
  mbsr_train_summary s;
  if (mbsr_train_run(&c, MPI_COMM_WORLD, &s)) return mbsr_cli_fail("train");
  return 0;
}
