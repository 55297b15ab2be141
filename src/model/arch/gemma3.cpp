// Gemma3ForCausalLM (Gemma 3 text; model_type gemma3_text): Gemma 2's model (gemma2.cpp) with a
// per-head (1 + w) RMSNorm of the queries and keys before RoPE (q_norm / k_norm), no soft-capping
// by default, five sliding layers to one full by default, and two RoPEs: the full-attention
// layers' (rope_theta, with its scaling, e.g. linear x8) and the sliding layers' local one
// (rope_local_base_freq, never scaled). transformers 5 writes both in rope_parameters, keyed by
// layer type; transformers 4 writes rope_theta / rope_scaling and rope_local_base_freq.
#include "common/status.h"
#include "model/arch/gemma2.h"

namespace llmserve {
namespace {

// The RoPE of one layer type from transformers 5's rope_parameters[type].
RopeConfig rope_of_layer_type(const ConfigReader& r, const std::string& type) {
  const auto& params = r.json()["rope_parameters"];
  if (!params.contains(type) || !params[type].is_object()) {
    fail(StatusCode::kInvalidArgument, "'{}': rope_parameters has no '{}' object",
         r.file().string(), type);
  }
  const nlohmann::json wrapped = {{"rope_parameters", params[type]}};
  return parse_rope_config(ConfigReader(wrapped, r.file()));
}

void parse_gemma3_config(const ConfigReader& r, ModelConfig& c) {
  parse_gemma_config(r, c, {.sliding_window_pattern = 6});
  c.has_qk_norm = true;
  if (r.has("rope_parameters") && r.json()["rope_parameters"].contains("full_attention")) {
    c.rope = rope_of_layer_type(r, "full_attention");
    c.local_rope = rope_of_layer_type(r, "sliding_attention");
  } else {
    // transformers 4: c.rope (rope_theta, rope_scaling) is the global one already.
    RopeConfig local;
    local.type = RopeConfig::Type::kDefault;
    local.theta = r.get_double("rope_local_base_freq", 10000.0);
    c.local_rope = local;
  }
}

}  // namespace

LLMSERVE_REGISTER_ARCH(gemma3,
                       Architecture{"Gemma3ForCausalLM", parse_gemma3_config, make_gemma_model})

}  // namespace llmserve
