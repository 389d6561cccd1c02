#!/usr/bin/env bash
# Builds and runs every test: the debug build, then the same suite under
# ASan+UBSan and under TSan, then each fuzz target for a bounded time.
# Usage: scripts/test.sh [--fast]   (--fast: debug build only, for iteration)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

fast=0
[ "${1:-}" = "--fast" ] && fast=1
jobs=$(nproc)

passed=0
run_suite() {
  local preset=$1 log
  echo "=== $preset: build"
  bash scripts/build.sh "$preset"
  echo "=== $preset: test"
  log=$(mktemp)
  (cd "build/$preset" && ctest --output-on-failure -j "$jobs" --timeout 600) | tee "$log"
  passed=$((passed + $(sed -nE 's/.*tests passed, 0 tests failed out of ([0-9]+).*/\1/p' "$log")))
  rm -f "$log"
}

run_suite debug
if [ $fast = 1 ]; then echo "tests: $passed passed, 0 failed"; exit 0; fi
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_suite asan
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_suite tsan

echo "=== fuzz: build"
bash scripts/build.sh fuzz --target fuzz_all
echo "=== fuzz: run"
log=$(mktemp)
bash fuzz/run.sh build/fuzz/fuzz "${FUZZ_SECONDS:-10}" | tee "$log"
targets=$(grep -c "executed_units" "$log")
rm -f "$log"
echo "tests: $((passed + targets)) passed, 0 failed"
