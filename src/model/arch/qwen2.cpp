// Qwen2ForCausalLM (Qwen2, Qwen2.5): Llama's layer with biases on the q/k/v projections (none on
// o_proj), whatever config.json says of attention_bias; tied embeddings on the small sizes.
// Sliding windows as transformers reads them (parse_qwen_sliding_window).
#include "model/arch/llama.h"

namespace llmserve {
namespace {

void parse_qwen2_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  c.has_attention_bias = true;
  parse_qwen_sliding_window(r, c);
}

}  // namespace

LLMSERVE_REGISTER_ARCH(qwen2,
                       Architecture{"Qwen2ForCausalLM", parse_qwen2_config, make_llama_model})

}  // namespace llmserve
