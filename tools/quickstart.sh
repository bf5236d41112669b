#!/usr/bin/env bash
# Installs dependencies, builds kiln and runs the main job on the bundled
# super-resolution model: check → inspect → run on the CPU reference.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKILN_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build build -j"${JOBS:-2}" --target kiln_cli
MODEL=models/super_resolution.onnx
set -x
build/kiln check "$MODEL"
build/kiln inspect "$MODEL" --shapes input:1x1x224x224
build/kiln run "$MODEL" --backend cpu --random --seed 0 --shapes input:1x1x224x224 --output-dir out/super_resolution
