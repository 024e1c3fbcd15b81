#!/usr/bin/env bash
# The test command: installs what is missing, builds from scratch (release and AddressSanitizer), runs the whole
# test suite and a one-minute-a-harness fuzzing smoke run. Usage: scripts/test.sh [ctest -R filter]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs=$(nproc)

cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs" --timeout 1500 ${1:+-R "$1"}

# Bad-input tests again under AddressSanitizer: a clear error and no crash, also when memory is checked.
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --preset asan -j "$jobs" --timeout 1500 ${1:+-R "$1"}

# A short fuzzing smoke run (about a minute a harness, two at a time); scripts/fuzz.sh 600 is the long run.
if [ -z "${1:-}" ]; then ./scripts/fuzz.sh 60; fi
