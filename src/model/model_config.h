// ModelConfig: the dimensions and options of a decoder-only transformer, read from a Hugging Face
// `config.json` (+ `generation_config.json`) by the architecture that understands it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/dtype.h"

namespace llmserve {

// How rotary position embeddings are scaled (HF `rope_scaling` / `rope_parameters`).
struct RopeConfig {
  // kDynamic (dynamic NTK): the unscaled frequencies, served up to the original context only
  // (load_model_config caps max_position_embeddings to original_max_position_embeddings).
  enum class Type { kNone, kDefault, kLinear, kLlama3, kLongRope, kYarn, kDynamic };
  Type type = Type::kNone;  // kNone: the model has no rotary embedding (GPT-2)
  double theta = 10000.0;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int32_t original_max_position_embeddings = 8192;
  // kLongRope (Phi-3 128k): per-frequency divisors for sequences up to the original context
  // (short) and beyond it (long), and the factor both tables' cos/sin are multiplied by.
  std::vector<double> short_factor, long_factor;
  // The factor cos/sin are multiplied by (kLongRope, kYarn).
  double attention_factor = 1.0;
  // kYarn (Qwen2.5/Qwen3 long context, DeepSeek): each frequency a blend of the original one and
  // the factor-scaled one, by a linear ramp over the dims between the corrections for beta_fast
  // and beta_slow rotations of the original context (floored/ceiled when truncate).
  double beta_fast = 32.0, beta_slow = 1.0;
  bool truncate = true;
};

// Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE): a sparse layer's MLP is top_k of
// num_experts SwiGLU experts chosen per token by a router (Backend::moe_route), plus, where the
// checkpoint has one, a shared expert every token runs, scaled by sigmoid(shared_expert_gate(x)).
struct MoeConfig {
  int32_t num_experts = 0;  // 0: every MLP is dense
  int32_t top_k = 0;        // num_experts_per_tok
  int32_t intermediate_size =
      0;                     // each expert's (moe_intermediate_size; Mixtral: intermediate_size)
  bool renormalize = false;  // the k weights divided by their sum (Mixtral; Qwen's norm_topk_prob)
  int32_t shared_intermediate_size = 0;  // Qwen2-MoE's shared expert; 0: none
  // Qwen's decoder_sparse_step and mlp_only_layers: layer i is sparse when (i + 1) % sparse_step
  // == 0 and i is not in dense_layers; the others are dense MLPs of ModelConfig::intermediate_size.
  int32_t sparse_step = 1;
  std::vector<int32_t> dense_layers;

  bool is_sparse(int32_t layer) const;
  // Whether any of layers [0, num_layers) is dense.
  bool has_dense_layers(int32_t num_layers) const;
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::filesystem::path dir;
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t num_layers = 0;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t intermediate_size = 0;
  int32_t max_position_embeddings = 0;
  float norm_eps = 1e-5f;
  bool tie_word_embeddings = false;
  bool has_attention_bias = false;
  bool has_qk_norm = false;  // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool has_mlp_bias = false;
  RopeConfig rope;
  // Sliding-window attention (Mistral, Gemma 2/3): layer i's queries at position p see the keys
  // at positions p - layer_windows[i] + 1 .. p. An entry of 0, or no entries, is full attention.
  std::vector<int32_t> layer_windows;
  MoeConfig moe;
  // Gemma 3: the RoPE of the sliding-window layers (a lower base); unset: they use `rope`.
  std::optional<RopeConfig> local_rope;
  float query_scale = 0.0f;  // softmax scale of attention; 0: 1 / sqrt(head_dim)
  // Gemma 2 soft-capping, x = cap * tanh(x / cap): of the attention scores before the softmax,
  // and of the final logits. 0: none.
  float attention_softcap = 0.0f;
  float final_logit_softcap = 0.0f;
  DType checkpoint_dtype = DType::kF32;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;
  nlohmann::json raw;  // the whole config.json, for architecture-specific fields

  // The window of layer `layer` (global index); 0: full attention.
  int32_t window_of(int32_t layer) const {
    return static_cast<size_t>(layer) < layer_windows.size()
               ? layer_windows[static_cast<size_t>(layer)]
               : 0;
  }
  // The sliding window every layer attends within (the largest of them), or 0 when some layer
  // sees the whole context: what bounds the positions a cache must keep.
  int32_t kv_window() const {
    int32_t window = num_layers > 0 ? 1 : 0;
    for (int32_t l = 0; l < num_layers && window > 0; ++l)
      window = window_of(l) > 0 ? std::max(window, window_of(l)) : 0;
    return window;
  }
  // The softmax scale of attention.
  float attention_scale() const;
};

// Typed access to config.json fields with errors that name the file and key.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::filesystem::path file)
      : j_(j), file_(std::move(file)) {}
  int32_t get_int(const std::string& key) const;
  int32_t get_int(const std::string& key, int32_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }
  const nlohmann::json& json() const { return j_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  const nlohmann::json& j_;
  std::filesystem::path file_;
};

// Reads `rope_scaling`/`rope_theta` (transformers 4) or `rope_parameters` (transformers 5).
RopeConfig parse_rope_config(const ConfigReader& r);

// Checks the invariants every architecture relies on (positive sizes, heads divide evenly).
void validate_model_config(const ModelConfig& c);

}  // namespace llmserve
