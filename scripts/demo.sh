#!/usr/bin/env bash
# demo.sh — the main job, run by `make demo` after installing and building:
#   1. plant the ground-truth model (or take MODEL=path: an HF folder or a llama2.c .bin),
#   2. capture a built-in prompt set (datasets/demo_prompts.txt) into demo-out/run.db,
#   3. run every analysis pass (reports in the database and demo-out/*.json),
#   4. print a short summary: top heads per detector and the sink findings.
set -euo pipefail
HS=bin/headscope
OUT=demo-out
rm -rf "$OUT"; mkdir -p "$OUT"
if [ -z "${MODEL:-}" ]; then
  $HS plant --out "$OUT/planted" >/dev/null
  MODEL=$OUT/planted
  echo "demo: planted the ground-truth model in $MODEL (see docs/planted.md)"
fi
$HS capture "$MODEL" --prompts datasets/demo_prompts.txt --db "$OUT/run.db" --hooks hook_pattern --layers 0 --max-tokens 128 >/dev/null
$HS analyze sinks --db "$OUT/run.db" --out "$OUT/sinks.json"
$HS analyze detectors --db "$OUT/run.db" --out "$OUT/detectors.json"
echo
$HS summary --db "$OUT/run.db"
echo
echo "demo: wrote $OUT/run.db (SQLite: prompts, tokens, layer-0 patterns, per-head statistics, reports),"
echo "      $OUT/sinks.json and $OUT/detectors.json"
