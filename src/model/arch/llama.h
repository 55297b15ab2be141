// The Llama layer (llama.cpp), for the families that are Llama plus a difference in their config
// (qwen2.cpp, qwen3.cpp, phi3.cpp, mistral.cpp): their files parse with parse_llama_config, adjust,
// and build with make_llama_model.
#pragma once

#include <memory>

#include "model/model.h"

namespace llmserve {

// The dimensions every Llama-like config.json spells alike (sizes, heads, head_dim, positions,
// rms_norm_eps, tie_word_embeddings, attention_bias, mlp_bias, RoPE) into c; the activation is
// left to the caller (Gemma's is not Llama's).
void parse_llama_dims(const ConfigReader& r, ModelConfig& c);
// LlamaForCausalLM's config.json fields into c (throws Error naming the file for what is not
// supported).
void parse_llama_config(const ConfigReader& r, ModelConfig& c);
// config.json's sliding_window (absent or null: none) as the window of every layer (Mistral,
// Mixtral); throws Error(kInvalidArgument) for a window <= 0.
void parse_sliding_window(const ConfigReader& r, ModelConfig& c);
// config.json's layer_types (when present: true) as c.layer_windows, `window` for each
// "sliding_attention" layer and 0 for "full_attention"; absent, every entry 0. Throws Error naming
// the file for a list of the wrong length or another type.
bool parse_layer_types(const ConfigReader& r, ModelConfig& c, int32_t window);
// Qwen's windows (Qwen2/3 and their MoE variants), as transformers reads them: with
// use_sliding_window true, sliding_window (default 4096) on the layers layer_types names, or
// without layer_types on the layers from max_window_layers (default 28) on; otherwise none.
void parse_qwen_sliding_window(const ConfigReader& r, ModelConfig& c);
// The model: RMSNorm, RoPE, grouped-query attention (q/k/v biases when c.has_attention_bias,
// per-head q/k RMSNorm when c.has_qk_norm, each layer's sliding window from c.layer_windows),
// SwiGLU, or experts in the layers c.moe makes sparse (model/arch/moe.h), tied or untied lm_head.
std::unique_ptr<Model> make_llama_model(const ModelConfig& config, const WeightStore& store,
                                        Backend& backend, const LoadOptions& options);

}  // namespace llmserve
