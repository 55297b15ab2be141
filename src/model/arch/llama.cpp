// LlamaForCausalLM: RMSNorm, rotary positions (default / linear / llama3 scaling), grouped-query
// attention, SwiGLU MLP, tied or untied lm_head. Q/K/V are fused into one [Hq+2Hk heads] matmul and
// gate/up into one [2F] matmul at load. Under tensor parallelism each rank holds its heads and FFN
// columns (ModelShard) and sums the row-parallel o_proj/down_proj outputs with an all-reduce;
// under pipeline parallelism each stage holds its layers and hands the residual stream on.
#include <cmath>

#include "common/status.h"
#include "model/model.h"
#include "model/rope.h"
#include "model/weight_loader.h"

namespace llmserve {
namespace {

struct LlamaLayer {
  Tensor input_norm, qkv_b, o_b, post_norm;
  LinearWeight qkv_w, o_w, gate_up_w, down_w;
};

class LlamaModel final : public Model {
 public:
  LlamaModel(const ModelConfig& config, const WeightStore& store, Backend& backend,
             const LoadOptions& options)
      : Model(config, shard_of(backend)), backend_(backend) {
    const auto& c = config_;
    const int64_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
    const int64_t q_rows = c.num_q_heads * hd, kv_rows = c.num_kv_heads * hd;
    const bool first_rank = shard_.rank == 0;  // row-parallel biases are added once, before the sum
    WeightLoader w(store, backend, weights_, shard_, options);
    const bool tied = c.tie_word_embeddings;
    if (shard_.is_first_stage() || (tied && shard_.is_last_stage())) {
      embed_ = w.load("model.embed_tokens.weight", {c.vocab_size, d});
    }
    for (int32_t i = first_layer(); i < first_layer() + local_.num_layers; ++i) {
      const std::string l = "model.layers." + std::to_string(i) + ".";
      LlamaLayer layer;
      layer.input_norm = w.load(l + "input_layernorm.weight", {d});
      layer.qkv_w = w.linear([&] {
        return w.load_stacked({l + "self_attn.q_proj.weight", l + "self_attn.k_proj.weight",
                               l + "self_attn.v_proj.weight"},
                              {q_rows, kv_rows, kv_rows}, d, Split::kRows);
      });
      if (c.has_attention_bias) {
        layer.qkv_b = w.load_concat(
            {l + "self_attn.q_proj.bias", l + "self_attn.k_proj.bias", l + "self_attn.v_proj.bias"},
            {q_rows, kv_rows, kv_rows}, Split::kRows);
        layer.o_b = first_rank && w.contains(l + "self_attn.o_proj.bias")
                        ? w.load(l + "self_attn.o_proj.bias", {d})
                        : Tensor();
      }
      layer.o_w = w.linear([&] {
        return w.load(l + "self_attn.o_proj.weight", {d, q_rows}, Split::kCols);
      });
      layer.post_norm = w.load(l + "post_attention_layernorm.weight", {d});
      layer.gate_up_w = w.linear([&] {
        return w.load_stacked({l + "mlp.gate_proj.weight", l + "mlp.up_proj.weight"}, {f, f}, d,
                              Split::kRows);
      });
      layer.down_w = w.linear([&] {
        return w.load(l + "mlp.down_proj.weight", {d, f}, Split::kCols);
      });
      layers_.push_back(layer);
    }
    if (!tied && !w.contains("lm_head.weight")) {
      fail(StatusCode::kDataLoss,
           "checkpoint '{}' has no tensor 'lm_head.weight' and tie_word_embeddings is false",
           store.dir().string());
    }
    if (shard_.is_last_stage()) {
      final_norm_ = w.load("model.norm.weight", {d});
      lm_head_ = tied ? embed_ : w.load("lm_head.weight", {c.vocab_size, d});
    }
    rope_table_ = w.upload(build_rope_table(c.rope, c.head_dim, c.max_position_embeddings),
                           {c.max_position_embeddings, c.head_dim});
    layout_.fp8_inputs = !layers_.empty() && layers_[0].qkv_w.is_fp8();
  }

  void reserve(int32_t max_num_tokens, int32_t max_logit_rows) override {
    workspace_.sized(backend_, local_, layout_, max_num_tokens, max_logit_rows);
  }

  Tensor forward(const BatchTensors& batch, const KvCache& kv) override {
    const auto& c = local_;
    auto a = workspace_.sized(backend_, c, layout_, batch.num_tokens, batch.num_logits);
    const AttentionShape shape{c.num_q_heads, c.num_kv_heads, c.head_dim,
                               1.0f / std::sqrt(static_cast<float>(c.head_dim))};
    // residual += x; normed = rms_norm(residual) * w, as the input of a linear layer: under fp8
    // the norm writes the per-token codes too (one kernel instead of two).
    const auto add_norm = [&](Tensor x, Tensor w) {
      if (!layout_.fp8_inputs) {
        backend_.add_rms_norm(a.residual, x, w, c.norm_eps, a.normed);
        return a.input(a.normed);
      }
      LinearInput in = a.input(a.normed, /*is_quantized=*/true);
      backend_.add_rms_norm_fp8(a.residual, x, w, c.norm_eps, a.normed, in.fp8);
      return in;
    };
    if (shard_.is_first_stage()) {
      backend_.embedding(batch, embed_, Tensor(), a.residual);
    } else {
      backend_.recv_from_prev_stage(a.residual);
    }
    backend_.rms_norm(a.residual, layers_[0].input_norm, c.norm_eps, a.normed);
    LinearInput normed = a.input(a.normed);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const LlamaLayer& layer = layers_[i];
      linear(backend_, normed, layer.qkv_w, layer.qkv_b, a.qkv);
      backend_.rope_write_kv(a.qkv, shape, rope_table_, batch, kv.layers[i]);
      backend_.attention(a.qkv, shape, batch, kv.layers[i], a.attn);
      linear(backend_, a.input(a.attn), layer.o_w, layer.o_b, a.sublayer);
      backend_.all_reduce_sum(a.sublayer);
      normed = add_norm(a.sublayer, layer.post_norm);
      linear(backend_, normed, layer.gate_up_w, Tensor(), a.mlp_up);
      if (layout_.fp8_inputs) {
        const LinearInput act = a.input(a.mlp_act, /*is_quantized=*/true);
        backend_.silu_mul_fp8(a.mlp_up, a.mlp_act, act.fp8);
        linear(backend_, act, layer.down_w, Tensor(), a.sublayer);
      } else {
        backend_.silu_mul(a.mlp_up, a.mlp_act);
        linear(backend_, a.input(a.mlp_act), layer.down_w, Tensor(), a.sublayer);
      }
      backend_.all_reduce_sum(a.sublayer);
      const bool last = i + 1 == layers_.size();
      if (last && !shard_.is_last_stage()) {
        backend_.add(a.residual, a.sublayer);
        backend_.send_to_next_stage(a.residual);
        return Tensor();  // the last stage has the logits
      }
      if (last) {
        backend_.add_rms_norm(a.residual, a.sublayer, final_norm_, c.norm_eps, a.normed);
      } else {
        normed = add_norm(a.sublayer, layers_[i + 1].input_norm);
      }
    }
    backend_.gather_rows(a.normed, batch, a.gathered);
    backend_.matmul(a.gathered, lm_head_, Tensor(), a.logits);
    return a.logits;
  }

 private:
  Backend& backend_;
  std::vector<Buffer> weights_;
  Tensor embed_, final_norm_, lm_head_, rope_table_;
  std::vector<LlamaLayer> layers_;
  WorkspaceLayout layout_{.gated_mlp = true};
  DecoderWorkspace workspace_;
};

void parse_llama_config(const ConfigReader& r, ModelConfig& c) {
  c.vocab_size = r.get_int("vocab_size");
  c.hidden_size = r.get_int("hidden_size");
  c.num_layers = r.get_int("num_hidden_layers");
  c.num_q_heads = r.get_int("num_attention_heads");
  c.num_kv_heads = r.get_int("num_key_value_heads", c.num_q_heads);
  c.head_dim = r.get_int("head_dim", c.num_q_heads > 0 ? c.hidden_size / c.num_q_heads : 0);
  c.intermediate_size = r.get_int("intermediate_size");
  c.max_position_embeddings = r.get_int("max_position_embeddings", 2048);
  c.norm_eps = static_cast<float>(r.get_double("rms_norm_eps", 1e-6));
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  c.has_attention_bias = r.get_bool("attention_bias", false);
  c.has_mlp_bias = r.get_bool("mlp_bias", false);
  c.rope = parse_rope_config(r);
  std::string act = r.get_string("hidden_act", "silu");
  if (act != "silu") {
    fail(StatusCode::kUnimplemented, "'{}': hidden_act '{}' is not supported (silu is)",
         r.file().string(), act);
  }
  if (c.has_mlp_bias) {
    fail(StatusCode::kUnimplemented, "'{}': mlp_bias true is not supported", r.file().string());
  }
}

}  // namespace

LLMSERVE_REGISTER_ARCH(llama,
                       Architecture{"LlamaForCausalLM", parse_llama_config,
                                    [](const ModelConfig& c, const WeightStore& w, Backend& b,
                                       const LoadOptions& o) -> std::unique_ptr<Model> {
                                      return std::make_unique<LlamaModel>(c, w, b, o);
                                    }})

}  // namespace llmserve
