// The tensor-core GEMV (gemv_tc.cuh) for GemvWeights::kInt8, compiled on its own.
#include "backend/cuda/gemv_tc.cuh"

namespace llmserve::cuda {

cudaError_t launch_gemv_tc_int8(const GemvTcArgs& a, int variant, cudaStream_t stream) {
  return launch_gemv_tc_format<GemvWeights::kInt8>(a, variant, stream);
}

}  // namespace llmserve::cuda
