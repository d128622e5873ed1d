#!/usr/bin/env bash
# Install the Debian 12 packages mbsr needs, only those missing (no apt-get at all when complete).
# Usage: scripts/deps.sh [build|test|all]   (test adds the reference tools: PyTorch, SciPy, R, Slurm,
#        clang for fuzzing; all adds mricron-data, the human T1 volumes of the 'human' study)
# It acts only on Debian/Ubuntu (dpkg and apt-get present), as root or with sudo. Elsewhere (a
# RHEL/Rocky login node, a module-based cluster), without the rights, or with MBSR_NO_DEPS=1 it lists
# what is needed and returns 0: the build then proceeds with what CMake finds (docs/user/install.md).
set -euo pipefail
what=${1:-build}
build_pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libnifti2-dev libteem-dev libcunit1-dev libgsl-dev libfftw3-dev libcurl4-openssl-dev zlib1g-dev
  libtiff-dev libzip-dev libyaml-dev libjansson-dev gnuplot-nox libssl-dev help2man)
test_pkgs=(python3 python3-numpy python3-scipy python3-skimage python3-nibabel python3-h5py python3-torch
  r-base-core slurm-wlm munge clang libclang-rt-14-dev libomp-14-dev man-db)
pkgs=("${build_pkgs[@]}")
if [ "$what" != build ]; then pkgs+=("${test_pkgs[@]}"); fi
if [ "$what" = all ]; then pkgs+=(mricron-data); fi
needs() {
  echo "mbsr: $1; install these (Debian names; on other systems their equivalents, e.g. environment modules:" >&2
  echo "      MPI, parallel HDF5, nifti_clib, teem, GSL, FFTW3, libcurl, OpenSSL, libzip, libyaml, Jansson, libtiff," >&2
  echo "      zlib, CUnit for the tests, gnuplot for figures, help2man for man pages) and point CMake at them (CMAKE_PREFIX_PATH, PKG_CONFIG_PATH," >&2
  echo "      HDF5_ROOT, NIFTI_ROOT, TEEM_ROOT): ${pkgs[*]}" >&2
}
if [ "${MBSR_NO_DEPS:-0}" = 1 ]; then needs "MBSR_NO_DEPS=1: no packages installed"; exit 0; fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  needs "not a Debian/Ubuntu system (no dpkg/apt-get): no packages installed"; exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo
  else pkgs=("${missing[@]}"); needs "missing packages and no root or passwordless sudo: nothing installed"; exit 0; fi
fi
echo "mbsr: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "mbsr: packages installed"
