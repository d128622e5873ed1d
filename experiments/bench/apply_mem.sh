#!/usr/bin/env bash
# Inference memory and throughput (issue 12, item 3): `mbsr apply` of the paper's ResNet (10 residual
# blocks x 64 channels, global residual) on a whole 50 um mouse-brain grid, under /usr/bin/time -v
# (max RSS, wall time -> voxels/s), beside a PyTorch peer doing the same inference
# (experiments/bench/torch_apply_peer.py: same weights, same input, same intensity contract;
# model.eval() + torch.no_grad(), the whole volume in one forward pass, NCDHW) in ONE run on one machine.
# Saved as experiments/bench/apply-mem-<date>-<cpu>.txt: commit, CPU model, load averages, every command,
# the raw /usr/bin/time -v and peer outputs, then the table.
#
# Inputs (made in $WORK, not committed): the Allen CCF average template at 100 um Keys-upsampled x2 with
# `mbsr upsample` (264x160x228 voxels at 50 um) and a checkpoint of the paper ResNet from `mbsr train`
# with ONE step on patches of a tiny synthetic cohort (`mbsr phantom` at 50 um, `mbsr prep --pair 100-50`):
# Glorot weights, enough for timing, and a trained model's contract (pair 100-50 um), so `apply` needs no
# --force. Both programs get the up-sampled volume (`apply --upsampled`): the same work from the same file.
#
# Runs (RUNS, by default in this order: whole torch b1-1g b1-default b8-1g; one at a time; max-mb is
# apply's memory budget for the tiles):
#   whole       --batch 1 --max-mb 16384: one tile = the whole volume (no overlap recomputed)
#   b1-default  --batch 1 (default budget 2048 MiB)
#   b1-1g       --batch 1 --max-mb 900: the issue's "under 1 GB" budget
#   b8-1g       --batch 8 --max-mb 900: the issue's "under 1 GB at batch 8"; its plan recomputes the
#               overlap many times over, so it is stopped after PROBE_S seconds and its time projected
#               from its measured tile rate (marked "projected")
#   torch       the PyTorch peer, whole volume, NCDHW (PyTorch's default layout: what a user gets)
#   torch-cl    the same in channels_last_3d (not in the default RUNS)
# The exact tiling recomputes a 2R = 44-voxel overlap (R = 22 convs): "computed/out" is the voxels the
# network computed per output voxel, from apply's tile plan.
#
# usage: experiments/bench/apply_mem.sh
#   env: MBSR (CLI, default build/bin/mbsr), PYTHON (/usr/bin/python3, Debian's python3-torch),
#        THREADS (2), RUNS ("whole torch b1-1g b1-default b8-1g"), SUB (0 = the whole grid; N = a centred
#        N^3 sub-volume of it, for a quick check), PROBE_S (120), LIMIT_S (3600: any run longer is
#        stopped), WORK (/tmp/mbsr-apply-mem, kept for re-runs), OUT (experiments/bench), TEMPLATE
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
MBSR=${MBSR:-$here/build/bin/mbsr}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
RUNS=${RUNS:-"whole torch b1-1g b1-default b8-1g"}
SUB=${SUB:-0}
PROBE_S=${PROBE_S:-120}
LIMIT_S=${LIMIT_S:-3600}
WORK=${WORK:-/tmp/mbsr-apply-mem}
OUT=${OUT:-$here/experiments/bench}
TEMPLATE=${TEMPLATE:-$here/../shared/data/af/allen_ccf_average_template_100um.nrrd}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=$THREADS
[ -x "$MBSR" ] || { echo "apply_mem.sh: no CLI at $MBSR (set MBSR=...)" >&2; exit 2; }
[ -f "$TEMPLATE" ] || { echo "apply_mem.sh: no template at $TEMPLATE (set TEMPLATE=...)" >&2; exit 2; }
peer=$here/experiments/bench/torch_apply_peer.py
mkdir -p "$WORK" "$OUT"

# ---- inputs (reused when present) ----
ckpt=$WORK/resnet64x10/last.h5
if [ ! -f "$ckpt" ]; then
  "$MBSR" phantom --out "$WORK/phantom" --n 3 --vox 0.05 --dims 64,80,52 --quiet
  "$MBSR" prep --out "$WORK/phantom.h5" --inputs "$WORK/phantom" --pair 100-50 --patches-per-volume 8 \
    --split 34,33,33 --quiet
  "$MBSR" train --patches "$WORK/phantom.h5" --pair 100-50 --out "$WORK/resnet64x10" --arch resnet --channels 64 \
    --blocks 10 --global-residual --init-glorot --batch 1 --max-steps 1 --quiet
fi
grid=$WORK/ccf50.nii
[ -f "$grid" ] || "$MBSR" upsample "$TEMPLATE" "$grid" --factor 2 --quiet
input=$grid
if [ "$SUB" -gt 0 ]; then
  input=$WORK/ccf50-sub$SUB.nii
  [ -f "$input" ] || "$PYTHON" - "$grid" "$input" "$SUB" <<'EOF'
import sys, nibabel as nib, numpy as np
img = nib.load(sys.argv[1]); d = np.asarray(img.dataobj); s = int(sys.argv[3])
lo = [max(0, (n - s) // 2) for n in d.shape]
a = img.affine.copy(); a[:3, 3] = img.affine[:3, :3] @ np.array(lo, float) + img.affine[:3, 3]
nib.save(nib.Nifti1Image(np.ascontiguousarray(d[lo[0]:lo[0]+s, lo[1]:lo[1]+s, lo[2]:lo[2]+s]), a), sys.argv[2])
EOF
fi
dims=$("$PYTHON" -c "import nibabel as nib,sys; print('x'.join(map(str, nib.load(sys.argv[1]).shape[:3])))" "$input")
nvox=$(awk -v d="$dims" 'BEGIN { split(d, a, "x"); print a[1] * a[2] * a[3] }')

# ---- the record ----
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
tag=$(echo "$cpu" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
stamp=$(date -u +%Y-%m-%dT%H%M)
rec=$OUT/apply-mem-$stamp-$tag.txt
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$here" status --porcelain -- src include 2>/dev/null | grep -c . || true)
tsv=$WORK/runs.tsv
: > "$tsv"
log() { echo "$*" | tee -a "$rec"; }
: > "$rec"
log "# apply_mem.sh $(date -u +%FT%TZ) commit $commit (src/include files differing from it: $dirty)"
log "# CPU: $cpu; $(nproc --all) cores; $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "# $("$MBSR" --version 2>&1 | head -1); torch $("$PYTHON" -c 'import torch; print(torch.__version__)'); threads $THREADS; OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
log "# command: RUNS=\"$RUNS\" SUB=$SUB PROBE_S=$PROBE_S THREADS=$THREADS MBSR=$MBSR $0"
log "# model: $ckpt (resnet 64 ch x 10 blocks, global residual; 1 training step from Glorot weights)"
sub=""; [ "$SUB" -gt 0 ] && sub=", its centred $SUB^3 sub-volume"
log "# input: $input ($dims = $nvox voxels, 50 um: $TEMPLATE Keys-upsampled x2$sub)"

wall_s() { # "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.5" -> seconds
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"
}
field() { sed -n "s/^[[:space:]]*$2: *//p" "$1" | head -1; }

run_mbsr() { # name batch max_mb limit_s
  local name=$1 b=$2 mb=$3 lim=$4 t=$WORK/$1.time e=$WORK/$1.err o=$WORK/sr-$1.nii
  local cmd=("$MBSR" apply --model "$ckpt" --upsampled "$input" "$o" --threads "$THREADS" --batch "$b" --max-mb "$mb")
  log ""
  log "## $name: ${cmd[*]}   (load before: $(cut -d' ' -f1-3 /proc/loadavg); stopped after $lim s)"
  local rc=0
  /usr/bin/time -v -o "$t" timeout -s INT "$lim" "${cmd[@]}" 2> "$e" || rc=$?
  grep -v '^apply: [0-9][0-9]*/' "$e" | tee -a "$rec" || true
  grep '^apply: [0-9][0-9]*/' "$e" | tail -2 | tee -a "$rec" || true
  cat "$t" >> "$rec"
  local prog plan status=done net
  prog=$(grep '^apply: [0-9][0-9]*/' "$e" | tail -1)
  plan=$(sed -nE 's/.*\(([0-9]+)x([0-9]+)x([0-9]+) tiles of ([0-9]+)x([0-9]+)x([0-9]+), overlap.*/\1 \2 \3 \4 \5 \6/p' <<<"$prog")
  net=$(sed -nE 's/.*network ([0-9.]+) s, total.*/\1/p' "$e")
  if [ "$rc" = 124 ] && [ -n "$plan" ]; then # stopped: project the network time from the tile rate
    local done_t total rate
    done_t=$(sed -nE 's/^apply: ([0-9]+)\/([0-9]+) .*/\1/p' <<<"$prog")
    total=$(sed -nE 's/^apply: ([0-9]+)\/([0-9]+) .*/\2/p' <<<"$prog")
    rate=$(sed -nE 's/.* ([0-9.e+-]+) tiles\/s.*/\1/p' <<<"$prog")
    net=$(awk -v n="$total" -v r="$rate" 'BEGIN { printf "%.0f", n / r }')
    status="projected($done_t/$total tiles in $lim s)"
    log "# $name stopped after $lim s: $done_t of $total tiles at $rate tiles/s -> projected network time $net s"
  elif [ "$rc" != 0 ]; then
    status="failed(rc=$rc)"
    net=NA
  fi
  local comp
  comp=$(awk -v p="$plan" -v n="$nvox" 'BEGIN { split(p, a, " "); if (a[1] == "") { print "NA"; exit }
          printf "%.2f", a[1] * a[2] * a[3] * a[4] * a[5] * a[6] / n }')
  local tiles
  tiles=$(awk -v p="$plan" 'BEGIN { split(p, a, " "); if (a[1] == "") print "NA"; else printf "%dx%dx%d of %dx%dx%d", a[1], a[2], a[3], a[4], a[5], a[6] }')
  local wall=$(wall_s "$t")
  [ "${status%%(*}" = projected ] && wall=$net
  printf "%s\tmbsr --batch %s --max-mb %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$b" "$mb" "$tiles" "$comp" \
    "$(field "$t" 'Maximum resident set size (kbytes)')" "$wall" "${net:-NA}" "$(field "$t" 'Percent of CPU this job got')" \
    "$status" >> "$tsv"
  log "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

run_torch() { # name format (ncdhw | cl)
  local name=$1 fmt=$2 t=$WORK/$1.time j=$WORK/$1.json o=$WORK/sr-$1.nii
  local cmd=("$PYTHON" "$peer" --ckpt "$ckpt" --in "$input" --out "$o" --threads "$THREADS" --format "$fmt")
  log ""
  log "## $name: ${cmd[*]}   (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
  local rc=0
  /usr/bin/time -v -o "$t" timeout -s INT "$LIMIT_S" "${cmd[@]}" > "$j" 2> "$WORK/$name.err" || rc=$?
  cat "$j" "$WORK/$name.err" "$t" >> "$rec"
  local status=done net=NA
  if [ "$rc" = 0 ]; then net=$(jq -r .network_s "$j"); else status="failed(rc=$rc)"; fi
  printf "%s\ttorch whole volume, %s\t1x1x1 (whole)\t1.00\t%s\t%s\t%s\t%s\t%s\n" "$name" "$fmt" \
    "$(field "$t" 'Maximum resident set size (kbytes)')" "$(wall_s "$t")" "$net" \
    "$(field "$t" 'Percent of CPU this job got')" "$status" >> "$tsv"
  log "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

for r in $RUNS; do
  case $r in
    whole) run_mbsr whole 1 16384 "$LIMIT_S" ;;
    b1-default) run_mbsr b1-default 1 2048 "$LIMIT_S" ;;
    b1-1g) run_mbsr b1-1g 1 900 "$LIMIT_S" ;;
    b8-1g) run_mbsr b8-1g 8 900 "$PROBE_S" ;;
    torch) run_torch torch ncdhw ;;
    torch-cl) run_torch torch-cl cl ;;
    *) echo "apply_mem.sh: unknown run $r" >&2; exit 2 ;;
  esac
done

# ---- agreement of the outputs (same weights, same input: they should agree to float rounding) ----
"$PYTHON" - "$WORK" $RUNS <<'EOF' | tee -a "$rec"
import os, sys, nibabel as nib, numpy as np
work, runs = sys.argv[1], sys.argv[2:]
done = [r for r in runs if os.path.exists(os.path.join(work, "sr-%s.nii" % r))]
if len(done) >= 2:
    ref = np.asarray(nib.load(os.path.join(work, "sr-%s.nii" % done[0])).dataobj, dtype=np.float64)
    span = ref.max() - ref.min()
    for r in done[1:]:
        v = np.asarray(nib.load(os.path.join(work, "sr-%s.nii" % r)).dataobj, dtype=np.float64)
        print("# output %s vs %s: max |diff| / (max - min) = %.2e" % (r, done[0], np.abs(v - ref).max() / span))
EOF

# ---- the table ----
{
  echo ""
  echo "# $dims = $nvox output voxels; voxels/s = output voxels / wall s (whole process: read, normalise, network,"
  echo "# write) and / network s; ratios = torch / this row (time: > 1 = faster than torch; RSS: > 1 = less memory)"
  awk -F'\t' -v n="$nvox" '
    { name[NR] = $1; what[NR] = $2; tiles[NR] = $3; comp[NR] = $4; rss[NR] = $5 / 1024; wall[NR] = $6; net[NR] = $7;
      cpu[NR] = $8; st[NR] = $9; if ($1 == "torch" && $9 == "done") { tw = $6; tr = $5 / 1024 } }
    END {
      printf "| %-10s | %-28s | %-22s | %12s | %11s | %9s | %9s | %10s | %10s | %6s | %10s | %9s | %s |\n", "run", "what", "tiles",
        "computed/out", "max RSS MB", "wall s", "network s", "vox/s wall", "vox/s net", "CPU", "time ratio", "RSS ratio", "status"
      print "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
      for (i = 1; i <= NR; i++) {
        vw = wall[i] > 0 ? sprintf("%.0f", n / wall[i]) : "NA"; vn = net[i] > 0 ? sprintf("%.0f", n / net[i]) : "NA"
        r1 = tw > 0 && wall[i] > 0 ? sprintf("%.3g", tw / wall[i]) : "NA"; r2 = tr > 0 ? sprintf("%.2f", tr / rss[i]) : "NA"
        printf "| %-10s | %-28s | %-22s | %12s | %11.0f | %9s | %9s | %10s | %10s | %6s | %10s | %9s | %s |\n", name[i], what[i],
          tiles[i], comp[i], rss[i], wall[i], net[i], vw, vn, cpu[i], r1, r2, st[i]
      }
    }' "$tsv"
  echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$rec"
echo "apply_mem.sh: wrote $rec" >&2
