#!/usr/bin/env bash
# kiln_runtime is the lean runtime: it must not contain or reference protobuf,
# the ONNX importer/exporter or the build passes (issue 12, item 1).
# Usage: runtime_links.sh path/to/libkiln_runtime.a
set -euo pipefail
lib="$1"
forbidden='google::protobuf|kiln::(LoadModel|ParseModel|SaveModel|SerializeModel|RunBuildPasses|RunSimplify|Run[A-Za-z]+Pass)|onnx::'
hits="$(nm -C "$lib" | grep -E "$forbidden" | sort -u | head -20 || true)"
if [ -n "$hits" ]; then
  echo "kiln_runtime links compiler parts:"
  echo "$hits"
  exit 1
fi
echo "kiln_runtime: no protobuf, ONNX importer or build passes ($(nm "$lib" | wc -l) symbols checked)"
