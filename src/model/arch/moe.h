// The mixture-of-experts MLP the MoE families share (mixtral.cpp, qwen2_moe.cpp, qwen3_moe.cpp):
// their config fields into ModelConfig::moe, and a sparse layer's weights into a DecoderLayer
// (make_llama_model calls load_moe_mlp for the layers MoeConfig::is_sparse names; the step is
// DecoderModel's, model/decoder.h).
#pragma once

#include <string>

#include "model/decoder.h"
#include "model/model_config.h"
#include "model/weight_loader.h"

namespace llmserve {

// Qwen2-MoE / Qwen3-MoE's fields into c.moe: num_experts (transformers 5 may write
// num_local_experts), num_experts_per_tok, moe_intermediate_size, norm_topk_prob,
// shared_expert_intermediate_size (0 or absent: no shared expert), decoder_sparse_step,
// mlp_only_layers.
void parse_qwen_moe_config(const ConfigReader& r, ModelConfig& c);

// Layer `prefix`'s ("model.layers.{i}.") router, experts and shared expert into `layer`, this
// rank's part of them (each expert's intermediate columns split like a dense MLP's; the router
// whole). Checkpoint names, the per-expert form real checkpoints use or transformers 5's fused
// experts.gate_up_proj [E, 2F, D] / experts.down_proj [E, D, F]:
//   Mixtral: block_sparse_moe.gate, block_sparse_moe.experts.{e}.w1 (gate) / w3 (up) / w2 (down);
//   Qwen:    mlp.gate, mlp.experts.{e}.gate_proj / up_proj / down_proj, mlp.shared_expert.*,
//            mlp.shared_expert_gate ([1, D], stacked under the router as its last row).
// Throws Error(kUnimplemented) for --quantization fp8, whose activation codes the experts lack.
void load_moe_mlp(WeightLoader& w, const ModelConfig& c, Quantization quantization,
                  const std::string& prefix, DecoderLayer& layer);

}  // namespace llmserve
