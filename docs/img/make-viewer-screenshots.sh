#!/usr/bin/env bash
# make-viewer-screenshots.sh — regenerate the screenshots of docs/viewer.md with the headless
# viewer (no display needed). Run from the repository root after `make`:
#   bash docs/img/make-viewer-screenshots.sh              # writes docs/img/viewer-*.png
#   bash docs/img/make-viewer-screenshots.sh OUT RUN.db   # the five views of an existing run into OUT/
# Planted-model views use the synthetic weight-pass reports in tests/fixtures/viewer (the planted
# model's weights are hand-built, so its real spectra are degenerate); with ../shared present the
# tiny-llama views use a fresh capture and the real analyze passes.
set -euo pipefail
HS=${HS:-bin/headscope}
OUT=${1:-docs/img}
mkdir -p "$OUT"
S=${HS_SHARED:-../shared}
SIZE=1000x620   # keeps each PNG under 100 KB; the noisier views use a smaller SIZE
shot() { local name=$1; shift; "$HS" view "$@" --size "$SIZE" --screenshot "$OUT/$name.png"; echo "  $OUT/$name.png ($(stat -c %s "$OUT/$name.png") bytes)"; }

if [ $# -ge 2 ]; then   # the five views of a given run (make demo)
  for v in grid head:0.1:0 spectra maps composition; do shot "view-${v%%:*}" "$2" --view "$v"; done
  exit 0
fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
$HS plant --out "$tmp/p" >/dev/null
$HS capture "$tmp/p" --prompts datasets/demo_prompts.txt --db "$tmp/p.db" --hooks hook_pattern --quiet >/dev/null 2>&1
$HS analyze sinks --db "$tmp/p.db" >/dev/null 2>&1
$HS analyze detectors --db "$tmp/p.db" >/dev/null 2>&1
FX=tests/fixtures/viewer
R="--report $FX/maps.json --report $FX/svd.json --report $FX/composition.json --report $FX/spectra.json"
shot viewer-grid "$tmp/p.db" --view grid --metric alpha_0
shot viewer-head-prev "$tmp/p.db" --view head:0.1:0
shot viewer-head-induction "$tmp/p.db" --view head:1.2:4
shot viewer-maps-fixture "$tmp/p.db" $R --view maps:1.3
shot viewer-light "$tmp/p.db" --view head:1.2:4 --light

M=$S/models/tiny-llama-shakespeare
if [ -d "$M" ]; then
  $HS capture "$M" --corpus "$S/corpora/tinyshakespeare/input.txt" --window 512 --stride 100000 --db "$tmp/s.db" --hooks hook_pattern --quiet >/dev/null 2>&1
  $HS analyze sinks --db "$tmp/s.db" >/dev/null 2>&1
  $HS analyze detectors --db "$tmp/s.db" >/dev/null 2>&1
  RS=""
  for p in svd composition spectra; do $HS analyze $p --model "$M" --out "$tmp/$p.json" >/dev/null 2>&1 && RS="$RS --report $tmp/$p.json"; done
  $HS analyze maps --model "$M" --relations datasets/relations --out "$tmp/maps.json" >/dev/null 2>&1 && RS="$RS --report $tmp/maps.json"
  shot viewer-llama-grid "$tmp/s.db" $RS --view grid --metric composition.max_in
  SIZE=840x520 shot viewer-llama-head "$tmp/s.db" --view head:2.7:2 --pattern-scale linear
  shot viewer-spectra "$tmp/s.db" $RS --view spectra:2.3
  shot viewer-maps "$tmp/s.db" $RS --view maps
  SIZE=800x500 shot viewer-composition "$tmp/s.db" $RS --view composition:1.3
else
  echo "  ../shared not found: tiny-llama screenshots skipped; spectra/composition from the fixtures"
  shot viewer-spectra "$tmp/p.db" $R --view spectra:1.2
  shot viewer-composition "$tmp/p.db" $R --view composition:0.1
fi
