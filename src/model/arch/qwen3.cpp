// Qwen3ForCausalLM (dense Qwen3): Llama's layer with a per-head RMSNorm of the queries and keys
// (self_attn.q_norm / k_norm, [head_dim]) before RoPE; head_dim given explicitly; q/k/v biases
// only when attention_bias says so; tied embeddings on the small sizes. Sliding-window attention
// (use_sliding_window) is refused until the paged cache honours windows.
#include "common/status.h"
#include "model/arch/llama.h"

namespace llmserve {
namespace {

void parse_qwen3_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  c.has_qk_norm = true;
  if (r.get_bool("use_sliding_window", false)) {
    fail(StatusCode::kUnimplemented,
         "'{}': use_sliding_window true is not supported (sliding-window attention)",
         r.file().string());
  }
}

}  // namespace

LLMSERVE_REGISTER_ARCH(qwen3,
                       Architecture{"Qwen3ForCausalLM", parse_qwen3_config, make_llama_model})

}  // namespace llmserve
