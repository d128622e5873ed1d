#!/usr/bin/env python3
"""PyTorch inference peer of `mbsr apply --upsampled` (experiments/bench/apply_mem.sh): the same network
(the paper's ResNet, weights read from an mbsr checkpoint with h5py), the same input (a volume already on
the target grid) and the same intensity contract, run the way a PyTorch user would: model.eval(),
torch.no_grad(), the whole volume in ONE forward pass (default), or exact tiles (--tile T: tiles overlap
by twice the receptive radius R = number of convs, each output voxel taken from the tile where it lies at
least R voxels from every cut face; mbsr apply's scheme, see src/model/apply.c).

Steps timed (JSON on stdout): read (nibabel), normalise (numpy percentiles, the contract's, numpy's
'linear' definition = mbsr_norm_fit), network, map back (sr = x + (hi - lo) * (net - clip(norm(x))),
what mbsr apply writes), write (NIfTI-1 float32). Peak memory: getrusage max RSS of this process
(run it under /usr/bin/time -v as well).

Usage: torch_apply_peer.py --ckpt CKPT.h5 --in IN.nii --out OUT.nii [--threads 2] [--tile 0]
                           [--format ncdhw|cl]
Needs Debian's python3-torch, python3-nibabel, python3-h5py (run it with /usr/bin/python3)."""
import argparse
import json
import resource
import sys
import time

import h5py
import nibabel as nib
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResNet(nn.Module):
    """mbsr's ResNet (tests/fixtures/gen_nn.py): conv0 1->C + ReLU, blocks of conv-ReLU-conv + skip,
    conv_out C->1, optional global residual (output = input + network)."""

    def __init__(self, ch, blocks, global_residual):
        super().__init__()
        self.head = nn.Conv3d(1, ch, 3, padding=1)
        self.a = nn.ModuleList([nn.Conv3d(ch, ch, 3, padding=1) for _ in range(blocks)])
        self.b = nn.ModuleList([nn.Conv3d(ch, ch, 3, padding=1) for _ in range(blocks)])
        self.tail = nn.Conv3d(ch, 1, 3, padding=1)
        self.gr = global_residual

    def forward(self, x):
        h = F.relu(self.head(x))
        for a, b in zip(self.a, self.b):
            h = b(F.relu(a(h))) + h
        y = self.tail(h)
        return x + y if self.gr else y

    def nconv(self):
        return 2 + 2 * len(self.a)


def attr(f, name, default=None):
    v = f.attrs.get(name, default)
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.item()
    return v


def load_ckpt(path):
    """The network and the contract's percentiles from an mbsr checkpoint (docs/design/formats.md:
    conv weights (3,3,3,Cin,Cout) = (kd,kh,kw,Cin,Cout) -> torch (Cout,Cin,kd,kh,kw))."""
    with h5py.File(path, "r") as f:
        arch = attr(f, "arch")
        if arch != "resnet":
            sys.exit("torch_apply_peer: %s is a %s checkpoint; only resnet is implemented" % (path, arch))
        net = ResNet(int(attr(f, "channels")), int(attr(f, "blocks")), int(attr(f, "global_residual")))
        names = [("conv0", net.head)] + [("block%d.conv1" % i, c) for i, c in enumerate(net.a)] + \
                [("block%d.conv2" % i, c) for i, c in enumerate(net.b)] + [("conv_out", net.tail)]
        with torch.no_grad():
            for name, conv in names:
                w = np.asarray(f["params/%s.weight" % name], dtype=np.float32)
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(4, 3, 0, 1, 2))))
                conv.bias.copy_(torch.from_numpy(np.asarray(f["params/%s.bias" % name], dtype=np.float32)))
        pct = attr(f, "contract_norm_percentiles", None)
        pct = (0.1, 99.9) if pct is None else tuple(float(p) for p in np.ravel(pct))
    return net, pct


def axis_layout(n, tile, R):
    """Tile starts (stride tile - 2R, the last flush with the end) and owned ranges [own[k], own[k+1])."""
    if tile >= n:
        return [0], [0, n]
    stride = tile - 2 * R
    count = (n - tile + stride - 1) // stride + 1
    start = [n - tile if k == count - 1 else k * stride for k in range(count)]
    own = [0] + [start[k] + R for k in range(1, count)] + [n]
    return start, own


def run_net(net, x, tile, fmt):
    """x: (D,H,W) float32 numpy at training scale -> network output, same shape."""
    def fwd(a):
        t = torch.from_numpy(np.ascontiguousarray(a))[None, None]
        if fmt == "cl":
            t = t.contiguous(memory_format=torch.channels_last_3d)
        return net(t)[0, 0].contiguous().numpy()

    if tile <= 0:
        return fwd(x), 1, 1.0
    R = net.nconv()
    if tile < 2 * R + 1 and tile < max(x.shape):
        sys.exit("torch_apply_peer: --tile %d < 2R+1 = %d" % (tile, 2 * R + 1))
    lay = [axis_layout(n, min(tile, n), R) for n in x.shape]
    out = np.empty_like(x)
    ntiles, computed = 0, 0
    for i0, s0 in enumerate(lay[0][0]):
        for i1, s1 in enumerate(lay[1][0]):
            for i2, s2 in enumerate(lay[2][0]):
                t = [min(tile, n) for n in x.shape]
                y = fwd(x[s0:s0 + t[0], s1:s1 + t[1], s2:s2 + t[2]])
                o = [(lay[a][1][k], lay[a][1][k + 1]) for a, k in enumerate((i0, i1, i2))]
                out[o[0][0]:o[0][1], o[1][0]:o[1][1], o[2][0]:o[2][1]] = \
                    y[o[0][0] - s0:o[0][1] - s0, o[1][0] - s1:o[1][1] - s1, o[2][0] - s2:o[2][1] - s2]
                ntiles += 1
                computed += t[0] * t[1] * t[2]
    return out, ntiles, computed / x.size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, help="mbsr checkpoint (HDF5) of a resnet")
    ap.add_argument("--in", dest="inp", required=True, help="volume on the target grid (NIfTI)")
    ap.add_argument("--out", required=True, help="output NIfTI (float32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tile", type=int, default=0, help="exact tiles of this edge (0: the whole volume at once)")
    ap.add_argument("--format", default="ncdhw", choices=["ncdhw", "cl"], help="memory format (cl: channels_last_3d)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t = {}
    t0 = time.perf_counter()
    net, pct = load_ckpt(a.ckpt)
    net.eval()
    if a.format == "cl":
        net = net.to(memory_format=torch.channels_last_3d)
    t["load_model_s"] = time.perf_counter() - t0

    c = time.perf_counter()
    img = nib.load(a.inp)
    vol = np.asarray(img.dataobj, dtype=np.float32)  # (i, j, k); the network's (D,H,W) = (k, j, i)
    t["read_s"] = time.perf_counter() - c

    c = time.perf_counter()
    lo, hi = (float(v) for v in np.percentile(vol, pct))
    x = vol.transpose(2, 1, 0)
    xn = np.clip((x.astype(np.float64) - lo) / (hi - lo), 0, 1).astype(np.float32)
    t["normalise_s"] = time.perf_counter() - c

    c = time.perf_counter()
    with torch.no_grad():
        y, ntiles, redundancy = run_net(net, xn, a.tile, a.format)
    t["network_s"] = time.perf_counter() - c

    c = time.perf_counter()
    sr = (x.astype(np.float64) + (hi - lo) * (y.astype(np.float64) - xn)).astype(np.float32)
    if not np.isfinite(sr).all():
        sys.exit("torch_apply_peer: the network produced NaN/Inf")
    t["map_back_s"] = time.perf_counter() - c

    c = time.perf_counter()
    out = nib.Nifti1Image(np.ascontiguousarray(sr.transpose(2, 1, 0)), img.affine, img.header)
    out.set_data_dtype(np.float32)
    nib.save(out, a.out)
    t["write_s"] = time.perf_counter() - c
    t["total_s"] = time.perf_counter() - t0

    nvox = int(vol.size)
    res = {"peer": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "mkldnn": torch.backends.mkldnn.is_available(), "format": a.format,
           "mode": "whole volume" if a.tile <= 0 or ntiles == 1 else "tiles of %d" % a.tile,
           "tiles": ntiles, "voxels_computed_per_output": redundancy, "dims_ijk": list(vol.shape),
           "voxels": nvox, "norm_lo_hi": [lo, hi], "percentiles": list(pct),
           "voxels_per_s_network": nvox / t["network_s"], "voxels_per_s_total": nvox / t["total_s"],
           "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    res.update({k: round(v, 3) for k, v in t.items()})
    json.dump(res, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
