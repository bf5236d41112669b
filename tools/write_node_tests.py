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
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
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
    print(f"wrote {written} node tests to {args.dir}")


if __name__ == "__main__":
    sys.exit(main())
