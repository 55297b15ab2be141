// Error checks shared by the CUDA backend's host files: a failed CUDA runtime or cuBLASLt call
// becomes an Error (kResourceExhausted for out-of-memory, else kInternal) naming the call.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "common/status.h"

namespace llmserve::cuda_internal {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    const StatusCode code =
        e == cudaErrorMemoryAllocation ? StatusCode::kResourceExhausted : StatusCode::kInternal;
    fail(code, "CUDA error in {}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
  }
}

inline void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    fail(StatusCode::kInternal, "cuBLASLt error in {}: status {}", what, static_cast<int>(s));
  }
}

}  // namespace llmserve::cuda_internal
