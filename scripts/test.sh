#!/usr/bin/env bash
# The test command: installs what is missing, builds from scratch (release and AddressSanitizer) and runs the whole
# test suite. Usage: scripts/test.sh [ctest -R filter]
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
