#!/usr/bin/env bash
# Configure (once) and build mbsr into build/ (or $MBSR_BUILD_DIR). Incremental: does nothing
# when everything is up to date. MBSR_SANITIZE=1 builds the ASan/UBSan flavour into build-asan/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${MBSR_SANITIZE:-0}" = 1 ]; then
  dir=${MBSR_BUILD_DIR:-$root/build-asan}; extra=(-DMBSR_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
else
  dir=${MBSR_BUILD_DIR:-$root/build}; extra=()
fi
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" "${extra[@]}" >/dev/null
fi
log="$dir/build.log"
if ! cmake --build "$dir" -j "$(nproc)" >"$log" 2>&1; then
  grep -E 'error|Error|warning' "$log" | head -60 >&2 || tail -40 "$log" >&2
  echo "mbsr: build failed (full log: $log)" >&2
  exit 1
fi
grep -E 'warning:' "$log" | head -20 >&2 || true
echo "$dir"
