// The one-shot all-reduce over NVLink peer memory (peer_allreduce.cu) and the buffers it needs:
// set up once per group by nccl_group.cpp, used by CudaBackend::all_reduce_sum for messages of at
// most kPeerAllReduceMaxBytes (larger ones, e.g. prefill, go through NCCL).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace llmserve::cuda {

inline constexpr int kPeerAllReduceMaxRanks = 8;
inline constexpr size_t kPeerAllReduceMaxBytes = 256 << 10;

struct PeerAllReduceBuffers {
  void* staging[kPeerAllReduceMaxRanks][2] = {};  // every rank's two staging buffers (peer-mapped)
  uint32_t* flags[kPeerAllReduceMaxRanks] =
      {};                     // flags[r][k]: rank k's last epoch, in rank r's memory
  uint32_t* epoch = nullptr;  // this rank's round counter
  int32_t rank = 0;
  int32_t size = 1;
};

// x[i] = sum over ranks of x[i] (n elements of dtype, n * size(dtype) <= kPeerAllReduceMaxBytes);
// every rank of the group must launch it, in the same order.
cudaError_t launch_peer_allreduce(DType dtype, void* x, int64_t n,
                                  const PeerAllReduceBuffers& buffers, cudaStream_t stream);

}  // namespace llmserve::cuda
