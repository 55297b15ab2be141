// GPT2LMHeadModel: learned absolute positions, pre-LayerNorm blocks, gelu_new MLP, lm_head tied to
// the token embedding. HF stores the linear layers as Conv1D ([in, out]); we transpose them to
// [out, in] at load, so the backend sees one weight layout for every architecture; the step is
// DecoderModel's (model/decoder.h). Under tensor parallelism each rank loads its heads (of Q, K
// and V) and FFN columns; under pipeline parallelism each stage its layers (wte on the first
// stage, and on the last for the lm_head, or for its int8-wo copy under --quantize-lm-head).
#include <cmath>

#include "common/status.h"
#include "model/decoder.h"

namespace llmserve {
namespace {

class Gpt2Model final : public DecoderModel {
 public:
  Gpt2Model(const ModelConfig& config, const WeightStore& store, Backend& backend,
            const LoadOptions& options)
      : DecoderModel(config, backend,
                     {.norm = DecoderSpec::Norm::kLayerNorm,
                      .mlp = DecoderSpec::Mlp::kGeluTanh,
                      .rotary = false}) {
    const auto& c = config_;
    const int64_t d = c.hidden_size, f = c.intermediate_size;
    WeightLoader w(store, backend, weights_, shard_, options);
    const std::string p = w.contains("transformer.wte.weight") ? "transformer." : "";
    const bool first_rank = shard_.rank == 0;  // row-parallel biases are added once, before the sum
    if (shard_.is_first_stage() || (shard_.is_last_stage() && !w.is_lm_head_quantized()))
      embed_ = w.load(p + "wte.weight", {c.vocab_size, d});
    if (shard_.is_first_stage())
      pos_embed_ = w.load(p + "wpe.weight", {c.max_position_embeddings, d});
    const bool scale_by_layer = c.raw.value("scale_attn_by_inverse_layer_idx", false);
    for (int32_t i = first_layer(); i < first_layer() + local_.num_layers; ++i) {
      const std::string l = p + "h." + std::to_string(i) + ".";
      DecoderLayer layer;
      layer.attention_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      if (scale_by_layer) layer.attention_scale /= static_cast<float>(i + 1);
      layer.input_norm = {w.load(l + "ln_1.weight", {d}), w.load(l + "ln_1.bias", {d})};
      layer.qkv_w = w.linear([&] {
        return w.load_transposed(l + "attn.c_attn.weight", d, 3 * d, Split::kRows, /*sections=*/3);
      });
      layer.qkv_b = w.load(l + "attn.c_attn.bias", {3 * d}, Split::kRows, /*sections=*/3);
      layer.o_w =
          w.linear([&] { return w.load_transposed(l + "attn.c_proj.weight", d, d, Split::kCols); });
      layer.o_b = first_rank ? w.load(l + "attn.c_proj.bias", {d}) : Tensor();
      layer.post_norm = {w.load(l + "ln_2.weight", {d}), w.load(l + "ln_2.bias", {d})};
      layer.up_w =
          w.linear([&] { return w.load_transposed(l + "mlp.c_fc.weight", d, f, Split::kRows); });
      layer.up_b = w.load(l + "mlp.c_fc.bias", {f}, Split::kRows);
      layer.down_w =
          w.linear([&] { return w.load_transposed(l + "mlp.c_proj.weight", f, d, Split::kCols); });
      layer.down_b = first_rank ? w.load(l + "mlp.c_proj.bias", {d}) : Tensor();
      layers_.push_back(layer);
    }
    if (shard_.is_last_stage()) {
      final_norm_ = {w.load(p + "ln_f.weight", {d}), w.load(p + "ln_f.bias", {d})};
      load_lm_head_from(w, p + "wte.weight");
    }
    finish_loading();
  }
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
