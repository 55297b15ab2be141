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
// The model: RMSNorm, RoPE, grouped-query attention (q/k/v biases when c.has_attention_bias,
// per-head q/k RMSNorm when c.has_qk_norm, each layer's sliding window from c.layer_windows),
// SwiGLU, tied or untied lm_head.
std::unique_ptr<Model> make_llama_model(const ModelConfig& config, const WeightStore& store,
                                        Backend& backend, const LoadOptions& options);

}  // namespace llmserve
