// Small-batch GEMM ("GEMV") for decode steps: out[m, n] = act(sum_k x[m, k] * w[n, k] + bias[n])
// for M <= kGemvMaxRows. At batch 1-4 a decode step is a pass over the weights; cuBLASLt's tiled
// kernels leave bandwidth unused there, this reads each weight byte once, 16 bytes per load,
// with several loads in flight per lane, and fuses the bias and GELU into the store.
//
// Grid mapping: kWarps warps per block, `split` warps per output column (1, 2, 4 or 8), so a block
// covers kWarps / split columns: one pass over them on the default flat grid of
// ceil(N * split / kWarps) blocks, several on the persistent grid (LLMSERVE_GEMV=persistent).
// Part p of a column's `split` warps reads the 16-byte chunks p*32 + lane, + 32*split, ... of
// w[n, :] (kUnroll loads in flight before any math) and the same chunks of each x row from shared
// memory (staged once per block when M*K fits in 48 KB, else L1/L2); the parts' sums meet in
// shared memory. `split` > 1 is for narrow matrices: with one warp per column, N = 4096 or 6144
// leaves the H200 with 31-47 resident warps per SM, each walking its row in a long chain of
// dependent rounds (ncu: 2.3-2.6 TB/s for Llama-3-8B's QKV, o_proj and down, 3.1 for gate_up).
// The host picks the smallest split giving ~64 warps per SM (LLMSERVE_GEMV_SPLIT overrides).
// fp32 accumulation, warp-shuffle reduction, bias + GELU fused into the store.
#include "backend/cuda/gemv_common.cuh"
#include "backend/cuda/gemv_tc.cuh"

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace llmserve::cuda {
namespace {

constexpr int kWarps = kGemvWarps;

template <typename T>
__device__ __forceinline__ void dot8(const Vec8<T>& w, const Vec8<T>& x, float& acc) {
#pragma unroll
  for (int j = 0; j < 8; ++j) acc += to_float(w.v[j]) * to_float(x.v[j]);
}

// Weights are read once: stream them past L1 (ld.global.cs).
template <typename T>
__device__ __forceinline__ Vec8<T> load_stream(const Vec8<T>* p) {
  const int4 v = __ldcs(reinterpret_cast<const int4*>(p));
  Vec8<T> out;
  *reinterpret_cast<int4*>(&out) = v;
  return out;
}

// block (kWarps * 32); grid: persistent (SMs x resident blocks per SM, blocks loop over columns)
// or flat (ceil(N * split / kWarps), one pass). kUnroll 16-byte weight loads per lane are in
// flight before the math. x [M, K] is staged in shared memory once per block when it fits.
template <typename T, typename OutT, int M, int kUnroll>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                int32_t n_cols, int32_t k, bool gelu, bool stage_x, int32_t split,
                OutT* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ float partial[kWarps][M];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % split, cols_per_block = kWarps / split;
  const int chunks = k / 8;  // 16-byte chunks per row
  const Vec8<T>* xs = stage_gemv_x(x, M, k, stage_x, smem_raw);
  const int step = 32 * split;  // chunk stride of one part
  const int64_t col_stride = static_cast<int64_t>(gridDim.x) * cols_per_block;
  // n0 is uniform across the block, so every thread reaches the barriers below.
  for (int64_t n0 = static_cast<int64_t>(blockIdx.x) * cols_per_block; n0 < n_cols;
       n0 += col_stride) {
    const int64_t n = n0 + warp / split;
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = 0.0f;
    if (n < n_cols) {
      const auto* wrow = reinterpret_cast<const Vec8<T>*>(w + n * k);
      for (int c0 = part * 32 + lane; c0 < chunks; c0 += step * kUnroll) {
        Vec8<T> wv[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {  // all loads first, then the math
          if (c0 + step * u < chunks) wv[u] = load_stream(wrow + c0 + step * u);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          if (c0 + step * u < chunks) {
#pragma unroll
            for (int m = 0; m < M; ++m) dot8(wv[u], xs[m * chunks + c0 + step * u], acc[m]);
          }
        }
      }
    }
    sum_gemv_parts(acc, partial, warp, lane, part, split);
    if (part == 0 && lane == 0 && n < n_cols) {
      const float b = bias != nullptr ? to_float(bias[n]) : 0.0f;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float v = acc[m] + b;
        if (gelu) v = gelu_tanh(v);
        out[static_cast<int64_t>(m) * n_cols + n] = from_float<OutT>(v);
      }
    }
  }
}

int num_sms() {
  static const int sms = [] {
    int device = 0, n = 132;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
    return n;
  }();
  return sms;
}

// The default grid is flat: one column per warp, 4 loads in flight per lane. LLMSERVE_GEMV=
// persistent selects the resident-sized persistent grid with 8 loads in flight, which measured
// slower on the H100 (Llama-3-8B decode 137.5 vs 147.7 tok/s, docs/performance.md).
bool gemv_persistent() {
  static const bool persistent = [] {
    const char* e = std::getenv("LLMSERVE_GEMV");
    return e != nullptr && std::string_view(e) == "persistent";
  }();
  return persistent;
}

}  // namespace

// Warps per column: the smallest power of two up to kGemvWarps that gives about 64 resident warps
// per SM (the most a Hopper SM holds), fewer when a part would get under one round of 4 chunks per
// lane.
int gemv_warps_per_column(int32_t n, int32_t chunks_per_row) {
  static const int forced = [] {
    const char* e = std::getenv("LLMSERVE_GEMV_SPLIT");
    const int v = e != nullptr ? std::atoi(e) : 0;
    return v == 1 || v == 2 || v == 4 || v == 8 ? v : 0;
  }();
  if (forced != 0) return forced;
  const int64_t target = static_cast<int64_t>(num_sms()) * 64;
  int split = 1;
  while (split < kGemvWarps && static_cast<int64_t>(n) * split < target &&
         chunks_per_row >= 32 * split * 4)
    split *= 2;
  return split;
}

namespace {

template <typename T, typename OutT, int M, int kUnroll>
void launch_m(const GemvArgs& a, bool stage, size_t smem, cudaStream_t stream) {
  auto* kernel = gemv_kernel<T, OutT, M, kUnroll>;
  const int split = gemv_persistent() ? 1 : gemv_warps_per_column(a.n, a.k / 8);
  const int cols_per_block = kWarps / split;
  int64_t blocks = (a.n + cols_per_block - 1) / cols_per_block;
  if (gemv_persistent()) {
    // Occupancy of this instantiation, asked once: more blocks than are resident would run in a
    // second wave behind the first.
    static const int resident = [&] {
      int n = 1;
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kWarps * 32, kGemvSmemXBytes);
      return std::max(n, 1);
    }();
    blocks = std::min<int64_t>(blocks, static_cast<int64_t>(num_sms()) * resident);
  }
  launch(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kWarps * 32), smem, stream,
         static_cast<const T*>(a.x), static_cast<const T*>(a.w), static_cast<const T*>(a.bias), a.n,
         a.k, a.gelu, stage, split, static_cast<OutT*>(a.out));
}

template <typename T, typename OutT>
void launch_rows(const GemvArgs& a, cudaStream_t stream) {
  const size_t x_bytes = static_cast<size_t>(a.m) * a.k * sizeof(T);
  const bool stage = x_bytes <= kGemvSmemXBytes;
  const size_t smem = stage ? x_bytes : 0;
  const bool persistent = gemv_persistent();
  switch (a.m) {
    case 1:
      persistent ? launch_m<T, OutT, 1, 8>(a, stage, smem, stream)
                 : launch_m<T, OutT, 1, 4>(a, stage, smem, stream);
      break;
    case 2:
      persistent ? launch_m<T, OutT, 2, 8>(a, stage, smem, stream)
                 : launch_m<T, OutT, 2, 4>(a, stage, smem, stream);
      break;
    case 3:
      persistent ? launch_m<T, OutT, 3, 8>(a, stage, smem, stream)
                 : launch_m<T, OutT, 3, 4>(a, stage, smem, stream);
      break;
    default:
      persistent ? launch_m<T, OutT, 4, 8>(a, stage, smem, stream)
                 : launch_m<T, OutT, 4, 4>(a, stage, smem, stream);
      break;
  }
}

}  // namespace

bool gemv_supports(const GemvArgs& a) {
  const bool types = (a.dtype == DType::kF16 || a.dtype == DType::kBF16) &&
                     (a.out_dtype == a.dtype || a.out_dtype == DType::kF32);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return types && a.m >= 1 && a.m <= kGemvMaxRows && a.k % 8 == 0 && aligned(a.x) && aligned(a.w);
}

cudaError_t launch_gemv(const GemvArgs& a, cudaStream_t stream) {
  if (!gemv_supports(a)) return cudaErrorInvalidValue;
  if (a.n == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(a.dtype, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, float>) {
      if (a.out_dtype == DType::kF32) {
        launch_rows<T, float>(a, stream);
      } else {
        launch_rows<T, T>(a, stream);
      }
    }
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

bool gemv_tc_supports(const GemvTcArgs& a) {
  const bool fp8 = a.weights == GemvWeights::kFp8;
  const bool types = (a.dtype == DType::kF16 || a.dtype == DType::kBF16) &&
                     (a.out_dtype == a.dtype || (a.out_dtype == DType::kF32 && !fp8));
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool fused = a.prologue != GemvPrologue::kNone || a.accumulate;
  const bool fusions =
      !fused ||
      (!fp8 && !a.gelu && (a.prologue == GemvPrologue::kNone || a.out_dtype == a.dtype) &&
       (!a.accumulate || a.out_dtype == a.dtype) &&
       (a.prologue != GemvPrologue::kRmsNorm || (a.norm_w != nullptr && aligned(a.norm_w))));
  return types && fusions && a.m >= 1 && a.m <= kGemvTcMaxRows && a.n >= 1 &&
         a.k % (fp8 ? 32 : 16) == 0 && aligned(a.x) && aligned(a.w) &&
         (!fp8 || a.x_scales != nullptr) &&
         (a.weights == GemvWeights::k16Bit || a.w_scales != nullptr);
}

cudaError_t launch_gemv_tc(const GemvTcArgs& a, cudaStream_t stream, int variant) {
  if (!gemv_tc_supports(a)) return cudaErrorInvalidValue;
  if (variant < 0) {
    // The default tile shape, measured per format (docs/performance.md, gemv_bench);
    // LLMSERVE_GEMV_TC_VARIANT=i forces variant i for every format.
    static const int forced = [] {
      const char* e = std::getenv("LLMSERVE_GEMV_TC_VARIANT");
      return e != nullptr ? std::atoi(e) : -1;
    }();
    if (forced >= 0 && forced < kGemvTcVariants && a.prologue == GemvPrologue::kNone) {
      variant = forced;
    } else if (a.k < 4096) {
      variant = 0;  // small matrices (GPT-2 124M): fewer bytes in flight decode faster end to end
    } else {
      // Fastest at M = 1..8 on Llama-3-8B's shapes, H100 80GB (gemv_bench, 2026-12-07)
      variant = a.weights == GemvWeights::k16Bit ? 7 : a.weights == GemvWeights::kInt8 ? 6 : 2;
    }
  }
  switch (a.weights) {
    case GemvWeights::k16Bit:
      return launch_gemv_tc_16bit(a, variant, stream);
    case GemvWeights::kInt8:
      return launch_gemv_tc_int8(a, variant, stream);
    case GemvWeights::kFp8:
      return launch_gemv_tc_fp8(a, variant, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace llmserve::cuda
