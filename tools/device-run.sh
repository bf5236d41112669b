#!/usr/bin/env bash
# Runs kiln's GPU tests and benchmarks on the GPU machine. Builds nothing: it
# expects the folder tools/stage-gpu.sh makes on the dev machine (binaries plus
# the non-system libraries they need) and sets library paths so the
# binaries find CUDA's, cuDNN's and those libraries there.
#
#   tools/device-run.sh [BIN_DIR] [tests|models|bench|profile|memcheck|all]   (default: gpu-bin all)
#   models: KILN_GPU_MODELS=a,b for a subset; bench: KILN_BENCH_MODELS=a,b, KILN_BENCH_ARGS (e.g. --max-autotune).
#   profile: per-op GPU time at batch 32 (bench/profile_zoo.py); memcheck: compute-sanitizer on model runs.
#   trained: trained ONNX models from wheels (KILN_TRAINED_DIR, default BIN_DIR/trained) vs onnxruntime:
#            YOLOv8n (test_trained_gpu.py) and PP-OCR det/rec/cls in trained/ppocr (test_ocr_gpu.py).
#   wide: issue #10's model list (tests/gpu/export_wide.py exports it with this machine's torch into
#         KILN_WIDE_DIR, default wide-models/ (kept while the machine stays warm; an existing
#         manifest.json is reused), then tests/gpu/test_wide_gpu.py: FP32/FP16 vs onnxruntime, report
#         in $OUT/wide_report.{json,md}). KILN_WIDE_MODELS=a,b for a subset, KILN_WIDE_EXPORTERS=
#         torchscript|dynamo|both (default both, for the export and the test), KILN_WIDE_TIMEOUT
#         (s per export, 300), KILN_TIMEOUT (s per kiln command, 180); wide-export / wide-test run
#         one half; the report accumulates over runs on the same folder.
#   suite: issue #11's wide suite (bench/suite.py): kiln FP16 vs torch eager/default/reduce-overhead
#          (KILN_SUITE_MODELS=a,b, KILN_SUITE_ARGS e.g. "--modes max-autotune --batches 32"); table, JSON, PNG
#          in $OUT (pass --out bench/ to accumulate into a results file you copy back).
#   quant: issue #14's speed criteria (bench/quant_speed.py): INT8 ResNet-50 and FP8 BERT-base vs kiln FP16 at
#          batch 32, side by side (KILN_QUANT_MODELS=a,b, KILN_QUANT_ARGS=--profile); table and JSON in $OUT.
#   ncu: Nsight Compute on one suite model's kernels (bench/ncu_kernels.py): KILN_NCU_MODEL (efficientnet_v2_s),
#        KILN_NCU_BATCH (32), KILN_NCU_KERNELS (a regex on kernel names, Depthwise); table in $OUT/ncu.log.
#   depthwise: each channels-last depthwise kernel timed on the suite CNNs' layers (kiln_depthwise_bench, copied
#              by tools/stage-gpu.sh when built); table in $OUT/depthwise.log.
#   soak: issue #12's reliability checks (tools/soak.sh): 8 contexts x 10k runs bit-identical to one,
#         bad shapes, 1M runs with flat host/device memory (SOAK_LONG, SOAK_ITERS), an arena larger
#         than the device, compute-sanitizer memcheck/racecheck/initcheck; logs in $OUT/soak/.
#   conformance: onnx's backend node tests built and run by the CUDA engine (kiln conformance --backend cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-gpu-bin}"
WHAT="${2:-all}"
OUT="${OUT:-/tmp/kiln-out}"
mkdir -p "$OUT"

# cuDNN: prefer the newest one torch ships (9.19 in nvidia/cudnn/lib) over the system's.
PY=python3
CUDNN_LIB=$($PY -c 'import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
CUBLAS_LIB=$($PY -c 'import os, nvidia.cublas as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$PWD/$BUILD/lib:${CUDNN_LIB}:${CUBLAS_LIB}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export KILN_BIN="$PWD/$BUILD/kiln"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
status=0

if [ "$WHAT" = tests ] || [ "$WHAT" = all ]; then
  echo "== GPU op tests (CUDA vs CPU reference) =="
  "$BUILD/tests/kiln_gpu_tests" --gtest_brief=1 2>&1 | tee "$OUT/gpu_tests.log" || status=1
fi
if [ "$WHAT" = models ] || [ "$WHAT" = all ]; then
  echo "== GPU model tests (kiln cuda vs onnxruntime) =="
  PYTHONUNBUFFERED=1 $PY -m pytest -q -rs tests/gpu/test_models_gpu.py 2>&1 | tee "$OUT/gpu_models.log" || status=1
fi
if [ "$WHAT" = trained ] || [ "$WHAT" = all ]; then
  echo "== trained models from wheels (kiln cuda vs onnxruntime, real images) =="
  KILN_TRAINED_DIR="${KILN_TRAINED_DIR:-$PWD/$BUILD/trained}" PYTHONUNBUFFERED=1 \
    $PY -m pytest -q -rs -s tests/gpu/test_trained_gpu.py 2>&1 | tee "$OUT/gpu_trained.log" || status=1
fi
if [ "$WHAT" = trained ] || [ "$WHAT" = all ]; then
  echo "== PP-OCR from rapidocr-onnxruntime (det/rec/cls, kiln cuda vs onnxruntime, skimage text images) =="
  KILN_TRAINED_DIR="${KILN_TRAINED_DIR:-$PWD/$BUILD/trained}" PYTHONUNBUFFERED=1 \
    $PY -m pytest -q -rs -s tests/gpu/test_ocr_gpu.py 2>&1 | tee "$OUT/gpu_ocr.log" || status=1
fi
case "$WHAT" in wide|wide-export|wide-test)
  WIDE_DIR="${KILN_WIDE_DIR:-$PWD/wide-models}"
  if [ "$WHAT" != wide-test ] && { [ "$WHAT" = wide-export ] || [ ! -f "$WIDE_DIR/manifest.json" ]; }; then
    echo "== export issue #10's model list into $WIDE_DIR =="
    PYTHONUNBUFFERED=1 $PY tests/gpu/export_wide.py "$WIDE_DIR" ${KILN_WIDE_MODELS:+--models $KILN_WIDE_MODELS} \
      --exporter "${KILN_WIDE_EXPORTERS:-both}" ${KILN_WIDE_JOBS:+--jobs $KILN_WIDE_JOBS} \
      --timeout "${KILN_WIDE_TIMEOUT:-300}" 2>&1 | tee "$OUT/wide_export.log" || status=1
    cp "$WIDE_DIR/manifest.json" "$OUT/wide_manifest.json" 2>/dev/null || true
  fi
  if [ "$WHAT" != wide-export ]; then
    echo "== issue #10's model list: kiln cuda FP32/FP16 vs onnxruntime =="
    KILN_WIDE_DIR="$WIDE_DIR" KILN_WIDE_REPORT="$OUT" KILN_TIMEOUT="${KILN_TIMEOUT:-180}" PYTHONUNBUFFERED=1 \
      $PY -m pytest -q -rs -s tests/gpu/test_wide_gpu.py 2>&1 | tee "$OUT/wide.log" || status=1
  fi
  ;;
esac
if [ "$WHAT" = suite ]; then
  echo "== wide suite: kiln FP16 vs every torch mode =="
  PYTHONUNBUFFERED=1 $PY bench/suite.py --kiln "$KILN_BIN" --out "$OUT" ${KILN_SUITE_MODELS:+--models $KILN_SUITE_MODELS} \
    ${KILN_SUITE_ARGS:-} 2>&1 | tee "$OUT/suite.log" || status=1
fi
if [ "$WHAT" = quant ]; then
  echo "== quantized vs FP16: INT8 ResNet-50, FP8 BERT-base =="
  PYTHONUNBUFFERED=1 $PY bench/quant_speed.py --kiln "$KILN_BIN" --out "$OUT" ${KILN_QUANT_MODELS:+--models $KILN_QUANT_MODELS} ${KILN_QUANT_ARGS:-} \
    2>&1 | tee "$OUT/quant.log" || status=1
fi
if [ "$WHAT" = ncu ]; then
  echo "== ncu on one model's kernels (KILN_NCU_MODEL, KILN_NCU_BATCH, KILN_NCU_KERNELS regex) =="
  PYTHONUNBUFFERED=1 $PY bench/ncu_kernels.py --kiln "$KILN_BIN" --out "$OUT" --model "${KILN_NCU_MODEL:-efficientnet_v2_s}" \
    --batch "${KILN_NCU_BATCH:-32}" --kernels "${KILN_NCU_KERNELS:-Depthwise}" 2>&1 | tee "$OUT/ncu.log" || status=1
fi
if [ "$WHAT" = depthwise ]; then
  echo "== depthwise kernels side by side (bench/depthwise_bench.cc) =="
  "$BUILD/kiln_depthwise_bench" 2>&1 | tee "$OUT/depthwise.log" || status=1
fi
if [ "$WHAT" = soak ]; then
  echo "== soak: threads, bad shapes, long run, oversize arena, compute-sanitizer =="
  tools/soak.sh "$KILN_BIN" "$BUILD/tests/kiln_gpu_tests" "$OUT/soak" 2>&1 | tee "$OUT/soak.log" || status=1
fi
if [ "$WHAT" = conformance ]; then
  echo "== ONNX backend node tests on the GPU =="
  $PY tools/write_node_tests.py /tmp/kiln-nodetests --if-stale >/dev/null || status=1
  "$KILN_BIN" conformance /tmp/kiln-nodetests --backend cuda --jobs "$(nproc)" --timeout 60 \
    --json "$OUT/conformance_cuda.json" --markdown "$OUT/CONFORMANCE_cuda.md" 2>&1 | tail -n 80 | tee "$OUT/conformance_cuda.log"
fi
if [ "$WHAT" = bench ] || [ "$WHAT" = all ]; then
  echo "== bench: kiln vs torch =="
  PYTHONUNBUFFERED=1 $PY bench/vs_torch.py --kiln "$KILN_BIN" ${KILN_BENCH_MODELS:+--models $KILN_BENCH_MODELS} \
    ${KILN_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log" || status=1
fi
if [ "$WHAT" = profile ]; then
  echo "== profile: where the GPU time goes (FP16, batch ${KILN_PROFILE_BATCH:-32}) =="
  PYTHONUNBUFFERED=1 $PY bench/profile_zoo.py --kiln "$KILN_BIN" --batch "${KILN_PROFILE_BATCH:-32}" \
    ${KILN_PROFILE_MODELS:+--models $KILN_PROFILE_MODELS} ${KILN_PROFILE_KEEP:+--keep $KILN_PROFILE_KEEP} 2>&1 | tee "$OUT/profile.log" || status=1
fi
if [ "$WHAT" = memcheck ] || [ "$WHAT" = all ]; then
  echo "== compute-sanitizer memcheck: kiln run --backend cuda on zoo models =="
  tools/memcheck.sh "$KILN_BIN" 2>&1 | tee "$OUT/memcheck.log" || status=1
fi
exit $status
