#!/usr/bin/env bash
# compute-sanitizer memcheck over `kiln run --backend cuda` on small zoo models
# (FP32 and FP16 plans, batch 2, eager run then CUDA-graph replay). Run on the
# GPU machine by tools/device-run.sh; prints one line per case and fails when
# the sanitizer reports any error.
#   tools/memcheck.sh KILN_BIN [MODELS]
# SAN_TOOL=racecheck|initcheck runs that tool instead; SAN_LOG_DIR keeps each case's log (NAME.PREC.log)
# and its exit status (NAME.PREC.rc) there for the caller (tools/soak.sh) to read.
set -uo pipefail
KILN="$1"
MODELS="${2:-super_resolution,resnet18,mobilenet_v2,bert_encoder}"
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
TOOL="${SAN_TOOL:-memcheck}"
DIR=$(mktemp -d)
LOGS="${SAN_LOG_DIR:-$DIR}"
mkdir -p "$LOGS"
case "$TOOL" in
  memcheck) opts=(--leak-check no) ;;
  initcheck) opts=(--show-backtrace no --print-limit 10000000) ;;
  *) opts=() ;;
esac
python3 "$(dirname "$0")/../tests/models/export_zoo.py" "$DIR" --only ${MODELS//,/ } --size 64 --calibrate-bn >/dev/null
status=0
for name in ${MODELS//,/ }; do
  case "$name" in
    bert_encoder) shapes="input_ids:2x32,attention_mask:2x32" ;;
    super_resolution) shapes="input:2x1x64x64" ;;
    *) shapes="input:2x3x64x64" ;;
  esac
  for prec in fp32 fp16; do
    flag=""; [ "$prec" = fp16 ] && flag="--fp16"
    "$KILN" build "$DIR/$name.onnx" $flag --saveEngine "$DIR/$name.$prec.plan" --optShapes "$shapes" \
      --maxShapes "$shapes" --minShapes "$shapes" >/dev/null 2>&1 || { echo "$name $prec: build failed"; status=1; continue; }
    log="$LOGS/$name.$prec.log"
    "$SAN" --tool "$TOOL" "${opts[@]}" --error-exitcode 3 "$KILN" bench "$DIR/$name.$prec.plan" --shapes "$shapes" \
      --iterations 2 --warmup 1 >"$log" 2>&1
    rc=$?
    echo "$rc" >"$LOGS/$name.$prec.rc"
    summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1)
    echo "$name $prec: rc $rc ${summary:-no summary}"
    if [ $rc -ne 0 ]; then status=1; [ "$TOOL" = memcheck ] && grep -m 20 -E "Invalid|Error|error" "$log"; fi
  done
done
exit $status
