#!/usr/bin/env python3
"""Paired A/B of kiln variants on the wide suite's models: each variant (a kiln binary, optionally with
environment settings) builds its own FP16 plan of the same export at one batch, then the variants' `kiln bench`
runs alternate for --rounds rounds, so drift of the card (clocks, heat) falls on all of them alike. Prints the
median GPU compute ms per variant and its ratio to the first variant; writes ab.json to --out.

  bench/kiln_ab.py --variant new=gpu-bin/kiln --variant old=old-bin/kiln \\
                   --variant nopdl=gpu-bin/kiln:KILN_NO_PDL=1 --models mobilenet_v3_large --batches 1,32 [--profile]

A variant is NAME=BINARY[:VAR=VALUE,...]. Kernel-level changes that a build flag cannot switch (a new kernel,
PDL) are measured this way: suite.py times one binary against torch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import error_line, shapes_arg  # noqa: E402
from suite import FAMILY, MODELS, export, model_and_inputs  # noqa: E402


def parse_variant(text):
    name, _, rest = text.partition("=")
    binary, _, env_text = rest.partition(":")
    if not name or not binary:
        raise argparse.ArgumentTypeError(f"--variant wants NAME=BINARY[:VAR=VALUE,...], got {text!r}")
    env = dict(kv.split("=", 1) for kv in env_text.split(",") if kv)
    return name, os.path.abspath(binary), env


def run(cmd, env, timeout=1800):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def bench_ms(binary, env, plan, shapes, iterations):
    js = plan + ".bench.json"
    run([binary, "bench", plan, "--shapes", shapes, "--iterations", str(iterations), "--json", js], env)
    with open(js) as f:
        return json.load(f)["gpu_compute_ms"]["median"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", type=parse_variant, required=True)
    ap.add_argument("--models", default="mobilenet_v3_large")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--profile", action="store_true",
                    help="also write the first variant's per-kernel profile (kiln bench --dumpProfile) of each "
                         "model and batch to OUT/profile_MODEL_bBATCH.txt, every kernel's time in its .json")
    args = ap.parse_args()
    unknown = [m for m in args.models.split(",") if m not in MODELS and m not in FAMILY]
    if unknown:
        ap.error(f"unknown models: {', '.join(unknown)}")
    rows = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = os.path.join(tmp, name + ".onnx")
            model, inputs = model_and_inputs(name)
            export(model, inputs, onnx_path)
            for batch in [int(b) for b in args.batches.split(",")]:
                shapes = shapes_arg(list(inputs), [make(batch) for make in inputs.values()])
                row = {"model": name, "batch": batch}
                plans = {}
                for vname, binary, env in args.variant:
                    plan = os.path.join(tmp, f"{vname}_b{batch}.plan")
                    try:
                        run([binary, "build", onnx_path, "--fp16", "--saveEngine", plan, "--minShapes", shapes,
                             "--optShapes", shapes, "--maxShapes", shapes], env)
                        plans[vname] = plan
                    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                        row[f"{vname}_error"] = error_line(e)
                times = {v: [] for v in plans}
                for _ in range(args.rounds):
                    for vname, binary, env in args.variant:
                        if vname in plans:
                            times[vname].append(bench_ms(binary, env, plans[vname], shapes, args.iterations))
                first = args.variant[0][0]
                if args.profile and first in plans:
                    binary, env = args.variant[0][1], args.variant[0][2]
                    stem = os.path.join(args.out, f"profile_{name}_b{batch}")
                    r = run([binary, "bench", plans[first], "--shapes", shapes, "--dumpProfile", "--json",
                             stem + ".json"], env)
                    with open(stem + ".txt", "w") as f:
                        f.write(r.stdout)
                for vname, ts in times.items():
                    row[f"{vname}_ms"] = statistics.median(ts)
                    row[f"{vname}_all_ms"] = ts
                cells = []
                for vname, _, _ in args.variant:
                    ms = row.get(f"{vname}_ms")
                    ratio = f" ({ms / row[f'{first}_ms']:.3f})" if ms and row.get(f"{first}_ms") else ""
                    cells.append(f"{vname} {ms:.3f}{ratio}" if ms else f"{vname} {row.get(f'{vname}_error')}")
                print(f"{name} b{batch}: " + ", ".join(cells), flush=True)
                rows.append(row)
                os.makedirs(args.out, exist_ok=True)
                with open(os.path.join(args.out, "ab.json"), "w") as f:
                    json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
