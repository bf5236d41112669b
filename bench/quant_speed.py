#!/usr/bin/env python3
"""Issue #14's speed criteria, measured side by side in one run on the GPU machine:

  - INT8 ResNet-50 at batch 32: kiln `--fp16 --int8` time <= 0.6x kiln `--fp16` time;
  - FP8 BERT-base at seq 128, batch 32: kiln `--fp16 --fp8` time <= 0.7x kiln `--fp16` time.

Both plans are built from the same export at one shape and timed with `kiln bench` (GPU compute per run,
median; bench_util.kiln_build_bench). The INT8 build calibrates on real photographs from scikit-image
(astronaut, coffee, chelsea, ..., resized to 224, ImageNet normalisation); FP8 takes its activation scales
from random token ids. Random weights (torchvision / HF configs, seeded), nothing is downloaded. Besides the
times, each quantized plan's output is compared with the FP16 plan's on one input (rel L2), so a fast but
broken plan shows.

  bench/quant_speed.py --kiln gpu-bin/kiln [--batch 32] [--models resnet50,bert_base] [--out DIR]
                       [--quant-flags "--fp8-model-rel-l2 0"]   (more flags for the quantized builds)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_util import error_line, kiln_build_bench, kiln_profile, shapes_arg  # noqa: E402
from suite import export, model_and_inputs  # noqa: E402

# model -> (quantized variant's flags, target time ratio quantized / fp16)
CASES = {"resnet50": ("int8", 0.6), "bert_base": ("fp8", 0.7)}
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def image_calibration(dir_path, name, size=224):
    """One .npy sample per skimage photograph: [1, 3, size, size] float32, ImageNet-normalised."""
    from skimage import data, transform
    os.makedirs(dir_path, exist_ok=True)
    count = 0
    for key in ("astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry", "retina", "hubble_deep_field"):
        try:
            img = getattr(data, key)()
        except Exception:  # noqa: BLE001 - some samples need pooch downloads; skip those
            continue
        if img.ndim != 3 or img.shape[2] < 3:
            continue
        x = transform.resize(img[..., :3], (size, size), anti_aliasing=True)
        x = ((x - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        os.makedirs(os.path.join(dir_path, key), exist_ok=True)
        np.save(os.path.join(dir_path, key, name + ".npy"), x)
        count += 1
    if count == 0:
        raise SystemExit("no skimage sample image could be read")
    return count


def kiln_output(kiln, plan, feeds, tmp):
    """The plan's first output for `feeds` ({name: array}) via `kiln run`."""
    args = [kiln, "run", plan, "--backend", "cuda"]
    for n, a in feeds.items():
        p = os.path.join(tmp, f"in_{n}.npy")
        np.save(p, a)
        args += ["--input", f"{n}={p}"]
    out_dir = os.path.join(tmp, "out_" + os.path.basename(plan))
    subprocess.run(args + ["--output-dir", out_dir], check=True, capture_output=True, text=True, timeout=600)
    files = sorted(os.listdir(out_dir))
    return np.load(os.path.join(out_dir, files[0])).astype(np.float64)


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", default=",".join(CASES))
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--profile", action="store_true", help="also write kiln's time per fused kernel to --out")
    ap.add_argument("--quant-flags", default="",
                    help="more kiln build flags for the quantized plans (e.g. \"--fp8-model-rel-l2 0\": no "
                         "whole-model fallback check, a faster build)")
    ap.add_argument("--keep", help="copy the ONNX model, the plans and a shapes file (NAME.shapes) here, e.g. for "
                                   "kiln soak")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    rows = []
    for name in args.models.split(","):
        kind, target = CASES[name]
        row = {"model": name, "batch": args.batch, "variant": kind, "target": target}
        if args.quant_flags:
            row["quant_flags"] = args.quant_flags
        with tempfile.TemporaryDirectory() as tmp:
            model, inputs = model_and_inputs(name)
            onnx_path = os.path.join(tmp, name + ".onnx")
            export(model, inputs, onnx_path)
            tensors = {n: make(args.batch) for n, make in inputs.items()}
            shapes = shapes_arg(list(tensors), list(tensors.values()))
            extra = ["--" + kind, *args.quant_flags.split()]
            if kind == "int8":
                row["calib_images"] = image_calibration(os.path.join(tmp, "calib"), list(inputs)[0])
                extra += ["--calib", os.path.join(tmp, "calib")]
            plans = {}
            for key, flags in (("fp16", []), (kind, extra)):
                plan = os.path.join(tmp, f"{key}.plan")
                try:
                    row[f"{key}_ms"], row[f"{key}_build_s"] = kiln_build_bench(args.kiln, onnx_path, shapes, plan, flags)
                    plans[key] = plan
                    if args.profile:
                        kiln_profile(args.kiln, plan, shapes, os.path.join(args.out, f"profile_{name}_{key}.txt"))
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                    row[f"{key}_error"] = error_line(e)
                print(f"{name} b{args.batch} {key}: {row.get(f'{key}_ms', row.get(f'{key}_error'))}", flush=True)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                for src in [onnx_path, *plans.values()]:
                    shutil.copy(src, os.path.join(args.keep, f"{name}_{os.path.basename(src)}"))
                with open(os.path.join(args.keep, f"{name}.shapes"), "w") as f:
                    f.write(shapes + "\n")
            if len(plans) == 2:
                row["ratio"] = row[f"{kind}_ms"] / row["fp16_ms"]
                feeds = {n: t.numpy() for n, t in tensors.items()}
                try:
                    ref = kiln_output(args.kiln, plans["fp16"], feeds, tmp)
                    row["rel_l2_vs_fp16"] = rel_l2(kiln_output(args.kiln, plans[kind], feeds, tmp), ref)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                    row["compare_error"] = error_line(e)
        rows.append(row)
    lines = [f"# kiln quantized vs FP16 ({device}, torch {torch.__version__})", "",
             "| model | batch | fp16 ms | quantized | quantized ms | ratio | target | met | rel L2 vs fp16 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r.get("ratio")
        lines.append(f"| {r['model']} | {r['batch']} | {r.get('fp16_ms', r.get('fp16_error', '-'))} | {r['variant']} | "
                     f"{r.get(r['variant'] + '_ms', r.get(r['variant'] + '_error', '-'))} | "
                     f"{f'{ratio:.3f}' if ratio else '-'} | <= {r['target']} | "
                     f"{('yes' if ratio <= r['target'] else 'no') if ratio else '-'} | "
                     f"{r.get('rel_l2_vs_fp16', r.get('compare_error', '-'))} |")
    text = "\n".join(lines)
    print("\n" + text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "quant_speed.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "quant_speed.json"), "w") as f:
        json.dump({"device": device, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
