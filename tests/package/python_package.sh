#!/usr/bin/env bash
# The Python package test: a fresh venv from the system Python
# (--system-site-packages: Debian's numpy), `pip install` of the repo into it
# (scikit-build-core; CPU-only unless KILN_CUDA=ON; the CMake tree is kept in
# WORK_DIR/build and objects come from ccache, so a rebuild is incremental),
# an import smoke test and the `kiln` console script there, then python/tests
# with the repo's Python (which has onnxruntime, pytest, Debian's torch and
# scikit-image) on the installed package.
# Usage: python_package.sh SOURCE_DIR WORK_DIR TEST_PYTHON
set -euo pipefail
src="$1" work="$2" test_python="$3"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
start=$(date +%s)
rm -rf "$work/venv"
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check --config-settings=build-dir="$work/build" "$src"
echo "python_package: pip install took $(( $(date +%s) - start )) s"
(cd "$work" && "$work/venv/bin/python" -c "
import kiln, numpy as np
e = kiln.build('$src/models/super_resolution.onnx', backend='cpu')
out = e.create_context().run({'input': np.zeros((1, 1, 8, 8), np.float32)})
assert out['output'].shape == (1, 1, 24, 24), out['output'].shape
print('kiln', kiln.__version__, 'cuda' if kiln.has_cuda else 'cpu-only', 'imports and runs')")
# The console script: the CLI the wheel carries.
"$work/venv/bin/kiln" check "$src/models/super_resolution.onnx" | tail -1
site=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cd "$work"
PYTHONPATH="$site" "$test_python" -m pytest -q -p no:cacheprovider "$src/python/tests"
echo "python_package: $(( $(date +%s) - start )) s in all"
