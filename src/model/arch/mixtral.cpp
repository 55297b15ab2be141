// MixtralForCausalLM (Mixtral 8x7B, 8x22B): Mistral's layer with every MLP a mixture of
// num_local_experts SwiGLU experts of intermediate_size each: a softmax router picks
// num_experts_per_tok of them per token and their probabilities are renormalised over the chosen
// (model/arch/moe.h, Backend::moe_route / moe_experts). A sliding_window, where config.json gives
// one, is every layer's.
#include "model/arch/llama.h"
#include "model/arch/moe.h"

namespace llmserve {
namespace {

void parse_mixtral_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  parse_sliding_window(r, c);
  c.moe.num_experts = r.get_int("num_local_experts");
  c.moe.top_k = r.get_int("num_experts_per_tok");
  c.moe.intermediate_size = c.intermediate_size;
  c.moe.renormalize = true;
}

}  // namespace

LLMSERVE_REGISTER_ARCH(mixtral,
                       Architecture{"MixtralForCausalLM", parse_mixtral_config, make_llama_model})

}  // namespace llmserve
