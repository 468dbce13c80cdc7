# headscope — build, test, bench, demo.
#   make            build bin/headscope (CUDA objects too when nvcc exists)
#   make test       run every test; last line "N passed, N failed, N skipped"
#   make test SAN=1 the same under ASan/UBSan (separate build dir)
#   make bench      benchmarks (figures as ratios against baselines from the same run)
#   make fuzz       libFuzzer targets (clang); FUZZ_SECONDS=60 make fuzz-run
#   make demo       install deps, build, run the main job on the embedded default model
#   make deps       install Debian packages (scripts/install-deps.sh)
SHELL := /bin/bash
CC      ?= cc
PKGS    := sqlite3 libcjson openblas lapacke libpcre2-8 sdl2 SDL2_ttf SDL2_image
SAN     ?= 0
BUILD   := build$(if $(filter 1,$(SAN)),-san,)
# -fno-trapping-math / -fno-math-errno change no computed value (only FP exception flags and errno),
# but let GCC if-convert and vectorise the softmax's exp loop (runtime/fastmath.h).
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes -g \
               -fno-trapping-math -fno-math-errno
ifeq ($(SAN),1)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
else
  OPT := -O3
  LDSAN :=
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  := $(CFLAGS_BASE) $(OPT) -I. -Iruntime $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := $(PKG_LIBS) -lpthread -lm

# ---- CUDA (optional: the CPU build is complete without it) ----
# nvcc may sit anywhere (/usr/local/cuda/bin, or a symlink or wrapper in /usr/local/bin), so
# scripts/find-cuda.sh asks nvcc itself where its libraries and headers are. With nvcc but no
# cuBLAS/cudart to link, the .cu files are still compiled (CUDA code must always compile) and the
# binary links the CPU stub (runtime/gpu_stub.c): `--device cuda` then fails with one clear line.
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CU_SRC := $(wildcard runtime/cuda/*.cu probe/cuda/*.cu)
ifneq ($(NVCC),)
ifneq ($(CU_SRC),)
  CUDA_DIRS := $(shell bash scripts/find-cuda.sh $(NVCC))
  CU_CHECK_OBJ := $(CU_SRC:%.cu=$(BUILD)/%.o)
  ifneq ($(CUDA_DIRS),)
    CUDA_LIBDIR := $(word 1,$(CUDA_DIRS))
    CUDA_INCDIR := $(word 2,$(CUDA_DIRS))
    CU_OBJ := $(CU_CHECK_OBJ)
    CFLAGS += -DHS_HAVE_CUDA=1 -I$(CUDA_INCDIR)
    # cuBLAS is dlopen()ed on first use (runtime/cuda/rt_cuda_blas.cu): only cudart is linked.
    CUBLAS_SONAME := $(shell objdump -p $(CUDA_LIBDIR)/libcublas.so 2>/dev/null | awk '/SONAME/ {print $$2}')
    NVCC_DEFS := -DHS_CUBLAS_SONAME='"$(or $(CUBLAS_SONAME),libcublas.so)"' -DHS_CUBLAS_DIR='"$(CUDA_LIBDIR)"'
    LDLIBS += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -ldl -lstdc++
  endif
endif
endif
NVCCFLAGS = -O3 -std=c++17 $(NVCC_DEFS) -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -Iruntime -I.

LIB_SRC := $(wildcard runtime/*.c runtime/cuda/*.c probe/*.c probe/cuda/*.c store/*.c analysis/*.c datasets/*.c viz/*.c)
CLI_SRC := $(wildcard cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_OBJ)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
HS := bin/headscope$(if $(filter 1,$(SAN)),-san,)

.PHONY: all check-deps test bench fuzz fuzz-run demo deps clean tests-build
all: check-deps $(HS)

check-deps:
	@for p in $(PKGS); do if pkg-config --exists $$p; then echo "  ✓ $$p"; else echo "  ✗ $$p (run: make deps)"; missing=1; fi; done; \
	 if [ -z "$(NVCC)" ]; then echo "  ✗ nvcc (optional: CPU-only build)"; \
	 elif [ -n "$(CUDA_LIBDIR)" ]; then echo "  ✓ nvcc ($(NVCC)), CUDA libraries in $(CUDA_LIBDIR)"; \
	 else echo "  ~ nvcc ($(NVCC)) without cuBLAS/cudart: CUDA code compiled as a check, binary is CPU-only"; fi; \
	 [ -z "$$missing" ] || { echo "make: missing packages — run 'make deps' (scripts/install-deps.sh)"; exit 2; }

$(BUILD)/%.o: %.c $(wildcard runtime/*.h runtime/cuda/*.h probe/*.h probe/cuda/*.h store/*.h analysis/*.h datasets/*.h viz/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu $(wildcard runtime/*.h runtime/cuda/*.h probe/*.h probe/cuda/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/libheadscope.a: $(LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

$(HS): $(CLI_OBJ) $(BUILD)/libheadscope.a
	@mkdir -p bin
	$(CC) $(LDSAN) -o $@ $(CLI_OBJ) $(BUILD)/libheadscope.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testlib.h $(BUILD)/libheadscope.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDSAN) -o $@ $< $(BUILD)/libheadscope.a $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libheadscope.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDSAN) -o $@ $< $(BUILD)/libheadscope.a $(LDLIBS)

tests-build: $(HS) $(TEST_BIN) $(CU_CHECK_OBJ)

# Every test program and tests/cli_*.sh prints "N passed, N failed[, N skipped]" as its last line;
# scripts/run-tests.sh sums them and prints the total last.
test: check-deps tests-build
	@HS=$(HS) BUILD=$(BUILD) bash scripts/run-tests.sh $(TEST_BIN)

bench: check-deps $(HS) $(BENCH_BIN)
	@HS=$(HS) BUILD=$(BUILD) bash scripts/run-bench.sh

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_LIB_SRC := $(filter-out runtime/forward.c,$(wildcard runtime/*.c))
build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC)
	@mkdir -p build-fuzz
	clang $(CFLAGS_BASE) -O1 -fsanitize=fuzzer,address,undefined -I. -Iruntime $(PKG_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) $(LDLIBS)
fuzz: $(FUZZ_BIN)
FUZZ_SECONDS ?= 60
fuzz-run: fuzz
	@bash scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

deps:
	bash scripts/install-deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

clean:
	rm -rf build build-san build-fuzz bin
