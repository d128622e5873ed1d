/* mbsr train: MPI data-parallel training on a `mbsr prep` file. */
#include <getopt.h>
#include <mpi.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mbsr/cli.h"
#include "mbsr/train.h"

static void usage(void) {
  printf(
      "usage: mpirun -n P mbsr train --data FILE.h5 --out DIR [options]\n"
      "\n"
      "Data-parallel training: each rank reads its share of every global batch, one MPI_Allreduce sums\n"
      "the gradients, every rank applies the same Adam update. Writes DIR/last.h5 (every K steps, each\n"
      "epoch and at the end), DIR/best.h5 (best validation loss), DIR/train.jsonl, DIR/config.json.\n"
      "\n"
      "  --data FILE.h5           patches from `mbsr prep`\n"
      "  --pair LR-HR             resolution pair (default 200-100)\n"
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
      "  --threads T              OpenMP threads per rank\n"
      "  --dry-run                print the plan (patches and memory per rank, FLOPs, measured time per\n"
      "                           epoch) and exit; --plan-patches N [--plan-val M] plans for N training\n"
      "                           (and M validation) patches\n"
      "  --quiet                  no per-epoch lines\n"
      "  --help\n");
}

int mbsr_cmd_train(int argc, char **argv) {
  mbsr_train_config c;
  mbsr_train_config_default(&c);
  static const struct option opts[] = {
      {"data", required_argument, 0, 'd'},      {"pair", required_argument, 0, 'p'},
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
      {"plan-val", required_argument, 0, 'V'},     {"val-every", required_argument, 0, 'v'},
      {"inject-fail", required_argument, 0, 'X'}, {"disc-channels", required_argument, 0, 'D'},
      {"disc-blocks", required_argument, 0, 'E'}, {"gan-lambda", required_argument, 0, 'L'}, {"quiet", no_argument, 0, 'q'},
      {"init-glorot", no_argument, 0, 'G'},     {"exclude-subjects", required_argument, 0, 'x'},
      {"augment", no_argument, 0, 'A'},
      {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
  opterr = 0;
  optind = 1;
  int ch, arch_set = 0, ch_set = 0, bl_set = 0, gr = 0;
  char *end;
#define NUM(dst, conv, lo, name)                                                             \
  do {                                                                                       \
    dst = conv(optarg, &end, 10);                                                            \
    if (*end || dst < lo) return mbsr_cli_usage_error("train", "bad %s '%s'", name, optarg); \
  } while (0)
  mbsr_arch arch = MBSR_ARCH_RESNET;
  int channels = 64, blocks = 10, dch = -1, dbl = -1;
  double lambda = -1;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
      case 'd': c.data = optarg; break;
      case 'p': c.pair = optarg; break;
      case 'o': c.out = optarg; break;
      case 'a':
        if (mbsr_arch_parse(optarg, &arch)) return mbsr_cli_usage_error("train", "%s", mbsr_last_error());
        arch_set = 1;
        break;
      case 'C': NUM(channels, strtol, 1, "--channels"); ch_set = 1; break;
      case 'B': NUM(blocks, strtol, 0, "--blocks"); bl_set = 1; break;
      case 'g': gr = 1; break;
      case 'b': NUM(c.batch, strtol, 1, "--batch"); break;
      case 'l':
        c.adam.lr = strtof(optarg, &end);
        if (*end || !(c.adam.lr > 0)) return mbsr_cli_usage_error("train", "bad --lr '%s'", optarg);
        break;
      case 'e': NUM(c.epochs, strtol, 1, "--epochs"); break;
      case 'P': NUM(c.patience, strtol, 0, "--patience"); break;
      case 'm': NUM(c.max_patches, strtoll, 1, "--max-patches"); break;
      case 's': NUM(c.steps_per_epoch, strtoll, 1, "--steps-per-epoch"); break;
      case 'M': NUM(c.max_steps, strtoll, 1, "--max-steps"); break;
      case 'S': c.seed = strtoull(optarg, &end, 10); if (*end) return mbsr_cli_usage_error("train", "bad --seed '%s'", optarg); break;
      case 'k': NUM(c.ckpt_every, strtoll, 0, "--ckpt-every"); break;
      case 'K': NUM(c.checksum_every, strtol, 0, "--checksum-every"); break;
      case 'r': c.resume = 1; break;
      case 'i': c.init = optarg; break;
      case 'f': NUM(c.finetune_last, strtol, 0, "--finetune-last"); break;
      case 't':
        c.time_limit = strtod(optarg, &end);
        if (*end || c.time_limit < 0) return mbsr_cli_usage_error("train", "bad --time-limit '%s'", optarg);
        break;
      case 'T': NUM(c.threads, strtol, 1, "--threads"); break;
      case 'n': c.dry_run = 1; break;
      case 'N': NUM(c.plan_patches, strtoll, 1, "--plan-patches"); break;
      case 'V': NUM(c.plan_val_patches, strtoll, 1, "--plan-val"); break;
      case 'v': NUM(c.val_every, strtol, 1, "--val-every"); break;
      case 'X':
        if (sscanf(optarg, "%d:%d", &c.inject_fail_rank, &c.inject_fail_step) != 2)
          return mbsr_cli_usage_error("train", "bad --inject-fail '%s' (RANK:STEP)", optarg);
        break;
      case 'D': NUM(dch, strtol, 1, "--disc-channels"); break;
      case 'E': NUM(dbl, strtol, 0, "--disc-blocks"); break;
      case 'L':
        lambda = strtod(optarg, &end);
        if (*end || lambda < 0) return mbsr_cli_usage_error("train", "bad --gan-lambda '%s'", optarg);
        break;
      case 'q': c.progress = 0; mbsr_log_set_quiet(1); break;
      case 'G': c.init_glorot = 1; break;
      case 'x': c.exclude_subjects = optarg; break;
      case 'A': c.augment = 1; break;
      case 'h': if (mbsr_log_rank() == 0) usage(); return 0;
      default: return mbsr_cli_usage_error("train", "unknown option '%s'", argv[optind - 1]);
    }
  }
#undef NUM
  if (optind < argc) return mbsr_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
  if (!c.data) return mbsr_cli_usage_error("train", "--data FILE.h5 is required");
  if (!c.out && !c.dry_run) return mbsr_cli_usage_error("train", "--out DIR is required");
  if (c.finetune_last >= 0 && !c.init) return mbsr_cli_usage_error("train", "--finetune-last needs --init CKPT");
  /* The model config: the defaults of --arch, with the options given. On --resume the network is the
   * checkpoint's: only the options actually typed are compared with it (a contradiction is refused),
   * the defaults never are. */
  mbsr_model_config_default(&c.model, arch);
  c.model_given = 0;
  if (arch_set) c.model_given |= MBSR_TRAIN_GIVEN_ARCH;
  if (ch_set) c.model.channels = channels, c.model_given |= MBSR_TRAIN_GIVEN_CHANNELS;
  if (bl_set) c.model.blocks = blocks, c.model_given |= MBSR_TRAIN_GIVEN_BLOCKS;
  c.model.global_residual = gr;
  if (gr) c.model_given |= MBSR_TRAIN_GIVEN_GLOBAL_RESIDUAL;
  if (dch > 0) c.model.disc_channels = dch, c.model_given |= MBSR_TRAIN_GIVEN_DISC_CHANNELS;
  if (dbl >= 0) c.model.disc_blocks = dbl, c.model_given |= MBSR_TRAIN_GIVEN_DISC_BLOCKS;
  if (lambda >= 0) c.model.gan_lambda = (float)lambda, c.model_given |= MBSR_TRAIN_GIVEN_GAN_LAMBDA;
  mbsr_train_summary s;
  if (c.threads > 0) omp_set_num_threads(c.threads); /* the caller sets the thread count (the library does not) */
  int rc = mbsr_train_run(&c, MPI_COMM_WORLD, &s);
  if (rc) return mbsr_cli_fail("train");
  return 0;
}
