// DecoderModel: the step of a pre-norm decoder-only transformer, written once for every
// architecture (model/arch/*.cpp). An architecture's constructor only loads its checkpoint's
// tensors into DecoderLayer / the members below (names, fusions, transposes and splits differ
// between families) and says in DecoderSpec which norm, MLP and positions it uses; forward() is
// this file's. A family that differs somewhere else (a bias, a scale, a norm more) adds the
// option here and its use in forward(), rather than a copy of the loop.
//
// One layer: normed = norm(residual) → QKV (+ bias) → RoPE / KV write → paged attention (within
// the layer's sliding window, scores soft-capped, where the family has them) → o_proj →
// all-reduce → (Gemma: its own norm) → residual += · and the next norm (fused) → MLP (GELU(fc),
// SiLU(gate)·up or GELU(gate)·up) → down → all-reduce → (Gemma: its own norm) → residual += ·
// and the next norm. Under tensor parallelism each rank holds
// its heads and FFN columns (row-parallel biases on rank 0 only); under pipeline parallelism
// each stage runs its layers and hands the residual stream on. fp8 linear inputs (fp8 weights)
// come quantized out of the RMSNorm and SiLU·mul that produce them. Small decode steps on a backend
// with fused linear layers (Backend::fused_linear) take forward_fused: the same math in fewer
// kernels.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"
#include "model/weight_loader.h"

namespace llmserve {

struct NormWeights {
  Tensor w;
  Tensor b;  // LayerNorm's bias; empty for RMSNorm
};

struct DecoderLayer {
  NormWeights input_norm;  // before attention
  NormWeights post_norm;   // before the MLP
  LinearWeight qkv_w, o_w;
  LinearWeight up_w;                // [2F, D] gate then up (SwiGLU), or [F, D] (GELU)
  LinearWeight down_w;              // [D, F]
  Tensor qkv_b, o_b, up_b, down_b;  // each may be empty; o_b and down_b on rank 0 only
  float attention_scale = 0;        // softmax scale of this layer's attention
  int32_t window = 0;               // sliding window of this layer's attention; 0: none
  Tensor q_norm_w, k_norm_w;        // [head_dim] per-head q/k RMSNorm (Qwen3); else empty
  Tensor rope_table;                // this layer's RoPE table (Gemma 3's local layers); else empty
  // Gemma 2/3: RMSNorms of the attention output and of the MLP output, before each is added to
  // the residual stream (post_attention_layernorm, post_feedforward_layernorm); else empty.
  NormWeights attn_out_norm, mlp_out_norm;
  // A MoE layer (ModelConfig::moe, is_sparse) in place of up_w / down_w: the router [E, D] (with a
  // shared expert: [E + 1, D], its gate the last row), the stacked experts (Backend's MoeExperts
  // layout: gate/up [E * 2F, D], down [E * D, F]) and the shared expert's gate/up [2Fs, D] and
  // down [D, Fs] (empty without one). router_w empty: a dense MLP.
  Tensor router_w;
  LinearWeight experts_gate_up, experts_down;
  LinearWeight shared_up_w, shared_down_w;
  bool is_moe() const { return router_w.data != nullptr; }
};

struct DecoderSpec {
  enum class Norm { kLayerNorm, kRmsNorm };
  // kGeluTanh: gelu(fc(x)); kSwiGlu: silu(gate(x)) * up(x); kGeGlu: gelu(gate(x)) * up(x).
  enum class Mlp { kGeluTanh, kSwiGlu, kGeGlu };
  Norm norm = Norm::kRmsNorm;
  Mlp mlp = Mlp::kSwiGlu;
  bool rotary = true;  // RoPE from rope_table_; else learned positions (pos_embed_) in embedding
};

class DecoderModel : public Model {
 public:
  void reserve(int32_t max_num_tokens, int32_t max_logit_rows) override;
  Tensor forward(const BatchTensors& batch, const KvCache& kv) override;

 protected:
  DecoderModel(const ModelConfig& config, Backend& backend, DecoderSpec spec);
  // Call once the weights are loaded.
  void finish_loading();
  // The loads every decoder-only checkpoint spells alike: embed_ from model.embed_tokens.weight
  // (on the first stage, and the last when tied and the lm_head is not quantized); lm_head_ on
  // the last stage (the embeddings when tied, else lm_head.weight, whose absence is an error
  // naming `store`); rope_table_ from `rope` (every stage).
  void load_embeddings(WeightLoader& w);
  void load_lm_head(WeightLoader& w, const WeightStore& store);
  // lm_head_ from the checkpoint's [V, D] tensor `name` (lm_head.weight, or the embeddings when
  // tied: then embed_ itself unless quantized). Under LoadOptions::quantize_lm_head an int8-wo
  // copy keyed "lm_head.weight" either way.
  void load_lm_head_from(WeightLoader& w, const std::string& name);
  Tensor load_rope_table(WeightLoader& w, const RopeConfig& rope) const;

  Backend& backend_;
  std::vector<Buffer> weights_;
  Tensor embed_;      // [V, D] (first stage; and the last when the lm_head is tied)
  Tensor pos_embed_;  // [P, D] learned positions (first stage), or empty
  Tensor rope_table_;
  float embedding_scale_ = 1.0f;      // the embeddings are multiplied by it (Gemma: sqrt(D))
  std::vector<DecoderLayer> layers_;  // this stage's
  NormWeights final_norm_;            // last stage
  LinearWeight lm_head_;              // [V, D] last stage: 16-bit, or int8-wo

 private:
  // Whether this step runs as forward_fused: a decode step small enough for the backend's fused
  // linear layers (Backend::can_fuse_linear), RMSNorm + SwiGLU without Gemma's extras, one rank,
  // no fp8 inputs.
  bool can_fuse(int32_t num_tokens) const;
  // A MoE layer's MLP: router → top-k → the routed experts (Backend::moe_experts) into a.sublayer,
  // plus the gated shared expert where the layer has one. This rank's partial sums, as a dense
  // MLP's down projection leaves them.
  void moe_mlp(const DecoderLayer& layer, const LinearInput& normed, const DecoderActivations& a);
  // Layer `layer`'s attention on this rank: its heads, scale, window and soft-cap.
  AttentionShape attention_shape(const DecoderLayer& layer) const;
  // RoPE (the layer's table, else the model's) then the KV write of `layer`; without rotary
  // positions the KV write alone.
  void write_kv(const DecoderLayer& layer, const BatchTensors& batch, const KvLayer& kv,
                Tensor qkv);
  // The same step with each norm, SiLU·mul and residual add folded into the linear layer next to
  // it: 5 launches a layer (QKV, RoPE/KV write, attention, o_proj, gate_up, down) less 3.
  Tensor forward_fused(const BatchTensors& batch, const KvCache& kv, const DecoderActivations& a);
  // The logits of the rows the batch asks for: a.normed's rows gathered, times the lm_head, then
  // the final soft-cap where the model has one.
  Tensor logits(const BatchTensors& batch, const DecoderActivations& a);

  DecoderSpec spec_;
  WorkspaceLayout layout_;
  DecoderWorkspace workspace_;
};

}  // namespace llmserve
