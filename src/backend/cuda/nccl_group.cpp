// Groups of CUDA backends: backend i (stage i / tp, tensor-parallel rank i % tp) on device i.
// Each stage's tensor-parallel ranks share one NCCL communicator (ncclCommInitAll: one process
// drives every GPU, one thread per rank) for all_reduce_sum; with several stages a second
// communicator over every rank carries the pipeline's send/recv. Collectives are enqueued on the
// rank's stream, so they order with its kernels and are recorded into CUDA graphs like any op.
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

void CudaBackend::join_group(ncclComm* tp_comm, int32_t rank, int32_t size, ncclComm* world_comm, int32_t stage,
                             int32_t num_stages) {
  comm_ = tp_comm;
  rank_ = rank;
  group_size_ = size;
  world_comm_ = world_comm;
  stage_ = stage;
  num_stages_ = num_stages;
}

void CudaBackend::leave_group() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (world_comm_ != nullptr) ncclCommDestroy(world_comm_);
  comm_ = world_comm_ = nullptr;
}

void CudaBackend::send_to_next_stage(Tensor x) {
  if (world_comm_ == nullptr || x.numel() == 0) return;
  const OpTimer timer(profile_.get(), stream_, "stage_send");
  const int peer = (stage_ + 1) * group_size_ + rank_;
  check_nccl(ncclSend(x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), peer, world_comm_, stream_), "ncclSend");
}

void CudaBackend::recv_from_prev_stage(Tensor x) {
  if (world_comm_ == nullptr || x.numel() == 0) return;
  const OpTimer timer(profile_.get(), stream_, "stage_recv");
  const int peer = (stage_ - 1) * group_size_ + rank_;
  check_nccl(ncclRecv(x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), peer, world_comm_, stream_), "ncclRecv");
}

void CudaBackend::all_reduce_sum(Tensor x) {
  if (comm_ == nullptr || x.numel() == 0) return;
  const OpTimer timer(profile_.get(), stream_, "all_reduce");
  check_nccl(ncclAllReduce(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), ncclSum, comm_, stream_),
             "ncclAllReduce");
}

std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType activation_dtype, int32_t tp, int32_t pp) {
  const int32_t size = tp * pp;
  const int32_t visible = cuda_device_count();
  if (visible < size) {
    fail(StatusCode::kInvalidArgument, "--tp {} × --pp {} needs {} CUDA devices, {} visible (CUDA_VISIBLE_DEVICES={})", tp, pp,
         size, visible, std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "unset");
  }
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  std::vector<std::unique_ptr<Backend>> ranks;
  std::vector<CudaBackend*> cuda;
  for (int32_t i = 0; i < size; ++i) {
    auto b = std::make_unique<CudaBackend>(activation_dtype, i);
    cuda.push_back(b.get());
    ranks.push_back(std::move(b));
  }
  // Per stage: the tensor-parallel communicator over its devices.
  std::vector<ncclComm_t> tp_comms(static_cast<size_t>(size), nullptr);
  if (tp > 1) {
    for (int32_t s = 0; s < pp; ++s) {
      std::vector<int> devices;
      for (int32_t r = 0; r < tp; ++r) devices.push_back(s * tp + r);
      check_nccl(ncclCommInitAll(tp_comms.data() + static_cast<size_t>(s) * static_cast<size_t>(tp), tp, devices.data()),
                 "ncclCommInitAll(tensor parallel)");
    }
  }
  std::vector<ncclComm_t> world(static_cast<size_t>(size), nullptr);
  if (pp > 1) {
    std::vector<int> devices;
    for (int32_t i = 0; i < size; ++i) devices.push_back(i);
    check_nccl(ncclCommInitAll(world.data(), size, devices.data()), "ncclCommInitAll(pipeline)");
  }
  for (int32_t i = 0; i < size; ++i) {
    const auto k = static_cast<size_t>(i);
    cuda[k]->join_group(tp_comms[k], i % tp, tp, world[k], i / tp, pp);
  }
  int version = 0;
  ncclGetVersion(&version);
  LOG_INFO("parallel: {} stage(s) x {} tensor-parallel rank(s) on CUDA devices 0..{} (NCCL {})", pp, tp, size - 1, version);
  return ranks;
}

#else  // no NCCL in this build: one GPU only

void CudaBackend::join_group(ncclComm*, int32_t, int32_t, ncclComm*, int32_t, int32_t) {}
void CudaBackend::leave_group() {}
void CudaBackend::all_reduce_sum(Tensor) {}
void CudaBackend::send_to_next_stage(Tensor) {}
void CudaBackend::recv_from_prev_stage(Tensor) {}

std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType, int32_t tp, int32_t pp) {
  fail(StatusCode::kUnavailable, "--tp {} --pp {}: this build has no NCCL (install it with the CUDA toolkit and rebuild)",
       tp, pp);
}

#endif

}  // namespace llmserve
