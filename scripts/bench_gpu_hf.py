#!/usr/bin/env python3
"""bench_gpu_hf.py — the HF transformers baseline for tests/bench/bench_gpu.c (issue 4), run on the
same GPU in the same session: the same random-init shapes (GPT-2 small with 4096 positions,
Llama-3.2-1B), bf16, batch 8, T = 1024 and 4096.
  (a) SDPA forward, last-position logits only (logits_to_keep=1 where supported)
  (b) eager attention with output_attentions=True (how users capture patterns today): time and
      peak memory; an out-of-memory is reported as such.
Prints 'RESULT <model> <T> <figure> <value>' lines that scripts/bench-gpu.sh pairs with
bench_gpu's. Usage: bench_gpu_hf.py [--quick] [--model gpt2|llama] [--reps N]
"""
import sys, time

def main():
    import torch, transformers
    args = sys.argv[1:]
    quick = "--quick" in args
    only = args[args.index("--model") + 1] if "--model" in args else None
    reps = int(args[args.index("--reps") + 1]) if "--reps" in args else 3
    dev = torch.device("cuda")
    torch.manual_seed(0)
    print(f"HF transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    shapes = []
    if only in (None, "gpt2"):
        shapes.append(("gpt2-small", lambda: transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=4096,
                                                                    vocab_size=50257), [1024] if quick else [1024, 4096]))
    if not quick and only in (None, "llama"):
        shapes.append(("llama-3.2-1b", lambda: transformers.LlamaConfig(hidden_size=2048, intermediate_size=8192,
                       num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
                       rope_theta=500000.0, tie_word_embeddings=True, max_position_embeddings=131072), [1024, 4096]))
    B = 8
    for name, mk, Ts in shapes:
        for impl in ("sdpa", "eager"):
            cfg = mk()
            try:    # transformers 5.x spells it dtype=, 4.x torch_dtype=
                model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation=impl)
            except TypeError:
                model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation=impl)
            model = model.to(dev).eval()
            for T in Ts:
                ids = torch.randint(0, cfg.vocab_size, (B, T), device=dev)
                kw = {"output_attentions": impl == "eager"}
                def fwd():
                    with torch.no_grad():
                        try:
                            return model(input_ids=ids, logits_to_keep=1, use_cache=False, **kw)
                        except TypeError:
                            return model(input_ids=ids, use_cache=False, **kw)
                try:
                    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
                    out = fwd(); del out; torch.cuda.synchronize()
                    best = 1e30
                    for _ in range(reps):
                        t0 = time.perf_counter(); out = fwd(); torch.cuda.synchronize(); best = min(best, time.perf_counter() - t0); del out
                    peak = torch.cuda.max_memory_allocated() / 2**20
                    tag = "hf_sdpa" if impl == "sdpa" else "hf_eager_attn"
                    print(f"   [{impl}{' + output_attentions' if impl == 'eager' else ''}] {name} T={T}: {best*1e3:.1f} ms, "
                          f"{B*T/best:.0f} tok/s, peak {peak:.0f} MiB")
                    print(f"RESULT {name} {T} {tag}_ms {best*1e3:.3f}")
                    print(f"RESULT {name} {T} {tag}_peak_mib {peak:.1f}")
                except torch.cuda.OutOfMemoryError:
                    print(f"   [{impl}] {name} T={T}: out of GPU memory")
                    print(f"RESULT {name} {T} {'hf_sdpa' if impl == 'sdpa' else 'hf_eager_attn'}_ms OOM")
                    torch.cuda.empty_cache()
                sys.stdout.flush()
            del model
            torch.cuda.empty_cache()

if __name__ == "__main__":
    main()
