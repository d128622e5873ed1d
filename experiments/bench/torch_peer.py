#!/usr/bin/env python3
"""PyTorch peer of `mbsr bench`: the paper's networks (and one 64->64 conv) timed in PyTorch on the same
machine with the same thread count, printed as JSON for `mbsr bench --peer` to put beside its own numbers.

Fairness: the models are the ones mbsr builds (cCNN 1->64->32->1, ResNet conv 1->64 + ReLU, 10 blocks of
conv-ReLU-conv + skip, conv 64->1; 3x3x3 "same" convs with bias, MSE loss, Adam lr 1e-3), fp32, and
PyTorch gets its best memory format: with --format auto both NCDHW and channels_last_3d are timed and
the faster is reported (both are in the JSON). Times are medians of --repeats runs after --warmup runs.
Training step = zero_grad + forward + MSE + backward + Adam step (what mbsr_model_train_step does).

Usage: torch_peer.py [--model resnet|ccnn|all] [--batch 1,8] [--threads 2] [--size 21]
                     [--repeats 5] [--warmup 2] [--format auto|ncdhw|cl] [--conv] [--tsv] [--serve]
Needs Debian's python3-torch (run it with /usr/bin/python3)."""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn


class CCNN(nn.Module):
    def __init__(self, c1=64, c2=32):
        super().__init__()
        self.c1 = nn.Conv3d(1, c1, 3, padding=1)
        self.c2 = nn.Conv3d(c1, c2, 3, padding=1)
        self.c3 = nn.Conv3d(c2, 1, 3, padding=1)

    def forward(self, x):
        return self.c3(torch.relu(self.c2(torch.relu(self.c1(x)))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv3d(c, c, 3, padding=1)
        self.b = nn.Conv3d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class ResNet(nn.Module):
    def __init__(self, c=64, blocks=10):
        super().__init__()
        self.head = nn.Conv3d(1, c, 3, padding=1)
        self.blocks = nn.Sequential(*[Block(c) for _ in range(blocks)])
        self.tail = nn.Conv3d(c, 1, 3, padding=1)

    def forward(self, x):
        return self.tail(self.blocks(torch.relu(self.head(x))))


def conv_flops(model, vox):
    """2*Cin*Cout*27 per output voxel per 3x3x3 conv (stride 1)."""
    return sum(2.0 * m.in_channels * m.out_channels * 27 * vox for m in model.modules() if isinstance(m, nn.Conv3d))


def median_ms(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts), min(ts)


def time_model(name, batch, size, fmt, repeats, warmup):
    torch.manual_seed(0)
    model = CCNN() if name == "ccnn" else ResNet()
    x = torch.rand(batch, 1, size, size, size)
    y = torch.rand(batch, 1, size, size, size)
    if fmt == "cl":
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        y = y.contiguous(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def fwd():
        with torch.no_grad():
            model(x)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    f_med, f_min = median_ms(fwd, repeats, warmup)
    s_med, s_min = median_ms(step, repeats, warmup)
    return {"forward_ms": f_med, "forward_min_ms": f_min, "step_ms": s_med, "step_min_ms": s_min,
            "forward_gflop": conv_flops(model, batch * size ** 3) / 1e9}


def time_conv(fmt, repeats, warmup, batch=8, c=64, size=21):
    torch.manual_seed(0)
    conv = nn.Conv3d(c, c, 3, padding=1)
    x = torch.rand(batch, c, size, size, size)
    if fmt == "cl":
        conv = conv.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_()
    g = None

    def fwd():
        with torch.no_grad():
            conv(x)

    def fwdbwd():
        nonlocal g
        out = conv(x)
        if g is None:
            g = torch.rand_like(out)
        out.backward(g)

    f_med, f_min = median_ms(fwd, repeats, warmup)
    b_med, b_min = median_ms(fwdbwd, repeats, warmup)
    return {"forward_ms": f_med, "forward_min_ms": f_min, "fwdbwd_ms": b_med, "fwdbwd_min_ms": b_min,
            "forward_gflop": 2.0 * c * c * 27 * batch * size ** 3 / 1e9}


class Served:
    """--serve: one model (or the conv) in both memory formats, timed one run at a time on request, so that
    `mbsr bench --peer` can interleave mbsr and PyTorch runs and both see the same machine load."""

    def __init__(self):
        self.fwd = self.step = None

    def setup_model(self, name, batch, size):
        runs = {}
        for fmt in ("ncdhw", "cl"):
            torch.manual_seed(0)
            model = CCNN() if name == "ccnn" else ResNet()
            x = torch.rand(batch, 1, size, size, size)
            y = torch.rand(batch, 1, size, size, size)
            if fmt == "cl":
                model = model.to(memory_format=torch.channels_last_3d)
                x = x.contiguous(memory_format=torch.channels_last_3d)
                y = y.contiguous(memory_format=torch.channels_last_3d)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)

            def fwd(model=model, x=x):
                with torch.no_grad():
                    model(x)

            def step(model=model, x=x, y=y, opt=opt):
                opt.zero_grad(set_to_none=False)
                nn.functional.mse_loss(model(x), y).backward()
                opt.step()

            runs[fmt] = (fwd, step)
        self.fwd = {f: r[0] for f, r in runs.items()}
        self.step = {f: r[1] for f, r in runs.items()}

    def setup_conv(self, batch=8, c=64, size=21):
        self.fwd, self.step = {}, {}
        for fmt in ("ncdhw", "cl"):
            torch.manual_seed(0)
            conv = nn.Conv3d(c, c, 3, padding=1)
            x = torch.rand(batch, c, size, size, size)
            if fmt == "cl":
                conv = conv.to(memory_format=torch.channels_last_3d)
                x = x.contiguous(memory_format=torch.channels_last_3d)
            x.requires_grad_()
            g = torch.rand_like(conv(x))

            def fwd(conv=conv, x=x):
                with torch.no_grad():
                    conv(x)

            def fwdbwd(conv=conv, x=x, g=g):
                conv(x).backward(g)

            self.fwd[fmt], self.step[fmt] = fwd, fwdbwd

    @staticmethod
    def time_both(fns):
        """Wall ms per format, then process CPU ms per format (CPU time: all threads, a measure of work
        that a shared machine disturbs less than wall time)."""
        wall, cpu = [], []
        for fmt in ("ncdhw", "cl"):
            c = time.process_time()
            t = time.perf_counter()
            fns[fmt]()
            wall.append((time.perf_counter() - t) * 1e3)
            cpu.append((time.process_time() - c) * 1e3)
        return "%.3f %.3f %.3f %.3f" % tuple(wall + cpu)

    def serve(self):
        for line in sys.stdin:
            w = line.split()
            if not w:
                continue
            try:
                if w[0] == "model":
                    self.setup_model(w[1], int(w[2]), int(w[3]))
                    reply = "ok"
                elif w[0] == "conv":
                    self.setup_conv()
                    reply = "ok"
                elif w[0] == "fwd":
                    reply = self.time_both(self.fwd)
                elif w[0] == "step":
                    reply = self.time_both(self.step)
                elif w[0] == "quit":
                    return
                else:
                    reply = "error unknown request " + w[0]
            except Exception as e:  # report, keep serving
                reply = "error " + repr(e).replace("\n", " ")
            print(reply, flush=True)


def best(results, key):
    fmt = min(results, key=lambda f: results[f][key])
    return fmt, dict(results[fmt], format=fmt, all_formats=results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="all", choices=["resnet", "ccnn", "all"])
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--format", default="auto", choices=["auto", "ncdhw", "cl"])
    ap.add_argument("--conv", action="store_true", help="time one 64->64 conv on 8x64x21^3 instead of the models")
    ap.add_argument("--tsv", action="store_true",
                    help="one line per result (what `mbsr bench --peer` reads): "
                         "model batch format forward_ms step_ms (conv: conv 8 format forward_ms fwdbwd_ms)")
    ap.add_argument("--serve", action="store_true",
                    help="answer requests on stdin, one timed run each, both formats (used by mbsr bench --peer): "
                         "'model NAME BATCH SIZE' | 'conv' -> ok; 'fwd' | 'step' -> 'ncdhw_ms cl_ms ncdhw_cpu_ms cl_cpu_ms'; 'quit'")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.serve:
        print("ready torch %s threads %d" % (torch.__version__, torch.get_num_threads()), flush=True)
        Served().serve()
        return
    fmts = ["ncdhw", "cl"] if a.format == "auto" else [a.format]
    out = {"peer": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "mkldnn": torch.backends.mkldnn.is_available(), "repeats": a.repeats, "warmup": a.warmup}
    if a.conv:
        res = {f: time_conv(f, a.repeats, a.warmup) for f in fmts}
        out["conv"] = best(res, "fwdbwd_ms")[1]
    else:
        models = ["resnet", "ccnn"] if a.model == "all" else [a.model]
        out["models"] = []
        for name in models:
            for b in [int(v) for v in a.batch.split(",")]:
                res = {f: time_model(name, b, a.size, f, a.repeats, a.warmup) for f in fmts}
                _, r = best(res, "step_ms")
                r.update(model=name, batch=b, size=a.size)
                out["models"].append(r)
    if a.tsv:
        if a.conv:
            c = out["conv"]
            print("conv\t8\t%s\t%.3f\t%.3f" % (c["format"], c["forward_ms"], c["fwdbwd_ms"]))
        else:
            for r in out["models"]:
                print("%s\t%d\t%s\t%.3f\t%.3f" % (r["model"], r["batch"], r["format"], r["forward_ms"], r["step_ms"]))
        return
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
