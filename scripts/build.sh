#!/usr/bin/env bash
# Installs what is missing and builds build/bin/phalanx (release, native CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
