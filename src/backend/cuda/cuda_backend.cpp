#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "common/logging.h"
#include "common/status.h"

namespace llmserve {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    const StatusCode code =
        e == cudaErrorMemoryAllocation ? StatusCode::kResourceExhausted : StatusCode::kInternal;
    fail(code, "CUDA error in {}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
  }
}

void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail(StatusCode::kInternal, "cuBLASLt error in {}: status {}", what, static_cast<int>(s));
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF8E4M3:
      return CUDA_R_8F_E4M3;
    default:
      fail(StatusCode::kInvalidArgument, "the CUDA backend has no GEMM for dtype {}",
           dtype_name(t));
  }
}

constexpr size_t align_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}

// matmul_q8's dequantized weight columns for one cuBLASLt call live here (4,096 columns of
// K = 4,096 in fp16): enough for GEMMs near full tensor-core speed, and one fixed allocation
// (graphs bake in its address) instead of the largest operand's size.
constexpr size_t kQuantBufferBytes = 32u << 20;
// cuBLASLt picks algorithms assuming 256-byte aligned operands (its default minimum alignment):
// chunk offsets are whole multiples of 128 rows or columns, which keeps them so.
constexpr int64_t kQuantChunkAlign = 128;

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

void* CudaBackend::quant_scratch() {
  if (quant_scratch_ == nullptr) {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(stream_, &capturing), "cudaStreamIsCapturing");
    if (capturing != cudaStreamCaptureStatusNone) {
      fail(StatusCode::kInternal,
           "a quantized matmul was first run inside a graph capture; run the step eagerly first");
    }
    check(cudaMalloc(&quant_scratch_, kQuantBufferBytes), "cudaMalloc(quantization scratch)");
  }
  return quant_scratch_;
}

namespace {
// Byte layout of the uploaded batch; depends only on the array sizes, so equal-shaped batches land
// at equal addresses (what a replayed graph relies on).
struct BatchLayout {
  size_t token_ids, positions, query_start, context_lens, slot_mapping, block_tables,
      logits_indices, total;
  BatchLayout(size_t t, size_t s, size_t l, size_t blocks) {
    size_t o = 0;
    auto take = [&o](size_t n) {
      const size_t at = o;
      o += align_up(n * sizeof(int32_t), 256);
      return at;
    };
    token_ids = take(t);
    positions = take(t);
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
      static_cast<size_t>(limits.max_tokens), static_cast<size_t>(limits.max_seqs),
      static_cast<size_t>(limits.max_tokens), static_cast<size_t>(limits.max_blocks_per_seq));
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
    reserve_batch(BatchLimits{static_cast<int32_t>(std::max({t, l, size_t{1}}) * 2),
                              static_cast<int32_t>(s * 2 + 1),
                              static_cast<int32_t>(blocks * 2 + 1)});
  }
  auto* host = static_cast<uint8_t*>(batch_host_);
  auto* dev = static_cast<uint8_t*>(batch_device_);
  auto put = [&](size_t offset, const std::vector<int32_t>& v) {
    std::memcpy(host + offset, v.data(), v.size() * sizeof(int32_t));
  };
  put(layout.token_ids, fb.token_ids);
  put(layout.positions, fb.positions);
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
  b.query_start = view(layout.query_start, s + 1);
  b.context_lens = view(layout.context_lens, s);
  b.slot_mapping = view(layout.slot_mapping, t);
  b.block_tables = view(layout.block_tables, s * blocks);
  b.logits_indices = view(layout.logits_indices, l);
  b.num_tokens = static_cast<int32_t>(t);
  b.num_seqs = static_cast<int32_t>(s);
  b.num_logits = static_cast<int32_t>(l);
  b.max_blocks_per_seq = fb.max_blocks_per_seq;
  for (size_t i = 0; i < s; ++i) {
    b.max_query_len = std::max(b.max_query_len, fb.query_start[i + 1] - fb.query_start[i]);
    b.max_context_len = std::max(b.max_context_len, fb.context_lens[i]);
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

void CudaBackend::add(Tensor a, Tensor b) {
  const OpTimer timer(profile_.get(), stream_, "add");
  check(cuda::launch_add(dtype_, a.data, b.data, a.numel(), stream_), "add");
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

const CudaBackend::MatmulPlan* CudaBackend::plan_for(const PlanKey& key) {
  if (auto it = plans_.find(key); it != plans_.end())
    return it->second.desc != nullptr ? &it->second : nullptr;
  const auto [m, n, k, ldc, xt, wt, ot, has_bias, outer_scales] = key;
  MatmulPlan p;
  // Row-major out[M, N] = x[M, K] @ w[N, K]^T is column-major out^T[N, M] = w^T... : with A = w
  // (column-major [K, N], transposed) and B = x (column-major [K, M]), D = A^T B is [N, M].
  check_lt(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
  const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
  check_lt(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans),
      "TRANSA");
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans,
                                          sizeof no_trans),
           "TRANSB");
  if (has_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    check_lt(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
        "EPILOGUE");
    // The bias has the weights' type, except that fp8 GEMMs take it in the output's.
    const cudaDataType_t bias_type = cuda_type(wt == DType::kF8E4M3 ? ot : wt);
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                            sizeof bias_type),
             "BIAS_DATA_TYPE");
  }
  if (outer_scales) {
    // D[n, m] = (A^T B)[n, m] * a_scale[n] * b_scale[m]: per-output-row weight scales (A has N
    // rows in D) and per-token input scales (B has M columns).
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode,
                                            sizeof mode),
             "A_SCALE_MODE");
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode,
                                            sizeof mode),
             "B_SCALE_MODE");
  }
  check_lt(cublasLtMatrixLayoutCreate(&p.a, cuda_type(wt), static_cast<uint64_t>(k),
                                      static_cast<uint64_t>(n), k),
           "layout A");
  check_lt(cublasLtMatrixLayoutCreate(&p.b, cuda_type(xt), static_cast<uint64_t>(k),
                                      static_cast<uint64_t>(m), k),
           "layout B");
  check_lt(cublasLtMatrixLayoutCreate(&p.c, cuda_type(ot), static_cast<uint64_t>(n),
                                      static_cast<uint64_t>(m), ldc),
           "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
  check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &lt_workspace_bytes_, sizeof lt_workspace_bytes_),
           "PREF_MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    plans_.emplace(key, MatmulPlan{});  // remembered: no algorithm
    return nullptr;
  }
  p.algo = result.algo;
  return &plans_.emplace(key, p).first->second;
}

void CudaBackend::run_gemm(const PlanKey& key, const void* x, const void* w, const void* bias,
                           void* out, const float* w_scales, const float* x_scales, float alpha) {
  const MatmulPlan* p = plan_for(key);
  if (p == nullptr) {
    fail(StatusCode::kInternal,
         "cuBLASLt has no algorithm for [{}x{}] @ [{}x{}]^T ({} x {} -> {}{}{})", key.m, key.k,
         key.n, key.k, dtype_name(key.x_dtype), dtype_name(key.w_dtype), dtype_name(key.out_dtype),
         key.has_bias ? ", bias" : "", key.outer_scales ? ", per-row/column scales" : "");
  }
  if (key.has_bias) {
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                            sizeof bias),
             "BIAS_POINTER");
  }
  if (key.outer_scales) {  // A is w, B is x (see plan_for)
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                            &w_scales, sizeof w_scales),
             "A_SCALE_POINTER");
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                            &x_scales, sizeof x_scales),
             "B_SCALE_POINTER");
  }
  const float beta = 0.0f;
  check_lt(cublasLtMatmul(lt_, p->desc, &alpha, w, p->a, x, p->b, &beta, out, p->c, out, p->c,
                          &p->algo, lt_workspace_, lt_workspace_bytes_, stream_),
           "cublasLtMatmul");
}

void CudaBackend::matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  if (w.dim(-1) != k || out.dim(0) != m || out.dim(-1) != n) {
    fail(StatusCode::kInternal, "matmul shapes: x {} w {} out {}", x.shape_string(),
         w.shape_string(), out.shape_string());
  }
  if (m == 0) return;
  if (try_gemv(x, w, bias, /*gelu=*/false, out)) return;
  run_gemm(PlanKey{m, n, k, n, x.dtype, w.dtype, out.dtype, bias.data != nullptr}, x.data, w.data,
           bias.data, out.data);
}

void CudaBackend::matmul_q8(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_q8");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  const bool has_bias = bias.data != nullptr;
  if (w.dtype != DType::kI8 || scales.dtype != DType::kF32 || x.dtype != dtype_ ||
      (out.dtype != dtype_ && out.dtype != DType::kF32) || (has_bias && bias.dtype != dtype_) ||
      w.dim(-1) != k || scales.numel() != n || out.dim(0) != m || out.dim(-1) != n ||
      (has_bias && bias.numel() != n)) {
    fail(StatusCode::kInternal, "matmul_q8: x {} ({}) w {} ({}) scales {} out {} ({})",
         x.shape_string(), dtype_name(x.dtype), w.shape_string(), dtype_name(w.dtype),
         scales.shape_string(), out.shape_string(), dtype_name(out.dtype));
  }
  if (m == 0 || n == 0) return;
  cuda::GemvQ8Args a;
  a.dtype = x.dtype;
  a.out_dtype = out.dtype;
  a.x = x.data;
  a.w = w.as<int8_t>();
  a.scales = scales.as<float>();
  a.bias = bias.data;
  a.out = out.data;
  a.m = static_cast<int32_t>(m);
  a.n = static_cast<int32_t>(n);
  a.k = static_cast<int32_t>(k);
  if (cuda::gemv_q8_supports(a)) {
    check(cuda::launch_gemv_q8(a, stream_), "gemv_q8");
    return;
  }
  // Column chunks of the weight, dequantized to the activation dtype, each multiplied by cuBLASLt
  // straight into its columns of out (ldc = N). Chunks of kQuantChunkAlign columns keep the
  // output and bias pointers as aligned as cuBLASLt's heuristics assume.
  const size_t esize = dtype_size(dtype_), out_esize = dtype_size(out.dtype);
  const int64_t chunk = std::min<int64_t>(n, static_cast<int64_t>(kQuantBufferBytes / (k * esize)) /
                                                 kQuantChunkAlign * kQuantChunkAlign);
  if (chunk <= 0)
    fail(StatusCode::kUnimplemented, "matmul_q8: K = {} is too long for the dequantization buffer",
         k);
  void* buffer = quant_scratch();
  for (int64_t n0 = 0; n0 < n; n0 += chunk) {
    const int64_t cols = std::min(chunk, n - n0);
    check(cuda::launch_dequantize_rows_int8(dtype_, w.as<int8_t>() + n0 * k,
                                            scales.as<float>() + n0, static_cast<int32_t>(cols),
                                            static_cast<int32_t>(k), buffer, stream_),
          "dequantize_rows_int8");
    run_gemm(PlanKey{m, cols, k, n, x.dtype, dtype_, out.dtype, has_bias}, x.data, buffer,
             has_bias ? static_cast<const uint8_t*>(bias.data) + n0 * esize : nullptr,
             static_cast<uint8_t*>(out.data) + n0 * out_esize);
  }
}

void CudaBackend::quantize_fp8_rows(Tensor x, const Fp8Rows& out) {
  const OpTimer timer(profile_.get(), stream_, "quantize_fp8");
  const int64_t m = x.dim(0), k = x.dim(-1);
  if (x.dtype != dtype_ || out.q.dtype != DType::kF8E4M3 || out.q.numel() != m * k ||
      out.scales.dtype != DType::kF32 || out.scales.numel() != m) {
    fail(StatusCode::kInternal, "quantize_fp8_rows: x {} ({}) codes {} ({}) scales {}",
         x.shape_string(), dtype_name(x.dtype), out.q.shape_string(), dtype_name(out.q.dtype),
         out.scales.shape_string());
  }
  check(cuda::launch_quantize_fp8_rows(dtype_, x.data, static_cast<int32_t>(m),
                                       static_cast<int32_t>(k), out.q.data, out.scales.as<float>(),
                                       stream_),
        "quantize_fp8_rows");
}

void CudaBackend::add_rms_norm_fp8(Tensor residual, Tensor x, Tensor w, float eps, Tensor out,
                                   const Fp8Rows& q) {
  const OpTimer timer(profile_.get(), stream_, "add_rms_norm_fp8");
  const cudaError_t e = cuda::launch_add_rms_norm_fp8(
      dtype_, residual.data, x.data, w.data, eps, static_cast<int32_t>(residual.dim(0)),
      static_cast<int32_t>(residual.dim(-1)), q.q.data, q.scales.as<float>(), stream_);
  if (e == cudaErrorNotSupported) {
    Backend::add_rms_norm_fp8(residual, x, w, eps, out,
                              q);  // a shape the fused kernel does not take
    return;
  }
  check(e, "add_rms_norm_fp8");
}

void CudaBackend::silu_mul_fp8(Tensor gate_up, Tensor out, const Fp8Rows& q) {
  const OpTimer timer(profile_.get(), stream_, "silu_mul_fp8");
  const cudaError_t e = cuda::launch_silu_mul_fp8(
      dtype_, gate_up.data, static_cast<int32_t>(out.dim(0)), static_cast<int32_t>(out.dim(-1)),
      q.q.data, q.scales.as<float>(), stream_);
  if (e == cudaErrorNotSupported) {
    Backend::silu_mul_fp8(gate_up, out, q);
    return;
  }
  check(e, "silu_mul_fp8");
}

void CudaBackend::matmul_fp8(const Fp8Rows& x, Tensor w, Tensor w_scales, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_fp8");
  const int64_t m = x.q.dim(0), k = x.q.dim(-1), n = w.dim(0);
  const bool has_bias = bias.data != nullptr;
  if (w.dtype != DType::kF8E4M3 || x.q.dtype != DType::kF8E4M3 || x.scales.dtype != DType::kF32 ||
      x.scales.numel() != m || w_scales.dtype != DType::kF32 || w_scales.numel() != n ||
      out.dtype != dtype_ || (has_bias && bias.dtype != dtype_) || w.dim(-1) != k ||
      out.dim(0) != m || out.dim(-1) != n || (has_bias && bias.numel() != n)) {
    fail(StatusCode::kInternal,
         "matmul_fp8: x {} ({}) x scales {} w {} ({}) w scales {} out {} ({})", x.q.shape_string(),
         dtype_name(x.q.dtype), x.scales.shape_string(), w.shape_string(), dtype_name(w.dtype),
         w_scales.shape_string(), out.shape_string(), dtype_name(out.dtype));
  }
  if (k % 16 != 0 || n % 16 != 0) {
    fail(
        StatusCode::kUnimplemented,
        "--quantization fp8 on cuda: fp8 GEMMs need K and N multiples of 16, got a [{}, {}] weight",
        n, k);
  }
  if (m == 0) return;
  const cuda::GemvFp8Args a{.dtype = dtype_,
                            .x = x.q.data,
                            .x_scales = x.scales.as<float>(),
                            .w = w.data,
                            .w_scales = w_scales.as<float>(),
                            .bias = bias.data,
                            .out = out.data,
                            .m = static_cast<int32_t>(m),
                            .n = static_cast<int32_t>(n),
                            .k = static_cast<int32_t>(k)};
  if (cuda::gemv_fp8_supports(a)) {
    check(cuda::launch_gemv_fp8(a, stream_), "gemv_fp8");
    return;
  }
  // cuBLASLt applies the per-token and per-row scales itself (outer-vector scaling) where it can.
  const PlanKey scaled{
      m, n, k, n, DType::kF8E4M3, DType::kF8E4M3, dtype_, has_bias, /*outer_scales=*/true};
  if (fp8_cublaslt_scales_) {
    if (plan_for(scaled) != nullptr) {
      run_gemm(scaled, x.q.data, w.data, bias.data, out.data, w_scales.as<float>(),
               x.scales.as<float>());
      return;
    }
    if (!has_warned_fp8_scaling_) {  // once: the fallback is the normal path on some cuBLASLt
                                     // versions
      LOG_INFO(
          "cuBLASLt has no fp8 GEMM with per-token and per-channel scales ([{}x{}] @ [{}x{}]^T); "
          "fp8 GEMMs "
          "scale in a separate pass",
          m, k, n, k);
      has_warned_fp8_scaling_ = true;
    }
  }
  // Otherwise the unscaled products straight into out, then the scales and the bias in place: one
  // GEMM over all of M, no scratch. bf16 holds any sum of K e4m3 products (|sum| <= K * 448^2) with
  // its usual 8-bit mantissa; fp16 would overflow past 65,504, so its GEMM runs with alpha = 2^-16
  // (exact) and the pass multiplies it back.
  const float alpha = dtype_ == DType::kF16 ? 0x1p-16f : 1.0f;
  run_gemm(PlanKey{m, n, k, n, DType::kF8E4M3, DType::kF8E4M3, dtype_, false, false}, x.q.data,
           w.data, nullptr, out.data, nullptr, nullptr, alpha);
  check(cuda::launch_scale_fp8_output(dtype_, out.data, x.scales.as<float>(), w_scales.as<float>(),
                                      bias.data, 1.0f / alpha, m, static_cast<int32_t>(n), stream_),
        "scale_fp8_output");
}

void CudaBackend::transpose(Tensor src, Tensor dst) {
  if (src.dtype != dst.dtype)
    fail(StatusCode::kInternal, "transpose from {} to {}", dtype_name(src.dtype),
         dtype_name(dst.dtype));
  check(cuda::launch_transpose(src.dtype, src.data, src.dim(0), src.dim(-1), dst.data, stream_),
        "transpose");
}

bool CudaBackend::try_gemv(Tensor x, Tensor w, Tensor bias, bool gelu, Tensor out) {
  cuda::GemvArgs a;
  a.dtype = x.dtype;
  a.out_dtype = out.dtype;
  a.x = x.data;
  a.w = w.data;
  a.bias = bias.data;
  a.out = out.data;
  a.m = static_cast<int32_t>(x.dim(0));
  a.n = static_cast<int32_t>(w.dim(0));
  a.k = static_cast<int32_t>(x.dim(-1));
  a.gelu = gelu;
  if (w.dtype != x.dtype || !cuda::gemv_supports(a)) return false;
  check(cuda::launch_gemv(a, stream_), "gemv");
  return true;
}

void CudaBackend::matmul_gelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_gelu");
  if (x.dim(0) > 0 && try_gemv(x, w, bias, /*gelu=*/true, out)) return;
  matmul(x, w, bias, out);
  gelu_tanh(out);
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

void CudaBackend::rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                       const BatchTensors& batch) {
  const OpTimer timer(profile_.get(), stream_, "rope");
  check(cuda::launch_rope(dtype_, qkv.data, rope_table.as<float>(), batch.positions.as<int32_t>(),
                          batch.num_tokens, shape.num_q_heads, shape.num_kv_heads, shape.head_dim,
                          stream_),
        "rope");
}

void CudaBackend::write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                           const KvLayer& kv) {
  const OpTimer timer(profile_.get(), stream_, "write_kv");
  check(cuda::launch_write_kv(dtype_, qkv.data, batch.slot_mapping.as<int32_t>(), batch.num_tokens,
                              shape.num_q_heads, shape.num_kv_heads, shape.head_dim, kv.k.data,
                              kv.v.data, stream_),
        "write_kv");
}

void CudaBackend::rope_write_kv(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                                const BatchTensors& batch, const KvLayer& kv) {
  const OpTimer timer(profile_.get(), stream_, "rope_write_kv");
  check(cuda::launch_rope_write_kv(dtype_, qkv.data, rope_table.as<float>(),
                                   batch.positions.as<int32_t>(), batch.slot_mapping.as<int32_t>(),
                                   batch.num_tokens, shape.num_q_heads, shape.num_kv_heads,
                                   shape.head_dim, kv.k.data, kv.v.data, stream_),
        "rope_write_kv");
}

void CudaBackend::attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                            const KvLayer& kv, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "attention");
  cuda::AttentionParams p;
  p.dtype = dtype_;
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
  p.max_context_len = batch.max_context_len;
  p.num_q_heads = shape.num_q_heads;
  p.num_kv_heads = shape.num_kv_heads;
  p.head_dim = shape.head_dim;
  p.block_size = kv.block_size;
  p.scale = shape.scale;
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
