// CpuBackend: the readable fp32 reference implementation of the op set, and the oracle the CUDA
// backend is tested against. GEMMs go to OpenBLAS; loops over rows/heads use OpenMP.
// Tensors live in host memory (64-byte aligned). Activations, norms, biases and the KV cache are
// F32. The 2-D weights (linear layers, embedding tables, lm_head) are in the backend's weight
// dtype: F32, or F16 / BF16 kept as the checkpoint stores them (the engine's choice: --dtype) and
// widened to fp32 in registers as matmul reads them, so a decode step, bound by the weight read,
// reads half the bytes; sums stay fp32. Other exceptions: matmul_q8's int8 weights
// (--quantization int8-wo) and matmul_int4's packed 4-bit codes (int4-wo), dequantized on the fly,
// and the e4m3 codes of fp8 W8A8 (--quantization fp8: quantize_fp8_rows, matmul_fp8), whose exact
// products it sums in fp32 as a GPU would.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/host_group.h"

namespace llmserve {

class CpuBackend final : public Backend {
 public:
  // `weight_dtype`: F32, F16 or BF16 (anything else throws Error(kInvalidArgument)).
  explicit CpuBackend(DType weight_dtype = DType::kF32);
  // Rank `rank` of stage `stage`'s tensor-parallel group (whose ranks share `group`; null alone),
  // of `num_stages` stages talking through `pipe` (null for one stage).
  CpuBackend(std::shared_ptr<HostGroup> group, int32_t rank, std::shared_ptr<HostPipe> pipe,
             int32_t stage, int32_t num_stages, DType weight_dtype = DType::kF32);

  std::string_view name() const override { return "cpu"; }
  DType weight_dtype() const override { return weight_dtype_; }
  int32_t rank() const override { return rank_; }
  int32_t group_size() const override { return group_ ? group_->size() : 1; }
  int32_t stage() const override { return stage_; }
  int32_t num_stages() const override { return num_stages_; }
  void all_reduce_sum(Tensor x) override;
  void send_to_next_stage(Tensor x) override;
  void recv_from_prev_stage(Tensor x) override;

  Buffer allocate(size_t nbytes) override;
  // Engine weights used in place in their file's mapping, unless LLMSERVE_CPU_MAP_WEIGHTS=0 (then
  // copied at load: an engine on a slow network filesystem, or one that may be rewritten while
  // served — a mapped file truncated under a running server faults it).
  bool reads_host_memory() const override;
  void upload(const void* host, Tensor dst) override;
  void download(Tensor src, void* host) override;
  size_t free_memory() const override;
  BatchTensors upload_batch(const ForwardBatch& batch) override;

  void embedding(const BatchTensors& batch, Tensor table, Tensor pos_table, Tensor out) override;
  void layer_norm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) override;
  void rms_norm(Tensor x, Tensor w, float eps, Tensor out) override;
  void qk_rms_norm(Tensor qkv, const AttentionShape& shape, Tensor q_w, Tensor k_w,
                   float eps) override;
  void add(Tensor a, Tensor b) override;
  void scale(Tensor x, float s) override;
  void softcap(Tensor x, float cap) override;
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override;
  void matmul_q8(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) override;
  void matmul_int4(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) override;
  void quantize_fp8_rows(Tensor x, const Fp8Rows& out) override;
  void matmul_fp8(const Fp8Rows& x, Tensor w, Tensor w_scales, Tensor bias, Tensor out) override;
  void gelu_tanh(Tensor x) override;
  void transpose(Tensor src, Tensor dst) override;
  void argmax_rows(Tensor logits, Tensor ids) override;  // in place: tensors are host memory
  void silu_mul(Tensor gate_up, Tensor out) override;
  void gelu_mul(Tensor gate_up, Tensor out) override;
  void moe_route(Tensor router_logits, const MoeRouting& routing, Tensor expert_ids,
                 Tensor expert_weights) override;
  void moe_experts(Tensor x, Tensor expert_ids, Tensor expert_weights, const MoeExperts& experts,
                   const MoeScratch& scratch, Tensor out) override;
  bool moe_uses_scratch() const override { return false; }
  void add_sigmoid_gated(Tensor a, Tensor x, Tensor gate) override;
  void rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
            const BatchTensors& batch) override;
  void write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                const KvLayer& kv) override;
  void attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                 const KvLayer& kv, Tensor out) override;
  void gather_rows(Tensor x, const BatchTensors& batch, Tensor out) override;

 private:
  // The uploaded batch is a copy so the views outlive the caller's ForwardBatch.
  ForwardBatch batch_copy_;
  std::vector<int32_t> seq_of_token_;
  std::vector<int8_t> q8_input_scratch_;  // matmul_q8 decode: x rounded to int8, its scales
  std::vector<float> q8_scratch_;     // matmul_q8 / matmul_fp8 / 16-bit matmul: weight rows as fp32
  std::vector<float> fp8_x_scratch_;  // matmul_fp8: the values of x's codes, unscaled
  std::vector<float> int4_x_scratch_;  // matmul_int4: x's group sums and x arranged for the kernel
  int32_t global_rank() const { return stage_ * group_size() + rank_; }
  std::shared_ptr<HostGroup> group_;
  int32_t rank_ = 0;
  std::shared_ptr<HostPipe> pipe_;
  int32_t stage_ = 0;
  int32_t num_stages_ = 1;
  DType weight_dtype_ = DType::kF32;
};

// The 16-bit weight kernels use AVX2 + FMA + F16C where the CPU has them
// (cpu_f16c_kernels_available), else a portable fallback. Tests switch the fast ones off to check
// the fallback too; returns the previous setting. Not for use while a matmul runs.
bool set_cpu_f16c_kernels(bool enabled);
bool cpu_f16c_kernels_available();
// The same for matmul_int4's streamed kernels: AVX2 + FMA (cpu_int4_kernels_available) or the
// portable fallback.
bool set_cpu_int4_kernels(bool enabled);
bool cpu_int4_kernels_available();
// The same for matmul_q8's decode kernels (cpu_matmul_q8.cpp: x rounded to int8 in blocks of 32,
// integer dot products by AVX-VNNI or AVX2): switched off, or where the CPU lacks AVX2
// (cpu_int8_dot_available), decode widens the int8 weights to fp32 instead, x unrounded.
bool set_cpu_int8_dot_kernels(bool enabled);
bool cpu_int8_dot_available();
// Within them, AVX-VNNI's one-instruction dot products where the CPU has them
// (cpu_int8_dot_vnni_available), or AVX2's two: tests check both on a CPU with AVX-VNNI.
bool set_cpu_int8_dot_vnni(bool enabled);
bool cpu_int8_dot_vnni_available();
// gelu_tanh and gelu_mul (GPT-2's MLP, Gemma's GeGLU) 8 values at a time with their own exp where
// the CPU has AVX2 + FMA (cpu_vector_gelu_available), else libm's tanh per value.
bool set_cpu_vector_gelu(bool enabled);
bool cpu_vector_gelu_available();
// attention over a prefill chunk of 16 or more query rows as two GEMMs a head (scores by sgemm,
// softmax, probabilities times values by sgemm) instead of one query row at a time; fp32 caches
// without soft-caps. Tests switch it off to compare; returns the previous setting.
bool set_cpu_tiled_attention(bool enabled);

}  // namespace llmserve
