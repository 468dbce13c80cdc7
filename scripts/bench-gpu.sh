#!/usr/bin/env bash
# bench-gpu.sh — the GPU benchmark of issue 4 on the GPU machine: bench_gpu (headscope) and
# bench_gpu_hf.py (HF transformers, same GPU, same shapes) in one run, then the ratios against the
# issue's targets:  (a) HF SDPA / headscope forward >= 1.5x;  (b) HF eager+output_attentions /
# headscope forward+stats >= 5x and headscope memory <= 1/4 of HF's;  (c) reported as is.
# Usage (there, after scripts/gpu-run.sh pack here): bash scripts/bench-gpu.sh [--quick] [--model gpt2|llama]
set -u
cd "$(dirname "$0")/.."
B=build/bench/bench_gpu; [ -x .gpu/bench/bench_gpu ] && B=.gpu/bench/bench_gpu
[ -f .gpu/libs.tar.xz ] && bash scripts/gpu-run.sh libs >/dev/null   # unpack the carried libraries
export LD_LIBRARY_PATH="$PWD/.gpu/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
"$B" "$@" | tee "$tmp"
python3 scripts/bench_gpu_hf.py "$@" | tee -a "$tmp"
echo "== ratios (targets: a >= 1.5, b >= 5, memory <= 0.25)"
awk '$1 == "RESULT" { v[$2 " " $3 " " $4] = $5; k[$2 " " $3] = 1 }
     END { for (m in k) {
             hs = v[m " forward_bf16_ms"]; hf = v[m " hf_sdpa_ms"]; st = v[m " stats_ms"]; he = v[m " hf_eager_attn_ms"];
             mem = v[m " device_mib"]; hm = v[m " hf_eager_attn_peak_mib"]; sg = v[m " forward_bf16-single_ms"];
             ss = v[m " stats_bf16-single_ms"]; fa = v[m " forward_bf16-fp32attn_ms"];
             printf "%-22s (a) HF sdpa / ours %s%s%s   (b) HF eager+attn / ours+stats %s%s   memory ours / HF eager %s\n", m,
               (hs && hf && hf != "OOM") ? sprintf("%.2fx", hf / hs) : "n/a",
               (sg && hf && hf != "OOM") ? sprintf(" (single-pass bf16: %.2fx)", hf / sg) : "",
               (fa && hf && hf != "OOM") ? sprintf(" (fp32 attention: %.2fx)", hf / fa) : "",
               (st && he) ? (he == "OOM" ? "HF out of memory" : sprintf("%.2fx", he / st)) : "n/a",
               (ss && he && he != "OOM") ? sprintf(" (single-pass: %.2fx)", he / ss) : "",
               (mem && hm) ? sprintf("%.3f", mem / hm) : (he == "OOM" ? "HF out of memory" : "n/a") } }' "$tmp" | sort
