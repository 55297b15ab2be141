// The tensor-core GEMV (gemv_tc.cuh) for GemvWeights::k16Bit, compiled on its own.
#include "backend/cuda/gemv_tc.cuh"

namespace llmserve::cuda {

cudaError_t launch_gemv_tc_16bit(const GemvTcArgs& a, int variant, cudaStream_t stream) {
  return launch_gemv_tc_format<GemvWeights::k16Bit>(a, variant, stream);
}

}  // namespace llmserve::cuda
