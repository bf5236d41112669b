"""How the Python model tests call the kiln CLI: one place for the binary's
path, the .npy input/output convention, `kiln build` / `kiln run` / `kiln bench`
and what they print (build seconds, node count, GPU time).

The GPU tests run `kiln build MODEL --saveEngine PLAN [--fp16]` then
`kiln run PLAN --backend cuda`; with KILN_BACKEND=cpu the same tests run the
ONNX file through `kiln run MODEL --backend cpu` (the CPU reference; no build,
no FP16, no timing), which is how they are checked on a machine without a GPU.
The run command line is otherwise identical.
"""
import json
import os
import re
import subprocess
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build-gpu", "kiln"))
BACKEND = os.environ.get("KILN_BACKEND", "cuda")


class KilnError(AssertionError):
    """A kiln command failed; .message keeps its output for reports."""

    def __init__(self, args, out):
        self.message = out.strip()
        super().__init__(f"kiln {' '.join(args)} failed:\n{out}")


TIMEOUT = float(os.environ.get("KILN_TIMEOUT", "600"))


def kiln(*args, timeout=None):
    """Runs kiln; returns its stdout, raises KilnError (stdout + stderr) when it fails or takes longer
    than timeout seconds (default KILN_TIMEOUT, 600)."""
    try:
        r = subprocess.run([KILN, *map(str, args)], capture_output=True, text=True, timeout=timeout or TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise KilnError(list(map(str, args)), f"timed out after {e.timeout:.0f} s\n{out}") from None
    if r.returncode != 0:
        raise KilnError(list(map(str, args)), f"{r.stdout}\n{r.stderr}")
    return r.stdout


def first_lines(text, n=4, width=400):
    """The first n non-empty lines of an error, each cut to width characters (for tables and JSON)."""
    lines = [ln.strip()[:width] for ln in str(text).splitlines() if ln.strip()]
    return " | ".join(lines[:n])


def output_file(out_dir, name):
    """Where `kiln run --output-dir` writes output `name` ('/' and ':' become '_')."""
    return os.path.join(out_dir, name.replace("/", "_").replace(":", "_") + ".npy")


def shape_spec(shapes):
    """{name: dims} -> 'a:1x3x8x8,b:1x5' for --minShapes/--optShapes/--maxShapes/--shapes."""
    return ",".join(f"{k}:" + "x".join(str(int(d)) for d in dims) for k, dims in shapes.items())


def build_plan(model, plan, fp16=False, min_shapes=None, opt_shapes=None, max_shapes=None, extra=()):
    """`kiln build`; returns {'stdout', 'build_s' (kiln's own figure), 'wall_s', 'nodes', 'kernels'}."""
    args = ["build", model, "--saveEngine", plan]
    if min_shapes:
        args += ["--minShapes", shape_spec(min_shapes), "--optShapes", shape_spec(opt_shapes or max_shapes),
                 "--maxShapes", shape_spec(max_shapes)]
    if fp16:
        args.append("--fp16")
    args += list(extra)
    start = time.time()
    out = kiln(*args)
    info = {"stdout": out, "wall_s": time.time() - start, "build_s": None, "nodes": None, "kernels": None}
    m = re.search(r"^built .* in ([0-9.]+) s", out, re.M)
    if m:
        info["build_s"] = float(m.group(1))
    m = re.search(r"nodes (\d+), GPU kernels (\d+)", out)
    if m:
        info["nodes"], info["kernels"] = int(m.group(1)), int(m.group(2))
    return info


def run_model(model, feeds, tmp, output_names, backend=None, fp16=False):
    """`kiln run MODEL|PLAN --backend B --input k=k.npy ... --output-dir tmp/out`; returns {name: array}.

    fp16 adds --fp16 (an ONNX model built on the fly by the CUDA backend)."""
    backend = backend or BACKEND
    out = os.path.join(tmp, "out")
    args = ["run", model, "--backend", backend, "--output-dir", out]
    if fp16:
        args.append("--fp16")
    for k, v in feeds.items():
        f = os.path.join(tmp, re.sub(r"[^A-Za-z0-9_.-]", "_", k) + ".npy")
        np.save(f, v)
        args += ["--input", f"{k}={f}"]
    kiln(*args)
    return {n: np.load(output_file(out, n)) for n in output_names}


def write_samples(dir_path, samples):
    """kiln's calibration folder (`--calib DIR`): DIR/<i>/<input name>.npy for each sample {name: array}."""
    for i, sample in enumerate(samples):
        d = os.path.join(dir_path, f"{i:03d}")
        os.makedirs(d, exist_ok=True)
        for k, v in sample.items():
            np.save(os.path.join(d, re.sub(r"[^A-Za-z0-9_.-]", "_", k) + ".npy"), v)


def run_quantized(model, feeds, tmp, output_names, calib, flag="--int8", extra=()):
    """Builds `model` with --fp16, `flag` (--int8 or --fp8) and the `extra` build flags at the feeds' shapes,
    calibrated on `calib` (a list of {name: array}), then runs the plan on `feeds`. Returns ({name: array},
    build info).
    With KILN_BACKEND=cpu the same quantized graph runs on the CPU reference (its INT8 ops compute
    what the GPU's do; the float parts run FP16-rounded, not with the GPU's kernels).
    KILN_QUANT_FLAGS adds build flags for experiments (e.g. "--int8-model-rel-l2 0.1")."""
    calib_dir = os.path.join(tmp, "calib")
    flags = [flag, "--calib", calib_dir, *extra] + os.environ.get("KILN_QUANT_FLAGS", "").split()
    write_samples(calib_dir, calib)
    if BACKEND == "cpu":  # the quantized graph on the CPU reference: `kiln compare --backend cpu FLAG --fp16`
        out = os.path.join(tmp, "quantized_out")
        args = ["compare", model, "--backend", "cpu", "--fp16", *flags, "--rel-l2", "1", "--save-outputs", out]
        for k, v in feeds.items():
            f = os.path.join(tmp, re.sub(r"[^A-Za-z0-9_.-]", "_", k) + ".npy")
            np.save(f, v)
            args += ["--input", f"{k}={f}"]
        info = {"stdout": kiln(*args)}
        return {n: np.load(output_file(out, n)) for n in output_names}, info
    shapes = {k: v.shape for k, v in feeds.items()}
    plan = os.path.join(tmp, flag.strip("-") + ".plan")
    info = build_plan(model, plan, fp16=True, min_shapes=shapes, opt_shapes=shapes, max_shapes=shapes,
                      extra=flags)
    return run_model(plan, feeds, tmp, output_names), info


def bench_ms(plan, tmp, iterations=50, warmup=5):
    """Median GPU compute time (ms) of a plan at its built shapes: `kiln bench --json`."""
    j = os.path.join(tmp, "bench.json")
    kiln("bench", plan, "--iterations", iterations, "--warmup", warmup, "--json", j)
    with open(j) as f:
        return float(json.load(f)["gpu_compute_ms"]["median"])


def inspect_nodes(model):
    """Node count of an ONNX model as kiln loads it (`kiln inspect --json`); None if it does not say."""
    try:
        rep = json.loads(kiln("inspect", model, "--json"))
    except (KilnError, ValueError):
        return None
    if isinstance(rep, list):
        rep = rep[0] if rep else {}
    for key in ("nodes", "num_nodes", "node_count"):
        if isinstance(rep.get(key), int):
            return rep[key]
    return None
