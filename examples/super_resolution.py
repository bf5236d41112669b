#!/usr/bin/env python3
"""PyTorch's super-resolution example, end to end with kiln.

The model is the one from PyTorch's "export a model to ONNX" tutorial (an
efficient sub-pixel CNN, upscale factor 3: four convolutions and a pixel
shuffle). The tutorial downloads trained weights; this example needs no
download: it starts from the bundled models/super_resolution.onnx (the same
network, untrained) and trains it for a few hundred steps on the image itself
(patches downscaled by 3 → the original patches; --train-steps 0 skips it, the
output is then dark noise). kiln.export exports it with a
dynamic batch, height and width, checks, simplifies, builds and verifies it
against torch; the engine then upscales the luminance (Y) of an image from
scikit-image's sample data (a synthetic one without scikit-image), the colour
(Cb, Cr) is resized bicubically as in the tutorial, and the result is saved.

    python examples/super_resolution.py                    # CUDA (FP16)
    python examples/super_resolution.py --backend cpu      # the reference executor, no GPU
    python examples/super_resolution.py --image camera --size 128 --output sr.png --save-dir out/
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.init as init
from PIL import Image

import kiln

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SuperResolutionNet(nn.Module):
    """The tutorial's model (pytorch/examples, super_resolution)."""

    def __init__(self, upscale_factor=3, inplace=False):
        super().__init__()
        self.relu = nn.ReLU(inplace=inplace)
        self.conv1 = nn.Conv2d(1, 64, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(64, 64, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(64, 32, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(32, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv4.weight)


def load_weights(model, onnx_path):
    """The weights of the bundled ONNX model (initializers named like the module's parameters)."""
    import onnx
    from onnx import numpy_helper
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(onnx_path).graph.initializer}
    missing = model.load_state_dict(weights, strict=True)
    return missing


def sample_image(name):
    """An RGB image from scikit-image's sample data, or a synthetic one without scikit-image."""
    try:
        from skimage import data
    except ImportError:
        print("scikit-image is not installed (pip install scikit-image): using a synthetic image")
        y, x = np.mgrid[0:256, 0:256]
        rgb = np.stack([(x ^ y) & 0xFF, (x * 3) & 0xFF, ((x - 128) ** 2 + (y - 128) ** 2) // 64 & 0xFF], -1)
        return Image.fromarray(rgb.astype(np.uint8))
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return Image.fromarray(img[..., :3].astype(np.uint8))


def train(model, y, steps, patch=36, batch=8, seed=0):
    """Fits the model to recover `patch`-sized crops of the luminance `y` ([H, W] in [0, 1]) from
    crops downscaled by 3; returns the first and last losses."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        i = torch.randint(0, y.shape[0] - patch, (batch,), generator=g)
        j = torch.randint(0, y.shape[1] - patch, (batch,), generator=g)
        hr = torch.stack([y[a:a + patch, b:b + patch] for a, b in zip(i.tolist(), j.tolist())])[:, None]
        lr = nn.functional.avg_pool2d(hr, 3)
        loss = nn.functional.mse_loss(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses[0], sum(losses[-20:]) / len(losses[-20:])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["cuda", "cpu"], default="cuda", help="kiln backend (default cuda)")
    p.add_argument("--image", default="astronaut", help="scikit-image sample (astronaut, chelsea, coffee, camera...)")
    p.add_argument("--size", type=int, default=224, help="the input's side before upscaling (default 224)")
    p.add_argument("--output", default="super_resolution.png", help="where to save the upscaled image")
    p.add_argument("--save-dir", default=None, help="also save the ONNX model and the plan there")
    p.add_argument("--weights", default=os.path.join(ROOT, "models", "super_resolution.onnx"),
                   help="ONNX model to take the starting weights from (default: the bundled one)")
    p.add_argument("--train-steps", type=int, default=1000, help="training steps on the image (default 1000; 0: none)")
    args = p.parse_args()
    if args.backend == "cuda" and not kiln.has_cuda:
        sys.exit("this kiln has no CUDA backend (a CPU-only wheel): run with --backend cpu")

    model = SuperResolutionNet()
    load_weights(model, args.weights)
    model.eval()
    full = sample_image(args.image)
    if args.train_steps > 0:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        y_full = torch.from_numpy(np.asarray(full.convert("YCbCr").split()[0], dtype=np.float32) / 255.0)
        first, last = train(model, y_full, args.train_steps)
        print(f"trained {args.train_steps} steps on the image in {time.perf_counter() - t0:.0f} s: "
              f"MSE {first:.4f} -> {last:.4f}")

    # The luminance channel at the chosen size, as in the tutorial.
    img = full.resize((args.size, args.size), Image.BICUBIC)
    y, cb, cr = img.convert("YCbCr").split()
    x = torch.from_numpy(np.asarray(y, dtype=np.float32) / 255.0)[None, None]  # [1, 1, H, W]

    device = "cuda" if args.backend == "cuda" else "cpu"
    t0 = time.perf_counter()
    sr = kiln.export(model, x, backend=args.backend, fp16=args.backend == "cuda", save_dir=args.save_dir,
                     dynamic_axes={"x": {2: "height", 3: "width"}}, max_batch=8, name="super_resolution")
    print(f"kiln.export: {sr.report['exporter']} exporter, {sr.report['simplify']['nodes_after']} nodes after "
          f"simplify, built for {args.backend} in {time.perf_counter() - t0:.1f} s; max error vs torch "
          + ", ".join(f"{k} {v:.2e}" for k, v in sr.max_error.items()))
    if args.save_dir:
        print(f"saved {sr.onnx_path} and {sr.plan_path}")

    xd = x.to(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = sr(xd)
    if device == "cuda":
        torch.cuda.synchronize()
    print(f"kiln ran [1, 1, {args.size}, {args.size}] -> {list(out.shape)} in {1e3 * (time.perf_counter() - t0):.1f} ms")
    with torch.no_grad():
        ref = model.to(device)(xd)
    print(f"max |kiln - torch| on the image: {(out.float() - ref).abs().max().item():.2e}")

    out_y = Image.fromarray((out[0, 0].float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8), "L")
    side = out_y.size
    result = Image.merge("YCbCr", [out_y, cb.resize(side, Image.BICUBIC), cr.resize(side, Image.BICUBIC)]).convert("RGB")
    result.save(args.output)
    print(f"saved the upscaled image ({side[0]}x{side[1]}) to {args.output}")


if __name__ == "__main__":
    main()
