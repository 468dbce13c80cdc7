#!/usr/bin/env bash
# cli_runtime.sh — the CLI contract end to end: info, tokenize, detokenize, generate, trace,
# --help everywhere, and bad input (exit status 2 with ONE error line, nothing half-written).
# References: ../shared/models/stories260K/reference.json (llama2.c's own greedy output) and
# tests/fixtures/ref (HF). Checks needing ../shared skip visibly when it is absent.
set -u
HS=${HS:-bin/headscope}
S=${HS_SHARED:-../shared}
pass=0; fail=0; skip=0
ok()  { pass=$((pass+1)); echo "  ok    $1"; }
bad() { fail=$((fail+1)); echo "  FAIL  $1"; [ -n "${2:-}" ] && echo "        ${2:0:300}"; }
skp() { skip=$((skip+1)); echo "  skip  $1"; }
py()  { python3 -c "$@"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# expect_bad DESCRIPTION [~PATTERN] CMD...: exit 2, exactly one stderr line (matching PATTERN), empty stdout
expect_bad() {
  local what="$1"; shift
  local pat=""; case "$1" in "~"*) pat="${1#\~}"; shift;; esac
  local out err rc
  out=$("$@" 2>"$tmp/err"); rc=$?; err=$(cat "$tmp/err")
  local lines; lines=$(printf '%s' "$err" | grep -c '')
  if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && [ -z "$out" ] && { [ -z "$pat" ] || echo "$err" | grep -qiE "$pat"; }; then ok "bad input: $what -> exit 2: $err"
  else bad "bad input: $what (rc=$rc, $lines stderr lines)" "$err"; fi
}

for c in info tokenize detokenize generate trace; do
  if $HS $c --help | grep -q "usage: headscope $c"; then ok "$c --help"; else bad "$c --help"; fi
done
expect_bad "unknown command" $HS frobnicate
expect_bad "info without MODEL" $HS info
expect_bad "bad -n value" $HS generate tests/fixtures/models/rand-gpt2 -n abc

# ---------------------------------------------------------------- fixtures (always present)
out=$($HS info tests/fixtures/models/rand-llama-gqa)
if echo "$out" | py 'import json,sys; d=json.load(sys.stdin); assert (d["format"],d["model_type"],d["n_layers"],d["n_heads"],d["n_kv_heads"],d["d_model"],d["d_head"],d["d_mlp"],d["vocab_size"],d["n_ctx"])==("hf","llama",2,4,2,64,24,96,256,64), d; assert d["n_params"]>0'; then
  ok "info: rand-llama-gqa (4.x config spelling, head_dim 24)"; else bad "info: rand-llama-gqa" "$out"; fi
$HS trace tests/fixtures/models/rand-qwen2 --ids 5,6,7,8 --out $tmp/q.json --hooks logits,hook_z,hook_resid_post --layers 1 --heads 0,2 \
  && py 'import json,sys; d=json.load(open(sys.argv[1])); s=d["shapes"]; assert s["blocks.1.attn.hook_z"]==[4,2,16], s; assert len(d["blocks.1.attn.hook_z"][0])==2 and "blocks.0.attn.hook_z" not in d; assert s["logits"]==[4,256]' $tmp/q.json \
  && ok "trace: --layers/--heads select what is written, shapes member matches" || bad "trace: --layers/--heads selection"

# ---------------------------------------------------------------- shared models
if [ ! -d "$S/models" ]; then skp "shared-model CLI checks: $S is missing"; echo "$pass passed, $fail failed, $skip skipped"; exit 0; fi
L=$S/models/tiny-llama-shakespeare; G=$S/models/tiny-gpt2-shakespeare; B=$S/models/stories260K/stories260K.bin

out=$($HS info $L)
if echo "$out" | py 'import json,sys; d=json.load(sys.stdin); assert (d["format"],d["model_type"],d["n_layers"],d["n_heads"],d["n_kv_heads"],d["d_model"],d["d_head"],d["d_mlp"],d["vocab_size"],d["n_ctx"])==("hf","llama",4,8,4,128,16,344,1024,512)'; then
  ok "info: tiny-llama-shakespeare"; else bad "info: tiny-llama-shakespeare" "$out"; fi
out=$($HS info $B)
if echo "$out" | py 'import json,sys; d=json.load(sys.stdin); assert (d["format"],d["n_layers"],d["n_heads"],d["n_kv_heads"],d["d_model"],d["d_head"],d["d_mlp"],d["vocab_size"],d["n_ctx"])==("llama2c",5,8,4,64,8,172,512,512)'; then
  ok "info: stories260K (llama2.c)"; else bad "info: stories260K" "$out"; fi

# llama2.c exactness: 256 greedy ids and the text, against run.c's own output
ids=$($HS generate $B -n 256 --temp 0 --ids)
if py 'import json,sys; r=json.load(open(sys.argv[1]))["greedy_ids_after_bos"]; g=json.loads(sys.argv[2]); assert g==r, (len(g), [i for i,(a,b) in enumerate(zip(g,r)) if a!=b][:3])' $S/models/stories260K/reference.json "$ids"; then
  ok "generate: stories260K 256 greedy ids == llama2.c reference"; else bad "generate: stories260K greedy ids" "$ids"; fi
# reference.json's greedy_text spans 257 generated tokens (one more than greedy_ids_after_bos: its
# last token is the closing quote, id 436), so -n 257 must print it exactly and -n 256 all but that quote.
$HS generate $B -n 257 --temp 0 > $tmp/text.txt
if py 'import json,sys; r=json.load(open(sys.argv[1]))["greedy_text"]; g=open(sys.argv[2]).read(); assert g.rstrip("\n")==r, (g[:80], r[:80])' $S/models/stories260K/reference.json $tmp/text.txt; then
  ok "generate: stories260K text (-n 257) == llama2.c greedy_text"; else bad "generate: stories260K text" "$(head -c 200 $tmp/text.txt)"; fi
$HS generate $B -n 256 --temp 0 > $tmp/text.txt
if py 'import json,sys; r=json.load(open(sys.argv[1]))["greedy_text"]; g=open(sys.argv[2]).read(); assert g.rstrip("\n")+chr(34)==r' $S/models/stories260K/reference.json $tmp/text.txt; then
  ok "generate: stories260K text (-n 256) == greedy_text without its 257th token"; else bad "generate: stories260K -n 256 text"; fi
# HF greedy continuation (transformers generate, float64) through the CLI
for m in tiny-gpt2-shakespeare tiny-llama-shakespeare; do
  ids=$($HS generate $S/models/$m --prompt "$(py 'import json,sys; print(json.load(open(sys.argv[1]))["prompts"][0]["text"])' tests/fixtures/ref/$m.json)" -n 24 --temp 0 --ids)
  if py 'import json,sys; r=json.load(open(sys.argv[1]))["prompts"][0]["greedy_ids"]; g=json.loads(sys.argv[2]); assert g==r[:len(g)] and len(g)>=1, (g,r)' tests/fixtures/ref/$m.json "$ids"; then
    ok "generate: $m greedy ids == HF generate"; else bad "generate: $m greedy ids" "$ids"; fi
done
# seeded sampling is reproducible
a=$($HS generate $B -n 40 --temp 0.8 --top-p 0.9 --seed 42 --ids); b=$($HS generate $B -n 40 --temp 0.8 --top-p 0.9 --seed 42 --ids)
c=$($HS generate $B -n 40 --temp 0.8 --top-p 0.9 --seed 43 --ids)
[ "$a" = "$b" ] && [ "$a" != "$c" ] && ok "generate: same seed -> same sample, other seed -> other sample" || bad "generate: seeded sampling" "$a / $c"

out=$($HS tokenize $L "First Citizen:")
py 'import json,sys; d=json.loads(sys.argv[1]); S=json.load(open(sys.argv[2])); r=[c["ids"] for c in json.load(open(sys.argv[3]))["cases"] if S[c["i"]]=="First Citizen:"][0]; assert d[0]==1 and d==r, (d,r)' "$out" tests/fixtures/tok_strings.json tests/fixtures/tok/tiny-llama.json \
  && ok "tokenize: llama tokenizer adds BOS and matches HF ids" || bad "tokenize: llama BOS" "$out"
out=$($HS tokenize $L "First Citizen:" --no-special)
py 'import json,sys; d=json.loads(sys.argv[1]); assert d and d[0]!=1' "$out" && ok "tokenize --no-special omits BOS" || bad "tokenize --no-special" "$out"
txt=$($HS detokenize $G $($HS tokenize $G "ROMEO: O, she doth teach the torches to burn bright!" | tr -d '[]' | tr ',' ' '))
[ "$txt" = "ROMEO: O, she doth teach the torches to burn bright!" ] && ok "detokenize(tokenize(x)) == x (gpt2)" || bad "detokenize roundtrip" "$txt"

$HS trace $G --prompt "ROMEO: O" --out $tmp/t.json && py '
import json,sys
d=json.load(open(sys.argv[1])); T=len(d["ids"]); p=d["blocks.0.attn.hook_pattern"]
assert d["shapes"]["blocks.0.attn.hook_pattern"]==[4,T,T] and len(d["tokens"])==T
for h in p:
    for i,row in enumerate(h):
        assert abs(sum(row)-1)<1e-5 and all(x==0 for x in row[i+1:])
assert len(d["logits"])==T and len(d["logits"][0])==1024' $tmp/t.json && ok "trace: default hooks, causal normalised patterns [H][T][T], logits [T][V]" || bad "trace default"
# trace patterns equal the HF reference
$HS trace $L --ids "$(py 'import json,sys; print(",".join(map(str,json.load(open(sys.argv[1]))["prompts"][1]["ids"])))' tests/fixtures/ref/tiny-llama-shakespeare.json)" --out $tmp/l.json --hooks hook_pattern && py '
import json,sys
d=json.load(open(sys.argv[1])); r=json.load(open(sys.argv[2]))["prompts"][1]["pattern"]
e=max(abs(a-b) for l in range(4) for h,hr in zip(d["blocks.%d.attn.hook_pattern"%l], r[l]) for ra,rb in zip(h,hr) for a,b in zip(ra,rb))
assert e<1e-5, e' $tmp/l.json tests/fixtures/ref/tiny-llama-shakespeare.json && ok "trace: tiny-llama patterns == HF within 1e-5" || bad "trace patterns vs HF"

# ---------------------------------------------------------------- bad input through the CLI
printf 'not a model' > $tmp/bad.bin
expect_bad "not a model file" $HS info $tmp/bad.bin
expect_bad "missing path" $HS info $tmp/nope
head -c 100000 $B > $tmp/trunc.bin
expect_bad "truncated llama2.c checkpoint" $HS info $tmp/trunc.bin
mk() { rm -rf "$tmp/$1"; mkdir -p "$tmp/$1"; cp tests/fixtures/models/rand-gpt2/config.json "$tmp/$1/"; }
mk hdr; py 'import struct,sys; open(sys.argv[1],"wb").write(struct.pack("<Q",10**6)+b"{}")' $tmp/hdr/model.safetensors
expect_bad "safetensors header length past end" "~header" $HS info $tmp/hdr
mk trunc; head -c 5000 tests/fixtures/models/rand-gpt2/model.safetensors > $tmp/trunc/model.safetensors
expect_bad "truncated safetensors" $HS info $tmp/trunc
# rewrite the header of the real fixture: edit_header DIR PYTHON-EXPR-ON-h
edit() { mk $1; py '
import json,struct,sys
raw=open("tests/fixtures/models/rand-gpt2/model.safetensors","rb").read(); n=struct.unpack("<Q",raw[:8])[0]
h=json.loads(raw[8:8+n]); exec(sys.argv[2]); hb=json.dumps(h).encode(); hb+=b" "*((8-len(hb)%8)%8)
open(sys.argv[1],"wb").write(struct.pack("<Q",len(hb))+hb+raw[8+n:])' $tmp/$1/model.safetensors "$2"; }
edit dtype 'h["transformer.wte.weight"]["dtype"]="Q9"'
expect_bad "unknown dtype" "~dtype" $HS info $tmp/dtype
edit shape 'h["transformer.wte.weight"]["shape"]=[256,65]'
expect_bad "tensor shape/offset mismatch" "~wte" $HS info $tmp/shape
edit missing 'del h["transformer.h.1.mlp.c_fc.weight"]'
expect_bad "missing tensor" "~c_fc" $HS info $tmp/missing
mk cfg; cp tests/fixtures/models/rand-gpt2/model.safetensors $tmp/cfg/; py 'import json,sys; c=json.load(open(sys.argv[1])); del c["n_embd"]; json.dump(c,open(sys.argv[1],"w"))' $tmp/cfg/config.json
expect_bad "config missing a field" "~n_embd" $HS info $tmp/cfg
mk mt; cp tests/fixtures/models/rand-gpt2/model.safetensors $tmp/mt/; py 'import json,sys; c=json.load(open(sys.argv[1])); c["model_type"]="bert"; json.dump(c,open(sys.argv[1],"w"))' $tmp/mt/config.json
expect_bad "unsupported model_type" "~supported: gpt2" $HS info $tmp/mt
rm -rf $tmp/tk; cp -r $G $tmp/tk; py 'import json,sys; t=json.load(open(sys.argv[1])); t["model"]["type"]="WordPiece"; json.dump(t,open(sys.argv[1],"w"))' $tmp/tk/tokenizer.json
expect_bad "tokenizer with unknown model type" "~WordPiece" $HS tokenize $tmp/tk "hello"
expect_bad "non-UTF-8 prompt" "~offset 2" $HS tokenize $G "$(printf 'ab\xffcd')"
expect_bad "non-UTF-8 prompt (trace)" $HS trace $G --prompt "$(printf 'ab\xc3')" --out $tmp/x.json
long=$(py 'print(" ".join(["word"]*700))')
expect_bad "prompt longer than n_ctx (trace)" "~n_ctx" $HS trace $G --prompt "$long" --out $tmp/long.json
[ ! -e $tmp/long.json ] && [ ! -e $tmp/long.json.tmp ] && ok "failed trace leaves no output file" || bad "failed trace left a file"
expect_bad "prompt longer than n_ctx (generate)" $HS generate $G --prompt "$long" -n 4
expect_bad "token id outside the vocabulary" $HS trace $G --ids 5,99999 --out $tmp/x.json
expect_bad "unknown hook name" $HS trace $G --ids 5,6 --hooks hook_nonsense --out $tmp/x.json
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
