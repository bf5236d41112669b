#!/usr/bin/env python3
"""Emulates kiln's FP16 build in onnxruntime (CPU, FP32 compute) to find where
a model's FP16 error comes from. A diagnostic, not a test; no GPU needed.

kiln --fp16 stores weights and activations in float16 and computes in float32
(cuDNN/cuBLASLt accumulate in FP32; fused conv+bias+residual+activation round
once, at the fused op's output). Here (the emulation is tests/fp16_ideal.py's,
the oracle of the FP16 tests): float32 weights are rounded to float16 and a
Cast(float16)→Cast(float) pair is put where kiln stores a float16 tensor: the
float graph inputs, and each float node output except a Conv/Add output whose
only user kiln fuses into it (Relu/Clip/Sigmoid after Conv, the residual Add
after Conv, Relu after that Add) and outputs of ops that only move values.
Prints the relative L2 error of the outputs vs onnxruntime FP32 on the
original model for:
  - weights only, activations only, both (the full emulation);
  - each kind of stored tensor alone (by the op that produces it);
  - the full emulation with one kind kept in FP32 (what a precision policy buys);
  - the gain: relative 1e-3 Gaussian noise put on one tensor, relative error out.

  kiln simplify resnet50.onnx /tmp/r50_s.onnx     # kiln's folded graph
  bench/fp16_emulate.py /tmp/r50_s.onnx --ref resnet50.onnx --gain

Measured (export_zoo.py --size 224 --calibrate-bn, batch 8): the emulation gives
resnet50 2.55e-2 and mobilenet_v2 1.38e-2, what kiln --fp16 measures on the
H200 (2.50e-2, 1.22e-2): these random-weight nets amplify a relative 1e-3
perturbation of their input to 3.2e-2 / 1.9e-2 at the logits.
"""
import argparse
import collections
import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from fp16_ideal import rel_l2, session, store_points, with_rounding  # noqa: E402  (the emulation itself)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the model to emulate (kiln simplify's output: BatchNorm folded)")
    ap.add_argument("--ref", help="the FP32 reference model (default: MODEL)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gain", action="store_true", help="also measure noise gain per tensor kind and depth")
    args = ap.parse_args()
    model = onnx.load(args.model)
    ref_model = onnx.load(args.ref or args.model)
    inp = model.graph.input[0].name
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    ref = session(ref_model, args.threads).run(None, {inp: x})[0]
    ref_b = ref - ref.mean(axis=0, keepdims=True)
    print(f"logits: |ref| {np.linalg.norm(ref):.3g}, input-dependent part (minus batch mean) "
          f"{np.linalg.norm(ref_b):.3g}; std over classes per image {ref.std(axis=1).mean():.3g}")

    def run(m):
        return session(m, args.threads).run(None, {inp: x})[0]

    def report(label, m):
        y = run(m)
        print(f"  {label:42s} rel L2 {rel_l2(y, ref):.3e}   top-1 agree {np.mean(y.argmax(1) == ref.argmax(1)):.3f}",
              flush=True)
        return y

    points = store_points(model)
    kinds = collections.Counter(k for _, k in points)
    print("stored float16 activations:", dict(kinds))
    names = [p for p, _ in points]
    report("fp32 (this model vs ref)", model)
    report("weights only", with_rounding(model, [], True))
    report("activations only", with_rounding(model, names, False))
    full = report("weights + activations (kiln --fp16)", with_rounding(model, names, True))
    dep = np.linalg.norm((full - full.mean(0)) - ref_b) / np.linalg.norm(ref_b)
    print(f"  full emulation, input-dependent part (minus batch mean): rel L2 {dep:.3e}")
    print("one kind of activation alone (weights FP32):")
    for k in kinds:
        report(k, with_rounding(model, [p for p, kk in points if kk == k], False))
    print("full emulation with one kind kept in FP32:")
    for k in kinds:
        report("keep " + k, with_rounding(model, [p for p, kk in points if kk != k], True))
    print("full emulation, FP32 after stored tensor i (depth):")
    n = len(points)
    for frac in (0.25, 0.5, 0.75, 0.9):
        cut = int(n * frac)
        report(f"round only the first {cut}/{n}", with_rounding(model, names[:cut], True))
    if args.gain:
        print("gain: relative 1e-3 noise on one tensor → rel L2 at the output (FP32 otherwise)")
        for idx in sorted(set([0, 1, n // 8, n // 4, n // 2, 3 * n // 4, n - 3, n - 2, n - 1])):
            report(f"noise on #{idx} {points[idx][1]} ({points[idx][0][:20]})",
                   with_rounding(model, [names[idx]], False, noise=1e-3))
        report("noise on every stored tensor", with_rounding(model, names, False, noise=1e-3))


if __name__ == "__main__":
    main()
