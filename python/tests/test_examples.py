"""The examples run end to end on the CPU backend (small sizes), and their results are checked:
the saved image and the comparison with torch."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_example(name, *args):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), "--backend", "cpu", *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_super_resolution(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    skimage_data = pytest.importorskip("skimage.data")  # the example's image (a synthetic one without it)
    out = tmp_path / "sr.png"
    text = run_example("super_resolution.py", "--size", "40", "--train-steps", "300", "--output", str(out),
                       "--save-dir", str(tmp_path))
    err = float(re.search(r"max \|kiln - torch\| on the image: (\S+)", text).group(1))
    assert err < 1e-4, text
    img = PIL.open(out)
    assert img.size == (120, 120) and img.mode == "RGB"
    # Its luminance is close to a bicubic upscaling of the input (PIL's, independent of the model):
    # about 28 dB trained; the untrained model's near-black output scores about 6 dB.
    y = np.asarray(img.convert("YCbCr").split()[0], np.float64)
    small = PIL.fromarray(skimage_data.astronaut()).resize((40, 40), PIL.BICUBIC)
    ref = np.asarray(small.resize((120, 120), PIL.BICUBIC).convert("YCbCr").split()[0], np.float64)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((y - ref) ** 2))
    assert psnr > 20, psnr
    assert (tmp_path / "super_resolution.onnx").exists() and (tmp_path / "super_resolution.plan").exists()


def test_export_resnet():
    pytest.importorskip("torchvision")
    text = run_example("export_resnet.py", "--model", "resnet18", "--size", "32", "--batch", "3", "--repeat", "1")
    err = float(re.search(r"max \|kiln - torch\| (\S+)", text).group(1))
    assert err < 1e-3 and "top-1 agreement 100%" in text, text
