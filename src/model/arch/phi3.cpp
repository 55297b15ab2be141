// Phi3ForCausalLM (Phi-3, Phi-3.5 mini): Llama's layer with Q/K/V stored fused in one qkv_proj and
// gate/up in one gate_up_proj (make_llama_model takes those names when the checkpoint has them).
// LongRoPE (rope_type "longrope": Phi-3 128k) uses a table of short- and long-factor rows
// (model/rope.h); a sequence longer than the original context reads the long rows, decided per
// sequence and step by ModelRunner, as transformers decides per forward. A sliding window (Phi-3
// mini 4k: 2,047) is honoured by capping the context at the window, where it never cuts anything:
// the paged cache does not drop positions yet.
#include <algorithm>

#include "common/logging.h"
#include "common/status.h"
#include "model/arch/llama.h"

namespace llmserve {
namespace {

void parse_phi3_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  if (r.has("sliding_window")) {
    const int32_t window = r.get_int("sliding_window");
    if (window <= 0) {
      fail(StatusCode::kInvalidArgument, "'{}': sliding_window must be > 0, got {}",
           r.file().string(), window);
    }
    if (window < c.max_position_embeddings) {
      LOG_WARN(
          "'{}': sliding_window {} < max_position_embeddings {}: contexts are capped at {} "
          "tokens, within which the window changes nothing",
          r.file().string(), window, c.max_position_embeddings, window);
      c.max_position_embeddings = window;
    }
  }
}

}  // namespace

LLMSERVE_REGISTER_ARCH(phi3, Architecture{"Phi3ForCausalLM", parse_phi3_config, make_llama_model})

}  // namespace llmserve
