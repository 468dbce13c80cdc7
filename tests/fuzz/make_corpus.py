#!/usr/bin/env python3
"""Write the small libFuzzer seed corpora (run from the repo root; no dependencies):
  tests/fuzz/corpus/safetensors/  tiny valid files (F32/F16/BF16/I64, scalar, zero-size, metadata),
                                  truncated and corrupt variants
  tests/fuzz/corpus/config/       the fixture config.json files, spelling variants, a shard index
Each seed is a few hundred bytes to a few KB, so the corpus stays small in the repository."""
import json, os, struct, glob

ROOT = "tests/fuzz/corpus"
os.makedirs(f"{ROOT}/safetensors", exist_ok=True); os.makedirs(f"{ROOT}/config", exist_ok=True)
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}

def st(tensors, meta=True):
    hdr, data = {}, b""
    if meta: hdr["__metadata__"] = {"format": "pt"}
    for name, dt, shape in tensors:
        n = 1
        for s in shape: n *= s
        b = bytes((i * 37 + len(data)) & 255 for i in range(n * SIZES[dt]))
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

def put(name, blob):
    open(f"{ROOT}/safetensors/{name}", "wb").write(blob)

llama = [("model.embed_tokens.weight", "F32", [8, 4]), ("model.layers.0.self_attn.q_proj.weight", "BF16", [4, 4]),
         ("model.layers.0.self_attn.q_proj.bias", "F16", [4]), ("model.norm.weight", "F32", [4])]
put("llama-mixed.safetensors", st(llama))
put("scalar-zero.safetensors", st([("s", "F32", []), ("z", "I64", [0, 3]), ("u", "U8", [5])], meta=False))
put("gpt2.safetensors", st([("transformer.wte.weight", "F16", [6, 4]), ("transformer.h.0.attn.c_attn.weight", "F16", [4, 12]),
                            ("transformer.h.0.attn.bias", "F32", [1, 1, 2, 2])]))
full = st(llama)
put("truncated-data.safetensors", full[: len(full) - 7])
put("truncated-header.safetensors", full[:40])
put("length-only.safetensors", full[:8])
put("header-past-end.safetensors", struct.pack("<Q", 1 << 20) + b"{}")
put("empty-object.safetensors", struct.pack("<Q", 8) + b"{}      ")
bad = full.replace(b'"BF16"', b'"Q9__"')
put("unknown-dtype.safetensors", bad)

for p in sorted(glob.glob("tests/fixtures/models/rand-*/config.json")):
    name = p.split("/")[-2]
    open(f"{ROOT}/config/{name}.json", "w").write(json.dumps(json.load(open(p)), separators=(",", ":")))
base = json.load(open("tests/fixtures/models/rand-llama-gqa/config.json"))
variants = {
    "llama-rope5": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}},
    "llama-rope-scaling": {"rope_scaling": {"type": "linear", "factor": 2.0}},
    "llama-eos-list": {"eos_token_id": [2, 7], "num_key_value_heads": None, "head_dim": None},
    "qwen2-sliding": {"model_type": "qwen2", "use_sliding_window": True, "sliding_window": 4, "max_window_layers": 0,
                      "layer_types": ["sliding_attention", "sliding_attention"]},
    "gpt2-min": None,
}
for name, delta in variants.items():
    if delta is None:
        c = {"model_type": "gpt2", "vocab_size": 50, "n_embd": 16, "n_head": 2, "n_layer": 1, "n_positions": 8, "n_inner": None,
             "activation_function": "gelu_pytorch_tanh"}
    else:
        c = dict(base); c.update(delta)
    open(f"{ROOT}/config/{name}.json", "w").write(json.dumps(c, separators=(",", ":")))
# regression seed: found by fuzz_config (eps positive as a double, 0 as a float)
open(f"{ROOT}/config/eps-underflow.json", "w").write(json.dumps(
    {"model_type": "gpt2", "vocab_size": 50, "n_embd": 16, "n_head": 2, "n_layer": 1, "n_positions": 8,
     "layer_norm_epsilon": 1e-85}, separators=(",", ":")))
ix = json.load(open("tests/fixtures/models/rand-mistral/model.safetensors.index.json"))
ix["weight_map"] = dict(list(ix["weight_map"].items())[:6])
open(f"{ROOT}/config/index.json", "w").write(json.dumps(ix, separators=(",", ":")))
