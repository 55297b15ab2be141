// Qwen2MoeForCausalLM (Qwen1.5-MoE, Qwen2-57B-A14B): Qwen2's layer (q/k/v biases, qkv_bias in
// transformers 5) with sparse MLPs: a softmax router over num_experts experts of
// moe_intermediate_size, the top num_experts_per_tok weighted by their probabilities (renormalised
// only when norm_topk_prob), plus a shared expert of shared_expert_intermediate_size that every
// token runs, scaled by sigmoid(shared_expert_gate(x)) (model/arch/moe.h). Layers in
// mlp_only_layers or off decoder_sparse_step are dense MLPs of intermediate_size.
// Sliding windows as for Qwen2 (parse_qwen_sliding_window).
#include "model/arch/llama.h"
#include "model/arch/moe.h"

namespace llmserve {
namespace {

void parse_qwen2_moe_config(const ConfigReader& r, ModelConfig& c) {
  parse_llama_config(r, c);
  c.has_attention_bias = r.get_bool("qkv_bias", true);
  parse_qwen_sliding_window(r, c);
  parse_qwen_moe_config(r, c);
}

}  // namespace

LLMSERVE_REGISTER_ARCH(qwen2_moe, Architecture{"Qwen2MoeForCausalLM", parse_qwen2_moe_config,
                                               make_llama_model})

}  // namespace llmserve
