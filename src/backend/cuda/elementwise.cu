// Elementwise kernels: embedding lookup, residual add, activations, row gather.
// Grid mapping: one block per token row for row-shaped ops (8 elements per thread per step,
// 16-byte accesses when the row allows), a flat grid-stride loop for the pure elementwise ones.
#include "backend/cuda/fp8_common.cuh"
#include "backend/cuda/kernels.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 256;

int flat_blocks(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 132 * 16 ? (b < 1 ? 1 : b) : 132 * 16);
}

// grid (T), block (256): out[t] = table[ids[t]] (+ pos_table[positions[t]]).
template <typename T>
__global__ void embedding_kernel(const T* __restrict__ table, const T* __restrict__ pos_table,
                                 const int32_t* __restrict__ ids,
                                 const int32_t* __restrict__ positions, int32_t dim,
                                 T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const T* row = table + static_cast<int64_t>(ids[t]) * dim;
  const T* prow =
      pos_table != nullptr ? pos_table + static_cast<int64_t>(positions[t]) * dim : nullptr;
  T* o = out + t * dim;
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = to_float(row[i]);
    if (prow != nullptr) v += to_float(prow[i]);
    o[i] = from_float<T>(v);
  }
}

// grid-stride over n: a[i] += b[i].
template <typename T>
__global__ void add_kernel(T* __restrict__ a, const T* __restrict__ b, int64_t n) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    a[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
  }
}

__device__ __forceinline__ float gelu_tanh_f(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

// grid-stride over n: x[i] = gelu_tanh(x[i]).
template <typename T>
__global__ void gelu_kernel(T* __restrict__ x, int64_t n) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = from_float<T>(gelu_tanh_f(to_float(x[i])));
  }
}

// grid-stride over n: x[i] = x[i] * s.
template <typename T>
__global__ void scale_kernel(T* __restrict__ x, float s, int64_t n) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = from_float<T>(to_float(x[i]) * s);
  }
}

// grid-stride over n fp32 values: x[i] = cap * tanh(x[i] / cap) (tanhf: the accurate one, since
// the logits it caps are compared against each other).
__global__ void softcap_kernel(float* __restrict__ x, float cap, int64_t n) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = cap * tanhf(x[i] / cap);
  }
}

// The gated MLPs' activations: SiLU (SwiGLU) and tanh-approximated GELU (GeGLU).
struct Silu {
  __device__ __forceinline__ float operator()(float g) const { return g / (1.0f + __expf(-g)); }
};
struct GeluTanh {
  __device__ __forceinline__ float operator()(float g) const { return gelu_tanh_f(g); }
};

// grid-stride over T*F: out[t, i] = act(g) * u with g = gate_up[t, i], u = gate_up[t, F + i].
template <typename T, typename Act>
__global__ void gated_mul_kernel(const T* __restrict__ gate_up, int64_t num_tokens, int32_t ffn,
                                 T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t n = num_tokens * ffn;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / ffn, c = i % ffn;
    const float g = to_float(gate_up[t * 2 * ffn + c]);
    const float u = to_float(gate_up[t * 2 * ffn + ffn + c]);
    out[i] = from_float<T>(Act()(g) * u);
  }
}

// grid (ceil(F / 8 / 128), T), block (128): one 16-byte vector of gate, of up and of out per thread
// (F % 8 == 0, 16-byte aligned rows). The scalar kernel above did a 64-bit division per element
// and reached 1.6 TB/s on the H200 (ncu, Llama-3-8B prefill); this one does one per 8.
template <typename T, typename Act>
__global__ void gated_mul_vec_kernel(const T* __restrict__ gate_up, int32_t ffn,
                                     T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.y;
  const int32_t c = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (c >= ffn) return;
  const Vec8<T> g = *reinterpret_cast<const Vec8<T>*>(gate_up + t * 2 * ffn + c);
  const Vec8<T> u = *reinterpret_cast<const Vec8<T>*>(gate_up + t * 2 * ffn + ffn + c);
  Vec8<T> o;
#pragma unroll
  for (int j = 0; j < 8; ++j) o.v[j] = from_float<T>(Act()(to_float(g.v[j])) * to_float(u.v[j]));
  *reinterpret_cast<Vec8<T>*>(out + t * ffn + c) = o;
}

// silu(g) * u of 8 elements rounded to T (what silu_mul stores), as fp32.
template <typename T>
__device__ __forceinline__ void silu_mul8(const Vec8<T>& g, const Vec8<T>& u, float (&out)[8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float gf = to_float(g.v[j]);
    out[j] = to_float(from_float<T>(gf / (1.0f + __expf(-gf)) * to_float(u.v[j])));
  }
}

// grid (T), block (kThreads): one row per block, F % 8 == 0, 16-byte vectors, writing per-row fp8
// codes q [T, F] and scales [T] of the values silu_mul would store. kV > 0 (F / 8 <= kV *
// blockDim): the row's silu(g) * u stays in registers between the max and the codes, one read of
// gate_up; kV == 0: two passes over the row (the second reads hit L1/L2). One block per row, so the
// launcher uses it for batches of rows (prefill); a decode step's few rows go through silu_mul's
// many-block kernel and quantize_fp8_rows instead.
template <typename T, int kV>
__global__ void silu_mul_fp8_kernel(const T* __restrict__ gate_up, int32_t ffn,
                                    uint8_t* __restrict__ q, float* __restrict__ scales) {
  pdl_wait();
  pdl_trigger();
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const auto* g = reinterpret_cast<const Vec8<T>*>(gate_up + t * 2 * ffn);
  const auto* u = reinterpret_cast<const Vec8<T>*>(gate_up + t * 2 * ffn + ffn);
  auto* qs = reinterpret_cast<uint2*>(q + t * ffn);
  const int vecs = ffn / 8;
  float amax = 0.0f;
  if constexpr (kV > 0) {
    float v[kV][8];
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      const int i = threadIdx.x + k * blockDim.x;
      if (i < vecs) {
        silu_mul8(g[i], u[i], v[k]);
#pragma unroll
        for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[k][j]));
      }
    }
    const float scale = block_max(amax, scratch) / 448.0f;
    if (threadIdx.x == 0) scales[t] = scale;
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      const int i = threadIdx.x + k * blockDim.x;
      if (i < vecs) qs[i] = scale > 0.0f ? e4m3x8(v[k], scale) : make_uint2(0, 0);
    }
  } else {
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
      float v[8];
      silu_mul8(g[i], u[i], v);
#pragma unroll
      for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[j]));
    }
    const float scale = block_max(amax, scratch) / 448.0f;
    if (threadIdx.x == 0) scales[t] = scale;
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
      float v[8];
      silu_mul8(g[i], u[i], v);
      qs[i] = scale > 0.0f ? e4m3x8(v, scale) : make_uint2(0, 0);
    }
  }
}

// grid (rows), block (256): out[r] = x[indices[r]].
template <typename T>
__global__ void gather_rows_kernel(const T* __restrict__ x, const int32_t* __restrict__ indices,
                                   int32_t dim, T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t r = blockIdx.x;
  const T* src = x + static_cast<int64_t>(indices[r]) * dim;
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) out[r * dim + i] = src[i];
}

// grid (ceil(cols / 32), ceil(rows / 32)), block (32, 8): a 32x32 tile through shared memory
// (padded a column against bank conflicts), coalesced on both sides.
template <typename T>
__global__ void transpose_kernel(const T* __restrict__ src, int64_t rows, int64_t cols,
                                 T* __restrict__ dst) {
  pdl_wait();
  pdl_trigger();
  __shared__ T tile[32][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  for (int i = threadIdx.y; i < 32; i += 8) {
    const int64_t r = blockIdx.y * 32 + i;
    if (r < rows && c < cols) tile[i][threadIdx.x] = src[r * cols + c];
  }
  __syncthreads();
  const int64_t r = blockIdx.y * 32 + threadIdx.x;
  for (int i = threadIdx.y; i < 32; i += 8) {
    const int64_t cc = blockIdx.x * 32 + i;
    if (r < rows && cc < cols) dst[cc * rows + r] = tile[threadIdx.x][i];
  }
}

}  // namespace

cudaError_t launch_transpose(DType dtype, const void* src, int64_t rows, int64_t cols, void* dst,
                             cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>((rows + 31) / 32)),
      block(32, 8);
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(transpose_kernel<T>, grid, block, 0, stream, static_cast<const T*>(src), rows, cols,
           static_cast<T*>(dst));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_embedding(DType dtype, const void* table, const void* pos_table,
                             const int32_t* ids, const int32_t* positions, int32_t num_tokens,
                             int32_t dim, void* out, cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(embedding_kernel<T>, num_tokens, kThreads, 0, stream, static_cast<const T*>(table),
           static_cast<const T*>(pos_table), ids, positions, dim, static_cast<T*>(out));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_add(DType dtype, void* a, const void* b, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(add_kernel<T>, flat_blocks(n), kThreads, 0, stream, static_cast<T*>(a),
           static_cast<const T*>(b), n);
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_gelu_tanh(DType dtype, void* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(gelu_kernel<T>, flat_blocks(n), kThreads, 0, stream, static_cast<T*>(x), n);
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

namespace {

template <typename Act>
cudaError_t launch_gated_mul(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                             void* out, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(num_tokens) * ffn;
  if (n == 0) return cudaSuccess;
  const bool vec = ffn % 8 == 0 && reinterpret_cast<uintptr_t>(gate_up) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(out) % 16 == 0 && num_tokens <= 65535;
  cudaError_t launched = cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    if (vec && sizeof(T) == 2) {
      constexpr int kVecThreads = 128;
      const dim3 grid(static_cast<unsigned>((ffn / 8 + kVecThreads - 1) / kVecThreads),
                      static_cast<unsigned>(num_tokens));
      launched = launch(gated_mul_vec_kernel<T, Act>, grid, kVecThreads, 0, stream,
                        static_cast<const T*>(gate_up), ffn, static_cast<T*>(out));
    } else {
      launched = launch(gated_mul_kernel<T, Act>, flat_blocks(n), kThreads, 0, stream,
                        static_cast<const T*>(gate_up), num_tokens, ffn, static_cast<T*>(out));
    }
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace

cudaError_t launch_silu_mul(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                            void* out, cudaStream_t stream) {
  return launch_gated_mul<Silu>(dtype, gate_up, num_tokens, ffn, out, stream);
}

cudaError_t launch_gelu_mul(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                            void* out, cudaStream_t stream) {
  return launch_gated_mul<GeluTanh>(dtype, gate_up, num_tokens, ffn, out, stream);
}

cudaError_t launch_scale(DType dtype, void* x, float s, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(scale_kernel<T>, flat_blocks(n), kThreads, 0, stream, static_cast<T*>(x), s, n);
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_softcap(float* x, float cap, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return launch(softcap_kernel, flat_blocks(n), kThreads, 0, stream, x, cap, n);
}

cudaError_t launch_silu_mul_fp8(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                                void* q, float* scales, cudaStream_t stream) {
  const auto aligned = [](const void* p, uintptr_t to) {
    return reinterpret_cast<uintptr_t>(p) % to == 0;
  };
  // Below a few dozen rows one block per row leaves most SMs idle (19 us for one Llama-3-8B row on
  // the H100, against ~11 for the many-block silu_mul + quantize_fp8_rows).
  constexpr int32_t kMinRows = 64;
  if ((dtype != DType::kF16 && dtype != DType::kBF16) || ffn % 8 != 0 || !aligned(gate_up, 16) ||
      !aligned(q, 8) || num_tokens < kMinRows) {
    return cudaErrorNotSupported;
  }
  if (ffn == 0) return cudaSuccess;
  const int vecs = ffn / 8;
  const int threads = std::min(kThreads, (vecs + 31) / 32 * 32);
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    const auto go = [&](auto kernel) {
      launched = launch(kernel, num_tokens, threads, 0, stream, static_cast<const T*>(gate_up), ffn,
                        static_cast<uint8_t*>(q), scales);
    };
    if (vecs <= 4 * threads) {
      go(silu_mul_fp8_kernel<T, 4>);
    } else if (vecs <= 8 * threads) {
      go(silu_mul_fp8_kernel<T, 8>);
    } else {
      go(silu_mul_fp8_kernel<T, 0>);
    }
  });
  return e != cudaSuccess ? e : launched;
}

cudaError_t launch_gather_rows(DType dtype, const void* x, const int32_t* indices, int32_t num_rows,
                               int32_t dim, void* out, cudaStream_t stream) {
  if (num_rows == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(gather_rows_kernel<T>, num_rows, kThreads, 0, stream, static_cast<const T*>(x), indices,
           dim, static_cast<T*>(out));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

}  // namespace llmserve::cuda

namespace llmserve::cuda {

bool pdl_enabled() {
  static const bool enabled = [] {
    const char* e = std::getenv("LLMSERVE_CUDA_PDL");
    return e == nullptr || std::string_view(e) != "0";
  }();
  return enabled;
}

}  // namespace llmserve::cuda
