#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "common/logging.h"
#include "common/status.h"

namespace llmserve {
namespace {

using cuda_internal::check;
using cuda_internal::check_lt;

constexpr size_t align_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}

class CudaGraph final : public StepGraph {
 public:
  CudaGraph(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaGraph() override { cudaGraphExecDestroy(exec_); }
  void replay() override { check(cudaGraphLaunch(exec_, stream_), "cudaGraphLaunch"); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

}  // namespace

// Per-op GPU time of eager steps (LLMSERVE_CUDA_PROFILE=1): events around each op, synchronised
// at once, so it serialises the stream; a profiling aid, never on by default.
struct CudaBackend::Profile {
  std::map<std::string, std::pair<double, int64_t>> ms_calls;  // op -> (total ms, calls)
};

CudaBackend::OpTimer::OpTimer(Profile* profile, cudaStream_t stream, const char* op)
    : profile_(profile), stream_(stream), op_(op) {
  if (profile_ == nullptr) return;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  cudaStreamIsCapturing(stream_, &capturing);
  if (capturing != cudaStreamCaptureStatusNone) {
    profile_ = nullptr;
    return;
  }
  cudaEventCreate(&start_);
  cudaEventCreate(&stop_);
  cudaEventRecord(start_, stream_);
}

CudaBackend::OpTimer::~OpTimer() {
  if (profile_ == nullptr) return;
  cudaEventRecord(stop_, stream_);
  cudaEventSynchronize(stop_);
  float ms = 0;
  cudaEventElapsedTime(&ms, start_, stop_);
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
  auto& [total, calls] = profile_->ms_calls[op_];
  total += ms;
  ++calls;
}

std::string CudaBackend::profile_report() const {
  if (!profile_) return {};
  double all = 0;
  for (const auto& [op, v] : profile_->ms_calls) all += v.first;
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(profile_->ms_calls.begin(),
                                                                       profile_->ms_calls.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::string out = fmt::format("{:<16} {:>10} {:>9} {:>10} {:>6}\n", "op", "total ms", "calls",
                                "us/call", "share");
  for (const auto& [op, v] : rows) {
    out += fmt::format("{:<16} {:>10.2f} {:>9} {:>10.2f} {:>5.1f}%\n", op, v.first, v.second,
                       1e3 * v.first / static_cast<double>(v.second),
                       all > 0 ? 100 * v.first / all : 0.0);
  }
  return out;
}

int32_t cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

void CudaBackend::bind_thread() {
  check(cudaSetDevice(device_), "cudaSetDevice");
}

bool cuda_device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::string cuda_device_arch(int32_t device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    return {};
  }
  return fmt::format("sm_{}{}", major, minor);
}

CudaBackend::CudaBackend(DType activation_dtype, int device)
    : dtype_(activation_dtype), device_(device) {
  if (dtype_ != DType::kF16 && dtype_ != DType::kBF16) {
    fail(StatusCode::kInvalidArgument,
         "--dtype: the CUDA backend computes in float16 or bfloat16, not {}", dtype_name(dtype_));
  }
  int n = 0;
  if (cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess || n == 0) {
    fail(StatusCode::kUnavailable, "--device cuda: no CUDA device is visible ({})",
         e == cudaSuccess ? "device count 0" : cudaGetErrorString(e));
  }
  if (device_ >= n)
    fail(StatusCode::kInvalidArgument, "CUDA device {} does not exist ({} visible)", device_, n);
  check(cudaSetDevice(device_), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  check_lt(cublasLtCreate(&lt_), "cublasLtCreate");
  lt_workspace_bytes_ = 32u << 20;
  check(cudaMalloc(&lt_workspace_, lt_workspace_bytes_), "cudaMalloc(cuBLASLt workspace)");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
  arch_ = fmt::format("sm_{}{}", prop.major, prop.minor);
  LOG_INFO("CUDA device {}: {} ({} SMs, {:.1f} GiB), activations {}", device_, prop.name,
           prop.multiProcessorCount, static_cast<double>(prop.totalGlobalMem) / (1ull << 30),
           dtype_name(dtype_));
  if (const char* p = std::getenv("LLMSERVE_FP8_SCALING");
      p != nullptr && std::string(p) == "pass") {
    fp8_cublaslt_scales_ = false;  // the fallback of matmul_fp8, for comparison and its tests
  }
  if (const char* p = std::getenv("LLMSERVE_FP8_FAST_ACCUM"); p != nullptr) {
    fp8_fast_accum_ = std::string(p) != "0";
  }
  if (const char* p = std::getenv("LLMSERVE_FP8_SILU_FUSED"); p != nullptr) {
    fuse_silu_fp8_ = std::string(p) == "1";
  }
  if (const char* p = std::getenv("LLMSERVE_MIXED_DECODE_KERNEL"); p != nullptr) {
    split_mixed_decodes_ = std::string(p) != "0";
  }
  if (const char* p = std::getenv("LLMSERVE_GEMV"); p != nullptr) {
    gemv_simt_ =
        std::string(p) == "simt" ||
        std::string(p) == "persistent";  // which decode GEMVs the 16-bit and int8 matmuls take
  }
  if (const char* p = std::getenv("LLMSERVE_DECODE_FUSION"); p != nullptr) {
    fuse_decode_ = std::string(p) == "1";
  }
  if (const char* p = std::getenv("LLMSERVE_CUDA_PROFILE"); p != nullptr && std::string(p) == "1") {
    profile_ = std::make_unique<Profile>();
    LOG_WARN(
        "LLMSERVE_CUDA_PROFILE=1: timing every eager op (serialises the GPU; for diagnosis only)");
  }
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  leave_group();
  if (profile_) {
    LOG_INFO("per-op GPU time of eager steps (nested ops count in both):\n{}", profile_report());
  }
  for (auto& [key, p] : plans_) {
    if (p.desc == nullptr) continue;  // a key with no algorithm
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  for (cudaEvent_t e : {step_begin_event_, step_end_event_, prev_step_end_event_}) {
    if (e != nullptr) cudaEventDestroy(e);
  }
  for (void* p : scratch_buffers_) cudaFree(p);
  cudaFree(quant_scratch_);
  cudaFree(sampling_device_);
  cudaFree(batch_device_);
  cudaFreeHost(batch_host_);
  cudaFree(lt_workspace_);
  cublasLtDestroy(lt_);
  cudaStreamDestroy(stream_);
}

Buffer CudaBackend::allocate(size_t nbytes) {
  void* p = nullptr;
  if (cudaError_t e = cudaMalloc(&p, std::max<size_t>(nbytes, 1)); e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    fail(StatusCode::kResourceExhausted,
         "out of GPU memory: allocating {:.1f} MiB with {:.1f} MiB free of {:.1f} MiB",
         static_cast<double>(nbytes) / (1 << 20), static_cast<double>(free) / (1 << 20),
         static_cast<double>(total) / (1 << 20));
  }
  return Buffer(p, nbytes, [](void* q) { cudaFree(q); });
}

void CudaBackend::upload(const void* host, Tensor dst) {
  check(cudaMemcpyAsync(dst.data, host, dst.nbytes(), cudaMemcpyHostToDevice, stream_), "upload");
  check(cudaStreamSynchronize(stream_), "upload");
}

void CudaBackend::download(Tensor src, void* host) {
  check(cudaMemcpyAsync(host, src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_), "download");
  check(cudaStreamSynchronize(stream_), "download");
}

size_t CudaBackend::free_memory() const {
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  // Keep room for graphs, cuBLASLt internals and attention scratch.
  const size_t reserve = 512ull << 20;
  return free > reserve ? free - reserve : 0;
}

void CudaBackend::mark_step(bool begin) {
  bind_thread();  // the engine thread, which may last have driven another rank's device
  if (step_begin_event_ == nullptr) {
    for (cudaEvent_t* e : {&step_begin_event_, &step_end_event_, &prev_step_end_event_})
      check(cudaEventCreate(e), "cudaEventCreate(step timing)");
  }
  if (begin) {
    check(cudaEventRecord(step_begin_event_, stream_), "cudaEventRecord(step begin)");
    return;
  }
  check(cudaEventRecord(step_end_event_, stream_), "cudaEventRecord(step end)");
  check(cudaEventSynchronize(step_end_event_), "cudaEventSynchronize(step end)");
  float busy = 0, idle = 0;
  check(cudaEventElapsedTime(&busy, step_begin_event_, step_end_event_), "cudaEventElapsedTime");
  if (timeline_.num_steps > 0) {
    check(cudaEventElapsedTime(&idle, prev_step_end_event_, step_begin_event_),
          "cudaEventElapsedTime");
  }
  timeline_.busy_ms += busy;
  timeline_.idle_ms += idle;
  timeline_.num_steps++;
  std::swap(step_end_event_, prev_step_end_event_);
}

void CudaBackend::synchronize() {
  check(cudaStreamSynchronize(stream_), "synchronize");
}

void* CudaBackend::scratch(size_t bytes) {
  if (bytes <= scratch_bytes_ && !scratch_buffers_.empty()) return scratch_buffers_.back();
  const size_t n = std::max(bytes, scratch_bytes_ * 2);
  void* p = nullptr;
  check(cudaMalloc(&p, n), "cudaMalloc(attention scratch)");
  scratch_buffers_.push_back(p);
  scratch_bytes_ = n;
  return p;
}

namespace {
// Byte layout of the uploaded batch; depends only on the array sizes, so equal-shaped batches land
// at equal addresses (what a replayed graph relies on).
struct BatchLayout {
  size_t token_ids, positions, rope_positions, query_start, context_lens, slot_mapping,
      block_tables, logits_indices, total;
  BatchLayout(size_t t, size_t s, size_t l, size_t blocks) {
    size_t o = 0;
    auto take = [&o](size_t n) {
      const size_t at = o;
      o += align_up(n * sizeof(int32_t), 256);
      return at;
    };
    token_ids = take(t);
    positions = take(t);
    rope_positions = take(t);
    query_start = take(s + 1);
    context_lens = take(s);
    slot_mapping = take(t);
    block_tables = take(s * blocks);
    logits_indices = take(l);
    total = o;
  }
};
}  // namespace

void CudaBackend::reserve_batch(const BatchLimits& limits) {
  const BatchLayout layout(
      static_cast<size_t>(limits.max_num_tokens), static_cast<size_t>(limits.max_batch_size),
      static_cast<size_t>(limits.max_num_tokens), static_cast<size_t>(limits.max_blocks_per_seq));
  if (layout.total <= batch_capacity_) return;
  if (has_captured_)
    fail(StatusCode::kInternal, "the batch buffer cannot grow once graphs are captured");
  cudaFree(batch_device_);
  cudaFreeHost(batch_host_);
  batch_device_ = batch_host_ = nullptr;
  check(cudaMalloc(&batch_device_, layout.total), "cudaMalloc(batch)");
  check(cudaMallocHost(&batch_host_, layout.total), "cudaMallocHost(batch)");
  batch_capacity_ = layout.total;
}

BatchTensors CudaBackend::upload_batch(const ForwardBatch& fb) {
  const size_t t = fb.token_ids.size(), s = fb.context_lens.size(), l = fb.logits_indices.size();
  const size_t blocks = static_cast<size_t>(fb.max_blocks_per_seq);
  const BatchLayout layout(t, s, l, blocks);
  if (layout.total > batch_capacity_) {
    reserve_batch(
        BatchLimits{.max_num_tokens = static_cast<int32_t>(std::max({t, l, size_t{1}}) * 2),
                    .max_batch_size = static_cast<int32_t>(s * 2 + 1),
                    .max_blocks_per_seq = static_cast<int32_t>(blocks * 2 + 1)});
  }
  auto* host = static_cast<uint8_t*>(batch_host_);
  auto* dev = static_cast<uint8_t*>(batch_device_);
  auto put = [&](size_t offset, const std::vector<int32_t>& v) {
    std::memcpy(host + offset, v.data(), v.size() * sizeof(int32_t));
  };
  put(layout.token_ids, fb.token_ids);
  put(layout.positions, fb.positions);
  put(layout.rope_positions, fb.rope_positions);
  put(layout.query_start, fb.query_start);
  put(layout.context_lens, fb.context_lens);
  put(layout.slot_mapping, fb.slot_mapping);
  put(layout.block_tables, fb.block_tables);
  put(layout.logits_indices, fb.logits_indices);
  // The previous step may still read the device area (graph replays are asynchronous): the copy
  // is ordered after it on the same stream, and the host area is only rewritten after the
  // previous step's logits were downloaded (a stream synchronisation).
  check(cudaMemcpyAsync(dev, host, layout.total, cudaMemcpyHostToDevice, stream_), "upload_batch");
  auto view = [&](size_t offset, size_t n) {
    return Tensor(dev + offset, DType::kI32, {static_cast<int64_t>(n)});
  };
  BatchTensors b;
  b.token_ids = view(layout.token_ids, t);
  b.positions = view(layout.positions, t);
  b.rope_positions = view(layout.rope_positions, t);
  b.query_start = view(layout.query_start, s + 1);
  b.context_lens = view(layout.context_lens, s);
  b.slot_mapping = view(layout.slot_mapping, t);
  b.block_tables = view(layout.block_tables, s * blocks);
  b.logits_indices = view(layout.logits_indices, l);
  b.num_tokens = static_cast<int32_t>(t);
  b.num_seqs = static_cast<int32_t>(s);
  b.num_logits = static_cast<int32_t>(l);
  b.max_blocks_per_seq = fb.max_blocks_per_seq;
  bool is_leading = true;
  for (size_t i = 0; i < s; ++i) {
    const int32_t n = fb.query_start[i + 1] - fb.query_start[i];
    b.max_query_len = std::max(b.max_query_len, n);
    b.max_context_len = std::max(b.max_context_len, fb.context_lens[i]);
    is_leading = is_leading && n == 1 && split_mixed_decodes_;
    if (is_leading) ++b.num_leading_decodes;
  }
  return b;
}

std::unique_ptr<StepGraph> CudaBackend::capture(const std::function<void()>& body) {
  has_captured_ = true;
  cudaGraph_t graph = nullptr;
  check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
        "cudaStreamBeginCapture");
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph != nullptr) cudaGraphDestroy(graph);
    throw;
  }
  check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(e, "cudaGraphInstantiate");
  check(cudaGraphUpload(exec, stream_), "cudaGraphUpload");
  return std::make_unique<CudaGraph>(exec, stream_);
}

// --- ops --------------------------------------------------------------------------------------

void CudaBackend::embedding(const BatchTensors& batch, Tensor table, Tensor pos_table, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "embedding");
  check(cuda::launch_embedding(dtype_, table.data, pos_table.data, batch.token_ids.as<int32_t>(),
                               batch.positions.as<int32_t>(), batch.num_tokens,
                               static_cast<int32_t>(out.dim(-1)), out.data, stream_),
        "embedding");
}

void CudaBackend::layer_norm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "layer_norm");
  // Without a residual add the kernel normalises its first argument, read-only.
  check(cuda::launch_add_layer_norm(dtype_, x.data, nullptr, w.data, b.data, eps,
                                    static_cast<int32_t>(x.dim(0)), static_cast<int32_t>(x.dim(-1)),
                                    out.data, stream_),
        "layer_norm");
}

void CudaBackend::rms_norm(Tensor x, Tensor w, float eps, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "rms_norm");
  check(cuda::launch_add_rms_norm(dtype_, x.data, nullptr, w.data, eps,
                                  static_cast<int32_t>(x.dim(0)), static_cast<int32_t>(x.dim(-1)),
                                  out.data, stream_),
        "rms_norm");
}

void CudaBackend::qk_rms_norm(Tensor qkv, const AttentionShape& shape, Tensor q_w, Tensor k_w,
                              float eps) {
  const OpTimer timer(profile_.get(), stream_, "qk_rms_norm");
  check(cuda::launch_qk_rms_norm(dtype_, qkv.data, q_w.data, k_w.data,
                                 static_cast<int32_t>(qkv.dim(0)), shape.num_q_heads,
                                 shape.num_kv_heads, shape.head_dim, eps, stream_),
        "qk_rms_norm");
}

void CudaBackend::add(Tensor a, Tensor b) {
  const OpTimer timer(profile_.get(), stream_, "add");
  check(cuda::launch_add(dtype_, a.data, b.data, a.numel(), stream_), "add");
}

void CudaBackend::scale(Tensor x, float s) {
  const OpTimer timer(profile_.get(), stream_, "scale");
  check(cuda::launch_scale(dtype_, x.data, s, x.numel(), stream_), "scale");
}

void CudaBackend::softcap(Tensor x, float cap) {
  const OpTimer timer(profile_.get(), stream_, "softcap");
  if (x.dtype != DType::kF32) {
    fail(StatusCode::kInternal, "cuda backend: softcap of {} (F32 logits only)",
         dtype_name(x.dtype));
  }
  check(cuda::launch_softcap(x.as<float>(), cap, x.numel(), stream_), "softcap");
}

void CudaBackend::add_layer_norm(Tensor residual, Tensor x, Tensor w, Tensor b, float eps,
                                 Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "add_layer_norm");
  check(cuda::launch_add_layer_norm(dtype_, residual.data, x.data, w.data, b.data, eps,
                                    static_cast<int32_t>(residual.dim(0)),
                                    static_cast<int32_t>(residual.dim(-1)), out.data, stream_),
        "add_layer_norm");
}

void CudaBackend::add_rms_norm(Tensor residual, Tensor x, Tensor w, float eps, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "add_rms_norm");
  check(cuda::launch_add_rms_norm(dtype_, residual.data, x.data, w.data, eps,
                                  static_cast<int32_t>(residual.dim(0)),
                                  static_cast<int32_t>(residual.dim(-1)), out.data, stream_),
        "add_rms_norm");
}

void CudaBackend::argmax_rows(Tensor logits, Tensor ids) {
  const OpTimer timer(profile_.get(), stream_, "argmax_rows");
  check(cuda::launch_argmax_rows(logits.as<float>(), static_cast<int32_t>(logits.dim(0)),
                                 static_cast<int32_t>(logits.dim(-1)), ids.as<int32_t>(), stream_),
        "argmax_rows");
}

void CudaBackend::sample_rows(Tensor logits, const std::vector<RowSampling>& rows,
                              const std::vector<TokenAdjustment>& adjustments, Tensor ids) {
  const OpTimer timer(profile_.get(), stream_, "sample_rows");
  const size_t rows_bytes = align_up(rows.size() * sizeof(RowSampling), 256);
  const size_t bytes = rows_bytes + adjustments.size() * sizeof(TokenAdjustment);
  if (bytes > sampling_capacity_) {
    check(cudaStreamSynchronize(stream_),
          "sample_rows");  // earlier steps may still read the old array
    cudaFree(sampling_device_);
    sampling_device_ = nullptr;
    sampling_capacity_ = std::max<size_t>(bytes * 2, 64 << 10);
    check(cudaMalloc(&sampling_device_, sampling_capacity_), "cudaMalloc(sampling parameters)");
  }
  auto* dev = static_cast<uint8_t*>(sampling_device_);
  check(cudaMemcpyAsync(dev, rows.data(), rows.size() * sizeof(RowSampling), cudaMemcpyHostToDevice,
                        stream_),
        "sample_rows upload");
  if (!adjustments.empty()) {
    check(cudaMemcpyAsync(dev + rows_bytes, adjustments.data(),
                          adjustments.size() * sizeof(TokenAdjustment), cudaMemcpyHostToDevice,
                          stream_),
          "sample_rows upload");
  }
  check(cuda::launch_sample_rows(
            logits.as<float>(), static_cast<int32_t>(logits.dim(0)),
            static_cast<int32_t>(logits.dim(-1)), reinterpret_cast<const RowSampling*>(dev),
            reinterpret_cast<const TokenAdjustment*>(dev + rows_bytes), ids.as<int32_t>(), stream_),
        "sample_rows");
}

void CudaBackend::gelu_tanh(Tensor x) {
  const OpTimer timer(profile_.get(), stream_, "gelu_tanh");
  check(cuda::launch_gelu_tanh(dtype_, x.data, x.numel(), stream_), "gelu_tanh");
}

void CudaBackend::silu_mul(Tensor gate_up, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "silu_mul");
  check(cuda::launch_silu_mul(dtype_, gate_up.data, static_cast<int32_t>(out.dim(0)),
                              static_cast<int32_t>(out.dim(-1)), out.data, stream_),
        "silu_mul");
}

void CudaBackend::gelu_mul(Tensor gate_up, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "gelu_mul");
  check(cuda::launch_gelu_mul(dtype_, gate_up.data, static_cast<int32_t>(out.dim(0)),
                              static_cast<int32_t>(out.dim(-1)), out.data, stream_),
        "gelu_mul");
}

void CudaBackend::rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                       const BatchTensors& batch) {
  const OpTimer timer(profile_.get(), stream_, "rope");
  check(cuda::launch_rope(dtype_, qkv.data, rope_table.as<float>(),
                          batch.rope_positions.as<int32_t>(), batch.num_tokens, shape.num_q_heads,
                          shape.num_kv_heads, shape.head_dim, stream_),
        "rope");
}

void CudaBackend::write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                           const KvLayer& kv) {
  const OpTimer timer(profile_.get(), stream_, "write_kv");
  check(cuda::launch_write_kv(dtype_, kv.k.dtype, qkv.data, batch.slot_mapping.as<int32_t>(),
                              batch.num_tokens, shape.num_q_heads, shape.num_kv_heads,
                              shape.head_dim, kv.k.data, kv.v.data, stream_),
        "write_kv");
}

void CudaBackend::rope_write_kv(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                                const BatchTensors& batch, const KvLayer& kv) {
  const OpTimer timer(profile_.get(), stream_, "rope_write_kv");
  check(cuda::launch_rope_write_kv(
            dtype_, kv.k.dtype, qkv.data, rope_table.as<float>(),
            batch.rope_positions.as<int32_t>(), batch.slot_mapping.as<int32_t>(), batch.num_tokens,
            shape.num_q_heads, shape.num_kv_heads, shape.head_dim, kv.k.data, kv.v.data, stream_),
        "rope_write_kv");
}

void CudaBackend::attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                            const KvLayer& kv, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "attention");
  if (shape.head_dim != 16 && shape.head_dim != 32 && shape.head_dim != 64 &&
      shape.head_dim != 96 && shape.head_dim != 128 && shape.head_dim != 256) {
    // Said plainly, not as a launch error.
    fail(StatusCode::kUnimplemented,
         "cuda backend: attention with head_dim {} is not supported yet (16, 32, 64, 96, 128, 256 "
         "are)",
         shape.head_dim);
  }
  cuda::AttentionParams p;
  p.dtype = dtype_;
  p.kv_fp8 = kv.k.dtype == DType::kF8E4M3;
  p.qkv = qkv.data;
  p.k_cache = kv.k.data;
  p.v_cache = kv.v.data;
  p.out = out.data;
  p.positions = batch.positions.as<int32_t>();
  p.query_start = batch.query_start.as<int32_t>();
  p.context_lens = batch.context_lens.as<int32_t>();
  p.block_tables = batch.block_tables.as<int32_t>();
  p.num_tokens = batch.num_tokens;
  p.num_seqs = batch.num_seqs;
  p.max_blocks_per_seq = batch.max_blocks_per_seq;
  p.max_query_len = batch.max_query_len;
  p.num_leading_decodes = batch.num_leading_decodes;
  p.max_context_len = batch.max_context_len;
  p.num_q_heads = shape.num_q_heads;
  p.num_kv_heads = shape.num_kv_heads;
  p.head_dim = shape.head_dim;
  p.block_size = kv.block_size;
  p.scale = shape.scale;
  p.window = shape.window;
  p.softcap = shape.softcap;
  p.workspace_bytes = cuda::attention_workspace_bytes(
      batch.num_tokens, batch.num_seqs, shape.num_q_heads, shape.head_dim, batch.max_context_len);
  p.workspace = p.workspace_bytes > 0 ? scratch(p.workspace_bytes) : nullptr;
  check(cuda::launch_attention(p, stream_), "attention");
}

void CudaBackend::gather_rows(Tensor x, const BatchTensors& batch, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "gather_rows");
  check(
      cuda::launch_gather_rows(dtype_, x.data, batch.logits_indices.as<int32_t>(), batch.num_logits,
                               static_cast<int32_t>(x.dim(-1)), out.data, stream_),
      "gather_rows");
}

}  // namespace llmserve
