#!/usr/bin/env bash
# run-tests.sh — run every test program and tests/cli_*.sh, then print the grand total as the
# last line: "N passed, N failed, N skipped". Each test's own last line has that form.
# Env: HS (the headscope binary), BUILD (build dir). Args: test binaries.
set -u
P=0; F=0; S=0; broken=0
run_one() {
  local name="$1"; shift
  echo "== $name"
  local out; out=$("$@" 2>&1); local rc=$?
  echo "$out" | sed 's/^/  /'
  local last; last=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ -z "$last" ]; then echo "  FAIL  $name printed no summary (exit $rc)"; F=$((F+1)); return; fi
  local p f s; p=$(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/'); f=$(echo "$last" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=$(echo "$last" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || echo 0)
  P=$((P+p)); F=$((F+f)); S=$((S+${s:-0}))
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then echo "  FAIL  $name exited $rc"; F=$((F+1)); fi
}
for t in "$@"; do run_one "$(basename "$t")" "$t"; done
for t in tests/cli_*.sh; do [ -f "$t" ] && run_one "$(basename "$t")" env HS="$HS" bash "$t"; done
echo "$P passed, $F failed, $S skipped"
[ $F -eq 0 ]
