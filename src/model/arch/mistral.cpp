// MistralForCausalLM (Mistral 7B, Mistral Nemo, ...): Llama's layer with sliding-window attention
// on every layer when config.json gives a sliding_window (null: full attention, as Mistral 7B
// v0.2+ writes it). A query at position p attends to keys p - sliding_window + 1 .. p, which the
// backends' attention honours per layer (AttentionShape::window); the paged cache keeps every
// position, so contexts are not capped at the window.
#include "common/status.h"
#include "model/arch/llama.h"

namespace llmserve {
namespace {

void parse_mistral_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  if (!r.has("sliding_window")) return;
  const int32_t window = r.get_int("sliding_window");
  if (window <= 0) {
    fail(StatusCode::kInvalidArgument, "'{}': sliding_window must be > 0, got {}",
         r.file().string(), window);
  }
  c.layer_windows.assign(static_cast<size_t>(c.num_layers), window);
}

}  // namespace

LLMSERVE_REGISTER_ARCH(mistral,
                       Architecture{"MistralForCausalLM", parse_mistral_config, make_llama_model})

}  // namespace llmserve
