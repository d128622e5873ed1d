#!/usr/bin/env bash
# One benchmark record: `mbsr bench` (the paper's networks and one 64->64 conv, each beside the PyTorch
# peer in the same run) with the commit, the CPU model, the load average and the algorithm setting
# written at the top, saved as experiments/bench/results-<date>-<cpu>-<algo>.txt (and .json).
#
# usage: experiments/bench/run.sh [extra mbsr bench options]
#   env: MBSR (CLI, default build/bin/mbsr), MBSR_CONV_ALGO (auto|direct|..., recorded), REPEATS (5),
#        BATCH ("1,8"), MODEL (all), OUT (directory, default experiments/bench)
# Example (what the issue asks for, on a quiet machine):
#   MBSR=build/bin/mbsr experiments/bench/run.sh
#   MBSR_CONV_ALGO=direct MBSR=build/bin/mbsr experiments/bench/run.sh     # the direct kernels alone
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
MBSR=${MBSR:-$here/build/bin/mbsr}
OUT=${OUT:-$here/experiments/bench}
[ -x "$MBSR" ] || { echo "run.sh: no CLI at $MBSR (set MBSR=...)" >&2; exit 2; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} MBSR_SOURCE_DIR=$here
algo=${MBSR_CONV_ALGO:-auto}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
tag=$(echo "$cpu" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
stamp=$(date -u +%Y-%m-%dT%H%M)
base=$OUT/results-$stamp-$tag-$algo
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$here" status --porcelain -- src include 2>/dev/null | grep -c . || true)
{
  echo "# mbsr bench $(date -u +%FT%TZ) commit $commit (src/include files differing from it: $dirty)"
  echo "# CPU: $cpu; $(nproc --all) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); MBSR_CONV_ALGO=$algo"
  echo "# command: OMP_WAIT_POLICY=$OMP_WAIT_POLICY $MBSR bench --arch ${MODEL:-all} --batch ${BATCH:-1,8} --threads 2 --peer --repeats ${REPEATS:-5} $*"
  "$MBSR" bench --arch "${MODEL:-all}" --batch "${BATCH:-1,8}" --threads 2 --peer --repeats "${REPEATS:-5}" \
    --out "$base.json" "$@"
  echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$base.txt"
echo "run.sh: wrote $base.txt and $base.json" >&2
