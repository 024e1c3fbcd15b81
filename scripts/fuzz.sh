#!/usr/bin/env bash
# Fuzzes every parser a stranger can feed (fuzz/: safetensors header, config.json, tokenizer.json, completions and
# chat requests, the worker's step decoder and layout, the coordinator's reply decoder) with libFuzzer under
# AddressSanitizer, SECONDS per harness (default 600), two at a time. Starts from fuzz/regressions/<harness>/ and
# the corpus kept in build-fuzz/corpus/ (inputs up to 8 KiB: the deep-nesting cases are replayed whole by the
# tests); a crash is copied into fuzz/regressions/<harness>/ (so the test suite
# replays it from then on) and fails the run. Prints one JSON line per harness: executions, crashes, corpus size.
# Usage: scripts/fuzz.sh [SECONDS] [HARNESS...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(safetensors_header model_config tokenizer_json api_request step_batch step_reply)
fi
out=build-fuzz/runs
mkdir -p "$out"

fuzz_one() {
  local name=$1 seconds=$2 out=$3
  local corpus=build-fuzz/corpus/$name artifacts=$out/$name-artifacts/
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/*
  local status=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "build-fuzz/bin/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=8192 -timeout=30 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" "fuzz/regressions/fuzz_$name" \
      >"$out/$name.log" 2>&1 || status=$?
  local runs crashes
  runs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$out/$name.log" | tail -1 || true)
  crashes=$(find "$artifacts" -type f | wc -l)
  for crash in "$artifacts"/*; do
    [ -f "$crash" ] && cp "$crash" "fuzz/regressions/fuzz_$name/$(basename "$crash")"
  done
  printf '{"harness": "%s", "seconds": %s, "executions": %s, "crashes": %s, "corpus": %s, "exit": %s}\n' \
    "$name" "$seconds" "${runs:-0}" "$crashes" "$(find "$corpus" -type f | wc -l)" "$status"
  [ "$status" -eq 0 ] && [ "$crashes" -eq 0 ]
}
export -f fuzz_one
if ! printf '%s\n' "${harnesses[@]}" | xargs -P 2 -I{} bash -c 'fuzz_one "$@"' _ {} "$seconds" "$out"; then
  echo "fuzz: a harness crashed or failed; its input is saved under fuzz/regressions/ and logs in $out/" >&2
  exit 1
fi
echo "fuzz: no crashes"
