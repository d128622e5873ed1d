#!/usr/bin/env bash
# Seed corpus of the fuzz harnesses (tests/fuzz/fuzz_*.c): one directory per target under OUT.
# Everything is made here: volumes by mbsr itself (phantom, convert; the HDF5 patch file and
# checkpoints by prep and train on a 3-subject synthetic phantom), the tiny committed io/stats
# fixtures of tests/fixtures (made by tests/fixtures/gen_*.py), the shipped experiment files, and
# small hand-written headers. Nothing comes from ../shared/data.
#   bash tests/fuzz/make_corpus.sh OUT [MBSR_BIN]      (MBSR_BIN default: build/bin/mbsr)
# Deterministic; takes about 3 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: make_corpus.sh OUT [MBSR_BIN]}
mbsr=${2:-$root/build/bin/mbsr}
[ -x "$mbsr" ] || { echo "make_corpus.sh: $mbsr is not built" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
fx=$root/tests/fixtures/io
mark=$'\n@@DATA@@\n' # FUZZ_DATA_MARK of tests/fuzz/common.h
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
rm -rf "$out"
mkdir -p "$out"/{nifti,nifti_gz,nrrd,mhd,tiff,yaml,csv,checkpoint,patchset}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- volumes made by mbsr: a small phantom, converted to .nii and .nii.gz ----
"$mbsr" phantom --out "$work/ph" --n 3 --vox 0.1 --dims 12,12,10 --seed 7 >/dev/null
"$mbsr" convert "$work/ph/phantom-00_af100um.nii.gz" "$work/ph0.nii" >/dev/null
"$mbsr" convert "$fx/u16_permuted.nii.gz" "$work/perm.nii.gz" >/dev/null

# nifti: first byte = container (0: raw .nii, 1: the rest gzip-compressed by the harness), then the
# uncompressed bytes of a .nii
nii_seed() { # name byte file
  { printf "\\x$2"; if [[ $3 == *.gz ]]; then gzip -dc "$3"; else cat "$3"; fi; } >"$out/nifti/$1"
}
nii_seed ph0 00 "$work/ph0.nii"
nii_seed perm_gz 01 "$work/perm.nii.gz"
for f in i16_scaled.nii f64_qform_only.nii i16_be_ext.nii n2_f32.nii; do nii_seed "${f%%.*}" 00 "$fx/$f"; done
for f in dt_uint8 dt_int16 dt_float64 dt_uint64 f32_4d f32_oblique i16_pixdim_only u8_micron u8_slope0 n2_i32; do
  nii_seed "${f}_gz" 01 "$fx/$f.nii.gz"
done
nii_seed allow_bad 02 "$fx/dt_float32.nii.gz" # bit 1: read with allow_bad_geometry

# nifti_gz: the bytes of .nii.gz files
cp "$work/perm.nii.gz" "$out/nifti_gz/perm.nii.gz"
for f in dt_float32 dt_int8 dt_uint32 f32_4d u16_permuted n2_i32 bad_complex64; do cp "$fx/$f.nii.gz" "$out/nifti_gz/"; done
{ cat "$fx/dt_uint8.nii.gz" "$fx/dt_uint8.nii.gz"; } >"$out/nifti_gz/two_members.nii.gz"

# ---- NRRD: attached fixtures, a detached header + data (after the mark), ascii and hex ----
for f in raw_le_i16 raw_be_f32 allen_like_u16 um_units_u8 bad_truncated_gzip; do cp "$fx/$f.nrrd" "$out/nrrd/"; done
{ sed 's/^data file: .*/data file: in.data/' "$fx/detached.nhdr"; printf '%s' "$mark"; cat "$fx/detached.raw.gz"; } \
  >"$out/nrrd/detached_gzip"
cat >"$out/nrrd/ascii.nrrd" <<'EOF'
NRRD0004
type: float
dimension: 3
sizes: 2 2 2
spacings: 0.5 0.5 1
encoding: ascii

1 2 3 4
5.5 6 -7 8e1
EOF
printf 'NRRD0005\ntype: uchar\ndimension: 3\nspace: RAS\nsizes: 2 1 2\nspace directions: (0.1,0,0) (0,0.1,0) (0,0,0.2)\nspace units: "mm" "mm" "mm"\nencoding: hex\nspace origin: (1,2,3)\n\n0a0B ff00\n' \
  >"$out/nrrd/hex.nrrd"
{ printf 'NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\nendian: big\nencoding: raw\nline skip: 1\nbyte skip: 2\ndata file: in.data\n'
  printf '%s' "$mark"; printf 'skipped line\n'; printf '\x00\x00'; head -c 16 /dev/zero | tr '\0' '\1'; } >"$out/nrrd/skips"

# ---- MetaImage: .mha (LOCAL) and .mhd + in.raw (after the mark), raw and zlib ----
mha() { # name header-lines data-bytes-command
  { printf 'ObjectType = Image\nNDims = 3\n%s\n' "$2"; eval "$3"; } >"$out/mhd/$1"
}
mha local_u8 $'DimSize = 2 3 2\nElementSpacing = 0.5 0.5 1\nOffset = 1 2 3\nTransformMatrix = 1 0 0 0 1 0 0 0 1\nElementType = MET_UCHAR\nElementDataFile = LOCAL' \
  "printf '0123456789ab'"
mha msb_f32 $'DimSize = 2 1 1\nBinaryDataByteOrderMSB = True\nElementType = MET_FLOAT\nElementDataFile = LOCAL' \
  "printf '\\x3f\\x80\\x00\\x00\\x40\\x00\\x00\\x00'"
mha hsize_end $'DimSize = 2 2 1\nHeaderSize = -1\nElementType = MET_SHORT\nElementDataFile = LOCAL' "printf 'junk\\x01\\x00\\x02\\x00\\x03\\x00\\x04\\x00'"
mha detached_raw $'DimSize = 2 2 2\nElementSpacing = 25 25 25\nAnatomicalOrientation = RAS\nElementType = MET_USHORT\nElementDataFile = in.raw' \
  "printf '%s' \"\$mark\"; printf '\\x01\\x00\\x02\\x00\\x03\\x00\\x04\\x00\\x05\\x00\\x06\\x00\\x07\\x00\\x08\\x00'"
"$py" - "$out/mhd/detached_zlib" "$mark" <<'EOF'
import sys, zlib
hdr = b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 2\nCompressedData = True\nElementType = MET_FLOAT\nElementDataFile = in.raw"
data = zlib.compress(bytes(range(128)))
open(sys.argv[1], "wb").write(hdr + sys.argv[2].encode() + data)
EOF

# ---- TIFF: single-page, multi-page, float and uint16 fixtures ----
cp "$fx/multipage_u8.tif" "$fx/multipage_f32.tif" "$out/tiff/"
cp "$fx/tiff_dir/slice_1.tif" "$out/tiff/slice.tif"
cp "$fx/tiff_mismatch/s00.tif" "$out/tiff/s00.tif"

# ---- experiment YAML: the shipped files and small hand-made ones ----
cp "$root"/experiments/*.yaml "$out/yaml/"
cat >"$out/yaml/small.yaml" <<'EOF'
experiment: fuzz
title: "seed"
report: {anova: true, table1: false}
scales:
  demo:
    data: {base_um: 50, n_train: 3, n_test: 2, norm_pct: [0.5, 99.5], cv: loso}
    phantom: {n: 4, dims: [8, 8, 8]}
    model: {channels: 8, global_residual: yes}
    train: {lr: 2.5e-4, seed: 18446744073709551615}
    matrix:
      arch: [resnet, ccnn, gan]
      train_pair: [200-100, 400-200, 100x100x400-100]
      test_pair: [400-200]
      samples: 64
      train_data: [af, human_t1]
      test_data: [af, t2w]
      finetune: [false, true]
EOF
printf 'experiment: x\nscales: {demo: {matrix: {arch: &a [resnet]}}, paper: {matrix: {arch: *a}}}\n' >"$out/yaml/anchors.yaml"

# ---- CSV: the stats fixtures and hand-made quoting ----
cp "$root"/tests/fixtures/stats/{plantgrowth,sleep,insectsprays,paired_n3}.csv "$out/csv/"
printf 'subject,method,"rmse, mm",note\r\n"s1",cubic,1.5,"a ""quoted"" word"\r\n\r\ns2 , sr , 2e-3,\n' >"$out/csv/quoted.csv"

# ---- HDF5: templates (a patch file by prep, checkpoints by train and models --add, from the
# phantom) in OUT/templates; the checkpoint and patchset inputs are edit lists applied to them
# (tests/fuzz/h5edit.h): [template] then [op, attribute, args...]* ----
mkdir -p "$out/templates"
"$mbsr" prep --out "$work/p.h5" --inputs "$work/ph" --patch 5 --patches-per-volume 3 --split 34,33,33 --quiet >/dev/null
cp "$work/p.h5" "$out/templates/prep.h5"
"$mbsr" train --data "$work/p.h5" --out "$work/t" --channels 2 --blocks 1 --batch 2 --max-steps 1 >/dev/null
cp "$work/t/last.h5" "$out/templates/resnet.h5"
"$mbsr" train --data "$work/p.h5" --out "$work/g" --arch gan --channels 2 --blocks 1 --disc-channels 2 --disc-blocks 1 \
  --batch 2 --max-steps 1 >/dev/null
cp "$work/g/last.h5" "$out/templates/gan.h5"
"$mbsr" models --add fuzzseed --from "$work/t/last.h5" --dir "$work/models" >/dev/null
cp "$work/models/fuzzseed.h5" "$out/templates/export.h5"
"$py" - "$out" <<'EOF'
import os, struct, sys
out = sys.argv[1]
def seed(target, name, *parts):
    open(os.path.join(out, target, name), "wb").write(b"".join(parts))
for t, n in (("checkpoint", 3), ("patchset", 1)):
    for i in range(n):
        seed(t, "template%d" % i, bytes([i]))                                     # as written
    seed(t, "attr_int", b"\0", bytes([0, 3, 0, 0]), struct.pack(">q", 1 << 40))  # an attribute: a huge int64
    seed(t, "attr_nan", b"\0", bytes([0, 5, 1, 1]), struct.pack(">d", float("nan")))
    seed(t, "attr_str", b"\0", bytes([1, 1, 5, 1]), b"xx\xff\x00y")             # a string: any bytes, padding
    seed(t, "attr_del", b"\0", bytes([2, 2, 2, 7]))                              # two attributes deleted
    seed(t, "obj_del", b"\0", bytes([3, 0, 4]))                                  # an object deleted
    seed(t, "ds_replace", b"\0", bytes([4, 0, 1, 3, 0, 2, 3, 4]), bytes(range(96)))  # a dataset of another shape
    seed(t, "ds_nan", b"\0", bytes([5, 0, 2, 0]))                                # a dataset of NaN
    seed(t, "ds_poke", b"\0", bytes([7, 0, 0, 3]), struct.pack(">Qd", 1, -5.0))  # one element
    seed(t, "attr_new", b"\0", bytes([6, 0, 1, 3, 1, 2, 3]), struct.pack(">q", 7))  # an unknown attribute
EOF

for d in "$out"/*/; do printf '%s %s\n' "$(basename "$d")" "$(ls "$d" | wc -l)"; done | paste -sd' ' | sed 's/^/seeds: /'
