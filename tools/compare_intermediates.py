#!/usr/bin/env python3
"""Compare intermediate values of a model between kiln's CPU reference and onnxruntime.

Adds the chosen values as graph outputs, runs `kiln run --backend cpu` and
onnxruntime on the same inputs, and prints per value, in graph order: shape,
max abs difference and rel L2 (floats) or the number of differing elements
(integers and bools). The first value over --rel-l2 is marked: bisect by
choosing values before and after it.

Usage:
  compare_intermediates.py MODEL --input image=img.npy --ops TopK RoiAlign Cast
  compare_intermediates.py MODEL --input image=img.npy --values /rpn/TopK_output_0 boxes
Values are top-level graph values (inside If/Loop bodies they are not reachable).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))


def chosen_values(graph, values, ops):
    """`values` and the outputs of nodes of the op types `ops`, in graph order."""
    order = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    names = list(dict.fromkeys(values))
    names += [o for n in graph.node if n.op_type in ops for o in n.output if o and o not in names]
    return sorted(names, key=lambda v: order.get(v, -1))


def with_outputs(model, names):
    """A copy of `model` whose outputs are `names`, typed by onnx shape inference where it can."""
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output) +
             list(inferred.graph.input)}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.output[:]
    for name in names:
        elem = known[name].type.tensor_type.elem_type if name in known else onnx.TensorProto.FLOAT
        out.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
    return out


def difference(ref, got):
    """One line comparing `got` (kiln) with `ref` (onnxruntime), and the rel L2 (inf for a mismatch)."""
    if ref.shape != got.shape:
        return f"shape {got.shape}, onnxruntime {ref.shape}", np.inf
    if not np.issubdtype(ref.dtype, np.floating):
        bad = int((ref != got).sum())
        return f"{ref.dtype}{list(ref.shape)}: {bad} of {ref.size} differ", (np.inf if bad else 0.0)
    r, g = ref.astype(np.float64), got.astype(np.float64)
    d = np.abs(g - r)
    norm = np.linalg.norm(r)
    rel = float(np.linalg.norm(d) / norm) if norm > 0 else (0.0 if not d.any() else np.inf)
    return (f"{ref.dtype}{list(ref.shape)}: max abs {d.max(initial=0):.3g}, rel L2 {rel:.3g}, "
            f"RMS {np.sqrt(np.mean(r * r)) if r.size else 0:.3g}"), rel


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--input", action="append", default=[], help="NAME=FILE.npy (repeat)")
    ap.add_argument("--values", nargs="*", default=[], help="value names to compare")
    ap.add_argument("--ops", nargs="*", default=[], help="compare the outputs of every node of these op types")
    ap.add_argument("--rel-l2", type=float, default=1e-4, help="mark values whose rel L2 is over this")
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", os.path.join(HERE, "..", "build", "kiln")))
    args = ap.parse_args()
    model = onnx.load(args.model)
    names = chosen_values(model.graph, args.values, set(args.ops))
    if not names:
        ap.error("choose values with --values or --ops")
    feeds = {k: np.load(v) for k, v in (s.split("=", 1) for s in args.input)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(with_outputs(model, names), path, save_as_external_data=model.ByteSize() > 1 << 30)
        cmd = [args.kiln, "run", path, "--backend", "cpu", "--output-dir", os.path.join(tmp, "out")]
        for s in args.input:
            cmd += ["--input", s]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"kiln failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        expected = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]).run(names, feeds)
        first = None
        for name, ref in zip(names, expected):
            got = np.load(os.path.join(tmp, "out", name.replace("/", "_").replace(":", "_") + ".npy"))
            line, rel = difference(ref, got)
            mark = ""
            if rel > args.rel_l2 and first is None:
                first, mark = name, "   <== first over --rel-l2"
            print(f"{name}: {line}{mark}")
    print(f"first value over rel L2 {args.rel_l2}: {first}" if first else f"all within rel L2 {args.rel_l2}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
