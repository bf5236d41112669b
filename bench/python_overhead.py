#!/usr/bin/env python3
"""kiln's Python run overhead on the GPU machine (issue #13: <= 20 us over the C++ Enqueue at batch 1).

One small model (the bundled super-resolution net at 1x1x32x32), three ways, timed the same way
(wall clock over N back-to-back calls, each followed by a stream sync, median of R repeats):
  - `kiln bench` (C++ Enqueue, CUDA-graph replay; GPU compute time, the floor)
  - `ctx.run` with torch CUDA tensors (zero-copy; outputs allocated by torch each call)
  - `ctx.run` with numpy arrays (host copies in and out)
Prints the per-call times and the Python overhead: ctx.run with torch tensors (wall time, synced)
minus kiln bench's GPU time, an upper bound on what Python adds over a synced C++ Enqueue.

  bench/python_overhead.py --kiln build-gpu/kiln [--iters 200] [--repeats 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import kiln

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "models", "super_resolution.onnx")


def timed(fn, iters, repeats, sync):
    for _ in range(10):
        fn()
    sync()
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
            sync()
        per_call.append((time.perf_counter() - t0) / iters * 1e6)
    return statistics.median(per_call)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True, help="the kiln CLI (for `kiln bench`)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    shape = (1, 1, 32, 32)
    engine = kiln.build(MODEL, backend="cuda", profiles={"input": (shape, shape, shape)})
    ctx = engine.create_context()
    x_gpu = torch.randn(*shape, device="cuda")
    x_np = x_gpu.cpu().numpy()
    sync = torch.cuda.synchronize
    rows = {}
    rows["ctx.run (torch CUDA tensors)"] = timed(lambda: ctx.run({"input": x_gpu}), args.iters, args.repeats, sync)
    rows["ctx.run (numpy)"] = timed(lambda: ctx.run({"input": x_np}), args.iters, args.repeats, lambda: None)
    with tempfile.TemporaryDirectory() as tmp:
        plan = os.path.join(tmp, "sr.plan")
        engine.save(plan)
        js = os.path.join(tmp, "bench.json")
        subprocess.run([args.kiln, "bench", plan, "--shapes", "input:" + "x".join(map(str, shape)),
                        "--iterations", str(args.iters), "--json", js], check=True, capture_output=True, text=True)
        with open(js) as f:
            b = json.load(f)
    floor = b["gpu_compute_ms"]["median"] * 1e3
    rows["kiln bench (C++ Enqueue, GPU compute)"] = floor
    dev = torch.cuda.get_device_name(0)
    print(f"\n### Python run overhead on {dev}, super_resolution {shape}, per call (us, median)\n")
    print("| path | us |")
    print("|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:.1f} |")
    over = rows["ctx.run (torch CUDA tensors)"] - floor
    print(f"\nctx.run with torch tensors over kiln bench's GPU time: {over:.1f} us (target <= 20 us)")
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "python_overhead.json"), "w") as f:
            json.dump({"device": dev, "us": rows, "overhead_us": over}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
