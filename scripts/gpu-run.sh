#!/usr/bin/env bash
# gpu-run.sh — run the CUDA tests (and the GPU benchmark) of a headscope built on a development
# machine, on the GPU machine, which builds nothing (it lacks our -dev packages; docs/gpu.md).
#
# ---------------------------------------------------------------- preparation, HERE (no GPU needed)
#   bash scripts/gpu-run.sh pack
# does the following; the same by hand:
#   make -j2 tests-build build/bench/bench_gpu            # bin/headscope, build/tests/*, the bench
#   echo /.gpu/ >> .git/info/exclude; echo /.devshare/ >> .git/info/exclude
#   mkdir -p .gpu/bin .gpu/tests .gpu/bench .gpu/libs
#   strip -o .gpu/bin/headscope bin/headscope             # stripped copies: the working tree that
#   for t in build/tests/test_*; do strip -o .gpu/tests/$(basename $t) $t; done   # travels is <= 64 MiB
#   strip -o .gpu/bench/bench_gpu build/bench/bench_gpu
#   # every shared library the binaries load, except glibc's and CUDA's own (the GPU machine has
#   # CUDA 13.0 in /usr/local/cuda/lib64) and libstdc++/libgcc_s (Ubuntu 24.04's are newer):
#   ldd bin/headscope build/tests/test_cuda | awk '/=>/ {print $1, $3}' | sort -u |
#     grep -vE '^(libc|libm|libpthread|libdl|librt|libresolv|ld-linux-x86-64|libcuda|libcudart|libcublas|libcublasLt|libstdc\+\+|libgcc_s)\.so' |
#     while read n p; do cp -L "$p" ".gpu/libs/$n"; done
#   tar -C .gpu/libs -cJf .gpu/libs.tar.xz . && rm -rf .gpu/libs   # ~16 MB (libopenblas is most of it)
#   mkdir -p .devshare && cp -r ../shared/models .devshare/          # the shared models (9 MB)
# ---------------------------------------------------------------- then, THERE (the device tool)
#   run(command="bash scripts/gpu-run.sh", carry=[".gpu", ".devshare"], timeout_s=600)
# It unpacks the libraries, keeps only those the machine lacks (.gpu/lib, first on LD_LIBRARY_PATH,
# then /usr/local/cuda/lib64), prints nvidia-smi -L, checks that every binary resolves its
# libraries, runs build/tests/test_cuda one section per process (a CUDA fault in one section
# cannot hide the others), reruns a failing section with HS_CUDA_SYNC=1 (and under
# compute-sanitizer when it is there) to name the kernel, then the benchmark if present.
# Full output goes to stdout and, when $OUT is set, to $OUT/gpu-run.log. Exit status: 0 when every
# section passed, 1 otherwise, 2 when the machine cannot run the binaries at all.
# Options (environment): SECTIONS="device kernels forward stats cli maps capture oom emulate" (default: all),
#   BENCH=0 to skip the benchmark, BENCH_ARGS (passed to bench_gpu, e.g. "--quick"),
#   REQUIRE_GPU=0 to accept a machine where CUDA sees no device (a dry run here).
set -u
cd "$(dirname "$0")/.."

if [ "${1:-}" = "pack" ]; then
  set -e
  make -j2 tests-build build/bench/bench_gpu
  if [ -d .git/info ]; then
    for p in /.gpu/ /.devshare/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
  fi
  rm -rf .gpu && mkdir -p .gpu/bin .gpu/tests .gpu/bench .gpu/libs
  strip -o .gpu/bin/headscope bin/headscope
  for t in build/tests/test_*; do strip -o ".gpu/tests/$(basename "$t")" "$t"; done
  [ -x build/bench/bench_gpu ] && strip -o .gpu/bench/bench_gpu build/bench/bench_gpu
  ldd bin/headscope build/tests/test_cuda | awk '/=>/ {print $1, $3}' | sort -u |
    grep -vE '^(libc|libm|libpthread|libdl|librt|libresolv|ld-linux-x86-64|libcuda|libcudart|libcublas|libcublasLt|libstdc\+\+|libgcc_s)\.so' |
    while read -r n p; do cp -L "$p" ".gpu/libs/$n"; done
  tar -C .gpu/libs -cJf .gpu/libs.tar.xz . && rm -rf .gpu/libs
  if [ -d ../shared/models ]; then rm -rf .devshare && mkdir -p .devshare && cp -r ../shared/models .devshare/; fi
  du -sh .gpu .devshare 2>/dev/null
  echo "packed: now run(command=\"bash scripts/gpu-run.sh\", carry=[\".gpu\", \".devshare\"])"
  exit 0
fi

LOG=/dev/null
[ -n "${OUT:-}" ] && LOG="$OUT/gpu-run.log"
say() { echo "$@" | tee -a "$LOG"; }

# ---------------------------------------------------------------- binaries and libraries
HSB=bin/headscope; TESTS=build/tests; BENCHB=build/bench/bench_gpu
[ -x .gpu/bin/headscope ] && HSB=.gpu/bin/headscope
[ -x .gpu/tests/test_cuda ] && TESTS=.gpu/tests
[ -x .gpu/bench/bench_gpu ] && BENCHB=.gpu/bench/bench_gpu
if [ -f .gpu/libs.tar.xz ]; then
  rm -rf .gpu/lib-all .gpu/lib && mkdir -p .gpu/lib-all .gpu/lib
  tar -C .gpu/lib-all -xJf .gpu/libs.tar.xz
  # use our copy only where the machine has no library of that soname
  have=$(ldconfig -p 2>/dev/null | awk 'NR > 1 {print $1}')
  for f in .gpu/lib-all/*; do n=$(basename "$f"); echo "$have" | grep -qxF "$n" || ln -sf "../lib-all/$n" ".gpu/lib/$n"; done
  say "libraries carried and used here: $(ls .gpu/lib | tr '\n' ' ')"
fi
export LD_LIBRARY_PATH="$PWD/.gpu/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ "${1:-}" = "libs" ] && exit 0   # only unpack the libraries (scripts/bench-gpu.sh)
export HS="$HSB"
[ -d .devshare/models ] && export HS_SHARED="$PWD/.devshare"

say "== machine"
nvidia-smi -L 2>&1 | tee -a "$LOG" || say "nvidia-smi failed"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$LOG"
say "binary: $HSB  tests: $TESTS  shared models: ${HS_SHARED:-absent}"
missing=0
for b in "$HSB" "$TESTS/test_cuda" $( [ -x "$BENCHB" ] && echo "$BENCHB" ); do
  if [ ! -x "$b" ]; then say "MISSING $b — build it here first (bash scripts/gpu-run.sh pack)"; missing=1; continue; fi
  nf=$(ldd "$b" 2>&1 | grep "not found")
  [ -n "$nf" ] && { say "$b cannot load: $nf"; missing=1; }
done
[ $missing -eq 0 ] || { say "cannot run: see the lines above (carry .gpu with the libraries)"; exit 2; }

# ---------------------------------------------------------------- tests, one section per process
SECTIONS=${SECTIONS:-"device kernels forward stats cli maps capture oom emulate"}
fails=0; P=0; F=0; S=0
for s in $SECTIONS; do
  say "== test_cuda $s"
  out=$("$TESTS/test_cuda" "$s" 2>&1); rc=$?
  echo "$out" | tee -a "$LOG"
  last=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ -n "$last" ]; then
    P=$((P + $(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')))
    F=$((F + $(echo "$last" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    S=$((S + $(echo "$last" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || echo 0)))
  fi
  if [ "$s" = "device" ] && [ "${REQUIRE_GPU:-1}" = "1" ] && ! echo "$out" | grep -q "ok    CUDA device 0"; then
    say "  no GPU visible to CUDA: every GPU check above was skipped (REQUIRE_GPU=0 to accept that)"; F=$((F + 1)); fails=$((fails + 1))
  fi
  if [ $rc -ne 0 ] || [ -z "$last" ]; then
    fails=$((fails + 1))
    [ -z "$last" ] && { say "  section $s died (exit $rc) before its summary"; F=$((F + 1)); }
    if [ "$s" != "emulate" ] && [ "$s" != "device" ]; then
      say "== rerun of $s with HS_CUDA_SYNC=1 (names the failing kernel), failures only"
      HS_CUDA_SYNC=1 timeout 300 "$TESTS/test_cuda" "$s" 2>&1 | grep -vE '^  ok ' | tee -a "$LOG"
      if command -v compute-sanitizer >/dev/null 2>&1 && [ "$s" = "kernels" ]; then
        say "== compute-sanitizer memcheck on $s (errors only)"
        timeout 300 compute-sanitizer --tool memcheck --print-limit 20 "$TESTS/test_cuda" "$s" 2>&1 | grep -vE '^  ok ' | tail -60 | tee -a "$LOG"
      fi
    fi
  fi
done
say "== test_cuda total: $P passed, $F failed, $S skipped"

# ---------------------------------------------------------------- benchmark
if [ "${BENCH:-1}" != "0" ] && [ -x "$BENCHB" ]; then
  say "== bench_gpu ${BENCH_ARGS:-}"
  timeout 420 "$BENCHB" ${BENCH_ARGS:-} 2>&1 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "bench_gpu failed or timed out"; fails=$((fails + 1)); }
  if [ -f scripts/bench_gpu_hf.py ] && python3 -c 'import torch, transformers' 2>/dev/null; then
    say "== HF transformers baseline (same GPU, same shapes)"
    timeout 300 python3 scripts/bench_gpu_hf.py ${BENCH_ARGS:-} 2>&1 | tee -a "$LOG"
  fi
fi
[ $fails -eq 0 ] && [ $F -eq 0 ] && { say "gpu-run: all passed"; exit 0; }
say "gpu-run: $fails section(s) failed"
exit 1
