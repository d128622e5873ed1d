#!/usr/bin/env bash
# Bounded fuzz run (`.ci/run` calls it after the test suites): builds the libFuzzer harnesses of
# tests/fuzz with clang into build-fuzz/ (-DMBSR_FUZZ=ON; the main build stays gcc), makes the seed
# corpus (tests/fuzz/make_corpus.sh), runs every target for a fixed time and prints one line per
# target (executions, coverage, corpus). A crash, a timeout (> 10 s on one input), an out-of-memory
# (> 2 GiB) or a leak fails the run: the line says which and where the reproducer is.
#   bash tests/fuzz/run.sh                 every target, 30 s each, 2 at a time
#   bash tests/fuzz/run.sh -t 300 nrrd     one target for 5 minutes
#   MBSR_FUZZ_SECONDS, MBSR_FUZZ_JOBS, MBSR_FUZZ_DIR override the defaults (30, 2, build-fuzz)
# Reproduce a failure: build-fuzz/fuzz/fuzz_<target> build-fuzz/fuzz-out/<target>/<crash-file>
# New inputs accumulate in build-fuzz/fuzz-out/<target>/corpus (kept between runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${MBSR_FUZZ_SECONDS:-30}
jobs=${MBSR_FUZZ_JOBS:-2}
dir=${MBSR_FUZZ_DIR:-$root/build-fuzz}
all=(nifti nifti_gz nrrd mhd tiff yaml csv checkpoint patchset)
while getopts "t:j:h" o; do
  case $o in
    t) secs=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) sed -n '2,12p' "$0"; exit 0 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

command -v clang >/dev/null || bash "$root/scripts/deps.sh" test
if [ ! -f "$dir/CMakeCache.txt" ]; then
  CC=clang cmake -S "$root" -B "$dir" -DMBSR_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log" >&2; exit 1; }
  rm -f "$dir.configure.log"
fi
t0=$(date +%s)
if ! cmake --build "$dir" -j 2 --target mbsr_fuzz mbsr_cli >"$dir/fuzz-build.log" 2>&1; then
  grep -E 'error' "$dir/fuzz-build.log" | head -30 >&2
  echo "fuzz: build failed (log: $dir/fuzz-build.log)" >&2
  exit 1
fi
seeds=$dir/fuzz-seeds
bash "$root/tests/fuzz/make_corpus.sh" "$seeds" "$dir/bin/mbsr" >/dev/null
echo "fuzz: built and seeded in $(( $(date +%s) - t0 )) s; ${#targets[@]} targets x $secs s, $jobs at a time"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1

run_one() { # target -> $dir/fuzz-out/<target>/{log,status}
  local t=$1 out=$dir/fuzz-out/$1
  mkdir -p "$out/corpus" "$out/tmp"
  rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* "$out/status"
  local rc=0 templates=""
  case $t in # the HDF5 harnesses edit valid files (tests/fuzz/h5edit.h)
    checkpoint) templates=resnet.h5,gan.h5,export.h5 ;;
    patchset) templates=prep.h5 ;;
  esac
  # teem's leaks on error paths are suppressed in src/io/nrrd.c; their stacks pass through zlib,
  # which has no frame pointers: unwind slowly (only there: it slows every malloc) so that the
  # suppression sees them.
  local asan=$ASAN_OPTIONS
  [ "$t" != nrrd ] || asan=$asan:fast_unwind_on_malloc=0
  ASAN_OPTIONS=$asan MBSR_FUZZ_TEMPLATES=$seeds/templates MBSR_FUZZ_TEMPLATE_NAMES=$templates TMPDIR=$out/tmp timeout $((secs + 120)) "$dir/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "$seeds/$t" >"$out/log" 2>&1 || rc=$?
  rm -rf "$out/tmp"
  echo "$rc" >"$out/status"
}

pids=()
for t in "${targets[@]}"; do
  [ -x "$dir/fuzz/fuzz_$t" ] || { echo "fuzz: no target '$t' (known: ${all[*]})" >&2; exit 2; }
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 0.5; done
done
wait "${pids[@]}" 2>/dev/null || true

fail=0
for t in "${targets[@]}"; do
  out=$dir/fuzz-out/$t
  rc=$(cat "$out/status" 2>/dev/null || echo 99)
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/log" | tail -1 | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$out/log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  line=$(printf '%-11s %4s s %9s execs  cov %5s  ft %5s  corpus %4s' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  if [ "$rc" = 0 ]; then
    echo "$line  ok"
  else
    fail=1
    what=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-z-]+|runtime error: .*|ERROR: LeakSanitizer: detected memory leaks' "$out/log" || true)
    art=$(ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null | head -1 || true)
    echo "$line  FAILED (exit $rc): ${what:-see log}; reproducer ${art:-none}; log $out/log"
    grep -m1 -A12 -E '^==[0-9]+==ERROR|runtime error' "$out/log" | sed 's/^/    /' | cut -c1-200 || true
  fi
done
echo "fuzz: total $(( $(date +%s) - t0 )) s"
exit $fail
