#!/usr/bin/env bash
# Packs what the GPU machine needs to run our CUDA build into gpu_dist/dist.tar.xz (git-ignored;
# compressed because a call carries at most 64 MiB, and OpenBLAS alone is 36 MiB): the
# llmserve binary, the GPU test binary and every shared library they load that the GPU machine's
# image lacks (our Debian packages: gRPC, protobuf, Boost, OpenBLAS, ...). CUDA's own libraries
# (cuBLASLt, NCCL: 200 MiB) come from the GPU machine's /usr/local/cuda or PyTorch's wheels. Then, from this machine:
#   run(command="bash scripts/gpu_check.sh", carry=["gpu_dist"])
#
#   bash scripts/gpu_dist.sh [build dir, default build/release]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/release}
dist=$root/gpu_dist
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rm -rf "$dist"
mkdir -p "$dist"
dist_root=$dist
dist=$stage/gpu_dist
mkdir -p "$dist/lib"
bins=("$build/llmserve" "$build/tests/cuda_tests" "$build/tests/gemv_bench" "$build/tests/gemm_bench"
      "$build/tests/moe_bench")
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "missing $b: build first (cmake --build $build)" >&2; exit 1; }
  cp "$b" "$dist/"
  strip --strip-debug "$dist/$(basename "$b")"
done
# Libraries the GPU image has itself: the C/C++ runtime, and CUDA (from /usr/local/cuda there).
skip='^(linux-vdso|libc\.so|libm\.so|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl\.so|librt\.so|libcublas|libcudart|libnccl)'
for b in "${bins[@]}"; do
  ldd "$b" | awk '/=> \//{print $1" "$3}' | while read -r name path; do
    if [[ ! $name =~ $skip ]]; then cp -L "$path" "$dist/lib/$name"; fi
  done
done
# xz: the carry to the GPU machine is capped (64 MiB with the tree); ICU data halves under xz.
rm -f "$dist_root/dist.tar.gz"
XZ_OPT="-T2 -6" tar -C "$stage" -cJf "$dist_root/dist.tar.xz" gpu_dist
echo "gpu_dist/dist.tar.xz: $(du -sh "$dist_root/dist.tar.xz" | cut -f1) ($(du -sh "$dist" | cut -f1) unpacked, $(ls "$dist/lib" | wc -l) libraries)"
