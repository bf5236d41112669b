#!/usr/bin/env python3
"""Write the seed corpora of kiln's libFuzzer targets (fuzz/) to OUT/<target>/.

  onnx_model  every node test's model.onnx, plus the zoo models with their large
              initializers turned into graph inputs (the structure and the small
              shape constants stay; the seeds stay small)
  plan        a few of those models as plans (kiln inspect MODEL --plan: kiln IR in the plan container)
  npy         numpy's .npy files of every dtype kiln reads, versions 1-3, both
              byte orders, Fortran order, scalars, empty and rejected dtypes
  image       the ImageDecoder node tests' encoded images plus small BMP, PNM,
              PNG, TIFF and JPEG files written with Pillow

and OUT/dicts/{onnx_model,plan}.dict: libFuzzer dictionaries of every op name in
the op table (src/ops/defs/*.def) and common attribute names, so mutations turn
one op into another (how the plan fuzzer reached LinearAttention's overflow).

Usage: fuzz_seeds.py OUT --zoo ZOO_DIR --nodetests NODE_TESTS_DIR --kiln KILN_BINARY
"""
import argparse
import io
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

KEEP_ELEMENTS = 64  # zoo initializers up to this size keep their data (shape constants)


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def strip_weights(model):
    """Large initializers become graph inputs of the same type: the graph keeps
    its structure and shapes, the file loses its weights."""
    g = model.graph
    keep = []
    for init in g.initializer:
        n = int(np.prod(init.dims)) if len(init.dims) else 1
        if n <= KEEP_ELEMENTS:
            keep.append(init)
            continue
        g.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    del g.initializer[:]
    g.initializer.extend(keep)
    return model


def onnx_seeds(out, zoo, nodetests):
    models = []
    for case in sorted(os.listdir(nodetests)):
        path = os.path.join(nodetests, case, "model.onnx")
        if os.path.isfile(path) and os.path.getsize(path) <= 64 * 1024:
            with open(path, "rb") as f:
                data = f.read()
            write(os.path.join(out, "onnx_model"), case + ".onnx", data)
            models.append((case, data))
    zoo_models = []
    for name in sorted(os.listdir(zoo)):
        if name.endswith(".onnx"):
            data = strip_weights(onnx.load(os.path.join(zoo, name))).SerializeToString()
            write(os.path.join(out, "onnx_model"), "zoo_" + name, data)
            zoo_models.append((name, data))
    return models, zoo_models


def plan_seeds(out, models, zoo_models, kiln):
    """Plans of some of the models: kiln's IR in the plan container, written by
    `kiln inspect MODEL --plan` (graph and weights sections)."""
    picked = models[:: max(1, len(models) // 40)] + zoo_models[:2]
    folder = os.path.join(out, "plan")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in picked:
            src = os.path.join(tmp, "model.onnx")
            with open(src, "wb") as f:
                f.write(data)
            subprocess.run([kiln, "inspect", src, "--plan", os.path.join(folder, name + ".plan")],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def npy_seeds(out):
    folder = os.path.join(out, "npy")
    arrays = {
        "f4": np.arange(6, dtype="<f4").reshape(2, 3), "f2": np.arange(4, dtype="<f2"),
        "f8_be": np.arange(3, dtype=">f8"), "i1": np.array([-1, 2], np.int8),
        "i2": np.arange(4, dtype="<i2"), "i4_be": np.arange(5, dtype=">i4"),
        "i8": np.arange(2, dtype="<i8").reshape(1, 2, 1), "u1": np.arange(7, dtype=np.uint8),
        "u2": np.arange(2, dtype="<u2"), "u4": np.arange(2, dtype="<u4"), "u8": np.arange(2, dtype="<u8"),
        "bool": np.array([True, False, True]), "c8": np.array([1 + 2j], np.complex64),
        "c16": np.array([1 - 1j, 3j], np.complex128), "unicode": np.array(["ab", "xyz"]),
        "scalar": np.array(3.5, np.float32), "empty": np.zeros((0, 3), np.float32),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "structured": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]), "datetime": np.zeros(2, "M8[s]"),
    }
    for name, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        write(folder, name + ".npy", buf.getvalue())
    for version in [(2, 0), (3, 0)]:
        buf = io.BytesIO()
        arr = np.arange(3, dtype=np.float32)
        np.lib.format.write_array(buf, arr, version=version)
        write(folder, "v%d.npy" % version[0], buf.getvalue())


def image_seeds(out, nodetests):
    from PIL import Image

    folder = os.path.join(out, "image")
    for case in sorted(os.listdir(nodetests)):
        if not case.startswith("test_image_decoder"):
            continue
        t = onnx.TensorProto()
        with open(os.path.join(nodetests, case, "test_data_set_0", "input_0.pb"), "rb") as f:
            t.ParseFromString(f.read())
        write(folder, case + ".bin", numpy_helper.to_array(t).tobytes())
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    variants = {
        "rgb.bmp": (rgb, "BMP", {}), "pal.bmp": (rgb.convert("P"), "BMP", {}),
        "rgba.bmp": (rgb.convert("RGBA"), "BMP", {}), "rgb.ppm": (rgb, "PPM", {}),
        "gray.pgm": (rgb.convert("L"), "PPM", {}), "rgb.png": (rgb, "PNG", {}),
        "gray.png": (rgb.convert("L"), "PNG", {}), "pal.png": (rgb.convert("P"), "PNG", {}),
        "rgba.png": (rgb.convert("RGBA"), "PNG", {}), "bit.png": (rgb.convert("1"), "PNG", {}),
        "i16.png": (Image.fromarray(np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000), "PNG", {}), "rgb.tif": (rgb, "TIFF", {}),
        "gray.tif": (rgb.convert("L"), "TIFF", {}), "q90.jpg": (rgb, "JPEG", {"quality": 90}),
        "gray.jpg": (rgb.convert("L"), "JPEG", {}), "s444.jpg": (rgb, "JPEG", {"subsampling": 0}),
        "s422.jpg": (rgb, "JPEG", {"subsampling": 1}),
        "restart.jpg": (Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)), "JPEG", {}),
        "progressive.jpg": (rgb, "JPEG", {"progressive": True}),
    }
    for name, (img, fmt, kwargs) in variants.items():
        buf = io.BytesIO()
        img.save(buf, fmt, **kwargs)
        write(folder, name, buf.getvalue())
    write(folder, "ascii.ppm", b"P3\n2 1\n255\n255 0 0 0 255 0\n")
    write(folder, "ascii.pgm", b"P2\n# comment\n2 2\n15\n0 5 10 15\n")


ATTRIBUTE_NAMES = ["axis", "axes", "perm", "pads", "strides", "dilations", "kernel_shape", "group", "to",
                   "value", "keepdims", "num_heads", "q_num_heads", "kv_num_heads", "batch_dims", "mode"]


def op_dicts(out):
    """Op and attribute names as libFuzzer dictionaries for the model and plan targets."""
    defs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "ops", "defs")
    names = set()
    for f in sorted(os.listdir(defs)):
        with open(os.path.join(defs, f)) as fh:
            names.update(re.findall(r"KILN_OP\([^,]*,\s*([A-Za-z0-9_]+)", fh.read()))
    if not names:
        raise SystemExit("fuzz_seeds: no KILN_OP lines under " + defs)
    lines = ['"%s"' % n for n in sorted(names) + ATTRIBUTE_NAMES]
    for target in ("onnx_model", "plan"):
        write(os.path.join(out, "dicts"), target + ".dict", ("\n".join(lines) + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--zoo", required=True)
    ap.add_argument("--nodetests", required=True)
    ap.add_argument("--kiln", required=True, help="the kiln binary (writes the plan seeds)")
    args = ap.parse_args()
    models, zoo_models = onnx_seeds(args.out, args.zoo, args.nodetests)
    plan_seeds(args.out, models, zoo_models, args.kiln)
    npy_seeds(args.out)
    image_seeds(args.out, args.nodetests)
    op_dicts(args.out)
    for target in sorted(os.listdir(args.out)):
        if target == "dicts":
            continue
        print("fuzz seeds: %-10s %5d files" % (target, len(os.listdir(os.path.join(args.out, target)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
