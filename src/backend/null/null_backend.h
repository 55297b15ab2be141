// NullBackend: a backend that computes nothing — a benchmarking aid, not a model.
//
// Every op is a no-op and every buffer is zero-filled memory that nothing ever writes, so the
// logits a step downloads are all zeros: greedy sampling picks token 0 every step (a uniform draw
// at temperature > 0). The scheduler, block pool, sampler, detokenizer and protocol frontends all
// run as usual, which makes `serve --device null` the way to measure the server's own overhead
// and to load-test clients (`llmserve bench serve`) at thousands of streams without model
// compute. LLMSERVE_NULL_STEP_DELAY_MS paces every step (a sleep per batch): tests that need
// requests to stay in flight for a known time (drain, cancellation) use it instead of racing the
// machine's speed. Weights are not copied (upload is a no-op) and zeroed pages are mapped lazily,
// so the weights and KV cache take address space but almost no resident memory.
//
// Thread-safety: like every backend, used by one thread (the engine thread) at a time.
#pragma once

#include <chrono>

#include "backend/backend.h"

namespace llmserve {

class NullBackend final : public Backend {
 public:
  // `dtype`: what activations and weights claim to be (F32 unless a built engine asks for its
  // own, so that its weights load as stored).
  explicit NullBackend(DType dtype = DType::kF32)
      : dtype_(dtype), step_delay_(step_delay_from_env()) {}
  // Rank `rank` of a group of `size` in stage `stage` of `num_stages`: the collectives stay
  // no-ops (nothing is computed).
  NullBackend(int32_t rank, int32_t size, int32_t stage, int32_t num_stages,
              DType dtype = DType::kF32)
      : dtype_(dtype),
        rank_(rank),
        size_(size),
        stage_(stage),
        num_stages_(num_stages),
        step_delay_(step_delay_from_env()) {}

  std::string_view name() const override { return "null"; }
  DType activation_dtype() const override { return dtype_; }
  int32_t rank() const override { return rank_; }
  int32_t group_size() const override { return size_; }
  int32_t stage() const override { return stage_; }
  int32_t num_stages() const override { return num_stages_; }

  Buffer allocate(size_t nbytes) override;
  void upload(const void* host, Tensor dst) override {}
  void download(Tensor src, void* host) override;
  size_t free_memory() const override;
  BatchTensors upload_batch(const ForwardBatch& batch) override;

  void embedding(const BatchTensors& batch, Tensor table, Tensor pos_table, Tensor out) override {}
  void layer_norm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) override {}
  void rms_norm(Tensor x, Tensor w, float eps, Tensor out) override {}
  void qk_rms_norm(Tensor, const AttentionShape&, Tensor, Tensor, float) override {}
  void add(Tensor a, Tensor b) override {}
  void scale(Tensor x, float s) override {}
  void softcap(Tensor x, float cap) override {}
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override {}
  void gelu_tanh(Tensor x) override {}
  void transpose(Tensor src, Tensor dst) override {}
  void silu_mul(Tensor gate_up, Tensor out) override {}
  void gelu_mul(Tensor gate_up, Tensor out) override {}
  void moe_route(Tensor, const MoeRouting&, Tensor, Tensor) override {}
  void moe_experts(Tensor, Tensor, Tensor, const MoeExperts&, const MoeScratch&, Tensor) override {}
  void add_sigmoid_gated(Tensor, Tensor, Tensor) override {}
  void rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
            const BatchTensors& batch) override {}
  void write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                const KvLayer& kv) override {}
  void attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                 const KvLayer& kv, Tensor out) override {}
  void gather_rows(Tensor x, const BatchTensors& batch, Tensor out) override {}
  // The logits are all zeros, so the argmax (ties to the lowest id) of every row is token 0:
  // written directly, without the base class's host copy of [rows, vocab] logits.
  void argmax_rows(Tensor logits, Tensor ids) override;

 private:
  // LLMSERVE_NULL_STEP_DELAY_MS (0 when unset); throws Error(kInvalidArgument) for a bad value.
  static std::chrono::microseconds step_delay_from_env();
  // The uploaded batch is a copy so the views outlive the caller's ForwardBatch.
  ForwardBatch batch_copy_;
  DType dtype_ = DType::kF32;
  int32_t rank_ = 0;
  int32_t size_ = 1;
  int32_t stage_ = 0;
  int32_t num_stages_ = 1;
  std::chrono::microseconds step_delay_{0};
};

}  // namespace llmserve
