#!/usr/bin/env python3
"""kiln FP16 vs PyTorch on the GPU machine, side by side in one run.

For each model and batch: kiln FP16 GPU-compute latency (`kiln bench --json`,
CUDA-graph replay, median), with and without generated pointwise kernels
(--no-pointwise-fusion), next to torch eager FP16, torch.compile default,
mode="reduce-overhead" (CUDA graphs) and optionally mode="max-autotune", all
timed with CUDA events on device-resident inputs (bench_util.py: a loop of 50
calls between two events, best of 3, after warm-up). The ratio that counts is best torch / kiln (> 1: kiln faster), with
its geometric mean. Prints a markdown table last; full numbers go to
$OUT/bench.json when OUT is set.

  bench/vs_torch.py --kiln build-gpu/kiln [--models resnet50,vit_b_16] [--batches 1,32] [--max-autotune]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "models"))
sys.path.insert(0, HERE)
import export_zoo  # noqa: E402
from bench_util import kiln_build_bench, shapes_arg, torch_loop_ms  # noqa: E402

export_zoo.CALIBRATE_BN = True  # realistic activation scales for FP16


def example_inputs(name, batch, device, dtype):
    if name in ("bert_encoder", "hf_bert"):
        ids = torch.randint(0, 1000, (batch, 128), device=device)
        mask = torch.ones(batch, 128, dtype=torch.int64, device=device)
        return (ids, mask) if name == "bert_encoder" else (ids, mask, torch.zeros_like(ids))
    ch = 1 if name == "super_resolution" else 3
    return (torch.randn(batch, ch, 224, 224, device=device, dtype=dtype),)


def kiln_latency_ms(kiln, onnx_path, name, batch, tmp, extra=()):
    import onnx
    m = onnx.load(onnx_path, load_external_data=False)
    shapes = shapes_arg([i.name for i in m.graph.input], example_inputs(name, batch, "cpu", torch.float32))
    return kiln_build_bench(kiln, onnx_path, shapes, os.path.join(tmp, f"{name}_b{batch}.plan"), extra, 100)


def torch_latency_ms(fn, inputs):
    return torch_loop_ms(fn, inputs)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", default="resnet50,mobilenet_v2,efficientnet_b0,vit_b_16,super_resolution,bert_encoder,"
                                        "bert_encoder_opset13")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--max-autotune", action="store_true")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (quick smoke run)")
    args = ap.parse_args()
    dev = torch.cuda.get_device_name(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            torch.manual_seed(0)
            model, example, in_names, out_names, axes = export_zoo.build(name, 224)
            model = model.eval()
            onnx_path = os.path.join(tmp, name + ".onnx")
            torch.onnx.export(model, example, onnx_path, opset_version=export_zoo.OPSET_OF.get(name, 17),
                              input_names=in_names,
                              output_names=out_names, dynamic_axes=axes, dynamo=False)
            gpu = model.cuda().half()
            for batch in [int(b) for b in args.batches.split(",")]:
                inputs = example_inputs(name, batch, "cuda", torch.float16)
                row = {"model": name, "batch": batch}
                try:
                    row["kiln_ms"], row["kiln_build_s"] = kiln_latency_ms(args.kiln, onnx_path, name, batch, tmp)
                    row["kiln_nofuse_ms"], _ = kiln_latency_ms(args.kiln, onnx_path, name, batch, tmp,
                                                               ["--no-pointwise-fusion"])
                except subprocess.CalledProcessError as e:
                    row["kiln_error"] = (e.stderr or e.stdout or "").strip().splitlines()[-1:]
                row["eager_ms"] = torch_latency_ms(gpu, inputs)
                if not args.no_compile:
                    torch._dynamo.reset()
                    row["compile_ms"] = torch_latency_ms(torch.compile(gpu), inputs)
                    torch._dynamo.reset()
                    row["reduce_overhead_ms"] = torch_latency_ms(torch.compile(gpu, mode="reduce-overhead"), inputs)
                    if args.max_autotune:
                        torch._dynamo.reset()
                        row["autotune_ms"] = torch_latency_ms(torch.compile(gpu, mode="max-autotune"), inputs)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "bench.json"), "w") as f:
            json.dump({"device": dev, "rows": rows}, f, indent=2)
    print(f"\n### kiln FP16 vs PyTorch FP16 on {dev} (GPU time per batch, median ms)\n")
    torch_modes = ["eager_ms", "compile_ms", "reduce_overhead_ms", "autotune_ms"]
    print("| model | batch | kiln | kiln unfused | eager | compile | reduce-overhead | max-autotune | best torch/kiln |")
    print("|---|---|---|---|---|---|---|---|---|")
    logs = []
    for r in rows:
        k = r.get("kiln_ms")
        def cell(key):
            return f"{r[key]:.3f}" if key in r else "-"
        best = min((r[m] for m in torch_modes if m in r), default=None)
        ratio = best / k if k and best else None
        if ratio:
            logs.append(math.log(ratio))
        kcell = f"{k:.3f}" if k else f"error: {r.get('kiln_error')}"
        print(f"| {r['model']} | {r['batch']} | {kcell} | {cell('kiln_nofuse_ms')} | {cell('eager_ms')} | "
              f"{cell('compile_ms')} | {cell('reduce_overhead_ms')} | {cell('autotune_ms')} | "
              f"{f'{ratio:.2f}x' if ratio else '-'} |")
    if logs:
        print(f"\ngeometric mean of best torch / kiln: {math.exp(sum(logs) / len(logs)):.2f}x over {len(logs)} rows")


if __name__ == "__main__":
    main()
