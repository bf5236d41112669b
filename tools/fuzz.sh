#!/usr/bin/env bash
# Runs each libFuzzer target (fuzz/) for SECONDS, one after the other, and
# fails when any of them finds a crash, a leak, a timeout or an out-of-memory.
#
#   tools/fuzz.sh SECONDS [TARGET...]     (targets: onnx_model plan npy image)
#
# Needs a clang sanitizer build with the fuzzers (CI's build-asan):
#   CXX=clang++ cmake -S . -B build-asan -DKILN_SANITIZE=ON -DKILN_FUZZ=ON -DKILN_CUDA=OFF ...
#   cmake --build build-asan --target kiln_fuzzers
# FUZZ_BUILD (default build-asan) is that build, FIXTURES (default build) the
# folder holding the zoo/ and nodetests/ fixtures the seeds come from. The
# corpus grows in $FUZZ_BUILD/fuzz/corpus/<target> across runs; findings land
# in $FUZZ_BUILD/fuzz/findings/<target>/ (reproduce: fuzz_<target> FILE).
# FUZZ_SEED (default 1) fixes libFuzzer's random seed, so a run mostly repeats
# its mutations (not exactly: what enters the corpus depends on timing too);
# set another seed to explore elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:?usage: tools/fuzz.sh SECONDS [TARGET...]}"
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(onnx_model plan npy image)
BUILD="${FUZZ_BUILD:-build-asan}"
FIXTURES="${FIXTURES:-build}"
PYTHON="${KILN_PYTHON:-$PWD/.venv/bin/python}"
WORK="$BUILD/fuzz"

if [ ! -f "$WORK/seeds/.done" ] || [ ! -d "$WORK/seeds/dicts" ]; then
  rm -rf "$WORK/seeds"
  "$PYTHON" tools/fuzz_seeds.py "$WORK/seeds" --zoo "$FIXTURES/zoo" --nodetests "$FIXTURES/nodetests" \
    --kiln "$BUILD/kiln"
  touch "$WORK/seeds/.done"
fi

status=0
total=0
rm -f "$WORK/findings.txt"
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin is not built (cmake --build $BUILD --target kiln_fuzzers)"; exit 1; }
  mkdir -p "$WORK/corpus/$t" "$WORK/findings/$t"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  [ -f "$WORK/seeds/dicts/$t.dict" ] && dict=(-dict="$WORK/seeds/dicts/$t.dict")  # op names (fuzz_seeds.py)
  regressions=()  # past findings (each also a unit test in tests/unit/fuzz_regression_test.cc)
  [ -d "fuzz/regressions/$t" ] && regressions=("fuzz/regressions/$t")
  log="$WORK/$t.log"
  set +e
  # New inputs go to the first folder (the corpus); the seeds are read only.
  # -rss_limit_mb also bounds single allocations (malloc_limit_mb defaults to it).
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$bin" "$WORK/corpus/$t" "$WORK/seeds/$t" "${regressions[@]}" "${dict[@]}" -max_total_time="$SECONDS_EACH" \
    -seed="${FUZZ_SEED:-1}" \
    -rss_limit_mb=2048 -timeout=20 -max_len=400000 -print_final_stats=1 \
    -artifact_prefix="$WORK/findings/$t/" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  total=$((total + ${execs:-0}))
  printf 'fuzz %-10s %10s executions in %ss  (rc %d, log %s)\n' "$t" "${execs:-?}" "$SECONDS_EACH" "$rc" "$log"
  # Ops that threw: Internal errors now (no crash), listed so the bug is seen.
  if grep -q '^kiln-fuzz: op threw' "$log"; then
    { echo "fuzz_$t: ops threw (Internal errors, not failures; each names the node):"
      grep '^kiln-fuzz: op threw' "$log" | sort | uniq -c | sort -rn | head -5 | cut -c1-400; } | tee -a "$WORK/findings.txt"
  fi
  if [ "$rc" != 0 ]; then
    status=1
    # What was found, also kept in $WORK/findings.txt for the end of a CI log (run-tests.sh prints it):
    # the error lines, the stack's frames in kiln's code, and each small artifact as base64 to reproduce with.
    {
      echo "fuzz_$t: rc $rc after $(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1) executions (seed ${FUZZ_SEED:-1})"
      grep -E '^(==[0-9]+==ERROR|SUMMARY|ALARM|.*runtime error|==[0-9]+== ERROR)' "$log" | head -5 || true
      # The stack's own frames: libFuzzer's, the sanitizers' and the C/C++
      # runtime's first frames (abort, __cxa_throw) say nothing about where.
      grep -E '^ +#[0-9]+ ' "$log" | grep -vE 'fuzzer::|sanitizer|libc\.so|libstdc\+\+|libgcc|pthread_kill|in raise |in abort ' | head -16 || true
      for f in "$WORK/findings/$t"/*; do
        [ -f "$f" ] || continue
        echo "artifact $(basename "$f") ($(stat -c %s "$f") bytes)"
        if [ "$(stat -c %s "$f")" -le 8192 ]; then
          echo "  base64 (decode: base64 -d > FILE; reproduce: $BUILD/fuzz/fuzz_$t FILE):"
          base64 -w 120 "$f" | sed 's/^/  /'
        elif [ "$(xz -9 -c "$f" | wc -c)" -le 16384 ]; then  # mutated zoo plans compress well
          echo "  xz + base64 (decode: base64 -d | xz -d > FILE; reproduce: $BUILD/fuzz/fuzz_$t FILE):"
          xz -9 -c "$f" | base64 -w 120 | sed 's/^/  /'
        fi
      done
    } | tee -a "$WORK/findings.txt"
  fi
done
echo "fuzz: $total executions in total"
exit $status
