#!/usr/bin/env python3
"""Where kiln's GPU time goes, per model: export (TorchScript, opset 17,
calibrated BatchNorm), `kiln build --fp16` at the given batch, then
`kiln bench --dumpProfile` (per-op totals and the slowest nodes of one run
replayed as a CUDA graph with an event around each kernel). A diagnostic for the fusion work, not a test.

  bench/profile_zoo.py --kiln gpu-bin/kiln [--models vit_b_16,resnet50] [--batch 32]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "models"))
import export_zoo  # noqa: E402
import vs_torch  # noqa: E402

export_zoo.CALIBRATE_BN = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", default="resnet50,mobilenet_v2,efficientnet_b0,vit_b_16,super_resolution,bert_encoder")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--keep", default="", help="folder to keep the exported models in")
    args = ap.parse_args()
    tmp = args.keep or tempfile.mkdtemp()
    os.makedirs(tmp, exist_ok=True)
    for name in args.models.split(","):
        torch.manual_seed(0)
        model, example, in_names, out_names, axes = export_zoo.build(name, 224)
        path = os.path.join(tmp, name + ".onnx")
        if not os.path.exists(path):
            torch.onnx.export(model.eval(), example, path, opset_version=17, input_names=in_names,
                              output_names=out_names, dynamic_axes=axes, dynamo=False)
        inputs = vs_torch.example_inputs(name, args.batch, "cpu", torch.float32)
        shapes = ",".join(f"{n}:" + "x".join(str(d) for d in t.shape) for n, t in zip(in_names, inputs))
        plan = os.path.join(tmp, f"{name}_b{args.batch}.plan")
        b = subprocess.run([args.kiln, "build", path, "--fp16", "--saveEngine", plan, "--optShapes", shapes],
                           capture_output=True, text=True)
        print(f"===== {name} batch {args.batch}: build rc {b.returncode}", flush=True)
        if b.returncode:
            print(b.stdout[-2000:], b.stderr[-2000:])
            continue
        r = subprocess.run([args.kiln, "bench", plan, "--shapes", shapes, "--iterations", "50", "--dumpProfile"],
                           capture_output=True, text=True)
        print(r.stdout[-6000:], r.stderr[-2000:], flush=True)


if __name__ == "__main__":
    main()
