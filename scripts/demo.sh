#!/usr/bin/env bash
# demo.sh — the main job, run by `make demo` after installing and building:
#   1. plant the ground-truth model (or take MODEL=path: an HF folder or a llama2.c .bin),
#   2. capture a built-in prompt set (datasets/demo_prompts.txt) into demo-out/run.db,
#   3. run every analysis pass (reports in the database and demo-out/*.json),
#   4. run the weight-only passes (MAPS copying, SVD, composition, spectra),
#   5. print a short summary: top heads per detector and the sink findings,
#   6. render every viewer view headlessly to demo-out/view-*.png.
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
for pass in svd composition spectra; do $HS analyze $pass --model "$MODEL" --out "$OUT/$pass.json"; done
$HS analyze maps --model "$MODEL" --relations datasets/relations/char_copying.json --first-mlp off --out "$OUT/maps.json"
echo
$HS summary --db "$OUT/run.db"
echo
# headless screenshots of every view of the viewer (docs/viewer.md)
for v in grid head:0.1:0 spectra maps composition; do
  $HS view "$OUT/run.db" --report "$OUT/maps.json" --report "$OUT/svd.json" --report "$OUT/composition.json" \
     --report "$OUT/spectra.json" --view "$v" --size 1000x620 --screenshot "$OUT/view-${v%%:*}.png"
done
echo "demo: wrote $OUT/run.db (SQLite: prompts, tokens, layer-0 patterns, per-head statistics, reports),"
echo "      $OUT/{sinks,detectors,maps,svd,composition,spectra}.json and $OUT/view-*.png (headscope view $OUT/run.db to explore)"
