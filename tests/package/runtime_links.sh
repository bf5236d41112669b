#!/usr/bin/env bash
# kiln_runtime is the lean runtime: it must not contain or reference protobuf,
# the ONNX importer/exporter, the build passes, shape inference, the CPU
# reference kernels (the op table's Run/Infer functions), the reference
# executor or the CPU engine (issue 12, item 1). It must not reference a
# kiln symbol it does not define either: a program linked with it alone
# (examples/cpp_infer) would not link.
# Usage: runtime_links.sh path/to/libkiln_runtime.a
set -euo pipefail
lib="$1"
forbidden='google::protobuf|kiln::(LoadModel|ParseModel|SaveModel|SerializeModel|RunBuildPasses|RunSimplify|Run[A-Za-z]+Pass)|onnx::'
# The op table's functions: Status ops::RunX(RunContext&) and ops::InferX(InferContext&).
forbidden+='|kiln::ops::[A-Za-z0-9]+\(kiln::(Run|Infer)Context&\)|kiln::InferShapes|kiln::ReferenceExecutor|kiln::cpu::'
forbidden+='|kiln::FindOp\('
hits="$(nm -C "$lib" | grep -E "$forbidden" | sort -u | head -20 || true)"
if [ -n "$hits" ]; then
  echo "kiln_runtime links compiler parts:"
  echo "$hits"
  exit 1
fi
defined="$(mktemp)"; undefined="$(mktemp)"
trap 'rm -f "$defined" "$undefined"' EXIT
nm -C --defined-only "$lib" 2>/dev/null | awk '$2 ~ /[TWVBDRSU]/ && $2 != "U" {$1=""; $2=""; print substr($0, 3)}' | sort -u > "$defined"
nm -C --undefined-only "$lib" 2>/dev/null | awk '{$1=""; print substr($0, 2)}' | grep 'kiln::' | sort -u > "$undefined" || true
missing="$(comm -23 "$undefined" "$defined" | head -20)"
if [ -n "$missing" ]; then
  echo "kiln_runtime references kiln symbols it does not define (they live in kiln_builder):"
  echo "$missing"
  exit 1
fi
echo "kiln_runtime: no protobuf, ONNX importer, passes, shape inference or CPU kernels, and no kiln symbol it does not define ($(nm "$lib" | wc -l) symbols checked)"
