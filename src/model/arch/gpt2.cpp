// GPT2LMHeadModel: learned absolute positions, pre-LayerNorm blocks, gelu_new MLP, lm_head tied to
// the token embedding. HF stores the linear layers as Conv1D ([in, out]); we transpose them to
// [out, in] at load, so the backend sees one weight layout for every architecture. Under tensor
// parallelism each rank holds its heads (of Q, K and V) and FFN columns, and sums the
// row-parallel c_proj outputs with an all-reduce; under pipeline parallelism each stage holds its
// layers and hands the residual stream on (wte on the first stage, and on the last for lm_head).
#include <cmath>

#include "common/status.h"
#include "model/model.h"
#include "model/weight_loader.h"

namespace llmserve {
namespace {

struct Gpt2Layer {
  Tensor ln1_w, ln1_b, qkv_b, proj_b, ln2_w, ln2_b, fc_b, fc_proj_b;
  LinearWeight qkv_w, proj_w, fc_w, fc_proj_w;
};

class Gpt2Model final : public Model {
 public:
  Gpt2Model(const ModelConfig& config, const WeightStore& store, Backend& backend,
            const LoadOptions& options)
      : Model(config, shard_of(backend)), backend_(backend) {
    const auto& c = config_;
    const int64_t d = c.hidden_size, f = c.intermediate_size;
    WeightLoader w(store, backend, weights_, shard_, options);
    const std::string p = w.contains("transformer.wte.weight") ? "transformer." : "";
    const bool first_rank = shard_.rank == 0;  // row-parallel biases are added once, before the sum
    if (shard_.is_first_stage() || shard_.is_last_stage())
      wte_ = w.load(p + "wte.weight", {c.vocab_size, d});
    if (shard_.is_first_stage()) wpe_ = w.load(p + "wpe.weight", {c.max_position_embeddings, d});
    for (int32_t i = first_layer(); i < first_layer() + local_.num_layers; ++i) {
      const std::string l = p + "h." + std::to_string(i) + ".";
      Gpt2Layer layer;
      layer.ln1_w = w.load(l + "ln_1.weight", {d});
      layer.ln1_b = w.load(l + "ln_1.bias", {d});
      layer.qkv_w = w.linear([&] {
        return w.load_transposed(l + "attn.c_attn.weight", d, 3 * d, Split::kRows, /*sections=*/3);
      });
      layer.qkv_b = w.load(l + "attn.c_attn.bias", {3 * d}, Split::kRows, /*sections=*/3);
      layer.proj_w =
          w.linear([&] { return w.load_transposed(l + "attn.c_proj.weight", d, d, Split::kCols); });
      layer.proj_b = first_rank ? w.load(l + "attn.c_proj.bias", {d}) : Tensor();
      layer.ln2_w = w.load(l + "ln_2.weight", {d});
      layer.ln2_b = w.load(l + "ln_2.bias", {d});
      layer.fc_w =
          w.linear([&] { return w.load_transposed(l + "mlp.c_fc.weight", d, f, Split::kRows); });
      layer.fc_b = w.load(l + "mlp.c_fc.bias", {f}, Split::kRows);
      layer.fc_proj_w =
          w.linear([&] { return w.load_transposed(l + "mlp.c_proj.weight", f, d, Split::kCols); });
      layer.fc_proj_b = first_rank ? w.load(l + "mlp.c_proj.bias", {d}) : Tensor();
      layers_.push_back(layer);
    }
    if (shard_.is_last_stage()) {
      lnf_w_ = w.load(p + "ln_f.weight", {d});
      lnf_b_ = w.load(p + "ln_f.bias", {d});
    }
    layout_.fp8_inputs = !layers_.empty() && layers_[0].qkv_w.is_fp8();
  }

  void reserve(int32_t max_num_tokens, int32_t max_logit_rows) override {
    workspace_.sized(backend_, local_, layout_, max_num_tokens, max_logit_rows);
  }

  Tensor forward(const BatchTensors& batch, const KvCache& kv) override {
    const auto& c = local_;
    auto a = workspace_.sized(backend_, c, layout_, batch.num_tokens, batch.num_logits);
    if (shard_.is_first_stage()) {
      backend_.embedding(batch, wte_, wpe_, a.residual);
    } else {
      backend_.recv_from_prev_stage(a.residual);
    }
    backend_.layer_norm(a.residual, layers_[0].ln1_w, layers_[0].ln1_b, c.norm_eps, a.normed);
    const bool scale_by_layer = c.raw.value("scale_attn_by_inverse_layer_idx", false);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Gpt2Layer& layer = layers_[i];
      AttentionShape shape{c.num_q_heads, c.num_kv_heads, c.head_dim,
                           1.0f / std::sqrt(static_cast<float>(c.head_dim))};
      if (scale_by_layer)
        shape.scale /= static_cast<float>(first_layer() + static_cast<int32_t>(i) + 1);
      linear(backend_, a.input(a.normed), layer.qkv_w, layer.qkv_b, a.qkv);
      backend_.write_kv(a.qkv, shape, batch, kv.layers[i]);
      backend_.attention(a.qkv, shape, batch, kv.layers[i], a.attn);
      linear(backend_, a.input(a.attn), layer.proj_w, layer.proj_b, a.sublayer);
      backend_.all_reduce_sum(a.sublayer);
      backend_.add_layer_norm(a.residual, a.sublayer, layer.ln2_w, layer.ln2_b, c.norm_eps,
                              a.normed);
      linear_gelu(backend_, a.input(a.normed), layer.fc_w, layer.fc_b, a.mlp_up);
      linear(backend_, a.input(a.mlp_up), layer.fc_proj_w, layer.fc_proj_b, a.sublayer);
      backend_.all_reduce_sum(a.sublayer);
      const bool last = i + 1 == layers_.size();
      if (last && !shard_.is_last_stage()) {
        backend_.add(a.residual, a.sublayer);
        backend_.send_to_next_stage(a.residual);
        return Tensor();  // the last stage has the logits
      }
      backend_.add_layer_norm(a.residual, a.sublayer, last ? lnf_w_ : layers_[i + 1].ln1_w,
                              last ? lnf_b_ : layers_[i + 1].ln1_b, c.norm_eps, a.normed);
    }
    backend_.gather_rows(a.normed, batch, a.gathered);
    backend_.matmul(a.gathered, wte_, Tensor(), a.logits);
    return a.logits;
  }

 private:
  Backend& backend_;
  std::vector<Buffer> weights_;
  Tensor wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<Gpt2Layer> layers_;
  WorkspaceLayout layout_;
  DecoderWorkspace workspace_;
};

void parse_gpt2_config(const ConfigReader& r, ModelConfig& c) {
  c.vocab_size = r.get_int("vocab_size");
  c.hidden_size = r.get_int("n_embd");
  c.num_layers = r.get_int("n_layer");
  c.num_q_heads = r.get_int("n_head");
  c.num_kv_heads = c.num_q_heads;
  c.head_dim = c.num_q_heads > 0 ? c.hidden_size / c.num_q_heads : 0;
  c.intermediate_size = r.get_int("n_inner", 4 * c.hidden_size);
  c.max_position_embeddings = r.get_int("n_positions");
  c.norm_eps = static_cast<float>(r.get_double("layer_norm_epsilon", 1e-5));
  c.tie_word_embeddings = true;
  c.rope.type = RopeConfig::Type::kNone;
  std::string act = r.get_string("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    fail(StatusCode::kUnimplemented,
         "'{}': activation_function '{}' is not supported (gelu_new is)", r.file().string(), act);
  }
  if (c.num_q_heads > 0 && c.hidden_size % c.num_q_heads != 0) {
    fail(StatusCode::kInvalidArgument, "'{}': n_embd {} is not a multiple of n_head {}",
         r.file().string(), c.hidden_size, c.num_q_heads);
  }
}

}  // namespace

LLMSERVE_REGISTER_ARCH(gpt2, Architecture{"GPT2LMHeadModel", parse_gpt2_config,
                                          [](const ModelConfig& c, const WeightStore& w, Backend& b,
                                             const LoadOptions& o) -> std::unique_ptr<Model> {
                                            return std::make_unique<Gpt2Model>(c, w, b, o);
                                          }})

}  // namespace llmserve
