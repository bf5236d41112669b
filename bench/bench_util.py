"""Timing helpers shared by bench/vs_torch.py and bench/suite.py (GPU machine).

torch is timed as issue #11 asks: a loop of `iters` calls between two CUDA events, best of `repeats`
loops, after warm-up (which includes the compile for torch.compile modes). kiln is timed with
`kiln bench --json`: GPU compute per run (CUDA-graph replay), median.
"""
import json
import os
import subprocess
import time


def torch_loop_ms(fn, inputs, iters=50, repeats=3, warmup=5):
    """(ms per call, seconds of the first call): loop of `iters` calls between two CUDA events, best of
    `repeats`. The first call's time is the compile time for torch.compile modes."""
    import torch
    with torch.no_grad():
        t0 = time.time()
        fn(*inputs)
        torch.cuda.synchronize()
        first_s = time.time() - t0
        for _ in range(warmup):
            fn(*inputs)
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(iters):
                fn(*inputs)
            b.record()
            torch.cuda.synchronize()
            best = min(best, a.elapsed_time(b) / iters)
    return best, first_s


def shapes_arg(names, tensors):
    """kiln's --shapes value for inputs `names` with the shapes of `tensors`."""
    return ",".join(f"{n}:" + "x".join(str(d) for d in t.shape) for n, t in zip(names, tensors))


def kiln_build_bench(kiln, onnx_path, shapes, plan, extra=(), iterations=200, timeout=1800):
    """Builds `onnx_path` in FP16 at one shape (min = opt = max = `shapes`), then times it with
    `kiln bench`. Returns (GPU ms per run, median; build seconds). Raises CalledProcessError."""
    t0 = time.time()
    subprocess.run([kiln, "build", onnx_path, "--fp16", "--saveEngine", plan, "--minShapes", shapes,
                    "--optShapes", shapes, "--maxShapes", shapes, *extra],
                   check=True, capture_output=True, text=True, timeout=timeout)
    build_s = time.time() - t0
    js = plan + ".bench.json"
    subprocess.run([kiln, "bench", plan, "--shapes", shapes, "--iterations", str(iterations), "--json", js],
                   check=True, capture_output=True, text=True, timeout=timeout)
    with open(js) as f:
        ms = json.load(f)["gpu_compute_ms"]["median"]
    os.remove(js)
    return ms, build_s


def kiln_profile(kiln, plan, shapes, path, iterations=20):
    """Writes `kiln bench --dumpProfile` of `plan` (time per fused kernel) to `path`; a diagnostic."""
    r = subprocess.run([kiln, "bench", plan, "--shapes", shapes, "--iterations", str(iterations), "--dumpProfile"],
                       capture_output=True, text=True, timeout=600)
    with open(path, "w") as f:
        f.write(r.stdout + r.stderr)


def error_line(e):
    """The last line kiln printed for a failed subprocess, or the exception's text."""
    text = (getattr(e, "stderr", None) or getattr(e, "stdout", None) or str(e) or type(e).__name__)
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(e).__name__
