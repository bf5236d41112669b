#!/usr/bin/env bash
# Installs what kiln needs on Debian 12: the C++ toolchain and libraries from
# Debian, and a Python virtual environment (.venv) made from Debian's python3
# (which carries Debian's torch/torchvision) with onnx, onnxruntime, onnxsim,
# numpy and pytest from PyPI. numpy stays below 2: Debian's torch 1.13 is built
# against NumPy 1.x and its tensor<->numpy bridge is off under NumPy 2 ("Numpy
# is not available"). Idempotent; safe to run again, and it repairs a venv
# that a newer pip resolution moved to NumPy 2.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

APT_PACKAGES=(
  build-essential cmake ninja-build ccache git clang libclang-rt-14-dev
  libprotobuf-dev protobuf-compiler libonnx-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev pybind11-dev
  python3 python3-venv python3-pip python3-numpy python3-torch python3-torchvision python3-pil
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's python3 (not a pyenv one) so the venv sees Debian's torch.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# NumPy: 1.x, because Debian's torch 1.13 is built against it; and at least 1.26, because onnx
# generates its backend node tests' expected outputs with NumPy at fixture time, and with Debian's
# 1.24 it writes wrong int2/int4 Cast outputs and a different DFT-inverse (conformance fails).
if ! .venv/bin/python -c "import onnx, onnxruntime, onnxsim, pytest, numpy; v = tuple(map(int, numpy.__version__.split('.')[:2])); assert (1, 26) <= v < (2, 0)" 2>/dev/null ||
   ! ls .venv/lib/python3*/site-packages/include/cudnn_frontend.h >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check "onnx==1.23.*" onnxruntime onnxsim "numpy>=1.26,<2" pytest nvidia-cudnn-frontend
fi
echo "install-deps: ok ($(.venv/bin/python -c 'import onnx, onnxruntime, torch, numpy; print("onnx", onnx.__version__, "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__, "torch", torch.__version__)' 2>/dev/null))"
