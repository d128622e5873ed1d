#!/usr/bin/env bash
# MPI scaling of `mbsr train`: patches/s with 1 and 2 ranks (one OpenMP thread each,
# --bind-to none), the share of the step spent in the gradient all-reduce (instrumented in the
# trainer: gradient MPI_Allreduce vs compute vs the per-step status all-reduce, which absorbs the
# wait for the slowest rank), and a projection to N nodes from the measured compute rate, the
# model size and a ring all-reduce model.
#
# compute_s/patch = compute seconds per patch on one rank: if it grows from 1 to 2 ranks, the ranks
# are competing for cores (other jobs, memory bandwidth), not for the network. cpu% = the CPU time
# the slowest-served rank got per wall second (100% = a core of its own).
#
# usage: experiments/bench/scaling.sh [PATCHES.h5]
#   env: MBSR (CLI path, default build/bin/mbsr), MODELS ("64x10 16x2": channels x blocks),
#        STEPS_64 / STEPS_SMALL (timed steps), BW (bytes/s, default 12.5e9 = 100 Gb/s),
#        ALPHA (s per message hop, default 5e-6), KEEP=1 keeps the scratch directory,
#        T_PATCH (s per patch of one node, replaces the measured 1-thread rate in the projection).
# Without PATCHES.h5 it makes one from ../shared/data/af (200 patches per subject, 200-100 um).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
MBSR=${MBSR:-$here/build/bin/mbsr}
MODELS=${MODELS:-"64x10 16x2"}
STEPS_64=${STEPS_64:-4}
STEPS_SMALL=${STEPS_SMALL:-30}
BW=${BW:-12.5e9}
ALPHA=${ALPHA:-5e-6}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
MPIRUN="mpirun ${OVERSUB:-} --bind-to none"   # 2 ranks fit the 2 cores: no --oversubscribe (it makes idle ranks yield)
work=$(mktemp -d /tmp/mbsr-scaling.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
[ -x "$MBSR" ] || { echo "scaling.sh: no CLI at $MBSR (set MBSR=...)" >&2; exit 2; }

data=${1:-}
if [ -z "$data" ]; then
  af=$here/../shared/data/af
  [ -d "$af" ] || { echo "scaling.sh: give a PATCHES.h5 (../shared/data/af is absent)" >&2; exit 2; }
  data=$work/af.h5
  $MPIRUN -n 2 "$MBSR" prep --out "$data" --inputs "$af" --pair 200-100 --patches-per-volume 200 --norm-percentiles 0,99.9 --quiet
fi

echo "# mbsr train scaling on $(hostname): $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg), data $data"
printf "%-8s %5s %10s %10s %8s %9s %9s %8s %9s %11s %14s %5s\n" model ranks batch/rank patches/s speedup compute% allreduce% sync% reads% params "compute_s/patch" cpu%
res=$work/results.txt
: > "$res"
for m in $MODELS; do
  ch=${m%x*}; bl=${m#*x}
  steps=$STEPS_SMALL; [ "$ch" -ge 64 ] && steps=$STEPS_64
  base=""
  for P in 1 2; do
    out=$work/run-$m-$P
    log=$work/log-$m-$P.txt
    $MPIRUN -n $P "$MBSR" train --patches "$data" --out "$out" --channels "$ch" --blocks "$bl" --batch 8 --threads 1 \
      --max-steps "$steps" --ckpt-every 0 --checksum-every 0 --patience 0 > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
    line=$(grep 'this run:' "$log")
    pps=$(sed -E 's/.* ([0-9.]+) patches\/s.*/\1/' <<<"$line")
    comp=$(sed -E 's/.*compute ([0-9.]+)%.*/\1/' <<<"$line")
    ar=$(sed -E 's/.*all-reduce ([0-9.]+)% \(([0-9]+) floats\).*/\1/' <<<"$line")
    nf=$(sed -E 's/.*all-reduce [0-9.]+% \(([0-9]+) floats\).*/\1/' <<<"$line")
    sync=$(sed -E 's/.*sync\/wait ([0-9.]+)%.*/\1/' <<<"$line")
    rd=$(sed -E 's/.*reads ([0-9.]+)%.*/\1/' <<<"$line")
    [ -z "$base" ] && base=$pps
    sp=$(awk -v a="$pps" -v b="$base" 'BEGIN{printf "%.2f", a/b}')
    # compute seconds per patch on one rank: compute share x step time / patches per rank
    cpp=$(awk -v c="$comp" -v p="$pps" -v P=$P 'BEGIN{printf "%.4g", (c/100) * (8/p) / (8/P)}')
    cpu=$(sed -E 's/.*CPU ([0-9.]+)% of each.*/\1/' <<<"$line")
    printf "%-8s %5d %10d %10s %8s %9s %9s %8s %9s %11s %14s %5s\n" "$m" $P $((8 / P)) "$pps" "$sp" "$comp" "$ar" "$sync" "$rd" "$nf" "$cpp" "$cpu"
    echo "$m $P $pps $comp $ar $nf" >> "$res"
  done
done

# ---- projection: T_step(N) = (B/N) * t_patch + 2 (N-1)/N * S / BW + 2 (N-1) * ALPHA ----
echo
echo "# projection to N nodes (one rank per node; t_patch = measured 1-rank compute time per patch at 1 thread;"
echo "# ring all-reduce of S = 4 x params bytes at BW = $BW B/s, ALPHA = $ALPHA s per hop; reads, validation, stragglers ignored)"
printf "%-8s %6s %12s %12s %12s %14s %12s\n" model N "batch(glob)" "t_step(s)" "allreduce(s)" "patches/s" "efficiency"
while read -r m P pps comp ar nf; do
  [ "$P" = 1 ] || continue
  awk -v tpo="${T_PATCH:-0}" -v m="$m" -v pps="$pps" -v comp="$comp" -v nf="$nf" -v bw="$BW" -v al="$ALPHA" 'BEGIN{
    tp = (comp/100) / pps;            # compute seconds per patch on one rank
    if (tpo > 0) tp = tpo;            # T_PATCH: your node'"'"'s measured seconds per patch (e.g. dry-run step time / batch)
    S = 4 * nf;
    split("1 2 4 8 16 64", Ns, " ");
    for (i = 1; i <= 6; i++) {
      N = Ns[i];
      for (mode = 0; mode < 2; mode++) {  # 0: strong (global batch 8), 1: weak (8 per node)
        B = mode ? 8 * N : 8;
        if (!mode && N > 8) continue;       # batch 8 cannot be split over more than 8 ranks
        if (mode && N == 1) continue;
        tar = (N > 1) ? 2 * (N - 1) / N * S / bw + 2 * (N - 1) * al : 0;
        ts = B / N * tp + tar;
        printf "%-8s %6d %12s %12.4g %12.3g %14.1f %11.1f%%\n", m, N, B (mode ? " (weak)" : ""), ts, tar, B / ts, 100 * (B / ts) / (N / tp);
      }
    }
  }'
done < "$res"
