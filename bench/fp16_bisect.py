#!/usr/bin/env python3
"""Finds where an FP16 kiln build of a torchvision conv net drifts from
onnxruntime FP32: exports the model's `features` prefixes (1..N blocks), builds
each with `kiln build --fp16`, runs one random input and prints the relative L2
error per prefix. A diagnostic for the GPU machine, not a test.

  bench/fp16_bisect.py --kiln gpu-bin/kiln --model mobilenet_v2
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort
import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    torch.manual_seed(0)
    full = getattr(torchvision.models, args.model)().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(1, len(full.features) + 1):
            m = torch.nn.Sequential(*full.features[:k]).eval()
            path = os.path.join(tmp, f"p{k}.onnx")
            torch.onnx.export(m, (torch.from_numpy(x),), path, opset_version=17, input_names=["input"],
                              output_names=["output"], dynamo=False)
            ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
            np.save(os.path.join(tmp, "x.npy"), x)
            out = os.path.join(tmp, "out")
            for prec in ["fp32", "fp16"]:
                cmd = [args.kiln, "run", path, "--backend", "cuda", "--input", f"input={tmp}/x.npy", "--output-dir", out]
                if prec == "fp16":
                    cmd.append("--fp16")
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode:
                    print(f"prefix {k} {prec}: kiln failed: {r.stderr.strip()}")
                    continue
                got = np.load(os.path.join(out, "output.npy"))
                rel = np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-12)
                print(f"prefix {k:2d} ({type(full.features[k-1]).__name__}) {prec}: rel L2 {rel:.2e}  "
                      f"max|ref| {np.abs(ref).max():.3g}", flush=True)


if __name__ == "__main__":
    main()
