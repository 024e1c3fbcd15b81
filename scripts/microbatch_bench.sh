#!/usr/bin/env bash
# Pipeline micro-batching measured (docs/scaling.md): a local PP cluster (`phalanx up --tp 1 --pp P`, one core a
# worker) served under `bench-serve` at one concurrency, alternating runs without (--micro-batches 1) and with
# micro-batches (0: one per stage), one JSON line a run with the flag, and the scheduler's micro_batches and step
# count from /v1/phalanx/stats.
#
#   scripts/microbatch_bench.sh --model DIR [--pp 2] [--concurrency 16] [--prompt-len 128] [--gen-len 32]
#                               [--rounds 2] [--coordinator-args "..."] [--out FILE.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
phalanx=${PHALANX:-build/bin/phalanx}
model="" pp=2 concurrency=16 prompt=128 gen=32 rounds=2 extra="" out=/dev/stdout port=18600
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --pp) pp=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --prompt-len) prompt=$2; shift 2 ;;
    --gen-len) gen=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --coordinator-args) extra=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "microbatch_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$model" ] || { echo "microbatch_bench.sh: --model DIR is required" >&2; exit 2; }
[ "$out" = /dev/stdout ] || : >"$out"
logs=$(mktemp -d /tmp/phx-microbatch-XXXXXX)
up=""
trap '[ -z "$up" ] || kill -INT "$up" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$logs"' EXIT

for ((round = 0; round < rounds; ++round)); do
  for micro in 1 0; do
    "$phalanx" up --model "$model" --tp 1 --pp "$pp" --threads 1 --port "$port" --worker-port $((port + 100)) \
      --metrics-port 0 --kv-tokens 8192 --coordinator-args "--micro-batches $micro $extra" >"$logs/up.log" 2>&1 &
    up=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
    curl -sf "http://127.0.0.1:$port/health" >/dev/null || { cat "$logs/up.log" >&2; exit 1; }
    "$phalanx" bench-serve --url "http://127.0.0.1:$port" --concurrency "$concurrency" --requests "$concurrency" \
      --prompt-len "$prompt" --gen-len "$gen" --json >"$logs/run.json"
    curl -s "http://127.0.0.1:$port/v1/phalanx/stats" >"$logs/stats.json"
    python3 -c '
import json, sys
stats = json.load(open(sys.argv[2]))
for line in open(sys.argv[1]):
    record = json.loads(line)
    record.update(micro_batches_flag=int(sys.argv[3]), micro_batches=stats.get("micro_batches"),
                  steps=stats.get("steps"), pp=int(sys.argv[4]))
    print(json.dumps(record))' "$logs/run.json" "$logs/stats.json" "$micro" "$pp" >>"$out"
    kill -INT "$up"
    wait "$up" || true
    up=""
    echo "microbatch_bench.sh: round $((round + 1)), --micro-batches $micro: done" >&2
  done
done
