#!/usr/bin/env bash
# The main job: installs what is missing, builds, generates a Phi-4-architecture checkpoint with random weights,
# starts a local cluster on it (a coordinator and 2 tensor-parallel workers, UCX over shared memory) and shows a
# generation through it. Usage: scripts/run.sh [PRESET] [TP] [DTYPE]   (default: small 2 auto; presets tiny, small,
# phi4-L4 or phi4; DTYPE bf16, int8 or auto. The full phi4 is 29.3 GB of BF16, more than a 24 GiB machine holds, so
# it defaults to int8: 7.6 GB a worker at TP 2.)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-small}
tp=${2:-2}
if [ "$preset" = phi4 ]; then default_dtype=int8 kv_tokens=4096; else default_dtype=auto kv_tokens=8192; fi
dtype=${3:-$default_dtype}
port=${PHX_PORT:-8000}
./scripts/build.sh
phalanx=build/bin/phalanx
model=models/$preset

if [ ! -f "$model/model.safetensors.index.json" ]; then
  "$phalanx" make-model --preset "$preset" --out "$model" --seed 1
fi
"$phalanx" inspect "$model" | head -20
"$phalanx" plan --model "$model" --tp "$tp" --dtype "$([ "$dtype" = int8 ] && echo int8 || echo bf16)"

echo
echo "== a local cluster: coordinator on port $port, $tp workers =="
export UCX_TLS=${UCX_TLS:-sm,self}
"$phalanx" up --model "$model" --tp "$tp" --dtype "$dtype" --port "$port" --kv-tokens "$kv_tokens" > run-up.log 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
until grep -q "cluster ready" run-up.log; do
  if ! kill -0 $up 2>/dev/null; then cat run-up.log; exit 1; fi
  sleep 1
done
grep "cluster ready" run-up.log

echo
echo "== generation through the cluster (random weights: the text is noise, the figures are real) =="
"$phalanx" generate --cluster "127.0.0.1:$port" --chat "What is a phalanx?" --max-tokens 32 --temperature 0
echo
echo "== the same through the OpenAI-compatible API =="
curl -s "127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model": "phi-4", "prompt": "The phalanx", "max_tokens": 8, "temperature": 0}'
echo
echo
echo "== a few of the coordinator's metrics =="
curl -s "127.0.0.1:$port/metrics" | grep -E '^phalanx_(generation_tokens_total|requests_total|rank_compute_seconds_total)'
