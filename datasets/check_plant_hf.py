#!/usr/bin/env python3
"""Check a planted model (`headscope plant --out DIR`) with Hugging Face transformers and tokenizers.

Why: the planted folder claims to be an ordinary gpt2 checkpoint; this loads it the way a
researcher would and checks the planted heads and headscope's logits against transformers'.
tests/test_plant.c checks the same properties with headscope's own runtime; this script needs
torch, transformers >= 5 and tokenizers, which only the GPU machine has.

Usage: python3 datasets/check_plant_hf.py DIR [HEADSCOPE_BIN]
Exit status 0 when every check passes, 1 otherwise.
"""
import json, os, random, subprocess, sys, tempfile
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

d = sys.argv[1]
hs = sys.argv[2] if len(sys.argv) > 2 else "bin/headscope"
planted = json.load(open(os.path.join(d, "planted.json")))
bos, fails, passes = planted["bos_token_id"], [], []

def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    (passes if ok else fails).append(what)

tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
ids = tok.encode("abcabc the cat").ids
check(ids[0] == bos and tok.decode(ids[1:], skip_special_tokens=False) == "abcabc the cat",
      f"tokenizers: BOS prepended and round trip ({ids})")

model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float64, attn_implementation="eager").eval()
rng = random.Random(1)
half = 40
r = rng.sample(range(bos), half)                   # distinct tokens: unambiguous induction
seq = [bos] + r + r
with torch.no_grad():
    out = model(torch.tensor([seq]), output_attentions=True)
att = [a[0] for a in out.attentions]               # per layer (H, T, T)
T, H = len(seq), att[0].shape[0]
def score(name, l, h):
    a = att[l][h]
    if name == "previous_token": return float(sum(a[i, i - 1] for i in range(1, T)) / (T - 1))
    if name == "bos_sink": return float(sum(a[i, 0] for i in range(1, T)) / (T - 1))
    return float(sum(a[i, i - half + 1] for i in range(half + 1, T)) / half)   # induction
for prop, thr in (("previous_token", 0.9), ("bos_sink", 0.9), ("induction", 0.8)):
    l, h = map(int, planted[prop].split("."))
    best_filler = max(score(prop, *map(int, f.split("."))) for f in planted["filler"])
    s = score(prop, l, h)
    check(s > thr and s - best_filler >= 0.3, f"{prop} {planted[prop]} = {s:.4f} (best filler {best_filler:.4f})")

pred = out.logits[0].argmax(-1).tolist()
hits = sum(pred[i] == seq[i + 1] for i in range(half + 1, T - 1))
check(hits >= 0.9 * (half - 1), f"transformers predicts the repeat: {hits}/{half - 1}")

with tempfile.TemporaryDirectory() as tmp:         # headscope's logits on the same ids
    tr = os.path.join(tmp, "t.json")
    subprocess.run([hs, "trace", d, "--ids", ",".join(map(str, seq)), "--out", tr], check=True)
    ours = torch.tensor(json.load(open(tr))["logits"], dtype=torch.float64)
ref = out.logits[0]
diff = (torch.log_softmax(ours, -1) - torch.log_softmax(ref, -1)).abs().max().item()
check(diff < 1e-3, f"headscope log-softmax logits match transformers (max diff {diff:.2e})")
print(f"{len(passes)} passed, {len(fails)} failed")
sys.exit(1 if fails else 0)
