#!/usr/bin/env bash
# run-bench.sh — run every benchmark binary; figures are printed as ratios against baselines
# measured in the same run. Env: HS (headscope binary), BUILD (build dir).
set -euo pipefail
for b in "$BUILD"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" "$HS"
done
