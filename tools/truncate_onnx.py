#!/usr/bin/env python3
"""Writes prefixes of an ONNX model that end at chosen nodes, for bisecting a
finding by layer (which part of a network first misbehaves).

  truncate_onnx.py MODEL.onnx OUT_DIR --op Relu --every 4
      one model per 4th Relu (in graph order), named OUT_DIR/<stem>_upto<k>.onnx,
      whose only output is that node's first output.
"""
import argparse
import os

import onnx
import onnx.utils


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--op", default="Relu", help="op type whose outputs end the prefixes")
    ap.add_argument("--every", type=int, default=4, help="keep every k-th such node (the last one always)")
    args = ap.parse_args()
    model = onnx.load(args.model)
    ends = [n for n in model.graph.node if n.op_type == args.op]
    if not ends:
        raise SystemExit(f"no {args.op} node in {args.model}")
    picked = sorted(set(list(range(0, len(ends), args.every)) + [len(ends) - 1]))
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.model))[0]
    for k in picked:
        path = os.path.join(args.out_dir, f"{stem}_upto{k}.onnx")
        onnx.utils.extract_model(args.model, path, inputs, [ends[k].output[0]], check_model=False)
        print(path, ends[k].name)


if __name__ == "__main__":
    main()
