#!/usr/bin/env bash
# The main job: installs what is missing, builds, generates a Phi-4-architecture checkpoint with random weights
# and runs it. Usage: scripts/run.sh [PRESET]   (default: small; tiny, small, phi4-L4 or phi4)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-small}
./scripts/build.sh
phalanx=build/bin/phalanx
model=models/$preset

if [ ! -f "$model/model.safetensors.index.json" ]; then
  "$phalanx" make-model --preset "$preset" --out "$model" --seed 1
fi
"$phalanx" inspect "$model"

echo
echo "== the Phi-4 chat template, tokenized with the checkpoint's own tokenizer =="
printf '<|im_start|>user<|im_sep|>What is a phalanx?<|im_end|><|im_start|>assistant<|im_sep|>' |
  "$phalanx" tokenize --model "$model" --special
