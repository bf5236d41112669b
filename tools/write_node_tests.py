#!/usr/bin/env python3
"""Write onnx's backend node tests to DIR in the classic on-disk layout.

Recent onnx releases build the node test cases in memory
(onnx.backend.test.loader.load_model_tests) instead of shipping the
data folder; this writes each case as DIR/test_x/model.onnx plus
DIR/test_x/test_data_set_N/{input,output}_K.pb so `kiln conformance DIR`
reads them the way onnx always shipped them.
"""
import argparse
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper


def to_proto(value, name):
    if isinstance(value, onnx.TensorProto):
        return value
    if isinstance(value, (list, dict)) or value is None:
        # Sequences, maps and optionals: kept as onnx's own containers.
        return None
    arr = np.asarray(value)
    return numpy_helper.from_array(arr, name)


def write_value(path, value, name, type_proto):
    proto = to_proto(value, name)
    if proto is None:
        from onnx import helper
        try:
            proto = numpy_helper.from_optional(value, name=name) if type_proto is not None and \
                type_proto.HasField("optional_type") else numpy_helper.from_list(value, name=name)
        except Exception:  # noqa: BLE001 - unsupported container: skip the case's value
            return False
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--filter", default="", help="only tests whose name contains this")
    ap.add_argument("--if-stale", action="store_true",
                    help="do nothing when DIR already holds a complete set from this onnx version; otherwise "
                         "write the whole set to a temporary folder and move it into place (the ctest fixture)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    # onnx computes the expected outputs with NumPy when it writes them, and some depend on its
    # version (NumPy 2 runs complex64 FFTs in float32; out-of-range float -> int4 casts differ).
    stamp = f"onnx {onnx.__version__} numpy {np.__version__}\n"
    stamp_path = os.path.join(args.dir, ".written")
    if args.if_stale:
        if args.filter:
            raise SystemExit("--if-stale writes the whole set: no --filter")
        if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
            print(f"{args.dir}: node tests of onnx {onnx.__version__} (numpy {np.__version__}) already written")
            return 0
        final, args.dir = args.dir, args.dir.rstrip("/") + ".tmp"
        shutil.rmtree(args.dir, ignore_errors=True)
    written = write_all(args)
    if args.if_stale:
        with open(os.path.join(args.dir, ".written"), "w") as f:
            f.write(stamp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(args.dir, final)
        args.dir = final
    print(f"wrote {written} node tests to {args.dir}")
    return 0


def write_all(args):
    from onnx.backend.test.loader import load_model_tests

    tests = load_model_tests(kind="node")
    written = 0
    for t in tests:
        if args.filter and args.filter not in t.name:
            continue
        out = os.path.join(args.dir, t.name)
        os.makedirs(out, exist_ok=True)
        model = t.model
        with open(os.path.join(out, "model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        ins = [i for i in model.graph.input]
        outs = [o for o in model.graph.output]
        for k, (inputs, outputs) in enumerate(t.data_sets or []):
            ds = os.path.join(out, f"test_data_set_{k}")
            os.makedirs(ds, exist_ok=True)
            for i, v in enumerate(inputs):
                vi = ins[i] if i < len(ins) else None
                write_value(os.path.join(ds, f"input_{i}.pb"), v, vi.name if vi else "",
                            vi.type if vi else None)
            for i, v in enumerate(outputs):
                vi = outs[i] if i < len(outs) else None
                write_value(os.path.join(ds, f"output_{i}.pb"), v, vi.name if vi else "",
                            vi.type if vi else None)
        written += 1
    return written


if __name__ == "__main__":
    sys.exit(main())
