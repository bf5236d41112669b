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

`kiln compare` uses it as its onnxruntime reference (no kiln run, no comparison):
  compare_intermediates.py MODEL --input x=x.npy --names-file NAMES --reference-dir DIR
writes the values named in NAMES (one a line) as DIR/<line index>.npy and lists those
onnxruntime cannot expose in DIR/skipped.tsv (name, tab, why). Exit code 3: no onnxruntime.
"""
import argparse
import importlib
import os
import subprocess
import sys
import tempfile


def require(module):
    """`module` imported, or exit code 3 with a message that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        print(f"{module} is not installed for {sys.executable} ({e}); "
              f"install it with: {sys.executable} -m pip install {module}", file=sys.stderr)
        sys.exit(3)


np = require("numpy")
onnx = require("onnx")

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


def exposable(model, names):
    """(names onnxruntime can return as outputs, {name: why not} for the others)."""
    produced = {o for n in model.graph.node for o in n.output if o}
    inferred = onnx.shape_inference.infer_shapes(model)
    typed = {v.name for v in list(inferred.graph.value_info) + list(inferred.graph.output)
             if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type}
    ok, skipped = [], {}
    for name in names:
        if name not in produced:
            skipped[name] = "not produced by a node of the main graph"
        elif name not in typed:
            skipped[name] = "onnx shape inference gives it no tensor type"
        else:
            ok.append(name)
    return ok, skipped


def run_onnxruntime(path, names, feeds):
    """Values `names` of the model saved at `path`, from onnxruntime's CPU provider."""
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]).run(names, feeds)


def write_reference(model, names, feeds, out_dir):
    """`kiln compare`'s reference run: values as OUT_DIR/<index in names>.npy, skipped.tsv."""
    require("onnxruntime")
    ok, skipped = exposable(model, names)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(with_outputs(model, ok), path, save_as_external_data=model.ByteSize() > 1 << 30)
        values = dict(zip(ok, run_onnxruntime(path, ok, feeds)))
    for i, name in enumerate(names):
        if name in values:
            np.save(os.path.join(out_dir, f"{i}.npy"), values[name])
    with open(os.path.join(out_dir, "skipped.tsv"), "w") as f:
        for name, why in skipped.items():
            f.write(f"{name}\t{why}\n")


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
    ap.add_argument("--names-file", help="with --reference-dir: the values to write, one a line")
    ap.add_argument("--reference-dir", help="only run onnxruntime and write the values (see above)")
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", os.path.join(HERE, "..", "build", "kiln")))
    args = ap.parse_args()
    model = onnx.load(args.model)
    feeds = {k: np.load(v) for k, v in (s.split("=", 1) for s in args.input)}
    if args.reference_dir:
        with open(args.names_file) as f:
            write_reference(model, [line.rstrip("\n") for line in f if line.rstrip("\n")], feeds,
                            args.reference_dir)
        return 0
    names = chosen_values(model.graph, args.values, set(args.ops))
    if not names:
        ap.error("choose values with --values or --ops")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(with_outputs(model, names), path, save_as_external_data=model.ByteSize() > 1 << 30)
        cmd = [args.kiln, "run", path, "--backend", "cpu", "--output-dir", os.path.join(tmp, "out")]
        for s in args.input:
            cmd += ["--input", s]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"kiln failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        expected = run_onnxruntime(path, names, feeds)
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
