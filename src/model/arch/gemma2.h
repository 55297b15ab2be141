// The Gemma layer (gemma2.cpp), shared by Gemma 2 and Gemma 3 (gemma3.cpp): what Gemma adds to
// Llama's decoder is here, what Gemma 3 changes is in its file.
#pragma once

#include <memory>

#include "model/model.h"

namespace llmserve {

// What the Gemma generations default differently when config.json leaves a field out.
struct GemmaDefaults {
  int32_t sliding_window_pattern = 2;  // every n-th layer is full attention, the rest slide
  float attention_softcap = 0.0f;
  float final_logit_softcap = 0.0f;
};

// The config.json fields Gemma 2 and 3 share into c: Llama's dimensions, tied embeddings by
// default, gelu_pytorch_tanh, query_pre_attn_scalar, sliding_window and layer_types (or the
// generation's pattern), the soft-caps. Throws Error naming the file for what is not supported.
void parse_gemma_config(const ConfigReader& r, ModelConfig& c, const GemmaDefaults& defaults);
// The model: embeddings times sqrt(D), RMSNorms with gain (1 + w) (input, post-attention,
// pre- and post-feedforward, final; per-head q/k when c.has_qk_norm), GeGLU, attention with each
// layer's window (local RoPE from c.local_rope on sliding layers when set) and soft-cap, final
// logit soft-capping, tied or untied lm_head.
std::unique_ptr<Model> make_gemma_model(const ModelConfig& config, const WeightStore& store,
                                        Backend& backend, const LoadOptions& options);

}  // namespace llmserve
