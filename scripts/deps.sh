#!/usr/bin/env bash
# Install the Debian 12 packages mbsr needs, only those missing (no apt-get at all when complete).
# Usage: scripts/deps.sh [build|test|all]   (test adds the reference tools: PyTorch, SciPy, R, Slurm;
#        all adds mricron-data, the human T1 volumes of the 'human' study)
set -euo pipefail
what=${1:-build}
build_pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libnifti2-dev libteem-dev libblis-openmp-dev libcunit1-dev libgsl-dev libfftw3-dev libcurl4-openssl-dev zlib1g-dev
  libpng-dev libtiff-dev libzip-dev libyaml-dev libjansson-dev gnuplot-nox libssl-dev)
test_pkgs=(python3 python3-numpy python3-scipy python3-skimage python3-nibabel python3-h5py python3-torch
  r-base-core slurm-wlm munge clang libclang-rt-14-dev libomp-14-dev)
pkgs=("${build_pkgs[@]}")
if [ "$what" != build ]; then pkgs+=("${test_pkgs[@]}"); fi
if [ "$what" = all ]; then pkgs+=(mricron-data); fi
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "mbsr: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "mbsr: packages installed"
