#!/usr/bin/env bash
# cli_plant.sh — `headscope plant` end to end: the folder it writes loads in info/tokenize/trace,
# trace shows the planted heads on "abcabc", the same seed gives the same bytes, and bad input
# exits 2 with ONE error line. (The circuits themselves are measured in tests/test_plant.c.)
set -u
HS=${HS:-bin/headscope}
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "  ok    $1"; }
bad() { fail=$((fail+1)); echo "  FAIL  $1"; [ -n "${2:-}" ] && echo "        ${2:0:300}"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

expect_bad() {   # DESCRIPTION CMD...: exit 2, exactly one stderr line, empty stdout
  local what="$1"; shift
  local out rc lines
  out=$("$@" 2>"$tmp/err"); rc=$?; lines=$(grep -c '' "$tmp/err")
  if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && [ -z "$out" ]; then ok "bad input: $what -> exit 2: $(cat "$tmp/err")"
  else bad "bad input: $what (rc=$rc, $lines stderr lines)" "$(cat "$tmp/err")"; fi
}

$HS plant --help | grep -q "usage: headscope plant" && ok "plant --help" || bad "plant --help"
if $HS plant --out "$tmp/p" 2>/dev/null && $HS plant --out "$tmp/q" --seed 0 2>/dev/null; then ok "plant --out writes (default seed 0)"
else bad "plant --out"; fi
same=1; for f in config.json model.safetensors tokenizer.json tokenizer_config.json planted.json; do cmp -s "$tmp/p/$f" "$tmp/q/$f" || same=0; done
[ $same -eq 1 ] && ok "same seed -> identical files" || bad "same seed -> identical files"
out=$($HS info "$tmp/p")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert (d["model_type"],d["n_layers"],d["n_heads"],d["d_model"],d["vocab_size"],d["n_ctx"],d["bos_id"])==("gpt2",2,4,256,273,256,272), d' \
  && ok "info: gpt2 2x4, d_model 256, vocab 273, bos 272" || bad "info" "$out"
ids=$($HS tokenize "$tmp/p" "abcabc")
[ "$ids" = "[272,64,65,66,64,65,66]" ] && ok "tokenize prepends <|endoftext|>: $ids" || bad "tokenize" "$ids"
if $HS trace "$tmp/p" --prompt "abcabc" --out "$tmp/t.json" && python3 - "$tmp/t.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
p0, p1 = t["blocks.0.attn.hook_pattern"], t["blocks.1.attn.hook_pattern"]
T = len(t["ids"])
assert all(p0[1][i][i - 1] > 0.9 for i in range(1, T)), "0.1 previous-token"
assert all(p1[0][i][0] > 0.9 for i in range(T)), "1.0 BOS sink"
assert all(p1[2][i][i - 2] > 0.9 for i in range(4, T)), "1.2 induction"
L = t["logits"]
assert [max(range(len(L[i])), key=L[i].__getitem__) for i in (4, 5)] == t["ids"][5:7], "induction logits"
PY
then ok "trace abcabc: 0.1 attends i-1, 1.0 attends BOS, 1.2 attends the token after the earlier 'a'/'b'/'c'"
else bad "trace abcabc"; fi

expect_bad "plant without --out" $HS plant
expect_bad "--seed not a number" $HS plant --out "$tmp/x" --seed abc
expect_bad "--seed >= 2^53" $HS plant --out "$tmp/x" --seed 9007199254740992
expect_bad "unknown option" $HS plant --out "$tmp/x" --frob
: > "$tmp/file"
expect_bad "--out is a regular file" $HS plant --out "$tmp/file"
expect_bad "--out below a regular file" $HS plant --out "$tmp/file/m"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
