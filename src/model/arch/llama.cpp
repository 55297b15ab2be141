// LlamaForCausalLM: RMSNorm, rotary positions (default / linear / llama3 scaling), grouped-query
// attention, SwiGLU MLP, tied or untied lm_head. Q/K/V are fused into one [Hq+2Hk heads] matmul and
// gate/up into one [2F] matmul at load; the step is DecoderModel's (model/decoder.h). The MoE
// families' sparse layers load their experts instead of the MLP (model/arch/moe.h). Under tensor
// parallelism each rank loads its heads and FFN columns (ModelShard), under pipeline parallelism
// each stage its layers.
#include "model/arch/llama.h"

#include "common/status.h"
#include "model/arch/moe.h"
#include "model/decoder.h"

namespace llmserve {
namespace {

class LlamaModel final : public DecoderModel {
 public:
  LlamaModel(const ModelConfig& config, const WeightStore& store, Backend& backend,
             const LoadOptions& options)
      : DecoderModel(config, backend,
                     {.norm = DecoderSpec::Norm::kRmsNorm,
                      .mlp = DecoderSpec::Mlp::kSwiGlu,
                      .rotary = true}) {
    const auto& c = config_;
    const int64_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
    const int64_t q_rows = c.num_q_heads * hd, kv_rows = c.num_kv_heads * hd;
    const bool first_rank = shard_.rank == 0;  // row-parallel biases are added once, before the sum
    WeightLoader w(store, backend, weights_, shard_, options);
    load_embeddings(w);
    for (int32_t i = first_layer(); i < first_layer() + local_.num_layers; ++i) {
      const std::string l = "model.layers." + std::to_string(i) + ".";
      DecoderLayer layer;
      layer.attention_scale = c.attention_scale();
      layer.window = c.window_of(i);
      layer.input_norm.w = w.load(l + "input_layernorm.weight", {d});
      // Phi-3 stores Q/K/V fused (qkv_proj) and gate/up fused (gate_up_proj): same rows, one
      // tensor each.
      const bool fused = w.contains(l + "self_attn.qkv_proj.weight");
      layer.qkv_w = w.linear([&] {
        if (fused) {
          return w.load_row_blocks(l + "self_attn.qkv_proj.weight", {q_rows, kv_rows, kv_rows}, d,
                                   Split::kRows);
        }
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
      if (c.has_qk_norm) {
        layer.q_norm_w = w.load(l + "self_attn.q_norm.weight", {hd});
        layer.k_norm_w = w.load(l + "self_attn.k_norm.weight", {hd});
      }
      layer.o_w = w.linear([&] {
        return w.load(l + "self_attn.o_proj.weight", {d, q_rows}, Split::kCols);
      });
      layer.post_norm.w = w.load(l + "post_attention_layernorm.weight", {d});
      if (c.moe.is_sparse(i)) {
        load_moe_mlp(w, c, options.quantization, l, layer);
        layers_.push_back(layer);
        continue;
      }
      layer.up_w = w.linear([&] {
        if (fused) return w.load_row_blocks(l + "mlp.gate_up_proj.weight", {f, f}, d, Split::kRows);
        return w.load_stacked({l + "mlp.gate_proj.weight", l + "mlp.up_proj.weight"}, {f, f}, d,
                              Split::kRows);
      });
      layer.down_w = w.linear([&] {
        return w.load(l + "mlp.down_proj.weight", {d, f}, Split::kCols);
      });
      layers_.push_back(layer);
    }
    if (shard_.is_last_stage()) final_norm_.w = w.load("model.norm.weight", {d});
    load_lm_head(w, store);
    rope_table_ = load_rope_table(w, c.rope);
    finish_loading();
  }
};

}  // namespace

void parse_llama_dims(const ConfigReader& r, ModelConfig& c) {
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
}

void parse_sliding_window(const ConfigReader& r, ModelConfig& c) {
  if (!r.has("sliding_window")) return;
  const int32_t window = r.get_int("sliding_window");
  if (window <= 0) {
    fail(StatusCode::kInvalidArgument, "'{}': sliding_window must be > 0, got {}",
         r.file().string(), window);
  }
  c.layer_windows.assign(static_cast<size_t>(c.num_layers), window);
}

bool parse_layer_types(const ConfigReader& r, ModelConfig& c, int32_t window) {
  c.layer_windows.assign(static_cast<size_t>(c.num_layers), 0);
  if (!r.has("layer_types")) return false;
  const auto& types = r.json()["layer_types"];
  if (!types.is_array() || types.size() != static_cast<size_t>(c.num_layers)) {
    fail(StatusCode::kInvalidArgument, "'{}': layer_types must list the {} layers",
         r.file().string(), c.num_layers);
  }
  for (size_t i = 0; i < types.size(); ++i) {
    const std::string type = types[i].is_string() ? types[i].get<std::string>() : "";
    if (type == "sliding_attention") {
      c.layer_windows[i] = window;
    } else if (type != "full_attention") {
      fail(StatusCode::kUnimplemented,
           "'{}': layer_types[{}] '{}' is not supported (sliding_attention, full_attention are)",
           r.file().string(), i, types[i].dump());
    }
  }
  return true;
}

void parse_qwen_sliding_window(const ConfigReader& r, ModelConfig& c) {
  // transformers: sliding_window counts only with use_sliding_window; a layer_types entry
  // "sliding_attention" without it is full attention.
  if (!r.get_bool("use_sliding_window", false)) return;
  const int32_t window = r.has("sliding_window") ? r.get_int("sliding_window") : 4096;
  if (window <= 0) {
    fail(StatusCode::kInvalidArgument,
         "'{}': use_sliding_window true needs sliding_window > 0, got {}", r.file().string(),
         window);
  }
  if (parse_layer_types(r, c, window)) return;
  // transformers' default layer_types: the layers from max_window_layers on slide.
  const int32_t first = r.get_int("max_window_layers", 28);
  for (int32_t i = std::max(first, 0); i < c.num_layers; ++i)
    c.layer_windows[static_cast<size_t>(i)] = window;
}

void parse_llama_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_dims(r, c);
  std::string act = r.get_string("hidden_act", "silu");
  if (act != "silu") {
    fail(StatusCode::kUnimplemented, "'{}': hidden_act '{}' is not supported (silu is)",
         r.file().string(), act);
  }
  if (c.has_mlp_bias) {
    fail(StatusCode::kUnimplemented, "'{}': mlp_bias true is not supported", r.file().string());
  }
}

std::unique_ptr<Model> make_llama_model(const ModelConfig& config, const WeightStore& store,
                                        Backend& backend, const LoadOptions& options) {
  return std::make_unique<LlamaModel>(config, store, backend, options);
}

LLMSERVE_REGISTER_ARCH(llama,
                       Architecture{"LlamaForCausalLM", parse_llama_config, make_llama_model})

}  // namespace llmserve
