#!/usr/bin/env bash
# Builds the GPU-enabled binaries for sm_90 here (no GPU needed) into BUILD_DIR
# and copies the shared libraries the GPU machine lacks (Debian's protobuf and
# fmt) into BUILD_DIR/lib, so the folder can be carried to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-gpu}"
# An existing build folder keeps its configuration (e.g. build/ with 90-real), so staging
# does not rebuild every CUDA file for other architectures.
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" \
    -DKILN_BUILD_TESTS=ON >/dev/null
fi
cmake --build "$BUILD" -j"${JOBS:-2}" --target kiln_cli kiln_gpu_tests
mkdir -p "$BUILD/lib"
for lib in $(ldd "$BUILD/kiln" "$BUILD/tests/kiln_gpu_tests" | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libprotobuf.so*|libfmt.so*|libgtest*.so*) cp -L "$lib" "$BUILD/lib/" ;;
  esac
done
# A small folder with only what runs on the GPU machine (the build tree is too big to carry).
DEST="${DEST:-gpu-bin}"
rm -rf "$DEST" && mkdir -p "$DEST/tests" "$DEST/lib"
cp "$BUILD/kiln" "$DEST/" && cp "$BUILD/tests/kiln_gpu_tests" "$DEST/tests/" && cp "$BUILD"/lib/* "$DEST/lib/"
if [ -f "$BUILD/kiln_depthwise_bench" ]; then cp "$BUILD/kiln_depthwise_bench" "$DEST/"; fi
# initcheck's control for tools/soak.sh (see there).
nvcc -O2 -gencode arch=compute_90,code=sm_90 tools/probes/lt_initcheck_probe.cu -lcublasLt -o "$DEST/lt_initcheck_probe"
du -sh "$DEST"
# Trained models from wheels for `device-run.sh trained` (skipped when offline):
#  - YOLOv8n from nudenet (trained/yolov8n_nudenet_320.onnx, test_trained_gpu.py);
#  - PP-OCRv4 det and rec and the ppocr mobile v2.0 cls from rapidocr-onnxruntime
#    (trained/ppocr/, test_ocr_gpu.py; the rec model's dictionary is its metadata_props
#    'character': the wheel ships no separate dictionary file, but any *.txt under
#    models/ is copied too).
mkdir -p "$DEST/trained/ppocr"
WHEELS="${TMPDIR:-/tmp}/kiln-wheels"
if .venv/bin/pip download --no-deps -q nudenet -d "$WHEELS" 2>/dev/null; then
  .venv/bin/python - "$WHEELS" "$DEST/trained" <<'PY'
import glob, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/nudenet-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    with open(sys.argv[2] + "/yolov8n_nudenet_320.onnx", "wb") as f:
        f.write(z.read("nudenet/320n.onnx"))
PY
fi
if .venv/bin/pip download --no-deps -q rapidocr-onnxruntime -d "$WHEELS" 2>/dev/null; then
  .venv/bin/python - "$WHEELS" "$DEST/trained/ppocr" <<'PY'
import glob, os, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/rapidocr_onnxruntime-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("rapidocr_onnxruntime/models/")
             and n.endswith((".onnx", ".txt"))]
    for n in names:
        with open(os.path.join(sys.argv[2], os.path.basename(n)), "wb") as f:
            f.write(z.read(n))
print(f"{os.path.basename(wheel)}: {', '.join(os.path.basename(n) for n in names)}")
for kind in ("det", "rec", "cls"):
    if not glob.glob(os.path.join(sys.argv[2], f"*{kind}*.onnx")):
        sys.exit(f"{wheel}: no {kind} model under rapidocr_onnxruntime/models/")
PY
fi
du -sh "$DEST"
