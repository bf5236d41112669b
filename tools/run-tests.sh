#!/usr/bin/env bash
# Runs every kiln test that needs no GPU: installs dependencies, builds (Release
# and an ASan/UBSan build), then ctest runs the fixture writers (the model zoo,
# onnx's node tests; shared by both builds), the unit tests (also under the
# sanitizers), the ONNX backend node conformance suite (per-case baseline and a
# pass-rate floor), the model zoo against onnxruntime and the C++ package
# (package_cpp_infer: cmake --install into a temporary prefix, then
# examples/cpp_infer built against it with find_package(kiln)) and the Python
# package (python_package: pip install . into a fresh venv, CPU-only wheel,
# then python/tests with pytest against onnxruntime; docs/PYTHON.md). Nothing may skip but
# the GPU tests (label gpu), which skip without a GPU: a skip anywhere else
# fails the run. Each libFuzzer target then runs for FUZZ_SECONDS (60).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"

tools/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
FIXTURES="$PWD/build"

# CUDA code for this machine's GPU, or (no GPU: CI) for sm_90 alone: every kernel still compiles, and
# CMakeLists' default of three targets (sm_80, sm_90, PTX) costs about 60% more nvcc time per file. A tree
# configured before keeps its own choice.
cuda_arch=()
if ! grep -qs '^CMAKE_CUDA_ARCHITECTURES:' build/CMakeCache.txt; then
  if nvidia-smi -L >/dev/null 2>&1; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=native)
  else cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90-real); fi
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKILN_PYTHON="$PWD/.venv/bin/python" \
  -DKILN_FIXTURE_DIR="$FIXTURES" "${cuda_arch[@]}" >/dev/null
cmake --build build -j"$JOBS"
# The sanitizer build is clang's, with libFuzzer's instrumentation: the same
# objects serve the unit tests and the fuzz targets (fuzz/). A tree configured
# with another compiler (build-asan was gcc's) needs a fresh cache.
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan/CMakeCache.txt build-asan/CMakeFiles
fi
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DKILN_SANITIZE=ON \
  -DKILN_FUZZ=ON -DKILN_CUDA=OFF -DKILN_PYTHON="$PWD/.venv/bin/python" -DKILN_FIXTURE_DIR="$FIXTURES" >/dev/null
cmake --build build-asan -j"$JOBS" --target kiln_unit_tests kiln_cli kiln_fuzzers

status=0
failures=()  # what failed, repeated at the very end (a CI log is often read from its tail)
reruns=()    # logs of the failed tests run again
# ctest, then fail when it skipped anything (ctest exits 0 on skips).
run_ctest() {
  local what="$1" log="$2"; shift 2
  set +e
  ctest "$@" --output-on-failure -j"$JOBS" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" != 0 ]; then
    status=1
    failures+=("$what: $(sed -n '/The following tests FAILED:/,/^$/p' "$log" | sed 's/^[[:space:]]*//' | grep -E '^[0-9]' | paste -sd ';' - || true)")
    # Once more, alone: whether it is flaky, and its output for the summary at the end.
    ctest "$@" --rerun-failed --output-on-failure -j1 >"$log.rerun" 2>&1 || true
    reruns+=("$log.rerun")
  fi
  if grep -E '\*\*\*Skipped|Not Run' "$log"; then
    echo "run-tests: the tests above were skipped; only GPU tests may skip"
    status=1
    failures+=("$what: skipped: $(grep -E '\*\*\*Skipped|Not Run' "$log" | sed 's/^[[:space:]]*//' | paste -sd ';' - || true)")
  fi
}
echo "== unit tests under ASan/UBSan (fixtures first) =="
run_ctest "ASan/UBSan unit tests" build-asan/ctest.log --test-dir build-asan -L unit
echo "== all tests but the GPU ones (fixtures, unit, conformance, model zoo) =="
run_ctest "Release tests" build/ctest.log --test-dir build -LE gpu
echo "== fuzzers, ${FUZZ_SECONDS:-60} s each (fixtures written above seed them) =="
if ! FUZZ_BUILD=build-asan FIXTURES="$FIXTURES" tools/fuzz.sh "${FUZZ_SECONDS:-60}"; then
  status=1
  failures+=("fuzzers: findings in build-asan/fuzz/findings/ (logs build-asan/fuzz/*.log)")
fi
echo "== GPU tests (skip without a GPU) =="
if ! ctest --test-dir build -L gpu -j"$JOBS"; then
  status=1
  failures+=("GPU tests (see above)")
fi
echo "== summary =="
if [ "$status" != 0 ]; then
  for r in "${reruns[@]}"; do
    echo "-- $r (the failed tests run again, alone; last 80 lines) --"
    tail -n 80 "$r"
  done
fi
# Last but the result line (a CI log is often read from its tail): what the
# fuzzers found, crashes or ops that threw (errors, not crashes, but bugs).
if [ -s build-asan/fuzz/findings.txt ]; then
  echo "-- fuzzer findings (build-asan/fuzz/findings.txt) --"
  cat build-asan/fuzz/findings.txt
fi
if [ "$status" = 0 ]; then
  echo "run-tests: everything passed (GPU tests skip without a GPU)"
else
  printf 'run-tests: FAILED: %s\n' "${failures[@]}"
fi
exit $status
