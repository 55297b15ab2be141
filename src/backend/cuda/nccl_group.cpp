// Tensor-parallel groups of CUDA backends: rank r on device r, joined by one NCCL communicator
// per rank (ncclCommInitAll: one process drives every GPU, one thread per rank). all_reduce_sum
// enqueues ncclAllReduce on the rank's stream, so it orders with the rank's kernels and is
// recorded into CUDA graphs like any other op.
//
// NCCL's NVLink SHARP multicast (NVLS) stays off unless the user set NCCL_NVLS_ENABLE: the GPU
// machines we target do not all support it and NCCL then fails at the first collective.
#include <cstdlib>

#include "backend/cuda/cuda_backend.h"
#include "common/logging.h"
#include "common/status.h"

#ifdef LLMSERVE_HAS_NCCL
#include <nccl.h>
#endif

namespace llmserve {

#ifdef LLMSERVE_HAS_NCCL
namespace {

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail(StatusCode::kInternal, "NCCL error in {}: {}", what, ncclGetErrorString(r));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF16: return ncclFloat16;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF32: return ncclFloat32;
    default: fail(StatusCode::kInternal, "all_reduce_sum of {} tensors", dtype_name(t));
  }
}

}  // namespace

void CudaBackend::join_group(ncclComm* comm, int32_t rank, int32_t size) {
  comm_ = comm;
  rank_ = rank;
  group_size_ = size;
}

void CudaBackend::leave_group() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  comm_ = nullptr;
}

void CudaBackend::all_reduce_sum(Tensor x) {
  if (comm_ == nullptr || x.numel() == 0) return;
  const OpTimer timer(profile_.get(), stream_, "all_reduce");
  check_nccl(ncclAllReduce(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), ncclSum, comm_, stream_),
             "ncclAllReduce");
}

std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType activation_dtype, int32_t size) {
  const int32_t visible = cuda_device_count();
  if (visible < size) {
    fail(StatusCode::kInvalidArgument, "--tp {} needs {} CUDA devices, {} visible (CUDA_VISIBLE_DEVICES={})", size,
         size, visible, std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "unset");
  }
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  std::vector<std::unique_ptr<Backend>> ranks;
  std::vector<CudaBackend*> cuda;
  std::vector<int> devices;
  for (int32_t r = 0; r < size; ++r) {
    auto b = std::make_unique<CudaBackend>(activation_dtype, r);
    cuda.push_back(b.get());
    ranks.push_back(std::move(b));
    devices.push_back(r);
  }
  std::vector<ncclComm_t> comms(static_cast<size_t>(size));
  int version = 0;
  ncclGetVersion(&version);
  check_nccl(ncclCommInitAll(comms.data(), size, devices.data()), "ncclCommInitAll");
  for (int32_t r = 0; r < size; ++r) cuda[static_cast<size_t>(r)]->join_group(comms[static_cast<size_t>(r)], r, size);
  LOG_INFO("tensor parallel: {} ranks on CUDA devices 0..{} (NCCL {})", size, size - 1, version);
  return ranks;
}

#else  // no NCCL in this build: one GPU only

void CudaBackend::join_group(ncclComm*, int32_t, int32_t) {}
void CudaBackend::leave_group() {}
void CudaBackend::all_reduce_sum(Tensor) {}

std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType, int32_t size) {
  fail(StatusCode::kUnavailable, "--tp {}: this build has no NCCL (install it with the CUDA toolkit and rebuild)", size);
}

#endif

}  // namespace llmserve
