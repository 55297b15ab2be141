// Qwen3MoeForCausalLM (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's layer (per-head q/k RMSNorm) with
// sparse MLPs: a softmax router over num_experts experts of moe_intermediate_size, the top
// num_experts_per_tok renormalised when norm_topk_prob (the released models: true); no shared
// expert (model/arch/moe.h). Layers in mlp_only_layers or off decoder_sparse_step are dense.
// Sliding windows as for Qwen3 (parse_qwen_sliding_window).
#include "common/status.h"
#include "model/arch/llama.h"
#include "model/arch/moe.h"

namespace llmserve {
namespace {

void parse_qwen3_moe_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  c.has_qk_norm = true;
  parse_qwen_sliding_window(r, c);
  parse_qwen_moe_config(r, c);
  if (c.moe.shared_intermediate_size > 0) {
    fail(StatusCode::kUnimplemented,
         "'{}': shared_expert_intermediate_size is not a Qwen3-MoE field (Qwen2-MoE's is)",
         r.file().string());
  }
}

}  // namespace

LLMSERVE_REGISTER_ARCH(qwen3_moe, Architecture{"Qwen3MoeForCausalLM", parse_qwen3_moe_config,
                                               make_llama_model})

}  // namespace llmserve
