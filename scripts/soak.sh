#!/usr/bin/env bash
# Chaos soak (not part of CI): a TP 2 x PP 2 cluster on the generated `small` model serving 64 streaming clients
# for 10 minutes while a random worker is killed or stopped every 30-60 s (`up` restarts killed ones). Reports
# requests sent, completed with the fault-free tokens, replayed, failed and wrong, and every process's RSS at the
# start and the end (scripts/soak_clients.py). Usage: scripts/soak.sh [SECONDS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
clients=${2:-64}
port=${PHX_PORT:-8100}
phalanx=build/bin/phalanx
[ -x "$phalanx" ] || ./scripts/build.sh
[ -f models/small/model.safetensors.index.json ] || "$phalanx" make-model --preset small --out models/small --seed 1
export UCX_TLS=${UCX_TLS:-sm,self} UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo} OMP_WAIT_POLICY=passive
log=build/soak-up.log
"$phalanx" up --model models/small --tp 2 --pp 2 --no-pin --port "$port" --worker-port 7300 --metrics-port 0 \
  --kv-tokens 16384 --coordinator-args "--max-running 64" > "$log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
until grep -q "cluster ready" "$log"; do
  kill -0 $up 2>/dev/null || { cat "$log"; exit 1; }
  sleep 1
done
python3 scripts/soak_clients.py "http://127.0.0.1:$port" "$duration" "$clients" "$up" | tee build/soak-report.json
