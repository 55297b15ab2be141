// Gemma2ForCausalLM: a pre-norm decoder like Llama (model/decoder.h) with Gemma's differences:
// the embeddings are scaled by sqrt(hidden_size) (rounded to the activation dtype, as HF rounds
// its normalizer to the model's); every RMSNorm multiplies by (1 + w); the attention and MLP
// outputs are normed again before the residual adds (post_attention_layernorm,
// post_feedforward_layernorm), the MLP input by pre_feedforward_layernorm; the MLP is GeGLU
// (gelu_pytorch_tanh); the softmax scale is query_pre_attn_scalar^-1/2; layers alternate between
// sliding-window and full attention; attention scores and the final logits are soft-capped
// (cap * tanh(x / cap)). Gemma 3 (gemma3.cpp) reuses this model.
//
// The (1 + w) gains: the checkpoint's w is loaded, and recorded into an engine, as it is; the
// norms read a second tensor holding 1 + w (fp32 sum, one rounding to the activation dtype), so
// engines and checkpoints load through the same code.
#include "model/arch/gemma2.h"

#include <cmath>

#include "common/half.h"
#include "common/status.h"
#include "model/arch/llama.h"
#include "model/decoder.h"

namespace llmserve {
namespace {

// x as the activation dtype holds it.
float rounded_to(DType dtype, float x) {
  switch (dtype) {
    case DType::kBF16:
      return bf16_to_float(float_to_bf16(x));
    case DType::kF16:
      return fp16_to_float(float_to_fp16(x));
    default:
      return x;
  }
}

// A 1-D backend tensor (activation dtype) as fp32 on the host.
std::vector<float> download_f32(Backend& backend, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::kF32) {
    backend.download(t, out.data());
    return out;
  }
  std::vector<uint16_t> bits(out.size());
  backend.download(t, bits.data());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = t.dtype == DType::kBF16 ? bf16_to_float(bits[i]) : fp16_to_float(bits[i]);
  }
  return out;
}

// The soft-cap config.json gives under `key`: absent, `fallback`; null, 0 (none); else the number.
float optional_cap(const ConfigReader& r, const std::string& key, float fallback) {
  if (!r.json().contains(key)) return fallback;
  if (r.json()[key].is_null()) return 0.0f;
  const double cap = r.get_double(key, 0.0);
  if (cap <= 0) {
    fail(StatusCode::kInvalidArgument, "'{}': {} must be > 0 or null, got {}", r.file().string(),
         key, cap);
  }
  return static_cast<float>(cap);
}

class GemmaModel final : public DecoderModel {
 public:
  GemmaModel(const ModelConfig& config, const WeightStore& store, Backend& backend,
             const LoadOptions& options)
      : DecoderModel(config, backend,
                     {.norm = DecoderSpec::Norm::kRmsNorm,
                      .mlp = DecoderSpec::Mlp::kGeGlu,
                      .rotary = true}) {
    const auto& c = config_;
    const int64_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
    const int64_t q_rows = c.num_q_heads * hd, kv_rows = c.num_kv_heads * hd;
    WeightLoader w(store, backend, weights_, shard_, options);
    // A norm's gain 1 + w (see the header).
    const auto gain = [&](const std::string& name, int64_t dim) {
      std::vector<float> g = download_f32(backend, w.load(name, {dim}));
      for (float& x : g) x += 1.0f;
      return NormWeights{.w = w.upload_weight(g, {dim}), .b = Tensor()};
    };
    load_embeddings(w);
    embedding_scale_ =
        rounded_to(backend.activation_dtype(), std::sqrt(static_cast<float>(c.hidden_size)));
    const Tensor local_rope = c.local_rope ? load_rope_table(w, *c.local_rope) : Tensor();
    for (int32_t i = first_layer(); i < first_layer() + local_.num_layers; ++i) {
      const std::string l = "model.layers." + std::to_string(i) + ".";
      DecoderLayer layer;
      layer.attention_scale = c.attention_scale();
      layer.window = c.window_of(i);
      if (layer.window > 0) layer.rope_table = local_rope;
      layer.input_norm = gain(l + "input_layernorm.weight", d);
      layer.qkv_w = w.linear([&] {
        return w.load_stacked({l + "self_attn.q_proj.weight", l + "self_attn.k_proj.weight",
                               l + "self_attn.v_proj.weight"},
                              {q_rows, kv_rows, kv_rows}, d, Split::kRows);
      });
      if (c.has_qk_norm) {
        layer.q_norm_w = gain(l + "self_attn.q_norm.weight", hd).w;
        layer.k_norm_w = gain(l + "self_attn.k_norm.weight", hd).w;
      }
      layer.o_w = w.linear([&] {
        return w.load(l + "self_attn.o_proj.weight", {d, q_rows}, Split::kCols);
      });
      layer.attn_out_norm = gain(l + "post_attention_layernorm.weight", d);
      layer.post_norm = gain(l + "pre_feedforward_layernorm.weight", d);
      layer.up_w = w.linear([&] {
        return w.load_stacked({l + "mlp.gate_proj.weight", l + "mlp.up_proj.weight"}, {f, f}, d,
                              Split::kRows);
      });
      layer.down_w = w.linear([&] {
        return w.load(l + "mlp.down_proj.weight", {d, f}, Split::kCols);
      });
      layer.mlp_out_norm = gain(l + "post_feedforward_layernorm.weight", d);
      layers_.push_back(layer);
    }
    if (shard_.is_last_stage()) final_norm_ = gain("model.norm.weight", d);
    load_lm_head(w, store);
    rope_table_ = load_rope_table(w, c.rope);
    finish_loading();
  }
};

void parse_gemma2_config(const ConfigReader& r, ModelConfig& c) {
  parse_gemma_config(
      r, c,
      {.sliding_window_pattern = 2, .attention_softcap = 50.0f, .final_logit_softcap = 30.0f});
}

}  // namespace

void parse_gemma_config(const ConfigReader& r, ModelConfig& c, const GemmaDefaults& defaults) {
  parse_llama_dims(r, c);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", true);
  const std::string act =
      r.get_string("hidden_activation", r.get_string("hidden_act", "gelu_pytorch_tanh"));
  if (act != "gelu_pytorch_tanh") {
    fail(StatusCode::kUnimplemented,
         "'{}': hidden_activation '{}' is not supported (gelu_pytorch_tanh is)", r.file().string(),
         act);
  }
  if (c.has_attention_bias || c.has_mlp_bias) {
    fail(StatusCode::kUnimplemented, "'{}': attention_bias / mlp_bias true is not supported",
         r.file().string());
  }
  if (r.get_bool("use_bidirectional_attention", false)) {
    fail(StatusCode::kUnimplemented,
         "'{}': use_bidirectional_attention true is not supported (causal decoding only)",
         r.file().string());
  }
  const double scalar = r.get_double("query_pre_attn_scalar", 256.0);
  if (scalar <= 0) {
    fail(StatusCode::kInvalidArgument, "'{}': query_pre_attn_scalar must be > 0, got {}",
         r.file().string(), scalar);
  }
  c.query_scale = static_cast<float>(1.0 / std::sqrt(scalar));
  c.attention_softcap = optional_cap(r, "attn_logit_softcapping", defaults.attention_softcap);
  c.final_logit_softcap = optional_cap(r, "final_logit_softcapping", defaults.final_logit_softcap);

  const int32_t window = r.get_int("sliding_window", 4096);
  if (window <= 0) {
    fail(StatusCode::kInvalidArgument, "'{}': sliding_window must be > 0, got {}",
         r.file().string(), window);
  }
  if (!parse_layer_types(r, c, window)) {
    // HF's default: layer i slides unless (i + 1) is a multiple of the pattern.
    const int32_t pattern = r.get_int("sliding_window_pattern", defaults.sliding_window_pattern);
    if (pattern <= 0) {
      fail(StatusCode::kInvalidArgument, "'{}': sliding_window_pattern must be > 0, got {}",
           r.file().string(), pattern);
    }
    for (int32_t i = 0; i < c.num_layers; ++i) {
      if ((i + 1) % pattern != 0) c.layer_windows[static_cast<size_t>(i)] = window;
    }
  }
}

std::unique_ptr<Model> make_gemma_model(const ModelConfig& config, const WeightStore& store,
                                        Backend& backend, const LoadOptions& options) {
  return std::make_unique<GemmaModel>(config, store, backend, options);
}

LLMSERVE_REGISTER_ARCH(gemma2,
                       Architecture{"Gemma2ForCausalLM", parse_gemma2_config, make_gemma_model})

}  // namespace llmserve
