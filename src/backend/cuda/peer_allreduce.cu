// One-shot all-reduce over NVLink peer memory, for the small messages of decode steps (a few
// tokens × hidden size), where NCCL's ring costs ~10-15 µs per call and a token needs two per
// layer. One block per rank: copy the partial sums into this rank's staging buffer, tell every
// peer (a release store into the peer's flag slot for us), wait until every peer has told us
// (acquire loads of our flag slots), then sum every rank's staging buffer in rank order (fp32
// accumulation, so every rank gets bit-identical results) back into x.
//
// The epoch (a counter in device memory, so replayed graphs keep counting) names the round;
// staging buffers alternate by epoch parity. Reuse is safe: a rank writes staging[e % 2] in round
// e only after round e-1's wait, and every peer signals round e-1 only after finishing round e-2,
// the last reader of that buffer.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/peer_allreduce.h"

namespace llmserve::cuda {
namespace {

__device__ __forceinline__ void store_release_sys(uint32_t* p, uint32_t v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ uint32_t load_acquire_sys(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

template <typename T>
__global__ void __launch_bounds__(1024)
    peer_allreduce_kernel(T* x, int64_t n, PeerAllReduceBuffers b) {
  const uint32_t epoch = *b.epoch + 1;
  const int parity = static_cast<int>(epoch & 1u);
  T* mine = static_cast<T*>(b.staging[b.rank][parity]);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mine[i] = x[i];
  __syncthreads();
  const int peer = static_cast<int>(threadIdx.x);
  if (peer < b.size && peer != b.rank) {
    __threadfence_system();
    store_release_sys(b.flags[peer] + b.rank, epoch);
    while (load_acquire_sys(b.flags[b.rank] + peer) < epoch) {
    }
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    float acc = 0.0f;
    for (int r = 0; r < b.size; ++r)
      acc += to_float(static_cast<const T*>(b.staging[r][parity])[i]);
    x[i] = from_float<T>(acc);
  }
  __syncthreads();
  if (threadIdx.x == 0) *b.epoch = epoch;
}

}  // namespace

cudaError_t launch_peer_allreduce(DType dtype, void* x, int64_t n,
                                  const PeerAllReduceBuffers& buffers, cudaStream_t stream) {
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    peer_allreduce_kernel<T><<<1, 1024, 0, stream>>>(static_cast<T*>(x), n, buffers);
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

}  // namespace llmserve::cuda
