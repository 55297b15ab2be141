// Device-side helpers shared by the CUDA kernels: the 16-bit element types and their fp32
// conversions, vector loads, warp/block reductions, and the dtype dispatch of launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/dtype.h"

namespace llmserve::cuda {

template <typename T>
__device__ __forceinline__ float to_float(T x);
template <>
__device__ __forceinline__ float to_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ float to_float<__half>(__half x) {
  return __half2float(x);
}
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// 8 elements of a 16-bit type in one 16-byte access.
template <typename T>
struct alignas(16) Vec8 {
  T v[8];
};

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Sum over the block; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float x, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  const int num_warps = (blockDim.x + 31) >> 5;
  x = lane < num_warps ? scratch[lane] : 0.0f;
  return warp_sum(x);
}

// Max over the block; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_max(float x, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  const int num_warps = (blockDim.x + 31) >> 5;
  x = lane < num_warps ? scratch[lane] : 0.0f;
  return warp_max(x);
}

// Programmatic dependent launch (sm_90): a kernel launched with launch() may start while the
// previous kernel on the stream is still running; it must call pdl_wait() before touching global
// memory (every kernel of ours does so first), which returns once the previous grid has finished
// and its writes are visible. pdl_trigger() lets the next kernel start launching early.
__device__ __forceinline__ void pdl_wait() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
}
__device__ __forceinline__ void pdl_trigger() {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// Whether launches use programmatic dependent launch (default on; LLMSERVE_CUDA_PDL=0 turns it
// off, for comparison).
bool pdl_enabled();

// kernel<<<grid, block, smem, stream>>>(args...), with programmatic stream serialisation when
// pdl_enabled(). Returns the launch error.
template <typename... KernelArgs, typename... Args>
cudaError_t launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = pdl_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, static_cast<KernelArgs>(args)...);
}

// Calls f.template operator()<T>() with T the CUDA type of a 16-bit activation dtype (or float).
// Returns cudaErrorInvalidValue for other dtypes.
template <typename F>
cudaError_t dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF16:
      f.template operator()<__half>();
      return cudaSuccess;
    case DType::kBF16:
      f.template operator()<__nv_bfloat16>();
      return cudaSuccess;
    case DType::kF32:
      f.template operator()<float>();
      return cudaSuccess;
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace llmserve::cuda
