#!/usr/bin/env python3
"""kiln.export on a torchvision ResNet, compared with torch.

Exports the model with a dynamic batch (traced at batch 2, profile 1..max),
checks, simplifies, builds (FP16 on CUDA) and verifies it against torch in one
call, then runs a batch neither the export nor the verification saw and
compares the logits and the top-1 classes with torch's, and times both.

    python examples/export_resnet.py                          # resnet50 on CUDA (FP16)
    python examples/export_resnet.py --backend cpu --model resnet18 --size 64 --batch 2
    python examples/export_resnet.py --weights DEFAULT        # torchvision's trained weights (downloads them)
"""
import argparse
import sys
import time

import torch
import torchvision

import kiln


def timed(fn, x, device, repeat):
    with torch.no_grad():
        fn(x)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeat):
            y = fn(x)
        if device == "cuda":
            torch.cuda.synchronize()
    return y, (time.perf_counter() - t0) / repeat


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50", help="a torchvision classification model (default resnet50)")
    p.add_argument("--backend", choices=["cuda", "cpu"], default="cuda", help="kiln backend (default cuda)")
    p.add_argument("--weights", default=None, help="torchvision weights (e.g. DEFAULT; default: random init)")
    p.add_argument("--size", type=int, default=224, help="image side (default 224)")
    p.add_argument("--batch", type=int, default=8, help="the comparison batch (default 8)")
    p.add_argument("--max-batch", type=int, default=32, help="the profile's largest batch (default 32)")
    p.add_argument("--fp32", action="store_true", help="build in FP32 on CUDA (default FP16)")
    p.add_argument("--repeat", type=int, default=10, help="timed runs (default 10)")
    p.add_argument("--save-dir", default=None, help="save the ONNX model and the plan there")
    args = p.parse_args()
    if args.backend == "cuda" and not (kiln.has_cuda and torch.cuda.is_available()):
        sys.exit("needs a CUDA build of kiln and a GPU: run with --backend cpu")
    device = "cuda" if args.backend == "cuda" else "cpu"

    torch.manual_seed(0)
    factory = getattr(torchvision.models, args.model)
    model = (factory(weights=args.weights) if args.weights else factory()).eval().to(device)
    example = torch.randn(1, 3, args.size, args.size, device=device)

    t0 = time.perf_counter()
    engine = kiln.export(model, example, backend=args.backend, fp16=not args.fp32, max_batch=args.max_batch,
                         save_dir=args.save_dir, name=args.model)
    r = engine.report
    print(f"{args.model}: {r['exporter']} export, simplified {r['simplify']['nodes_before']} -> "
          f"{r['simplify']['nodes_after']} nodes, built for {args.backend}{' fp16' if r['fp16'] else ''} in "
          f"{time.perf_counter() - t0:.1f} s (profile {r['profiles']})")
    print("verified against torch at batch 1 and 2: max error " +
          ", ".join(f"{k} {v:.2e}" for k, v in engine.max_error.items()))

    x = torch.randn(args.batch, 3, args.size, args.size, device=device, generator=None)
    ref, t_torch = timed(model, x, device, args.repeat)
    got, t_kiln = timed(engine, x, device, args.repeat)
    err = (got.float() - ref).abs().max().item()
    agree = (got.float().argmax(1) == ref.argmax(1)).float().mean().item()
    print(f"batch {args.batch}: max |kiln - torch| {err:.2e} (logits up to {ref.abs().max().item():.2f}), "
          f"top-1 agreement {100 * agree:.0f}%")
    print(f"time per batch: torch {1e3 * t_torch:.2f} ms, kiln {1e3 * t_kiln:.2f} ms")
    if args.save_dir:
        print(f"saved {engine.onnx_path} and {engine.plan_path}")


if __name__ == "__main__":
    main()
