// The mixture-of-experts kernels (launchers and contracts in moe.h; the CPU reference is
// src/backend/cpu/cpu_moe.cpp).
//
// moe_route: one warp a token — softmax over the router's logits, k rounds of a warp argmax.
//
// moe_experts: P = T * k routed rows (row t * k + j: token t's j-th expert), two paths chosen by P
// (so a recorded decode graph always takes the same one):
//   decode (P <= kMoeGemvMaxRows): no sort; moe_gemv_kernel computes each routed row against its
//     expert's weight rows (gate/up, then down after silu_mul), rows left in routed order;
//   prefill: moe_align_kernel counts the rows of each expert and sorts them by expert into the
//     index; moe_gemm_kernel is one grouped tensor-core GEMM over all experts (each block one
//     64-row tile of one expert's rows × 64 output columns; experts nobody chose have no tiles),
//     launched once for gate/up (input rows gathered from x) and once for down.
//   Both end in moe_combine_kernel: out[t] = sum_j weights[t, j] * row(t, j), fp32, j in order.
// On either path a routed row's outputs depend only on its own input row and expert, not on which
// rows share its tile or where the sort put it (the two paths sum in different orders, so a token
// may round differently in a batch that takes the other path). Expert weights are in
// the activation dtype, int8-wo codes with per-row scales (W = int8_t: the GEMM dequantizes them
// into its B tiles, the GEMV scales each row's fp32 sum) or int4-wo packed codes with per-group
// (scale, zero) pairs (W = uint32_t: both dequantize 8 columns a word).
//
// The index (int32 [2P + 2(E + 1)]), written by moe_align_kernel:
//   [0, E]                  offsets: expert e's rows are sorted rows offsets[e] .. offsets[e + 1]
//   [E + 1, 2E + 1]         tile_start: expert e's first 64-row tile; tile_start[E]: all tiles
//   [2E + 2, 2E + 2 + P)    sorted: the routed row at each sorted position
//   [2E + 2 + P, 2E + 2 + 2P) position_of: each routed row's sorted position
#include <mma.h>

#include <algorithm>
#include <climits>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe.h"

namespace llmserve::cuda {
namespace {

constexpr int kRouteWarps = 4;
constexpr int kRoutePerLane = kMoeMaxExperts / 32;
constexpr int kAlignThreads = 1024;
constexpr int kTileM = 64, kTileN = 64, kTileK = 32;
constexpr int kGemmThreads = 128;  // 4 warps, each a 32 x 32 quarter of the tile
constexpr int kGemvWarps = 8;
constexpr int kCombineThreads = 128;

// grid (ceil(T / kRouteWarps)), block (32 * kRouteWarps): warp w of block b routes token
// b * kRouteWarps + w. Lane l holds logits l, l + 32, ... (fp32); the softmax's max and sum are
// warp reductions; round j's warp argmax (largest logit, lowest index on ties) is expert j, whose
// probability lane j keeps and writes.
__global__ void moe_route_kernel(const float* __restrict__ logits, int32_t num_tokens, int32_t cols,
                                 int32_t num_experts, int32_t top_k, bool renormalize,
                                 int32_t* __restrict__ ids, float* __restrict__ weights) {
  pdl_wait();
  pdl_trigger();
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouteWarps + (threadIdx.x >> 5);
  if (t >= num_tokens) return;
  float v[kRoutePerLane];
  float top = -INFINITY;
#pragma unroll
  for (int i = 0; i < kRoutePerLane; ++i) {
    const int e = lane + 32 * i;
    v[i] = e < num_experts ? logits[t * cols + e] : -INFINITY;
    top = fmaxf(top, v[i]);
  }
  top = warp_max(top);
  float sum = 0;
#pragma unroll
  for (int i = 0; i < kRoutePerLane; ++i) sum += lane + 32 * i < num_experts ? expf(v[i] - top) : 0;
  sum = warp_sum(sum);
  uint32_t taken = 0;  // bit i: expert lane + 32 i is chosen already
  float mine = 0, chosen = 0;
  int32_t my_id = 0;
  for (int j = 0; j < top_k; ++j) {
    float best = -INFINITY;
    int best_e = INT_MAX;
#pragma unroll
    for (int i = 0; i < kRoutePerLane; ++i) {
      const int e = lane + 32 * i;
      if (e < num_experts && ((taken >> i) & 1u) == 0 && (v[i] > best || best_e == INT_MAX)) {
        best = v[i];
        best_e = e;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
      if (ob > best || (ob == best && oe < best_e)) {
        best = ob;
        best_e = oe;
      }
    }
    if ((best_e & 31) == lane) taken |= 1u << (best_e >> 5);
    const float w = expf(best - top) / sum;
    chosen += w;
    if (lane == j) {
      mine = w;
      my_id = best_e;
    }
  }
  if (lane < top_k) {
    ids[t * top_k + lane] = my_id;
    weights[t * top_k + lane] = renormalize ? mine / chosen : mine;
  }
}

// grid (1), block (kAlignThreads), dynamic shared memory 2E ints: the index (file comment) of
// the P routed rows' experts ids [P]. Counts and cursors in shared memory; thread 0 scans the E
// counts. A row's place among its expert's rows depends on the atomics' order, which changes no
// result (file comment).
__global__ void moe_align_kernel(const int32_t* __restrict__ ids, int32_t num_rows,
                                 int32_t num_experts, int32_t* __restrict__ index) {
  extern __shared__ int32_t counts[];  // [E] counts, then [E] cursors
  pdl_wait();
  pdl_trigger();
  int32_t* cursor = counts + num_experts;
  int32_t* offsets = index;
  int32_t* tile_start = index + num_experts + 1;
  int32_t* sorted = index + 2 * (num_experts + 1);
  int32_t* position_of = sorted + num_rows;
  for (int e = threadIdx.x; e < num_experts; e += blockDim.x) counts[e] = 0;
  __syncthreads();
  for (int p = threadIdx.x; p < num_rows; p += blockDim.x) atomicAdd(&counts[ids[p]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t rows = 0, tiles = 0;
    for (int e = 0; e < num_experts; ++e) {
      offsets[e] = rows;
      tile_start[e] = tiles;
      cursor[e] = rows;
      rows += counts[e];
      tiles += (counts[e] + kTileM - 1) / kTileM;
    }
    offsets[num_experts] = rows;
    tile_start[num_experts] = tiles;
  }
  __syncthreads();
  for (int p = threadIdx.x; p < num_rows; p += blockDim.x) {
    const int32_t at = atomicAdd(&cursor[ids[p]], 1);
    sorted[at] = p;
    position_of[p] = at;
  }
}

// The weight rows [E * N, K] a kernel reads, by W: T (16-bit values); int8_t (int8-wo codes,
// `scales` fp32 [E * N], one a row); uint32_t (int4-wo: K / 8 packed words a row in
// src/common/int4.h's order, `scales` the (scale, zero) pairs in T [E * N, 2K / group]).
template <typename W>
__device__ __forceinline__ int64_t row_elements(int32_t k_dim) {
  return sizeof(W) == 4 ? k_dim / 8 : k_dim;
}

// Where word j (columns 8j .. 8j + 7) of an int4 row of k_dim columns is stored (int4.h's
// int4_word_position: 128-column blocks interleave their four 32-column steps).
__device__ __forceinline__ int32_t int4_word_at(int32_t j, int32_t k_dim) {
  const int32_t block = j / 16;
  if (block >= k_dim / 128) return j;
  const int32_t within = j % 16;
  return block * 16 + 4 * (within % 4) + within / 4;
}

// Columns k .. k + 7 (k % 8 == 0, inside one group) of int4 row `words` as fp32: (q - zero) *
// scale of k's group, the pair read from `pairs` (that row's [2K / group] in T).
template <typename T>
__device__ __forceinline__ void int4_values8(const uint32_t* words, const T* pairs, int32_t k,
                                             int32_t k_dim, int32_t group, float (&v)[8]) {
  constexpr int kNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // int4.h's kInt4Nibble
  const uint32_t word = words[int4_word_at(k / 8, k_dim)];
  const int32_t g = k / group;
  const float scale = to_float(pairs[2 * g]), zero = to_float(pairs[2 * g + 1]);
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    v[c] = (static_cast<float>((word >> (4 * kNibble[c])) & 0xFu) - zero) * scale;
  }
}

// Weights of 8 consecutive columns of global row `row` as T: 16-bit weights as stored (one 16-byte
// load); int8-wo codes (one 8-byte load) times the row's scale, and int4-wo codes with their
// group's pair, rounded to T as the dense quantized matmuls' dequantizing paths round them.
template <typename T, typename W>
__device__ __forceinline__ uint4 load_weights8(const W* w, const void* scales, int64_t row,
                                               int32_t k, int32_t k_dim, int32_t group) {
  const W* wrow = w + row * row_elements<W>(k_dim);
  if constexpr (sizeof(W) == 4) {
    float f[8];
    int4_values8(wrow, static_cast<const T*>(scales) + row * (2 * (k_dim / group)), k, k_dim, group,
                 f);
    Vec8<T> v;
#pragma unroll
    for (int j = 0; j < 8; ++j) v.v[j] = from_float<T>(f[j]);
    return *reinterpret_cast<const uint4*>(&v);
  } else if constexpr (sizeof(W) == 1) {
    const float scale = static_cast<const float*>(scales)[row];
    const uint2 raw = *reinterpret_cast<const uint2*>(wrow + k);
    const auto* q = reinterpret_cast<const int8_t*>(&raw);
    Vec8<T> v;
#pragma unroll
    for (int j = 0; j < 8; ++j) v.v[j] = from_float<T>(static_cast<float>(q[j]) * scale);
    return *reinterpret_cast<const uint4*>(&v);
  } else {
    return *reinterpret_cast<const uint4*>(wrow + k);
  }
}

// grid (ceil(N / kTileN), P / kTileM + E), block (kGemmThreads): the grouped GEMM. Block y is
// tile y of the expert-sorted rows (the expert whose tiles hold it found in tile_start; blocks
// past the last tile return), block x columns [64x, 64x + 64) of N. Sorted row r's input row is
// a[sorted[r] / top_k] (kGather: x, for gate/up) or a[r] (down: its input is already sorted);
// its weight is expert e's rows [e * N, (e + 1) * N) of w [E * N, K] (W = T, or int8 codes with
// fp32 scales [E * N] dequantized to T as the B tile is loaded); out [P, N] in sorted order.
// Tiles of A and B (64 x 32, 16-byte loads, zero past the rows / columns / K) go through shared
// memory; warp (wm, wn) accumulates its 32 x 32 quarter in 2 x 2 wmma m16n16k16 fragments (fp32),
// staged through shared memory (in the tiles' place) to the bounds-checked store.
// K % 8 == 0 and 16-byte aligned a and w rows.
template <typename T, typename W, bool kGather>
__global__ void __launch_bounds__(kGemmThreads, 4)
    moe_gemm_kernel(const T* __restrict__ a, const W* __restrict__ w,
                    const void* __restrict__ w_scales, int32_t group,
                    const int32_t* __restrict__ index, int32_t num_experts, int32_t top_k,
                    int32_t n_dim, int32_t k_dim, T* __restrict__ out) {
  namespace wmma = nvcuda::wmma;
  constexpr int kLd = kTileK + 8;  // 80-byte rows: 32-byte aligned fragments, skewed banks
  constexpr int kLdC = kTileN + 4;
  constexpr size_t kTileBytes = 2 * kTileM * kLd * sizeof(T);
  constexpr size_t kOutBytes = kTileM * kLdC * sizeof(float);
  __shared__ __align__(128) unsigned char smem[kTileBytes > kOutBytes ? kTileBytes : kOutBytes];
  auto* tile_a = reinterpret_cast<T(*)[kLd]>(smem);
  auto* tile_b = reinterpret_cast<T(*)[kLd]>(smem + kTileM * kLd * sizeof(T));
  auto* tile_c = reinterpret_cast<float(*)[kLdC]>(smem);
  pdl_wait();
  pdl_trigger();
  const int32_t* offsets = index;
  const int32_t* tile_start = index + num_experts + 1;
  const int32_t* sorted = index + 2 * (num_experts + 1);
  const int tile = static_cast<int>(blockIdx.y);
  if (tile >= tile_start[num_experts]) return;
  // The last expert whose first tile is at or before this one (an expert without rows shares its
  // tile_start with the next, so it is never the last).
  int lo = 0, hi = num_experts - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (tile_start[mid] <= tile) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int e = lo;
  const int32_t row0 = offsets[e] + (tile - tile_start[e]) * kTileM, row_end = offsets[e + 1];
  const int32_t n0 = static_cast<int32_t>(blockIdx.x) * kTileN;
  const int64_t first_row = static_cast<int64_t>(e) * n_dim + n0;  // of this tile's B rows
  // Each thread loads two 16-byte vectors of A and two of B a K step: vector v is row v / 4,
  // columns (v % 4) * 8 .. + 8 of the tile.
  constexpr int kLoads = kTileM * kTileK / 8 / kGemmThreads;
  int32_t a_row[kLoads];  // the input row of each loaded tile row; -1 past the expert's rows
  bool has_b[kLoads];
#pragma unroll
  for (int i = 0; i < kLoads; ++i) {
    const int row = static_cast<int>(threadIdx.x + i * kGemmThreads) / 4;
    const int32_t r = row0 + row;
    a_row[i] = r < row_end ? (kGather ? sorted[r] / top_k : r) : -1;
    has_b[i] = n0 + row < n_dim;
  }
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  }
  for (int32_t k0 = 0; k0 < k_dim; k0 += kTileK) {
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int v = static_cast<int>(threadIdx.x) + i * kGemmThreads;
      const int row = v / 4, col = (v % 4) * 8;
      const int32_t k = k0 + col;
      uint4 va = make_uint4(0, 0, 0, 0), vb = make_uint4(0, 0, 0, 0);
      if (a_row[i] >= 0 && k < k_dim)
        va = *reinterpret_cast<const uint4*>(a + static_cast<int64_t>(a_row[i]) * k_dim + k);
      if (has_b[i] && k < k_dim)
        vb = load_weights8<T>(w, w_scales, first_row + row, k, k_dim, group);
      *reinterpret_cast<uint4*>(&tile_a[row][col]) = va;
      *reinterpret_cast<uint4*>(&tile_b[row][col]) = vb;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &tile_a[wm + 16 * i][kk], kLd);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &tile_b[wn + 16 * j][kk], kLd);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(&tile_c[wm + 16 * i][wn + 16 * j], acc[i][j], kLdC,
                              wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int v = static_cast<int>(threadIdx.x); v < kTileM * kTileN; v += kGemmThreads) {
    const int row = v / kTileN, col = v % kTileN;
    const int32_t r = row0 + row, n = n0 + col;
    if (r < row_end && n < n_dim)
      out[static_cast<int64_t>(r) * n_dim + n] = from_float<T>(tile_c[row][col]);
  }
}

// grid (ceil(N / kGemvWarps), P), block (32 * kGemvWarps): warp w of block (x, p) writes out[p, n],
// n = x * kGemvWarps + w: routed row p's input row (a[p / top_k] when kGather: x, for gate/up;
// else a[p]) dotted with row n of expert ids[p]'s weight rows in w [E * N, K], 16-byte vectors of
// K a lane, fp32 sums. W = T, or int8 codes whose fp32 sum is scaled once by the row's scale
// (w_scales [E * N]), as matmul_q8's GEMV does. Rows stay in routed order. K % 8 == 0, 16-byte
// aligned rows.
template <typename T, typename W, bool kGather>
__global__ void moe_gemv_kernel(const T* __restrict__ a, const W* __restrict__ w,
                                const void* __restrict__ w_scales, int32_t group,
                                const int32_t* __restrict__ ids, int32_t top_k, int32_t n_dim,
                                int32_t k_dim, T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int32_t p = static_cast<int32_t>(blockIdx.y);
  const int32_t n = static_cast<int32_t>(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (n >= n_dim) return;
  const T* arow = a + static_cast<int64_t>(kGather ? p / top_k : p) * k_dim;
  const int64_t w_row = static_cast<int64_t>(ids[p]) * n_dim + n;
  const W* wrow = w + w_row * row_elements<W>(k_dim);
  float acc = 0;
  for (int32_t k = lane * 8; k < k_dim; k += 32 * 8) {
    const Vec8<T> va = *reinterpret_cast<const Vec8<T>*>(arow + k);
    if constexpr (sizeof(W) == 4) {
      float v[8];
      int4_values8(wrow, static_cast<const T*>(w_scales) + w_row * (2 * (k_dim / group)), k, k_dim,
                   group, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc += to_float(va.v[j]) * v[j];
    } else if constexpr (sizeof(W) == 1) {
      const uint2 raw = *reinterpret_cast<const uint2*>(wrow + k);
      const auto* q = reinterpret_cast<const int8_t*>(&raw);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc += to_float(va.v[j]) * static_cast<float>(q[j]);
    } else {
      const Vec8<T> vw = *reinterpret_cast<const Vec8<T>*>(wrow + k);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc += to_float(va.v[j]) * to_float(vw.v[j]);
    }
  }
  acc = warp_sum(acc);
  if constexpr (sizeof(W) == 1) acc *= static_cast<const float*>(w_scales)[w_row];
  if (lane == 0) out[static_cast<int64_t>(p) * n_dim + n] = from_float<T>(acc);
}

// grid (T), block (kCombineThreads): out[t, c] = sum_j weights[t, j] * rows[pos(t * k + j), c],
// fp32, j in order; pos = position_of (prefill: sorted rows) or the identity (decode, nullptr).
template <typename T>
__global__ void moe_combine_kernel(const T* __restrict__ rows,
                                   const int32_t* __restrict__ position_of,
                                   const float* __restrict__ weights, int32_t top_k, int32_t dim,
                                   T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  for (int32_t c = static_cast<int32_t>(threadIdx.x); c < dim; c += blockDim.x) {
    float acc = 0;
    for (int32_t j = 0; j < top_k; ++j) {
      const int64_t p = t * top_k + j;
      const int64_t r = position_of != nullptr ? position_of[p] : p;
      acc += weights[p] * to_float(rows[r * dim + c]);
    }
    out[t * dim + c] = from_float<T>(acc);
  }
}

// grid-stride over T * D: a[t, c] += sigmoid(gate[t, cols - 1]) * x[t, c].
template <typename T>
__global__ void add_sigmoid_gated_kernel(T* __restrict__ a, const T* __restrict__ x,
                                         const float* __restrict__ gate, int64_t n, int32_t dim,
                                         int32_t cols) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[(i / dim) * cols + cols - 1];
    a[i] = from_float<T>(to_float(a[i]) + to_float(x[i]) / (1.0f + expf(-g)));
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// The launches of moe_experts over weights of type W (T, or int8 codes with scales): the decode
// path for up to kMoeGemvMaxRows routed rows, else the sort and the grouped GEMMs; then the
// combine. `step` keeps the first launch error.
template <typename T, typename W, typename Step>
void run_experts(const MoeExpertsParams& p, int32_t num_rows, cudaStream_t stream, Step&& step) {
  const auto* x = static_cast<const T*>(p.x);
  const auto* gate_up = static_cast<const W*>(p.gate_up);
  const auto* down = static_cast<const W*>(p.down);
  auto* up = static_cast<T*>(p.up);
  auto* act = static_cast<T*>(p.act);
  auto* rows_out = static_cast<T*>(p.rows_out);
  const int32_t two_f = 2 * p.ffn;
  const int32_t* position_of = nullptr;
  if (num_rows <= kMoeGemvMaxRows) {
    const auto blocks = [](int32_t n) {
      return static_cast<unsigned>((n + kGemvWarps - 1) / kGemvWarps);
    };
    step(launch(moe_gemv_kernel<T, W, true>, dim3(blocks(two_f), num_rows), 32 * kGemvWarps, 0,
                stream, x, gate_up, p.gate_up_scales, p.gate_up_group, p.expert_ids, p.top_k, two_f,
                p.hidden, up));
    step(launch_silu_mul(p.dtype, up, num_rows, p.ffn, act, stream));
    step(launch(moe_gemv_kernel<T, W, false>, dim3(blocks(p.hidden), num_rows), 32 * kGemvWarps, 0,
                stream, static_cast<const T*>(act), down, p.down_scales, p.down_group, p.expert_ids,
                p.top_k, p.hidden, p.ffn, rows_out));
  } else {
    const size_t smem = 2 * static_cast<size_t>(p.num_experts) * sizeof(int32_t);
    step(launch(moe_align_kernel, dim3(1), kAlignThreads, smem, stream, p.expert_ids, num_rows,
                p.num_experts, p.index));
    const auto tiles = static_cast<unsigned>(num_rows / kTileM + p.num_experts);
    const auto blocks = [](int32_t n) { return static_cast<unsigned>((n + kTileN - 1) / kTileN); };
    const auto* index = static_cast<const int32_t*>(p.index);
    step(launch(moe_gemm_kernel<T, W, true>, dim3(blocks(two_f), tiles), kGemmThreads, 0, stream, x,
                gate_up, p.gate_up_scales, p.gate_up_group, index, p.num_experts, p.top_k, two_f,
                p.hidden, up));
    step(launch_silu_mul(p.dtype, up, num_rows, p.ffn, act, stream));
    step(launch(moe_gemm_kernel<T, W, false>, dim3(blocks(p.hidden), tiles), kGemmThreads, 0,
                stream, static_cast<const T*>(act), down, p.down_scales, p.down_group, index,
                p.num_experts, p.top_k, p.hidden, p.ffn, rows_out));
    position_of = p.index + 2 * (p.num_experts + 1) + num_rows;
  }
  step(launch(moe_combine_kernel<T>, dim3(static_cast<unsigned>(p.num_tokens)), kCombineThreads, 0,
              stream, static_cast<const T*>(rows_out), position_of, p.expert_weights, p.top_k,
              p.hidden, static_cast<T*>(p.out)));
}

}  // namespace

cudaError_t launch_moe_route(const float* logits, int32_t num_tokens, int32_t cols,
                             int32_t num_experts, int32_t top_k, bool renormalize, int32_t* ids,
                             float* weights, cudaStream_t stream) {
  if (num_experts < 1 || num_experts > kMoeMaxExperts || top_k < 1 || top_k > 32 ||
      top_k > num_experts || cols < num_experts) {
    return cudaErrorNotSupported;
  }
  if (num_tokens == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((num_tokens + kRouteWarps - 1) / kRouteWarps));
  return launch(moe_route_kernel, grid, 32 * kRouteWarps, 0, stream, logits, num_tokens, cols,
                num_experts, top_k, renormalize, ids, weights);
}

cudaError_t launch_moe_experts(const MoeExpertsParams& p, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.num_tokens) * p.top_k;
  if (p.hidden % 8 != 0 || p.ffn % 8 != 0 || p.num_experts < 1 || p.top_k < 1 ||
      rows / kTileM + p.num_experts > 65535 || !aligned16(p.x) || !aligned16(p.gate_up) ||
      !aligned16(p.down) || !aligned16(p.up) || !aligned16(p.act) ||
      (p.weights != MoeWeights::k16Bit &&
       (p.gate_up_scales == nullptr || p.down_scales == nullptr)) ||
      (p.weights == MoeWeights::kInt4 &&
       (p.hidden % 32 != 0 || p.ffn % 32 != 0 || p.gate_up_group <= 0 || p.down_group <= 0 ||
        p.gate_up_group % 8 != 0 || p.down_group % 8 != 0))) {
    return cudaErrorNotSupported;
  }
  if (rows == 0) return cudaSuccess;
  const auto num_rows = static_cast<int32_t>(rows);
  cudaError_t launched = cudaSuccess;
  const auto step = [&](cudaError_t e) {
    if (launched == cudaSuccess) launched = e;
  };
  const cudaError_t e = dispatch_dtype(p.dtype, [&]<typename T>() {
    if constexpr (sizeof(T) != 2) {
      launched = cudaErrorNotSupported;  // wmma takes 16-bit operands
    } else if (p.weights == MoeWeights::kInt4) {
      run_experts<T, uint32_t>(p, num_rows, stream, step);
    } else if (p.weights == MoeWeights::kInt8) {
      run_experts<T, int8_t>(p, num_rows, stream, step);
    } else {
      run_experts<T, T>(p, num_rows, stream, step);
    }
  });
  return e != cudaSuccess ? e : launched;
}

cudaError_t launch_add_sigmoid_gated(DType dtype, void* a, const void* x, const float* gate,
                                     int32_t num_tokens, int32_t dim, int32_t cols,
                                     cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(num_tokens) * dim;
  if (n == 0) return cudaSuccess;
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    constexpr int kThreads = 256;
    const auto blocks =
        static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 4096));
    launched = launch(add_sigmoid_gated_kernel<T>, dim3(blocks), kThreads, 0, stream,
                      static_cast<T*>(a), static_cast<const T*>(x), gate, n, dim, cols);
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
