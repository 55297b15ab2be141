// MistralForCausalLM (Mistral 7B, Mistral Nemo, ...): Llama's layer with sliding-window attention
// on every layer when config.json gives a sliding_window (null: full attention, as Mistral 7B
// v0.2+ writes it). A query at position p attends to keys p - sliding_window + 1 .. p, which the
// backends' attention honours per layer (AttentionShape::window); the paged cache keeps every
// position, so contexts are not capped at the window.
#include "model/arch/llama.h"

namespace llmserve {
namespace {

void parse_mistral_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  parse_sliding_window(r, c);
}

}  // namespace

LLMSERVE_REGISTER_ARCH(mistral,
                       Architecture{"MistralForCausalLM", parse_mistral_config, make_llama_model})

}  // namespace llmserve
