#!/usr/bin/env bash
# find-cuda.sh NVCC — print "LIBDIR INCDIR" of the CUDA toolkit that NVCC belongs to, or nothing.
#
# nvcc may be a symlink or a wrapper (/usr/local/bin/nvcc on some machines), so its own path says
# little. `nvcc --dryrun` prints the include and library folders it would hand to the host
# compiler and linker; we take the first library folder that really holds libcudart.so.
# Fallbacks: the resolved nvcc's ../lib64 and /usr/local/cuda. When nothing is found the Makefile
# still compiles the .cu files (so CUDA code is checked) but links the CPU stub.
nvcc=${1:?usage: find-cuda.sh NVCC}
dry=$("$nvcc" --dryrun -x cu /dev/null -o /dev/null 2>&1 || true)
libdirs=$(printf '%s\n' "$dry" | grep -E '^#\$ LIBRARIES=' | grep -oE '"-L[^"]+"' | sed -E 's/^"-L//; s/"$//')
incdirs=$(printf '%s\n' "$dry" | grep -E '^#\$ INCLUDES=' | grep -oE '"-I[^"]+"' | sed -E 's/^"-I//; s/"$//')
real=$(readlink -f "$nvcc" 2>/dev/null || echo "$nvcc")
top=$(dirname "$(dirname "$real")")
libdirs="$libdirs $top/lib64 $top/targets/x86_64-linux/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib"
incdirs="$incdirs $top/include $top/targets/x86_64-linux/include /usr/local/cuda/include"
lib=; inc=
for d in $libdirs; do
  case "$d" in */stubs) continue ;; esac
  # only cudart is linked; cuBLAS is dlopen()ed at run time (runtime/cuda/rt_cuda_blas.cu)
  if [ -e "$d/libcudart.so" ]; then lib=$(readlink -f "$d"); break; fi
done
for d in $incdirs; do
  if [ -e "$d/cuda_runtime.h" ]; then inc=$(readlink -f "$d"); break; fi
done
[ -n "$lib" ] && [ -n "$inc" ] && echo "$lib $inc"
exit 0
