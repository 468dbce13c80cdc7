#!/usr/bin/env bash
# run-fuzz.sh SECONDS FUZZER... — split SECONDS of libFuzzer time across the fuzz targets, each
# seeded from tests/fuzz/corpus/<name>/ (copied to a scratch dir so the repo corpus stays small).
set -euo pipefail
total=$1; shift
n=$#; [ "$n" -gt 0 ] || { echo "run-fuzz: no fuzz targets"; exit 0; }
each=$(( total / n )); [ "$each" -ge 5 ] || each=5
for fz in "$@"; do
  name=$(basename "$fz"); name=${name#fuzz_}
  work=$(mktemp -d); seed="tests/fuzz/corpus/$name"
  [ -d "$seed" ] && cp -r "$seed"/. "$work"/ 2>/dev/null || true
  echo "run-fuzz: $fz for ${each}s"
  "$fz" -max_total_time="$each" -rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=0 "$work" 2>&1 | tail -3
  rm -rf "$work"
done
echo "run-fuzz: all targets ran clean"
