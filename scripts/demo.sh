#!/usr/bin/env bash
# demo.sh — the main job on a default model: what `make demo` runs after installing and building.
# MODEL=path overrides the model (an HF folder or a llama2.c .bin). Writes demo-out/.
# (The planted-circuit model, capture database and analysis reports join this demo with issue 3.)
set -euo pipefail
HS=bin/headscope
S=${HS_SHARED:-../shared}
if [ -z "${MODEL:-}" ]; then
  if [ -f "$S/models/stories260K/stories260K.bin" ]; then MODEL=$S/models/stories260K/stories260K.bin
  else MODEL=tests/fixtures/models/rand-llama-gqa; fi
fi
mkdir -p demo-out
echo "demo: model $MODEL"
$HS info "$MODEL" | tee demo-out/info.json
if $HS tokenize "$MODEL" "hello" >/dev/null 2>&1; then
  echo "demo: greedy continuation:"
  $HS generate "$MODEL" -n 48 --temp 0 | tee demo-out/generate.txt
  $HS trace "$MODEL" --prompt "Once upon a time there was a little dog. Once upon a time" \
     --hooks logits,hook_pattern,hook_z --out demo-out/trace.json
else
  $HS trace "$MODEL" --ids 1,2,3,4,5,6,7,8 --hooks logits,hook_pattern,hook_z --out demo-out/trace.json
fi
echo "demo: wrote demo-out/trace.json ($(du -h demo-out/trace.json | cut -f1)): logits, every head's pattern and hook_z"
