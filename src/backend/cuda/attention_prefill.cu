// Paged attention, prefill path (query length > 1, also mixed batches): FlashAttention-2 style
// tiling on the tensor cores (mma.sync m16n8k16, f16/bf16 in, f32 accumulate).
//
// One CTA takes a tile of 64 consecutive new tokens of one sequence and one query head; each of
// its 4 warps owns 16 query rows, keeps Q as A fragments in registers, and walks the sequence's
// paged K/V in tiles of 64 positions gathered through the block table into shared memory with
// cp.async (the V tile loads while QK^T runs, the next K tile while the softmax and PV run).
// Online softmax in fp32, log2 domain; P is reused from the S accumulators as the A operand of PV.
//
// Invariants: the grid is (ceil(max_query_len / 64), Hq, num_seqs - num_leading_decodes), host
// values only (z = 0 is sequence num_leading_decodes: the ones before took the decode kernel);
// tiles past the real query length exit at once. Row r of a tile sees positions 0..positions[token
// r]; rows past the query length get position -1 and are never written. Out-of-range K/V rows are
// zero-filled so that masked probabilities (exactly 0) never meet garbage.
//
// Head dims 16, 32, 64, 128: QK^T takes D/16 k16 steps (1, 2, 4, 8), PV produces D/8 n8 output
// tiles (2, 4, 8, 16), loaded in pairs by one ldmatrix.x4.trans, so D must be a multiple of 16.
// With kPad = 8 the row pitch is D + 8 halves (48, 80, 144, 272 bytes): 16-byte aligned for
// cp.async/ldmatrix, and the 8 rows of every ldmatrix 8x8 matrix fall on distinct bank quads.
//
// Sliding window (kWindow, p.window > 0): row r sees positions pos_r - window + 1 .. pos_r only,
// so the K/V walk starts at the tile holding the first row's first visible position, and tiles
// reaching below a row's window are masked like the causal diagonal (positions below the first
// row's window are zero-filled, never read: their blocks may be back in the pool,
// engine/sequence.h). Soft-capping (kSoftcap, p.softcap > 0): Q is scaled by scale / softcap and
// each score becomes softcap * log2(e) * tanh(q.k) before the mask. Both are template parameters,
// so the plain kernel is unchanged.
//
// fp8 KV cache (p.kv_fp8, KV = uint8_t): the shared tiles stay in T, since mma.sync takes both
// operands in one type. A tile's e4m3 codes are loaded into registers (8 bytes per 8 elements)
// where cp.async would have been issued, and widened exactly into the shared tile where the
// cp.async wait stood, so the loads stay as far ahead of their use as in the 16-bit path.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/fp8_common.cuh"

namespace llmserve::cuda {
namespace {

constexpr int kTileQ = 64;   // query rows per CTA (16 per warp)
constexpr int kTileKv = 64;  // cached positions per K/V tile
constexpr int kThreads = 128;
constexpr int kPad = 8;  // halves of row padding: keeps ldmatrix rows on distinct banks
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; src_bytes == 0 writes zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a * b for one m16n8k16 tile.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// 2^x on the SFU; exact 0 for -inf, which masked scores rely on.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

struct PrefillArgs {
  const void* qkv;
  const void* k_cache;
  const void* v_cache;
  void* out;
  const int32_t* positions;
  const int32_t* query_start;
  const int32_t* block_tables;
  int max_blocks_per_seq, num_q_heads, num_kv_heads, block_size;
  int first_seq;       // sequences before it are served by the decode kernel
  int window;          // kWindow: sliding window in positions
  float scale_log2;    // scores are multiplied by it: scale * log2(e), or scale / softcap
  float softcap_log2;  // kSoftcap: softcap * log2(e), the factor of tanh(q.k)
};

// Gathers positions [kv0, kv0 + 64) of KV head kvh into tile [64][D + kPad]; rows outside
// [kv_begin, kv_end) are zero-filled (below kv_begin, a sliding window's blocks may be back in the
// pool: their table entries are not read). 128 threads, 16 bytes each per step.
template <typename T, int D>
__device__ __forceinline__ void load_kv_tile(T* tile, const T* cache, const int32_t* table, int kv0,
                                             int kv_begin, int kv_end, int kvh,
                                             const PrefillArgs& a) {
  constexpr int kChunks = D / 8;
  for (int idx = threadIdx.x; idx < kTileKv * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks, j = kv0 + r;
    const T* src = cache;
    int bytes = 0;
    if (j >= kv_begin && j < kv_end) {
      const int64_t slot =
          static_cast<int64_t>(__ldg(table + j / a.block_size)) * a.block_size + j % a.block_size;
      src = cache + (slot * a.num_kv_heads + kvh) * D + c * 8;
      bytes = 16;
    }
    cp_async16(tile + r * (D + kPad) + c * 8, src, bytes);
  }
}

// One K or V tile in flight. fetch() starts the loads of positions [kv0, kv0 + 64) into `tile`
// and commits a cp.async group; land() waits until the tile issued one fetch earlier than the
// latest is in shared memory (cp.async.wait_group 1) -- the caller syncs the CTA after it.
// 16-bit caches: cp.async straight into the tile. e4m3 caches: fetch() loads the codes into
// registers (its cp.async group is empty), land() widens them into the tile.
template <typename T, typename KV, int D>
struct KvTileLoad {
  static constexpr bool kFp8 = !std::is_same_v<T, KV>;
  static constexpr int kPerThread = kTileKv * (D / 8) / kThreads;  // 8-element chunks
  static_assert(kTileKv * (D / 8) % kThreads == 0);
  uint2 codes[kFp8 ? kPerThread : 1];

  __device__ __forceinline__ void fetch(T* tile, const KV* cache, const int32_t* table, int kv0,
                                        int kv_begin, int kv_end, int kvh, const PrefillArgs& a) {
    if constexpr (!kFp8) {
      load_kv_tile<T, D>(tile, cache, table, kv0, kv_begin, kv_end, kvh, a);
    } else {
      constexpr int kChunks = D / 8;
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        const int idx = threadIdx.x + i * kThreads;
        const int r = idx / kChunks, c = idx % kChunks, j = kv0 + r;
        codes[i] = make_uint2(0, 0);  // e4m3 +0: rows outside are zeros, as cp.async fills
        if (j >= kv_begin && j < kv_end) {
          const int64_t slot =
              static_cast<int64_t>(__ldg(table + j / a.block_size)) * a.block_size +
              j % a.block_size;
          codes[i] = __ldg(
              reinterpret_cast<const uint2*>(cache + (slot * a.num_kv_heads + kvh) * D + c * 8));
        }
      }
    }
    cp_async_commit();
  }

  __device__ __forceinline__ void land(T* tile) {
    cp_async_wait<1>();
    if constexpr (kFp8) {
      constexpr int kChunks = D / 8;
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        const int idx = threadIdx.x + i * kThreads;
        const int r = idx / kChunks, c = idx % kChunks;
        float f[8];
        e4m3x8_to_float(codes[i], f);
        Vec8<T> v;
#pragma unroll
        for (int e = 0; e < 8; ++e) v.v[e] = from_float<T>(f[e]);
        *reinterpret_cast<Vec8<T>*>(tile + r * (D + kPad) + c * 8) = v;
      }
    }
  }
};

// Grid: x = tile of 64 new tokens within the sequence (last tile first), y = query head h,
// z = sequence s.
// Block: 128 threads = 4 warps x 16 query rows. Shared: K and V tiles [64][D + 8] of T (the K
// tile first holds Q). Fragment layout (PTX m16n8k16): lane = 4 * g + i holds rows g and g + 8,
// columns 2i, 2i + 1 of each 8-column accumulator tile.
// q [T, (Hq+2Hk)*D]; k/v cache [blocks, block_size, Hk, D]; out [T, Hq*D].
// Shared by two kernels that differ only in their launch bounds: attention_prefill_kernel and,
// for D = 16, attention_prefill_kernel_d16 (below).
template <typename T, typename KV, int D, bool kWindow, bool kSoftcap>
__device__ __forceinline__ void attention_prefill_body(const PrefillArgs& a) {
  static_assert(D % 16 == 0, "k16 steps of QK^T and n8 pairs of PV");
  constexpr int kLd = D + kPad;
  __shared__ alignas(16) T sk[kTileKv * kLd];
  __shared__ alignas(16) T sv[kTileKv * kLd];
  __shared__ int spos[kTileQ];
  const int s = a.first_seq + blockIdx.z, h = blockIdx.y;
  const int q_begin = __ldg(a.query_start + s);
  const int q_len = __ldg(a.query_start + s + 1) - q_begin;
  // Later tiles see more positions; starting them first shortens the causal tail.
  const int tile0 = (gridDim.x - 1 - blockIdx.x) * kTileQ;
  if (tile0 >= q_len) return;
  const int rows = min(kTileQ, q_len - tile0);
  const int t0 = q_begin + tile0;
  const int kvh = h / (a.num_q_heads / a.num_kv_heads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, quad = lane & 3;

  if (threadIdx.x < kTileQ)
    spos[threadIdx.x] = threadIdx.x < rows ? __ldg(a.positions + t0 + threadIdx.x) : -1;
  // Q tile -> sk (zeros past the query length).
  const int64_t q_stride = static_cast<int64_t>(a.num_q_heads + 2 * a.num_kv_heads) * D;
  const T* q_base = static_cast<const T*>(a.qkv) + static_cast<int64_t>(t0) * q_stride + h * D;
  for (int idx = threadIdx.x; idx < kTileQ * (D / 8); idx += kThreads) {
    const int r = idx / (D / 8), c = idx % (D / 8);
    cp_async16(sk + r * kLd + c * 8, r < rows ? q_base + r * q_stride + c * 8 : q_base,
               r < rows ? 16 : 0);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    ldmatrix_x4(qf[kk], sk + (warp * 16 + (lane & 15)) * kLd + kk * 16 + (lane >> 4) * 8);
  }
  int kv_end = 0;  // one past the largest position any row of the tile sees
  for (int r = 0; r < kTileQ; ++r) kv_end = max(kv_end, spos[r] + 1);
  const int pos0 = spos[warp * 16 + g], pos1 = spos[warp * 16 + g + 8];
  // kWindow: the last position each row does not see (-1: none); the tile's rows are consecutive
  // positions, so row 0 sees the smallest, and the walk starts at the tile holding its first.
  const int lo0 = kWindow ? pos0 - a.window : -1, lo1 = kWindow ? pos1 - a.window : -1;
  const int kv_begin = kWindow ? max(0, spos[0] - a.window + 1) : 0;  // first row's first visible
  const int first_kv_tile = kv_begin / kTileKv;
  __syncthreads();  // sk is free for K

  const int32_t* table = a.block_tables + static_cast<int64_t>(s) * a.max_blocks_per_seq;
  const KV* kc = static_cast<const KV*>(a.k_cache);
  const KV* vc = static_cast<const KV*>(a.v_cache);
  KvTileLoad<T, KV, D> kload, vload;
  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // rows g and g + 8

  const int num_kv_tiles = (kv_end + kTileKv - 1) / kTileKv;
  kload.fetch(sk, kc, table, first_kv_tile * kTileKv, kv_begin, kv_end, kvh, a);
  for (int kt = first_kv_tile; kt < num_kv_tiles; ++kt) {
    const int kv0 = kt * kTileKv;
    vload.fetch(sv, vc, table, kv0, kv_begin, kv_end, kvh, a);
    kload.land(sk);  // K tile kt
    __syncthreads();

    float sc[kTileKv / 8][4];
#pragma unroll
    for (int n = 0; n < kTileKv / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int n = 0; n < kTileKv / 8; n += 2) {
        uint32_t b[4];
        const int mi = lane >> 3;
        ldmatrix_x4(b, sk + (n * 8 + (mi >> 1) * 8 + (lane & 7)) * kLd + kk * 16 + (mi & 1) * 8);
        mma16816<T>(sc[n], qf[kk], b[0], b[1]);
        mma16816<T>(sc[n + 1], qf[kk], b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with sk
    if (kt + 1 < num_kv_tiles) {
      kload.fetch(sk, kc, table, kv0 + kTileKv, kv_begin, kv_end, kvh, a);
    } else {
      cp_async_commit();  // an empty group keeps land()'s wait_group 1 counting right
    }

    // Online softmax of rows g (sc[.][0..1]) and g + 8 (sc[.][2..3]).
    float mx0 = -INFINITY, mx1 = -INFINITY;
    // Only tiles reaching past the smallest position of the warp's rows need the causal mask,
    // and under a window those reaching below the largest row's window.
    bool is_masked = kv0 + kTileKv - 1 > min(pos0, pos1);
    if constexpr (kWindow) is_masked = is_masked || kv0 <= max(lo0, lo1);
    is_masked = __any_sync(0xffffffffu, is_masked);
#pragma unroll
    for (int n = 0; n < kTileKv / 8; ++n) {
      const int j = kv0 + n * 8 + quad * 2;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sc[n][e] *= a.scale_log2;
        if constexpr (kSoftcap) sc[n][e] = a.softcap_log2 * tanhf(sc[n][e]);
        const int jj = j + (e & 1);
        if (is_masked && (jj > (e < 2 ? pos0 : pos1) || (kWindow && jj <= (e < 2 ? lo0 : lo1)))) {
          sc[n][e] = -INFINITY;
        }
      }
      mx0 = fmaxf(mx0, fmaxf(sc[n][0], sc[n][1]));
      mx1 = fmaxf(mx1, fmaxf(sc[n][2], sc[n][3]));
    }
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float mu0 = mn0 == -INFINITY ? 0.0f : mn0, mu1 = mn1 == -INFINITY ? 0.0f : mn1;
    const float c0 = fast_exp2(m0 - mu0), c1 = fast_exp2(m1 - mu1);
    m0 = mn0;
    m1 = mn1;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int n = 0; n < kTileKv / 8; ++n) {
      sc[n][0] = fast_exp2(sc[n][0] - mu0);
      sc[n][1] = fast_exp2(sc[n][1] - mu0);
      sc[n][2] = fast_exp2(sc[n][2] - mu1);
      sc[n][3] = fast_exp2(sc[n][3] - mu1);
      sum0 += sc[n][0] + sc[n][1];
      sum1 += sc[n][2] + sc[n][3];
    }
    l0 = l0 * c0 + sum0;  // per-lane partial; the quad is summed once at the end
    l1 = l1 * c1 + sum1;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      o[n][0] *= c0;
      o[n][1] *= c0;
      o[n][2] *= c1;
      o[n][3] *= c1;
    }

    vload.land(sv);  // V tile kt
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileKv / 16; ++kk) {
      const uint32_t pa[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]),
                              pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                              pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < D / 8; n += 2) {
        uint32_t b[4];
        const int mi = lane >> 3;
        ldmatrix_x4_trans(b,
                          sv + (kk * 16 + (mi & 1) * 8 + (lane & 7)) * kLd + n * 8 + (mi >> 1) * 8);
        mma16816<T>(o[n], pa, b[0], b[1]);
        mma16816<T>(o[n + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with sv
  }
  cp_async_wait<0>();

#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, off);
    l1 += __shfl_xor_sync(0xffffffffu, l1, off);
  }
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  const int r0 = warp * 16 + g, r1 = r0 + 8;
  T* out = static_cast<T*>(a.out);
  const int64_t out_stride = static_cast<int64_t>(a.num_q_heads) * D;
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    const int col = h * D + n * 8 + quad * 2;
    if (r0 < rows) {
      *reinterpret_cast<uint32_t*>(out + (t0 + r0) * out_stride + col) =
          pack2<T>(o[n][0] * inv0, o[n][1] * inv0);
    }
    if (r1 < rows) {
      *reinterpret_cast<uint32_t*>(out + (t0 + r1) * out_stride + col) =
          pack2<T>(o[n][2] * inv1, o[n][3] * inv1);
    }
  }
}

template <typename T, typename KV, int D, bool kWindow, bool kSoftcap>
__global__ void __launch_bounds__(kThreads) attention_prefill_kernel(const PrefillArgs a) {
  attention_prefill_body<T, KV, D, kWindow, kSoftcap>(a);
}

// D = 16: with the plain bound ptxas (-O3) squeezes the kernel to 80 registers for 6 CTAs/SM
// and spills 16 bytes to get there; asking for 5 CTAs/SM gives 96 registers and no spill. A
// separate kernel, because any min-blocks value changes the code ptxas makes for D = 64/128.
template <typename T, typename KV, bool kWindow, bool kSoftcap>
__global__ void __launch_bounds__(kThreads, 5) attention_prefill_kernel_d16(const PrefillArgs a) {
  attention_prefill_body<T, KV, 16, kWindow, kSoftcap>(a);
}

template <typename T, typename KV, int D, bool kWindow, bool kSoftcap>
void launch_prefill_kernel(const PrefillArgs& a, const dim3& grid, cudaStream_t stream) {
  if constexpr (D == 16) {
    attention_prefill_kernel_d16<T, KV, kWindow, kSoftcap><<<grid, kThreads, 0, stream>>>(a);
  } else {
    attention_prefill_kernel<T, KV, D, kWindow, kSoftcap><<<grid, kThreads, 0, stream>>>(a);
  }
}

template <typename T, typename KV, int D>
void launch_prefill_variant(const PrefillArgs& a, const AttentionParams& p, const dim3& grid,
                            cudaStream_t stream) {
  const bool window = p.window > 0, softcap = p.softcap > 0;
  if (!window && !softcap) {
    launch_prefill_kernel<T, KV, D, false, false>(a, grid, stream);
  } else if (!softcap) {
    launch_prefill_kernel<T, KV, D, true, false>(a, grid, stream);
  } else if (!window) {
    launch_prefill_kernel<T, KV, D, false, true>(a, grid, stream);
  } else {
    launch_prefill_kernel<T, KV, D, true, true>(a, grid, stream);
  }
}

template <typename T, int D>
cudaError_t launch_prefill(const PrefillArgs& a, const AttentionParams& p, cudaStream_t stream) {
  const dim3 grid((p.max_query_len + kTileQ - 1) / kTileQ, p.num_q_heads,
                  p.num_seqs - p.num_leading_decodes);
  if (p.kv_fp8) {
    launch_prefill_variant<T, uint8_t, D>(a, p, grid, stream);
  } else {
    launch_prefill_variant<T, T, D>(a, p, grid, stream);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_attention_prefill(const AttentionParams& p, cudaStream_t stream) {
  if (p.num_seqs > 65535 || p.num_q_heads > 65535) return cudaErrorInvalidValue;
  PrefillArgs a{};
  a.qkv = p.qkv;
  a.k_cache = p.k_cache;
  a.v_cache = p.v_cache;
  a.out = p.out;
  a.positions = p.positions;
  a.query_start = p.query_start;
  a.block_tables = p.block_tables;
  a.max_blocks_per_seq = p.max_blocks_per_seq;
  a.num_q_heads = p.num_q_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.block_size = p.block_size;
  a.first_seq = p.num_leading_decodes;
  a.window = p.window;
  const bool softcap = p.softcap > 0;
  a.scale_log2 = softcap ? p.scale / p.softcap : p.scale * kLog2e;
  a.softcap_log2 = softcap ? p.softcap * kLog2e : 0.0f;
  const bool is_bf16 = p.dtype == DType::kBF16;
  switch (p.head_dim) {
    case 16:
      return is_bf16 ? launch_prefill<__nv_bfloat16, 16>(a, p, stream)
                     : launch_prefill<__half, 16>(a, p, stream);
    case 32:
      return is_bf16 ? launch_prefill<__nv_bfloat16, 32>(a, p, stream)
                     : launch_prefill<__half, 32>(a, p, stream);
    case 64:
      return is_bf16 ? launch_prefill<__nv_bfloat16, 64>(a, p, stream)
                     : launch_prefill<__half, 64>(a, p, stream);
    case 96:  // Phi-3 mini: 6 k16 steps, 12 n8 tiles (6 ldmatrix pairs), a 208-byte row pitch
      return is_bf16 ? launch_prefill<__nv_bfloat16, 96>(a, p, stream)
                     : launch_prefill<__half, 96>(a, p, stream);
    case 128:
      return is_bf16 ? launch_prefill<__nv_bfloat16, 128>(a, p, stream)
                     : launch_prefill<__half, 128>(a, p, stream);
    default:
      return cudaErrorInvalidValue;  // launch_attention rejects these first
  }
}

}  // namespace llmserve::cuda
