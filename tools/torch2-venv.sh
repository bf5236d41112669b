#!/usr/bin/env bash
# A Python environment with the GPU machine's exporter (torch 2.11, torchvision 0.26, transformers, timm,
# onnx, onnxruntime) on this CPU machine, so that a model is exported here in the form the device's bench
# (bench/suite.py, bench/kiln_ab.py) exports it: torch 1.13 (Debian's python3-torch, .venv) writes other
# forms (nn.MultiheadAttention's Q/K/V as a Split, where torch 2 writes Gathers). ~4 GB from PyPI (the CUDA
# wheels; they import without a GPU). Usage: tools/torch2-venv.sh [DIR] (default /opt/torch211), then
#   DIR/bin/python -c "import sys; sys.path.insert(0, 'bench'); from suite import model_and_inputs, export;
#                      m, i = model_and_inputs('vit_b_16'); export(m, i, '/tmp/vit_b_16.onnx')"
set -euo pipefail
DIR="${1:-/opt/torch211}"
[ -x "$DIR/bin/python" ] || python3 -m venv "$DIR"
"$DIR/bin/pip" install -q "torch==2.11.0" "torchvision==0.26.*" transformers timm onnx onnxruntime onnxscript numpy
"$DIR/bin/python" -c "import torch, torchvision, transformers; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__)"
