#!/usr/bin/env bash
# Runs every kiln test that needs no GPU: installs dependencies, builds (Release
# and an ASan/UBSan build), then ctest runs the unit tests (also under the
# sanitizers), the ONNX backend node conformance suite (>= 85% must pass) and
# the model zoo against onnxruntime. GPU tests are skipped without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"

tools/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKILN_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build build -j"$JOBS"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON -DKILN_CUDA=OFF \
  -DKILN_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build build-asan -j"$JOBS" --target kiln_unit_tests kiln_cli

status=0
echo "== unit tests under ASan/UBSan =="
ctest --test-dir build-asan -L unit --output-on-failure -j"$JOBS" || status=1
echo "== all tests (unit, conformance, model zoo) =="
ctest --test-dir build --output-on-failure -j"$JOBS" || status=1
exit $status
