// Qwen3ForCausalLM (dense Qwen3): Llama's layer with a per-head RMSNorm of the queries and keys
// (self_attn.q_norm / k_norm, [head_dim]) before RoPE; head_dim given explicitly; q/k/v biases
// only when attention_bias says so; tied embeddings on the small sizes. Sliding windows as
// transformers reads them (parse_qwen_sliding_window).
#include "model/arch/llama.h"

namespace llmserve {
namespace {

void parse_qwen3_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  c.has_qk_norm = true;
  parse_qwen_sliding_window(r, c);
}

}  // namespace

LLMSERVE_REGISTER_ARCH(qwen3,
                       Architecture{"Qwen3ForCausalLM", parse_qwen3_config, make_llama_model})

}  // namespace llmserve
