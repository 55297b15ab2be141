// The int4 weight-only GEMV of decode steps (gemv.h, GemvInt4Args): the tensor-core GEMV's grid
// mapping (gemv_tc.cuh) over packed 4-bit codes (layout: src/common/int4.h).
//
// Up to 32 tokens in one pass over the weights: each 8-token tile is its own mma B operand against
// the same widened weights.
// Per block 16 output rows; the 4 lanes t of row group g = lane / 4 each load one 16-byte vector
// of rows g and g + 8 per 128-column block: by the packed layout it holds word t of the block's
// four 32-column steps. A step is two m16n8k16 mmas over rows g, g + 8 and token g: lane t supplies
// columns 8t .. 8t + 7 of the step (the pairs (0, 1) (2, 3) of its word in the first mma, (4, 5)
// (6, 7) in the second, and the same columns of x), so an mma's k-slots stay inside one 32-column
// step and therefore inside one group (groups are whole steps).
//
// Dequantization in registers: a word shifted by 0, 4, 8 or 12 and masked with 0x000F000F holds
// two codes q in the low bits of two 16-bit lanes; or-ed with the exponent bits of 1024 (fp16) or
// 128 (bf16) those lanes read as 1024 + q (128 + q), exactly, and subtracting 1024 + zero (128 +
// zero) leaves q - zero exactly in the activation dtype. The mmas sum (q - zero) * x over a step in
// fp32; the step's sums are then multiplied by the rows' group scales, so the only rounding is
// fp32 accumulation (the CPU reference computes (q - zero) * scale * x in fp32 too).
#include "backend/cuda/gemv_tc.cuh"

#include <algorithm>
#include <cstdlib>
#include <type_traits>

namespace llmserve::cuda {
namespace {

template <typename T>
struct Int4Magic;
template <>
struct Int4Magic<__half> {
  static constexpr uint32_t kBits = 0x64006400u;  // 1024.0 in both halves
  static constexpr float kValue = 1024.0f;
};
template <>
struct Int4Magic<__nv_bfloat16> {
  static constexpr uint32_t kBits = 0x43004300u;  // 128.0 in both halves
  static constexpr float kValue = 128.0f;
};

// Two codes of `word` (bits shift .. shift + 3 and 16 + shift ..) minus the zero, as a T pair.
// zero2: magic + zero in both halves.
template <typename T, int kShift>
__device__ __forceinline__ uint32_t int4_pair(uint32_t word, uint32_t zero2) {
  const uint32_t biased = ((word >> kShift) & 0x000F000Fu) | Int4Magic<T>::kBits;
  using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
  const T2 r = __hsub2(*reinterpret_cast<const T2*>(&biased), *reinterpret_cast<const T2*>(&zero2));
  return *reinterpret_cast<const uint32_t*>(&r);
}

// A row's (scale, zero) pair (two T in one word) as the fp32 scale and the T pair magic + zero.
template <typename T>
__device__ __forceinline__ void unpack_scale(uint32_t pair, float& scale, uint32_t& zero2) {
  const T* v = reinterpret_cast<const T*>(&pair);
  scale = to_float(v[0]);
  const T z = from_float<T>(to_float(v[1]) + Int4Magic<T>::kValue);  // exact: an integer < 2^8
  const uint16_t bits = *reinterpret_cast<const uint16_t*>(&z);
  zero2 = static_cast<uint32_t>(bits) * 0x00010001u;
}

// A row pair's group: the scales of rows g (lo) and g + 8 (hi) and their zeros as unpack_scale's
// T pairs.
struct Int4Group {
  float s_lo, s_hi;
  uint32_t z_lo, z_hi;
};
template <typename T>
__device__ __forceinline__ Int4Group unpack_group(uint32_t sz_lo, uint32_t sz_hi) {
  Int4Group q;
  unpack_scale<T>(sz_lo, q.s_lo, q.z_lo);
  unpack_scale<T>(sz_hi, q.s_hi, q.z_hi);
  return q;
}

// One 32-column step's unscaled sums: words lo/hi (rows g, g + 8) against each token tile's 8
// columns of x (xv[j]: tokens 8j + g), added to e[j]. The codes are widened once for all tiles.
template <typename T, int kTiles>
__device__ __forceinline__ void int4_mma(float (&e)[kTiles][4], uint32_t lo, uint32_t hi,
                                         const int4 (&xv)[kTiles], const Int4Group& q) {
  const uint32_t z_lo = q.z_lo, z_hi = q.z_hi;
  const uint32_t a0 = int4_pair<T, 0>(lo, z_lo), a1 = int4_pair<T, 0>(hi, z_hi),
                 a2 = int4_pair<T, 4>(lo, z_lo), a3 = int4_pair<T, 4>(hi, z_hi),
                 c0 = int4_pair<T, 8>(lo, z_lo), c1 = int4_pair<T, 8>(hi, z_hi),
                 c2 = int4_pair<T, 12>(lo, z_lo), c3 = int4_pair<T, 12>(hi, z_hi);
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
    mma_k16<T>(e[j], a0, a1, a2, a3, xv[j].x, xv[j].y);
    mma_k16<T>(e[j], c0, c1, c2, c3, xv[j].z, xv[j].w);
  }
}

// d += e scaled by the rows' group scales.
template <int kTiles>
__device__ __forceinline__ void int4_scale_into(float (&d)[kTiles][4], const float (&e)[kTiles][4],
                                                const Int4Group& q) {
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
    d[j][0] = fmaf(e[j][0], q.s_lo, d[j][0]);
    d[j][1] = fmaf(e[j][1], q.s_lo, d[j][1]);
    d[j][2] = fmaf(e[j][2], q.s_hi, d[j][2]);
    d[j][3] = fmaf(e[j][3], q.s_hi, d[j][3]);
  }
}

// One 32-column step scaled into d[j].
template <typename T, int kTiles>
__device__ __forceinline__ void int4_step(float (&d)[kTiles][4], uint32_t lo, uint32_t hi,
                                          const int4 (&xv)[kTiles], const Int4Group& q) {
  float e[kTiles][4] = {};
  int4_mma<T, kTiles>(e, lo, hi, xv, q);
  int4_scale_into<kTiles>(d, e, q);
}

// The x rows of a lane's tokens: tile j's lane holds token 8j + g (rows past M read nothing and
// contribute zeros).
template <typename T, int kTiles>
struct Int4Tokens {
  bool has_token[kTiles];
  const T* x_row[kTiles];
  __device__ Int4Tokens(const GemvInt4Args& a, int g) {
#pragma unroll
    for (int j = 0; j < kTiles; ++j) {
      has_token[j] = 8 * j + g < a.m;
      x_row[j] =
          static_cast<const T*>(a.x) + static_cast<int64_t>(has_token[j] ? 8 * j + g : 0) * a.k;
    }
  }
  // Each tile's 8 values of x at column col.
  __device__ __forceinline__ void load(int4 (&xv)[kTiles], int64_t col) const {
#pragma unroll
    for (int j = 0; j < kTiles; ++j) {
      xv[j] = has_token[j] ? __ldg(reinterpret_cast<const int4*>(x_row[j] + col))
                           : make_int4(0, 0, 0, 0);
    }
  }
};

// Output (token, row) = v + bias[row], where both are in range.
template <typename T>
__device__ __forceinline__ void store_int4_out(const GemvInt4Args& a, float v, int token,
                                               int64_t row) {
  if (token >= a.m || row >= a.n) return;
  if (a.bias != nullptr) v += to_float(static_cast<const T*>(a.bias)[row]);
  static_cast<T*>(a.out)[static_cast<int64_t>(token) * a.n + row] = from_float<T>(v);
}

// block (kWarps * 32); grid (ceil(N / 16)). A chunk is kVec 128-column blocks; warp w takes chunks
// w, w + kWarps, ..., kUnroll of them in flight. kTiles token tiles of 8 (up to 8 * kTiles
// tokens) share each weight load: the mma's 8-column B operand once per tile.
template <typename T, int kVec, int kUnroll, int kWarps, bool kPreload, int kTiles>
__global__ void __launch_bounds__(kWarps * 32) gemv_int4_kernel(const GemvInt4Args a) {
  __shared__ float partial[kTiles][kWarps][32][4];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int32_t k = a.k, n = a.n;
  const int64_t words = k / 8, pairs = 2 * (k / a.group);
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t row_lo = min(n0 + g, static_cast<int64_t>(n) - 1);
  const int64_t row_hi = min(n0 + g + 8, static_cast<int64_t>(n) - 1);
  const auto* w_lo = static_cast<const uint32_t*>(a.w) + row_lo * words;
  const auto* w_hi = static_cast<const uint32_t*>(a.w) + row_hi * words;
  const auto* sz_lo = static_cast<const uint32_t*>(a.scales) + row_lo * pairs / 2;
  const auto* sz_hi = static_cast<const uint32_t*>(a.scales) + row_hi * pairs / 2;
  const Int4Tokens<T, kTiles> tokens(a, g);
  const int chunks = k / (128 * kVec);
  const int group_steps = a.group / 32;  // steps per group (a power of two)
  constexpr int kStride = kWarps * kUnroll;
  int4 lo[kUnroll][kVec], hi[kUnroll][kVec];
  const auto load_weights = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) {
#pragma unroll
        for (int v = 0; v < kVec; ++v) {
          const int64_t at = (static_cast<int64_t>(c) * kVec + v) * 16 + 4 * t;  // in words
          lo[u][v] = __ldcs(reinterpret_cast<const int4*>(w_lo + at));
          hi[u][v] = __ldcs(reinterpret_cast<const int4*>(w_hi + at));
        }
      }
    }
  };
  if constexpr (kPreload) load_weights(warp);
  pdl_wait();
  pdl_trigger();
  float d[kTiles][4] = {};
  for (int c0 = warp; c0 < chunks; c0 += kStride) {
    if (!kPreload || c0 != warp) load_weights(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) {
        // The chunk's x vectors and group scales are all requested before any step's math, so
        // the warp waits for them once a chunk rather than once a step (on the first H100 run,
        // loaded step by step, a Llama-3-8B qkv GEMV took 17 us: 787 GB/s of codes).
        int4 xv[kVec][4][kTiles];
        uint32_t s_lo[kVec][4], s_hi[kVec][4];
#pragma unroll
        for (int v = 0; v < kVec; ++v) {
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const int64_t step = (static_cast<int64_t>(c) * kVec + v) * 4 + i;
            tokens.load(xv[v][i], 32 * step + 8 * t);
            const int64_t grp = step / group_steps;
            s_lo[v][i] = __ldg(sz_lo + grp);
            s_hi[v][i] = __ldg(sz_hi + grp);
          }
        }
#pragma unroll
        for (int v = 0; v < kVec; ++v) {
          const uint32_t* l = reinterpret_cast<const uint32_t*>(&lo[u][v]);
          const uint32_t* h = reinterpret_cast<const uint32_t*>(&hi[u][v]);
#pragma unroll
          for (int i = 0; i < 4; ++i)
            int4_step<T, kTiles>(d, l[i], h[i], xv[v][i], unpack_group<T>(s_lo[v][i], s_hi[v][i]));
        }
      }
    }
  }
  // Steps past the last whole chunk: whole 128-column blocks keep the interleaved word order, the
  // steps after the last whole block are stored in order (src/common/int4.h).
  const int64_t first_tail = static_cast<int64_t>(chunks) * kVec * 4;
  const int64_t steps = k / 32, block_steps = (k / 128) * 4;
  for (int64_t s = first_tail + warp; s < steps; s += kWarps) {
    const int64_t word = s < block_steps ? (s / 4) * 16 + 4 * t + (s % 4) : s * 4 + t;
    int4 xv[kTiles];
    tokens.load(xv, 32 * s + 8 * t);
    const int64_t grp = s / group_steps;
    int4_step<T, kTiles>(d, __ldg(w_lo + word), __ldg(w_hi + word), xv,
                         unpack_group<T>(__ldg(sz_lo + grp), __ldg(sz_hi + grp)));
  }
  // The warps' tiles summed in shared memory (as sum_warp_tiles does for one tile).
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) partial[j][warp][lane][i] = d[j][i];
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float v = d[j][i];
#pragma unroll
      for (int p = 1; p < kWarps; ++p) v += partial[j][p][lane][i];
      store_int4_out<T>(a, v, 8 * j + 2 * t + (i & 1), n0 + g + (i >= 2 ? 8 : 0));
    }
  }
}

// The streaming kernel: persistent blocks (as many as fit on the device at once), block b taking
// the 16-row tiles b, b + gridDim.x, ... one after another. A warp's units are its 128-column
// blocks of those tiles (blocks w, w + kWarps, ... of each, K / 128 / kWarps of them a tile), in
// order across the tiles, and the weight loads run kUnroll units ahead of the math: each unit's
// registers are refilled with the unit kUnroll later as soon as its mmas are issued, so a warp
// always has kUnroll - 1 to kUnroll units (1 KiB each) in flight, through tile boundaries too. A
// unit's (scale, zero) pairs travel with its weights (a DRAM load too: requested one unit ahead,
// as they first were, they stalled the math — 73.8 against 78.4 us a layer at M = 1 on the H100,
// docs/performance.md); the next unit's x vectors (L1 hits) are requested one unit ahead. A unit
// lies in one group, so its four steps sum unscaled and the group scales multiply once a unit.
// (The tile kernel above loads a tile's blocks all at once and then waits: with K = 4,096 a 16-row
// tile is 32 KiB, one round of loads, so each block's memory phase and math phase alternate; it
// streamed at 1.4 TB/s on the H100.) At a tile's end the warps' sums meet in shared memory behind
// one barrier (every warp has the same units a tile) and are stored by the whole block. Needs K a
// multiple of 128 * kWarps and groups of a multiple of 128 columns (one (scale, zero) pair a unit);
// launch_gemv_int4 falls back to the tile kernel otherwise. One token tile asks for 16 warps an SM
// (at most 128 registers a thread); more tiles take what their accumulators and x vectors need.
template <typename T, int kUnroll, int kWarps, int kTiles, int kWarpsPerSm = 16>
__global__ void __launch_bounds__(kWarps * 32, kTiles == 1 ? kWarpsPerSm / kWarps : 1)
    gemv_int4_stream_kernel(const GemvInt4Args a) {
  static_assert(kUnroll % 2 == 0, "x vectors alternate between two buffers");
  __shared__ float partial[2][kTiles][kWarps][32][4];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int32_t k = a.k, n = a.n;
  const int64_t words = k / 8, groups = k / a.group;
  const int units_per_tile = k / 128 / kWarps, blocks_per_group = a.group / 128;
  const int tiles = (n + 15) / 16;
  const int my_tiles = (tiles - static_cast<int>(blockIdx.x) + gridDim.x - 1) / gridDim.x;
  const int total = my_tiles * units_per_tile;
  const auto* w = static_cast<const uint32_t*>(a.w);
  const auto* sz = static_cast<const uint32_t*>(a.scales);
  const auto row_of = [&](int tile, int half) {
    return min(static_cast<int64_t>(tile) * 16 + g + 8 * half, static_cast<int64_t>(n) - 1);
  };
  const Int4Tokens<T, kTiles> tokens(a, g);

  // Weights, kUnroll units in flight; the load cursor runs kUnroll units ahead of the math's.
  int4 lo[kUnroll], hi[kUnroll];
  uint32_t s_lo[kUnroll], s_hi[kUnroll];  // the units' (scale, zero) pairs
  int load_tile = blockIdx.x, load_unit = 0;
  const auto load_weights = [&](int u) {
    const int64_t at = static_cast<int64_t>(warp + load_unit * kWarps) * 16 + 4 * t;  // words
    lo[u] = __ldcs(reinterpret_cast<const int4*>(w + row_of(load_tile, 0) * words + at));
    hi[u] = __ldcs(reinterpret_cast<const int4*>(w + row_of(load_tile, 1) * words + at));
    const int64_t grp = (warp + load_unit * kWarps) / blocks_per_group;
    s_lo[u] = __ldg(sz + row_of(load_tile, 0) * groups + grp);
    s_hi[u] = __ldg(sz + row_of(load_tile, 1) * groups + grp);
    if (++load_unit == units_per_tile) {
      load_unit = 0;
      load_tile += gridDim.x;
    }
  };
  // x vectors, one unit ahead (buffer b = the unit's parity within a round).
  int4 xv[2][4][kTiles];
  const auto load_x = [&](int b, int unit) {
    const int block = warp + unit * kWarps;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      tokens.load(xv[b][i], 128 * static_cast<int64_t>(block) + 32 * i + 8 * t);
  };

#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    if (u < total) load_weights(u);
  }
  pdl_wait();
  pdl_trigger();
  int tile = blockIdx.x, unit = 0, parity = 0;
  if (total > 0) load_x(0, 0);
  float d[kTiles][4] = {};
  for (int q0 = 0; q0 < total; q0 += kUnroll) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (q0 + u < total) {
        const int b = u & 1;
        // The next unit's x first (its tile may be the next one: its unit 0).
        const bool last_of_tile = unit + 1 == units_per_tile;
        if (q0 + u + 1 < total) load_x(b ^ 1, last_of_tile ? 0 : unit + 1);
        const Int4Group grp = unpack_group<T>(s_lo[u], s_hi[u]);
        const uint32_t* l = reinterpret_cast<const uint32_t*>(&lo[u]);
        const uint32_t* h = reinterpret_cast<const uint32_t*>(&hi[u]);
        float e[kTiles][4] = {};
#pragma unroll
        for (int i = 0; i < 4; ++i) int4_mma<T, kTiles>(e, l[i], h[i], xv[b][i], grp);
        int4_scale_into<kTiles>(d, e, grp);
        if (q0 + u + kUnroll < total) load_weights(u);
        if (last_of_tile) {
          // The tile's sums: every warp's partial tile into shared memory, one barrier, then the
          // block's threads each sum and store outputs. The buffers alternate between tiles, so
          // the next tile's writes cannot meet this tile's reads without a second barrier.
#pragma unroll
          for (int j = 0; j < kTiles; ++j) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              partial[parity][j][warp][lane][i] = d[j][i];
              d[j][i] = 0.0f;
            }
          }
          __syncthreads();
          for (int o = threadIdx.x; o < kTiles * 128; o += kWarps * 32) {
            const int j = o / 128, ln = (o / 4) % 32, i = o % 4;
            float v = 0.0f;
#pragma unroll
            for (int p = 0; p < kWarps; ++p) v += partial[parity][j][p][ln][i];
            const int token = 8 * j + 2 * (ln & 3) + (i & 1);
            const int64_t row = static_cast<int64_t>(tile) * 16 + (ln >> 2) + (i >= 2 ? 8 : 0);
            store_int4_out<T>(a, v, token, row);
          }
          parity ^= 1;
          unit = 0;
          tile += gridDim.x;
        } else {
          ++unit;
        }
      }
    }
  }
}

// Variants 0-3: the tile kernel's shapes (128-column blocks a lane loads per chunk, chunks in
// flight, warps, weights loaded before pdl_wait()); 4-9: the streaming kernel's (units in
// flight, warps, warps an SM for one token tile). Measured by tests/kernel_bench/gemv_bench.cpp.
constexpr int kGemvInt4TileVariants = 4;
inline constexpr GemvTcShape kGemvInt4Shapes[kGemvInt4TileVariants] = {
    {1, 4, 8, false}, {1, 4, 8, true}, {2, 2, 8, true}, {1, 8, 8, true}};
struct StreamShape {
  int unroll, warps, warps_per_sm;  // warps_per_sm: the occupancy asked of one token tile
};
inline constexpr StreamShape kGemvInt4StreamShapes[kGemvInt4Variants - kGemvInt4TileVariants] = {
    {4, 8, 16}, {8, 8, 16}, {4, 4, 16}, {8, 4, 16}, {2, 8, 24}, {2, 4, 24}};
constexpr int kGemvInt4FallbackVariant = 1;  // the tile kernel, where a stream variant cannot run

// The blocks of `kernel` (threads each) the device holds at once: the streaming grid.
template <typename Kernel>
int resident_blocks(Kernel kernel, int threads) {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0) != cudaSuccess) {
    return 0;
  }
  return sms * per_sm;
}

template <typename T, int kTiles, int V = 0>
cudaError_t launch_variant(const GemvInt4Args& a, int variant, cudaStream_t stream) {
  if constexpr (V < kGemvInt4TileVariants) {
    if (variant != V) return launch_variant<T, kTiles, V + 1>(a, variant, stream);
    constexpr GemvTcShape s = kGemvInt4Shapes[V];
    return launch(gemv_int4_kernel<T, s.vec, s.unroll, s.warps, s.preload, kTiles>,
                  dim3(static_cast<unsigned>((a.n + 15) / 16)), dim3(s.warps * 32), 0, stream, a);
  } else if constexpr (V < kGemvInt4Variants) {
    if (variant != V) return launch_variant<T, kTiles, V + 1>(a, variant, stream);
    constexpr StreamShape s = kGemvInt4StreamShapes[V - kGemvInt4TileVariants];
    if (a.k % (128 * s.warps) != 0 || a.group % 128 != 0)
      return launch_variant<T, kTiles>(a, kGemvInt4FallbackVariant, stream);
    const auto kernel = gemv_int4_stream_kernel<T, s.unroll, s.warps, kTiles, s.warps_per_sm>;
    static const int resident = resident_blocks(kernel, s.warps * 32);
    if (resident <= 0) return cudaErrorInvalidConfiguration;
    const int tiles = (a.n + 15) / 16;
    return launch(kernel, dim3(static_cast<unsigned>(std::min(tiles, resident))),
                  dim3(s.warps * 32), 0, stream, a);
  } else {
    return cudaErrorInvalidValue;
  }
}

}  // namespace

bool gemv_int4_supports(const GemvInt4Args& a) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return (a.dtype == DType::kF16 || a.dtype == DType::kBF16) && a.m >= 1 &&
         a.m <= kGemvInt4MaxRows && a.n >= 1 && a.k % 32 == 0 && a.group >= 32 &&
         (a.group & (a.group - 1)) == 0 && a.k % a.group == 0 && aligned(a.x) && aligned(a.w) &&
         reinterpret_cast<uintptr_t>(a.scales) % 4 == 0 && a.scales != nullptr;
}

cudaError_t launch_gemv_int4(const GemvInt4Args& a, cudaStream_t stream, int variant) {
  if (!gemv_int4_supports(a)) return cudaErrorInvalidValue;
  if (variant < 0) {
    static const int forced = [] {
      const char* e = std::getenv("LLMSERVE_GEMV_INT4_VARIANT");
      return e != nullptr ? std::atoi(e) : -1;
    }();
    // The fastest on the H100 (docs/performance.md): streaming with 4 units in flight, 8 warps
    // for one token tile and 4 for two or four.
    const int tiles = (a.m + 7) / 8;
    variant = forced >= 0 && forced < kGemvInt4Variants ? forced : tiles == 1 ? 4 : 6;
  }
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(a.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      launched = cudaErrorInvalidValue;
    } else {
      // One launch for all tokens: a weight load serves 8, 16 or 32 of them.
      if (a.m <= 8) {
        launched = launch_variant<T, 1>(a, variant, stream);
      } else if (a.m <= 16) {
        launched = launch_variant<T, 2>(a, variant, stream);
      } else {
        launched = launch_variant<T, 4>(a, variant, stream);
      }
    }
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
