#include "model/decoder.h"

#include "common/status.h"
#include "model/rope.h"

namespace llmserve {

DecoderModel::DecoderModel(const ModelConfig& config, Backend& backend, DecoderSpec spec)
    : Model(config, shard_of(backend)), backend_(backend), spec_(spec) {
  layout_.gated_mlp = spec.mlp != DecoderSpec::Mlp::kGeluTanh;
}

void DecoderModel::finish_loading() {
  layout_.fp8_inputs = !layers_.empty() && layers_[0].qkv_w.is_fp8();
  layout_.has_dense_mlp = false;
  for (const DecoderLayer& layer : layers_) {
    if (layer.is_moe()) {
      layout_.router_cols = static_cast<int32_t>(layer.router_w.dim(0));
    } else {
      layout_.has_dense_mlp = true;
    }
  }
  layout_.moe_scratch = layout_.router_cols > 0 && backend_.moe_uses_scratch();
}

void DecoderModel::load_embeddings(WeightLoader& w) {
  const auto& c = config_;
  const bool tied_lm_head = c.tie_word_embeddings && !w.is_lm_head_quantized();
  if (shard_.is_first_stage() || (tied_lm_head && shard_.is_last_stage())) {
    embed_ = w.load("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  }
}

void DecoderModel::load_lm_head(WeightLoader& w, const WeightStore& store) {
  const auto& c = config_;
  if (!c.tie_word_embeddings && !w.contains("lm_head.weight")) {
    fail(StatusCode::kDataLoss,
         "checkpoint '{}' has no tensor 'lm_head.weight' and tie_word_embeddings is false",
         store.dir().string());
  }
  if (!shard_.is_last_stage()) return;
  load_lm_head_from(w, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

void DecoderModel::load_lm_head_from(WeightLoader& w, const std::string& name) {
  const auto& c = config_;
  const auto load = [&] { return w.load(name, {c.vocab_size, c.hidden_size}); };
  if (w.is_lm_head_quantized()) {
    lm_head_ = w.linear_as(Quantization::kInt8WeightOnly, "lm_head.weight", load);
  } else {
    lm_head_ = {c.tie_word_embeddings ? embed_ : load(), Tensor()};
  }
}

Tensor DecoderModel::load_rope_table(WeightLoader& w, const RopeConfig& rope) const {
  // [P, d], or [2P, d] for LongRoPE (its short- and long-factor rows: model/rope.h).
  const std::vector<float> table =
      build_rope_table(rope, config_.head_dim, config_.max_position_embeddings);
  return w.upload(table, {static_cast<int64_t>(table.size()) / config_.head_dim, config_.head_dim});
}

void DecoderModel::reserve(int32_t max_num_tokens, int32_t max_logit_rows) {
  workspace_.sized(backend_, local_, layout_, max_num_tokens, max_logit_rows);
}

bool DecoderModel::can_fuse(int32_t num_tokens) const {
  return spec_.norm == DecoderSpec::Norm::kRmsNorm && spec_.mlp == DecoderSpec::Mlp::kSwiGlu &&
         !layout_.fp8_inputs && !config_.has_qk_norm && embedding_scale_ == 1.0f &&
         config_.final_logit_softcap == 0 && config_.moe.num_experts == 0 &&
         backend_.group_size() == 1 && backend_.num_stages() == 1 && !layers_.empty() &&
         backend_.can_fuse_linear(num_tokens, layers_[0].qkv_w.w.dtype);
}

AttentionShape DecoderModel::attention_shape(const DecoderLayer& layer) const {
  return {.num_q_heads = local_.num_q_heads,
          .num_kv_heads = local_.num_kv_heads,
          .head_dim = local_.head_dim,
          .scale = layer.attention_scale,
          .window = layer.window,
          .softcap = config_.attention_softcap};
}

void DecoderModel::write_kv(const DecoderLayer& layer, const BatchTensors& batch, const KvLayer& kv,
                            Tensor qkv) {
  const AttentionShape shape = attention_shape(layer);
  if (spec_.rotary) {
    const Tensor& table = layer.rope_table.data != nullptr ? layer.rope_table : rope_table_;
    backend_.rope_write_kv(qkv, shape, table, batch, kv);
  } else {
    backend_.write_kv(qkv, shape, batch, kv);
  }
}

void DecoderModel::moe_mlp(const DecoderLayer& layer, const LinearInput& normed,
                           const DecoderActivations& a) {
  const MoeConfig& m = local_.moe;
  // The router is whole on every rank, so every rank routes every token alike.
  backend_.matmul(normed.x, layer.router_w, Tensor(), a.router_logits);
  backend_.moe_route(a.router_logits,
                     {.num_experts = m.num_experts, .top_k = m.top_k, .renormalize = m.renormalize},
                     a.expert_ids, a.expert_weights);
  const MoeExperts experts{.num_experts = m.num_experts,
                           .gate_up = layer.experts_gate_up.w,
                           .gate_up_scales = layer.experts_gate_up.scales,
                           .down = layer.experts_down.w,
                           .down_scales = layer.experts_down.scales};
  backend_.moe_experts(normed.x, a.expert_ids, a.expert_weights, experts, a.moe, a.sublayer);
  if (layer.shared_up_w.w.data == nullptr) return;
  // The shared expert: a dense SwiGLU MLP of its own width, gated by sigmoid of the router's last
  // column; its partial sums scale as the whole does (the gate is the same on every rank).
  const int64_t t = normed.x.dim(0), fs = m.shared_intermediate_size;
  const Tensor up(a.mlp_up.data, a.mlp_up.dtype, {t, 2 * fs});
  const Tensor act(a.mlp_act.data, a.mlp_act.dtype, {t, fs});
  linear(backend_, normed, layer.shared_up_w, Tensor(), up);
  backend_.silu_mul(up, act);
  linear(backend_, a.input(act), layer.shared_down_w, Tensor(), a.shared_out);
  backend_.add_sigmoid_gated(a.sublayer, a.shared_out, a.router_logits);
}

Tensor DecoderModel::forward_fused(const BatchTensors& batch, const KvCache& kv,
                                   const DecoderActivations& a) {
  const auto& c = local_;
  const auto fused = [&](Tensor x, const LinearWeight& w, Tensor bias, const LinearFusion& f,
                         Tensor out) { backend_.fused_linear(x, w.w, w.scales, bias, f, out); };
  backend_.embedding(batch, embed_, pos_embed_, a.residual);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const DecoderLayer& layer = layers_[i];
    fused(a.residual, layer.qkv_w, layer.qkv_b,
          {.norm_w = layer.input_norm.w, .norm_eps = c.norm_eps}, a.qkv);
    write_kv(layer, batch, kv.layers[i], a.qkv);
    backend_.attention(a.qkv, attention_shape(layer), batch, kv.layers[i], a.attn);
    fused(a.attn, layer.o_w, layer.o_b, {.accumulate = true}, a.residual);
    fused(a.residual, layer.up_w, layer.up_b, {.norm_w = layer.post_norm.w, .norm_eps = c.norm_eps},
          a.mlp_up);
    fused(a.mlp_up, layer.down_w, layer.down_b, {.silu_mul = true, .accumulate = true}, a.residual);
  }
  backend_.rms_norm(a.residual, final_norm_.w, c.norm_eps, a.normed);
  return logits(batch, a);
}

Tensor DecoderModel::forward(const BatchTensors& batch, const KvCache& kv) {
  const auto& c = local_;
  auto a = workspace_.sized(backend_, c, layout_, batch.num_tokens, batch.num_logits);
  if (can_fuse(batch.num_tokens)) return forward_fused(batch, kv, a);
  const bool rms = spec_.norm == DecoderSpec::Norm::kRmsNorm;
  // residual += x; normed = norm(residual), as the input of a linear layer. Under fp8 the RMSNorm
  // writes the per-token codes too (one kernel instead of two); `quantize` false for the final
  // norm, whose output feeds the lm_head (16-bit or int8-wo, never fp8).
  const auto add_norm = [&](Tensor x, const NormWeights& n, bool quantize = true) {
    if (!rms) {
      backend_.add_layer_norm(a.residual, x, n.w, n.b, c.norm_eps, a.normed);
      return a.input(a.normed);
    }
    if (!layout_.fp8_inputs || !quantize) {
      backend_.add_rms_norm(a.residual, x, n.w, c.norm_eps, a.normed);
      return a.input(a.normed);
    }
    LinearInput in = a.input(a.normed, /*is_quantized=*/true);
    backend_.add_rms_norm_fp8(a.residual, x, n.w, c.norm_eps, a.normed, in.fp8);
    return in;
  };
  if (shard_.is_first_stage()) {
    backend_.embedding(batch, embed_, pos_embed_, a.residual);
    if (embedding_scale_ != 1.0f) backend_.scale(a.residual, embedding_scale_);
  } else {
    backend_.recv_from_prev_stage(a.residual);
  }
  const NormWeights& first = layers_[0].input_norm;
  if (rms) {
    backend_.rms_norm(a.residual, first.w, c.norm_eps, a.normed);
  } else {
    backend_.layer_norm(a.residual, first.w, first.b, c.norm_eps, a.normed);
  }
  LinearInput normed = a.input(a.normed);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const DecoderLayer& layer = layers_[i];
    const AttentionShape shape = attention_shape(layer);
    linear(backend_, normed, layer.qkv_w, layer.qkv_b, a.qkv);
    if (layer.q_norm_w.data != nullptr) {
      backend_.qk_rms_norm(a.qkv, shape, layer.q_norm_w, layer.k_norm_w, c.norm_eps);
    }
    write_kv(layer, batch, kv.layers[i], a.qkv);
    backend_.attention(a.qkv, shape, batch, kv.layers[i], a.attn);
    linear(backend_, a.input(a.attn), layer.o_w, layer.o_b, a.sublayer);
    backend_.all_reduce_sum(a.sublayer);
    // Gemma's norms of a sublayer's output see the whole sum, so they follow the all-reduce.
    if (layer.attn_out_norm.w.data != nullptr) {
      backend_.rms_norm(a.sublayer, layer.attn_out_norm.w, c.norm_eps, a.sublayer);
    }
    normed = add_norm(a.sublayer, layer.post_norm);
    if (layer.is_moe()) {
      moe_mlp(layer, normed, a);
    } else if (spec_.mlp == DecoderSpec::Mlp::kGeluTanh) {
      linear_gelu(backend_, normed, layer.up_w, layer.up_b, a.mlp_up);
      linear(backend_, a.input(a.mlp_up), layer.down_w, layer.down_b, a.sublayer);
    } else if (spec_.mlp == DecoderSpec::Mlp::kGeGlu) {
      linear(backend_, normed, layer.up_w, layer.up_b, a.mlp_up);
      backend_.gelu_mul(a.mlp_up, a.mlp_act);
      linear(backend_, a.input(a.mlp_act), layer.down_w, layer.down_b, a.sublayer);
    } else {
      linear(backend_, normed, layer.up_w, layer.up_b, a.mlp_up);
      if (layout_.fp8_inputs) {
        const LinearInput act = a.input(a.mlp_act, /*is_quantized=*/true);
        backend_.silu_mul_fp8(a.mlp_up, a.mlp_act, act.fp8);
        linear(backend_, act, layer.down_w, layer.down_b, a.sublayer);
      } else {
        backend_.silu_mul(a.mlp_up, a.mlp_act);
        linear(backend_, a.input(a.mlp_act), layer.down_w, layer.down_b, a.sublayer);
      }
    }
    backend_.all_reduce_sum(a.sublayer);
    if (layer.mlp_out_norm.w.data != nullptr) {
      backend_.rms_norm(a.sublayer, layer.mlp_out_norm.w, c.norm_eps, a.sublayer);
    }
    const bool last = i + 1 == layers_.size();
    if (last && !shard_.is_last_stage()) {
      backend_.add(a.residual, a.sublayer);
      backend_.send_to_next_stage(a.residual);
      return Tensor();  // the last stage has the logits
    }
    normed = last ? add_norm(a.sublayer, final_norm_, /*quantize=*/false)
                  : add_norm(a.sublayer, layers_[i + 1].input_norm);
  }
  return logits(batch, a);
}

Tensor DecoderModel::logits(const BatchTensors& batch, const DecoderActivations& a) {
  backend_.gather_rows(a.normed, batch, a.gathered);
  LinearInput in;  // 16-bit (or fp32) rows: the lm_head is never fp8
  in.x = a.gathered;
  linear(backend_, in, lm_head_, Tensor(), a.logits);
  if (config_.final_logit_softcap > 0) backend_.softcap(a.logits, config_.final_logit_softcap);
  return a.logits;
}

}  // namespace llmserve
