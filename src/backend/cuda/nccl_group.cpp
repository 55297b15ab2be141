// Groups of CUDA backends: backend i (stage i / tp, tensor-parallel rank i % tp) on device i.
// Each stage's tensor-parallel ranks share one NCCL communicator (ncclCommInitAll: one process
// drives every GPU, one thread per rank) for all_reduce_sum; with several stages a second
// communicator over every rank carries the pipeline's send/recv. Collectives are enqueued on the
// rank's stream, so they order with its kernels and are recorded into CUDA graphs like any op.
//
// NCCL's NVLink SHARP multicast (NVLS) stays off unless the user set NCCL_NVLS_ENABLE: the GPU
// machines we target do not all support it and NCCL then fails at the first collective.
#include <cstdlib>
#include <string>

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
  if (r != ncclSuccess)
    fail(StatusCode::kInternal, "NCCL error in {}: {}", what, ncclGetErrorString(r));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF16:
      return ncclFloat16;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kF32:
      return ncclFloat32;
    default:
      fail(StatusCode::kInternal, "all_reduce_sum of {} tensors", dtype_name(t));
  }
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail(StatusCode::kInternal, "CUDA error in {}: {}", what, cudaGetErrorString(e));
}

// Sets up the one-shot peer all-reduce for the tensor-parallel ranks `group` (devices `first`..):
// peer access between every pair, per rank two staging buffers, a flag slot per peer and an
// epoch counter. Opt-in (LLMSERVE_ALLREDUCE=peer): as it stands it is slower than NCCL (Llama-3-8B
// tp=2 batch 1: 199.3 vs 209.5 tok/s, docs/performance.md); it is the base for an all-reduce fused
// with the residual add + norm. Returns false (NCCL for every all-reduce) when not asked for or
// when some pair of GPUs cannot reach each other's memory.
bool setup_peer_allreduce(const std::vector<CudaBackend*>& group, int32_t first) {
  const auto n = static_cast<int32_t>(group.size());
  if (const char* v = std::getenv("LLMSERVE_ALLREDUCE"); v == nullptr || std::string(v) != "peer")
    return false;
  if (n > cuda::kPeerAllReduceMaxRanks) return false;
  for (int32_t i = 0; i < n; ++i) {
    for (int32_t j = 0; j < n; ++j) {
      int ok = 0;
      if (i != j && (cudaDeviceCanAccessPeer(&ok, first + i, first + j) != cudaSuccess || !ok))
        return false;
    }
  }
  cuda::PeerAllReduceBuffers shared;
  shared.size = n;
  std::vector<std::vector<void*>> owned(static_cast<size_t>(n));
  std::vector<uint32_t*> epochs(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    check_cuda(cudaSetDevice(first + i), "cudaSetDevice");
    for (int32_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const cudaError_t e = cudaDeviceEnablePeerAccess(first + j, 0);
      if (e == cudaErrorPeerAccessAlreadyEnabled) {
        cudaGetLastError();  // clear it: already enabled is fine
      } else {
        check_cuda(e, "cudaDeviceEnablePeerAccess");
      }
    }
    auto& mine = owned[static_cast<size_t>(i)];
    for (int b = 0; b < 2; ++b) {
      void* p = nullptr;
      check_cuda(cudaMalloc(&p, cuda::kPeerAllReduceMaxBytes), "cudaMalloc(all-reduce staging)");
      mine.push_back(p);
      shared.staging[i][b] = p;
    }
    void* flags = nullptr;
    check_cuda(cudaMalloc(&flags, sizeof(uint32_t) * (cuda::kPeerAllReduceMaxRanks + 1)),
               "cudaMalloc(all-reduce flags)");
    check_cuda(cudaMemset(flags, 0, sizeof(uint32_t) * (cuda::kPeerAllReduceMaxRanks + 1)),
               "cudaMemset");
    mine.push_back(flags);
    shared.flags[i] = static_cast<uint32_t*>(flags);
    epochs[static_cast<size_t>(i)] = static_cast<uint32_t*>(flags) + cuda::kPeerAllReduceMaxRanks;
  }
  for (int32_t i = 0; i < n; ++i) {
    cuda::PeerAllReduceBuffers b = shared;
    b.rank = i;
    b.epoch = epochs[static_cast<size_t>(i)];
    group[static_cast<size_t>(i)]->use_peer_allreduce(b, std::move(owned[static_cast<size_t>(i)]));
  }
  check_cuda(cudaSetDevice(first), "cudaSetDevice");
  return true;
}

}  // namespace

void CudaBackend::join_group(ncclComm* tp_comm, int32_t rank, int32_t size, ncclComm* world_comm,
                             int32_t stage, int32_t num_stages) {
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
  for (void* p : peer_owned_) cudaFree(p);
  peer_owned_.clear();
}

void CudaBackend::use_peer_allreduce(const cuda::PeerAllReduceBuffers& buffers,
                                     std::vector<void*> owned) {
  peer_ = buffers;
  peer_owned_ = std::move(owned);
  has_peer_allreduce_ = true;
}

void CudaBackend::send_to_next_stage(Tensor x) {
  if (world_comm_ == nullptr || x.numel() == 0) return;
  const OpTimer timer(profile_.get(), stream_, "stage_send");
  const int peer = (stage_ + 1) * group_size_ + rank_;
  check_nccl(ncclSend(x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), peer, world_comm_,
                      stream_),
             "ncclSend");
}

void CudaBackend::recv_from_prev_stage(Tensor x) {
  if (world_comm_ == nullptr || x.numel() == 0) return;
  const OpTimer timer(profile_.get(), stream_, "stage_recv");
  const int peer = (stage_ - 1) * group_size_ + rank_;
  check_nccl(ncclRecv(x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), peer, world_comm_,
                      stream_),
             "ncclRecv");
}

void CudaBackend::all_reduce_sum(Tensor x) {
  if (comm_ == nullptr || x.numel() == 0) return;
  if (has_peer_allreduce_ && x.nbytes() <= cuda::kPeerAllReduceMaxBytes) {
    const OpTimer timer(profile_.get(), stream_, "all_reduce (peer)");
    if (cudaError_t e = cuda::launch_peer_allreduce(x.dtype, x.data, x.numel(), peer_, stream_);
        e != cudaSuccess) {
      fail(StatusCode::kInternal, "CUDA error in peer all-reduce: {}", cudaGetErrorString(e));
    }
    return;
  }
  const OpTimer timer(profile_.get(), stream_, "all_reduce");
  check_nccl(ncclAllReduce(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype),
                           ncclSum, comm_, stream_),
             "ncclAllReduce");
}

std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType activation_dtype, int32_t tp,
                                                                int32_t pp) {
  const int32_t size = tp * pp;
  const int32_t visible = cuda_device_count();
  if (visible < size) {
    fail(StatusCode::kInvalidArgument,
         "--tp {} × --pp {} needs {} CUDA devices, {} visible (CUDA_VISIBLE_DEVICES={})", tp, pp,
         size, visible,
         std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "unset");
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
      check_nccl(ncclCommInitAll(tp_comms.data() + static_cast<size_t>(s) * static_cast<size_t>(tp),
                                 tp, devices.data()),
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
  bool peer = tp > 1;
  for (int32_t s = 0; s < pp && tp > 1; ++s) {
    const std::vector<CudaBackend*> group(cuda.begin() + s * tp, cuda.begin() + (s + 1) * tp);
    peer = setup_peer_allreduce(group, s * tp) && peer;
  }
  int version = 0;
  ncclGetVersion(&version);
  LOG_INFO(
      "parallel: {} stage(s) x {} tensor-parallel rank(s) on CUDA devices 0..{} (NCCL {}; "
      "all-reduce up to {} KiB {})",
      pp, tp, size - 1, version, cuda::kPeerAllReduceMaxBytes >> 10,
      peer ? "over peer memory" : "through NCCL");
  return ranks;
}

#else  // no NCCL in this build: one GPU only

void CudaBackend::join_group(ncclComm*, int32_t, int32_t, ncclComm*, int32_t, int32_t) {}
void CudaBackend::leave_group() {}
void CudaBackend::all_reduce_sum(Tensor) {}
void CudaBackend::send_to_next_stage(Tensor) {}
void CudaBackend::recv_from_prev_stage(Tensor) {}

std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType, int32_t tp, int32_t pp) {
  fail(StatusCode::kUnavailable,
       "--tp {} --pp {}: this build has no NCCL (install it with the CUDA toolkit and rebuild)", tp,
       pp);
}

#endif

}  // namespace llmserve
