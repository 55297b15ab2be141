// CudaBackend: the op set on one NVIDIA GPU. Activations, weights and the KV cache are F16 or
// BF16 (fp32 accumulation everywhere); logits are F32. GEMMs go through cuBLASLt with a plan
// (descriptors + heuristic algorithm) cached per shape; everything else is our kernels
// (kernels.h, attention.h). All work is enqueued on one stream, so a step can be captured into a
// CUDA graph (capture()) and replayed. Host <-> device copies synchronise the stream.
// Decode steps (M <= kGemvMaxRows, kGemvTcMaxRows for quantized weights) run the tensor-core GEMV
// (gemv.h). Quantized weights (--quantization): matmul_q8 runs the int8 GEMV and otherwise
// dequantizes column chunks of the weight into a fixed scratch buffer ahead of cuBLASLt.
// fp8 W8A8: activations are quantized per token by the op that produces them (add_rms_norm_fp8,
// silu_mul_fp8) or by quantize_fp8_rows; matmul_fp8 runs the fp8 GEMV up to
// kGemvTcMaxRows tokens and above that an fp8 cuBLASLt GEMM scaled per token and per output row
// (outer-vector scales; where cuBLASLt has no such kernel, an unscaled GEMM into the output and a
// scaling pass in place).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/peer_allreduce.h"

struct ncclComm;  // NCCL's communicator (ncclComm_t); nccl.h stays out of this header

namespace llmserve {

class CudaBackend final : public Backend {
 public:
  // Throws Error(kUnavailable) when no device is visible, kInvalidArgument for an activation
  // dtype other than F16/BF16.
  explicit CudaBackend(DType activation_dtype, int device = 0);
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  std::string device_arch() const override { return arch_; }
  DType activation_dtype() const override { return dtype_; }

  Buffer allocate(size_t nbytes) override;
  void upload(const void* host, Tensor dst) override;
  void download(Tensor src, void* host) override;
  size_t free_memory() const override;
  BatchTensors upload_batch(const ForwardBatch& batch) override;
  void reserve_batch(const BatchLimits& limits) override;
  void synchronize() override;
  bool can_capture() const override { return true; }
  std::unique_ptr<StepGraph> capture(const std::function<void()>& body) override;

  void embedding(const BatchTensors& batch, Tensor table, Tensor pos_table, Tensor out) override;
  void layer_norm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) override;
  void rms_norm(Tensor x, Tensor w, float eps, Tensor out) override;
  void qk_rms_norm(Tensor qkv, const AttentionShape& shape, Tensor q_w, Tensor k_w,
                   float eps) override;
  void add(Tensor a, Tensor b) override;
  void scale(Tensor x, float s) override;
  void softcap(Tensor x, float cap) override;
  void add_layer_norm(Tensor residual, Tensor x, Tensor w, Tensor b, float eps,
                      Tensor out) override;
  void add_rms_norm(Tensor residual, Tensor x, Tensor w, float eps, Tensor out) override;
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override;
  void matmul_q8(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) override;
  void matmul_int4(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) override;
  void quantize_fp8_rows(Tensor x, const Fp8Rows& out) override;
  // Needs K and N multiples of 16 (cuBLASLt's fp8 kernels); throws Error(kUnimplemented) otherwise.
  void matmul_fp8(const Fp8Rows& x, Tensor w, Tensor w_scales, Tensor bias, Tensor out) override;
  // Fused (one kernel each; `out` untouched) where the row shape allows, else the composition.
  void add_rms_norm_fp8(Tensor residual, Tensor x, Tensor w, float eps, Tensor out,
                        const Fp8Rows& q) override;
  void silu_mul_fp8(Tensor gate_up, Tensor out, const Fp8Rows& q) override;
  void matmul_gelu(Tensor x, Tensor w, Tensor bias, Tensor out) override;
  // Decode steps of up to 8 tokens with 16-bit or int8 weights: the tensor-core GEMV with the
  // norm / SiLU·mul prologue and the residual add. Off unless LLMSERVE_DECODE_FUSION=1: measured
  // slower (docs/performance.md: the prologue's x transform runs on the 4 lanes a warp that hold a
  // token, once per chunk and per block).
  bool can_fuse_linear(int64_t num_tokens, DType weight_dtype) const override;
  void set_decode_fusion(bool on) { fuse_decode_ = on; }  // as LLMSERVE_DECODE_FUSION=1 / 0
  void fused_linear(Tensor x, Tensor w, Tensor scales, Tensor bias, const LinearFusion& f,
                    Tensor out) override;
  void gelu_tanh(Tensor x) override;
  void transpose(Tensor src, Tensor dst) override;
  void silu_mul(Tensor gate_up, Tensor out) override;
  void gelu_mul(Tensor gate_up, Tensor out) override;
  // Mixture of experts (cuda_moe.cpp; kernels in moe.cu): 16-bit, int8-wo or int4-wo experts.
  void moe_route(Tensor router_logits, const MoeRouting& routing, Tensor expert_ids,
                 Tensor expert_weights) override;
  void moe_experts(Tensor x, Tensor expert_ids, Tensor expert_weights, const MoeExperts& experts,
                   const MoeScratch& scratch, Tensor out) override;
  void add_sigmoid_gated(Tensor a, Tensor x, Tensor gate) override;
  void rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
            const BatchTensors& batch) override;
  void write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                const KvLayer& kv) override;
  void rope_write_kv(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                     const BatchTensors& batch, const KvLayer& kv) override;
  void attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                 const KvLayer& kv, Tensor out) override;
  void gather_rows(Tensor x, const BatchTensors& batch, Tensor out) override;
  void argmax_rows(Tensor logits, Tensor ids) override;
  bool can_sample() const override { return true; }
  void sample_rows(Tensor logits, const std::vector<RowSampling>& rows,
                   const std::vector<TokenAdjustment>& adjustments, Tensor ids) override;

  int32_t rank() const override { return rank_; }
  int32_t group_size() const override { return group_size_; }
  int32_t stage() const override { return stage_; }
  int32_t num_stages() const override { return num_stages_; }
  void all_reduce_sum(Tensor x) override;
  void send_to_next_stage(Tensor x) override;
  void recv_from_prev_stage(Tensor x) override;
  void bind_thread() override;
  // Joins a group (nccl_group.cpp): `tp_comm` spans the stage's tensor-parallel ranks (null
  // alone), `world_comm` every rank of every stage (null for one stage). The backend destroys
  // both with itself.
  void join_group(ncclComm* tp_comm, int32_t rank, int32_t size, ncclComm* world_comm,
                  int32_t stage, int32_t num_stages);
  // Small all-reduces go through these peer-memory buffers instead of NCCL (nccl_group.cpp sets
  // them up; `owned` are this rank's allocations, freed with the backend).
  void use_peer_allreduce(const cuda::PeerAllReduceBuffers& buffers, std::vector<void*> owned);

  cudaStream_t stream() const { return stream_; }
  // The per-op time table when LLMSERVE_CUDA_PROFILE=1 (also logged at destruction); else "".
  std::string profile_report() const;

 protected:
  // Events on the stream: the device's own timestamps of a step's first upload and last download.
  void mark_step(bool begin) override;

 private:
  struct Profile;
  class OpTimer {
   public:
    OpTimer(Profile* profile, cudaStream_t stream, const char* op);
    ~OpTimer();
    OpTimer(const OpTimer&) = delete;
    OpTimer& operator=(const OpTimer&) = delete;

   private:
    Profile* profile_;
    cudaStream_t stream_;
    const char* op_;
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
  };

  struct MatmulPlan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // One cuBLASLt GEMM: out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N]), out's rows ldc >= N apart
  // (a column block of a wider output when ldc > N); with outer_scales (fp8), each product
  // out[m, n] is multiplied by w_scales[n] * x_scales[m] (device vectors).
  struct PlanKey {
    int64_t m = 0, n = 0, k = 0, ldc = 0;
    DType x_dtype = DType::kF16, w_dtype = DType::kF16, out_dtype = DType::kF16;
    bool has_bias = false;
    bool outer_scales = false;
    auto operator<=>(const PlanKey&) const = default;
  };
  // The cached plan of `key`; nullptr when cuBLASLt has no algorithm for it (also cached).
  const MatmulPlan* plan_for(const PlanKey& key);
  // Enqueues the GEMM of `key` (bias may be null only when !key.has_bias); throws when plan_for
  // has no plan.
  void run_gemm(const PlanKey& key, const void* x, const void* w, const void* bias, void* out,
                const float* w_scales = nullptr, const float* x_scales = nullptr,
                float alpha = 1.0f);
  // Small-M path (gemv.cu); false when it does not apply.
  bool try_gemv(Tensor x, Tensor w, Tensor bias, bool gelu, Tensor out);
  // Device scratch of at least `bytes`; grows by allocating a new buffer and keeping the old ones
  // alive, so graphs captured earlier keep valid pointers.
  void* scratch(size_t bytes);
  // matmul_q8's device scratch (kQuantBufferBytes of dequantized weight columns), allocated on
  // first use, which must be outside a graph capture (the
  // model runner runs a step eagerly before recording it); fixed afterwards, so recorded graphs
  // keep valid pointers.
  void* quant_scratch();
  void leave_group();  // destroys the NCCL communicator (nccl_group.cpp)

  DType dtype_;
  int device_ = 0;
  std::string arch_;  // "sm_90"
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* lt_workspace_ = nullptr;
  size_t lt_workspace_bytes_ = 0;
  std::map<PlanKey, MatmulPlan> plans_;
  // matmul_fp8 above the GEMV: cuBLASLt's outer-vector scales (default), or an unscaled GEMM into
  // the output and a scaling pass in place (LLMSERVE_FP8_SCALING=pass, and wherever cuBLASLt has
  // no such kernel: cuBLASLt 13.1 on the H100 has none for these shapes).
  bool fp8_cublaslt_scales_ = true;
  // cuBLASLt fp8 GEMMs with fast accumulation (LLMSERVE_FP8_FAST_ACCUM=0: off): 3-8 % faster on
  // the H100 (tests/kernel_bench/gemm_bench.cpp, docs/performance.md).
  bool fp8_fast_accum_ = true;
  // silu_mul_fp8 as one fused kernel (LLMSERVE_FP8_SILU_FUSED=1) instead of silu_mul +
  // quantize_fp8_rows: measured slower at batch 1,024 (114 vs ~70 us a Llama-3-8B call).
  bool fuse_silu_fp8_ = false;
  // Leading decodes of a mixed batch on the decode kernel (BatchTensors::num_leading_decodes);
  // LLMSERVE_MIXED_DECODE_KERNEL=0 leaves every sequence of such a batch to the prefill kernel.
  bool split_mixed_decodes_ = true;
  bool has_warned_fp8_scaling_ = false;
  // Decode GEMVs of 16-bit and int8 weights: the tensor-core kernel (gemv_tc.cuh; default, 1.1x
  // the bf16 and 4x the int8 bandwidth of the others on an H100) or the CUDA-core kernels (gemv.cu,
  // gemv_q8.cu; LLMSERVE_GEMV=simt). fp8 always takes the tensor-core kernel.
  bool gemv_simt_ = false;
  bool fuse_decode_ = false;  // can_fuse_linear; LLMSERVE_DECODE_FUSION=1 for comparison

  // The uploaded batch: one pinned host staging area, one device area, one copy per step.
  void* batch_host_ = nullptr;
  void* batch_device_ = nullptr;
  size_t batch_capacity_ = 0;
  bool has_captured_ = false;

  std::unique_ptr<Profile> profile_;
  // mark_step's events: this step's begin and end, the previous step's end (null until first used).
  cudaEvent_t step_begin_event_ = nullptr, step_end_event_ = nullptr,
              prev_step_end_event_ = nullptr;
  // Sampling parameters of a step: RowSampling rows, then TokenAdjustments, in one device array.
  void* sampling_device_ = nullptr;
  size_t sampling_capacity_ = 0;  // bytes
  std::vector<void*> scratch_buffers_;
  size_t scratch_bytes_ = 0;
  void* quant_scratch_ = nullptr;
  ncclComm* comm_ = nullptr;        // tensor-parallel group of this stage
  ncclComm* world_comm_ = nullptr;  // every rank: pipeline sends
  bool has_peer_allreduce_ = false;
  cuda::PeerAllReduceBuffers peer_;
  std::vector<void*> peer_owned_;
  int32_t rank_ = 0;
  int32_t group_size_ = 1;
  int32_t stage_ = 0;
  int32_t num_stages_ = 1;
};

}  // namespace llmserve
