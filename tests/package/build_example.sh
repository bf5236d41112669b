#!/usr/bin/env bash
# The C++ package test: installs kiln from the build tree into a temporary
# prefix, then configures and builds examples/cpp_infer against it with
# find_package(kiln). It compiles and links everywhere nvcc is; running the
# example needs a GPU (the GPU machine's tests run it).
# Usage: build_example.sh BUILD_DIR SOURCE_DIR WORK_DIR [cmake args for the example]
set -euo pipefail
build="$1" src="$2" work="$3"
shift 3
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/examples/cpp_infer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$work/build"
test -x "$work/build/cpp_infer"
# The example links kiln::runtime only: no protobuf comes with it.
if ldd "$work/build/cpp_infer" | grep -i protobuf; then
  echo "cpp_infer (kiln::runtime) links protobuf"
  exit 1
fi
