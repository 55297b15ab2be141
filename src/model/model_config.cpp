#include "model/model_config.h"

#include <algorithm>
#include <cmath>

#include "common/status.h"

namespace llmserve {

int32_t ConfigReader::get_int(const std::string& key) const {
  if (!has(key)) fail(StatusCode::kInvalidArgument, "'{}' has no '{}'", file_.string(), key);
  const auto& v = j_[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
    fail(StatusCode::kInvalidArgument, "'{}': '{}' must be a non-negative integer, got {}",
         file_.string(), key, v.dump());
  }
  return v.get<int32_t>();
}

int32_t ConfigReader::get_int(const std::string& key, int32_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double ConfigReader::get_double(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_[key];
  if (!v.is_number())
    fail(StatusCode::kInvalidArgument, "'{}': '{}' must be a number, got {}", file_.string(), key,
         v.dump());
  return v.get<double>();
}

bool ConfigReader::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_[key];
  if (!v.is_boolean())
    fail(StatusCode::kInvalidArgument, "'{}': '{}' must be true or false, got {}", file_.string(),
         key, v.dump());
  return v.get<bool>();
}

std::string ConfigReader::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_[key];
  if (!v.is_string())
    fail(StatusCode::kInvalidArgument, "'{}': '{}' must be a string, got {}", file_.string(), key,
         v.dump());
  return v.get<std::string>();
}

namespace {

// Rotating only part of each head (Phi-4-mini, StableLM: partial_rotary_factor < 1) would need a
// partial RoPE in every backend.
void check_full_rotary(double factor, const ConfigReader& r) {
  if (factor != 1.0) {
    fail(StatusCode::kUnimplemented, "'{}': partial_rotary_factor {} is not supported (1.0 is)",
         r.file().string(), factor);
  }
}

}  // namespace

RopeConfig parse_rope_config(const ConfigReader& r) {
  RopeConfig rope;
  rope.type = RopeConfig::Type::kDefault;
  rope.theta = r.get_double("rope_theta", 10000.0);
  const nlohmann::json* params = nullptr;
  if (r.has("rope_parameters"))
    params = &r.json()["rope_parameters"];
  else if (r.has("rope_scaling"))
    params = &r.json()["rope_scaling"];
  check_full_rotary(r.get_double("partial_rotary_factor", 1.0), r);
  if (params == nullptr) return rope;
  if (!params->is_object())
    fail(StatusCode::kInvalidArgument, "'{}': rope_scaling must be an object", r.file().string());
  ConfigReader p(*params, r.file());
  rope.theta = p.get_double("rope_theta", rope.theta);
  check_full_rotary(p.get_double("partial_rotary_factor", 1.0), r);
  std::string type = p.get_string("rope_type", p.get_string("type", "default"));
  // The pre-training context a scaling extends: its own field, else the model's.
  const auto original_context = [&](const std::string& kind) {
    const int32_t v =
        p.get_int("original_max_position_embeddings", r.get_int("max_position_embeddings", 0));
    if (v <= 0) {
      fail(StatusCode::kInvalidArgument,
           "'{}': {} needs original_max_position_embeddings (or max_position_embeddings) > 0",
           r.file().string(), kind);
    }
    return v;
  };
  if (type == "default") {
    rope.type = RopeConfig::Type::kDefault;
  } else if (type == "linear") {
    rope.type = RopeConfig::Type::kLinear;
    rope.factor = p.get_double("factor", 1.0);
  } else if (type == "llama3") {
    rope.type = RopeConfig::Type::kLlama3;
    rope.factor = p.get_double("factor", 8.0);
    rope.low_freq_factor = p.get_double("low_freq_factor", 1.0);
    rope.high_freq_factor = p.get_double("high_freq_factor", 4.0);
    rope.original_max_position_embeddings = p.get_int("original_max_position_embeddings", 8192);
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      fail(StatusCode::kInvalidArgument,
           "'{}': rope_scaling.high_freq_factor must exceed low_freq_factor", r.file().string());
    }
  } else if (type == "longrope") {
    rope.type = RopeConfig::Type::kLongRope;
    // Phi-3 keeps the pre-training context at the top level too; the ratio of the two is the
    // default factor (transformers' _compute_longrope_parameters).
    const int32_t max_pos = r.get_int("max_position_embeddings", 0);
    rope.original_max_position_embeddings = p.get_int(
        "original_max_position_embeddings", r.get_int("original_max_position_embeddings", max_pos));
    if (rope.original_max_position_embeddings <= 0) {
      fail(StatusCode::kInvalidArgument,
           "'{}': longrope needs original_max_position_embeddings > 0", r.file().string());
    }
    rope.factor = p.get_double(
        "factor", static_cast<double>(max_pos) / rope.original_max_position_embeddings);
    const auto factors = [&](const char* key) {
      const nlohmann::json& v = p.json().contains(key) ? p.json()[key] : nlohmann::json();
      std::vector<double> out;
      if (v.is_array()) {
        for (const auto& x : v) {
          if (!x.is_number() || x.get<double>() <= 0) {
            out.clear();
            break;
          }
          out.push_back(x.get<double>());
        }
      }
      if (out.empty()) {
        fail(StatusCode::kInvalidArgument,
             "'{}': rope_scaling.{} must be a list of positive numbers (one per rotary frequency)",
             r.file().string(), key);
      }
      return out;
    };
    rope.short_factor = factors("short_factor");
    rope.long_factor = factors("long_factor");
    rope.attention_factor = p.get_double(
        "attention_factor",
        rope.factor <= 1.0 ? 1.0
                           : std::sqrt(1.0 + std::log(rope.factor) /
                                                 std::log(rope.original_max_position_embeddings)));
  } else if (type == "yarn") {
    rope.type = RopeConfig::Type::kYarn;
    // transformers' _compute_yarn_parameters: the original context defaults to the model's, the
    // factor to their ratio; mscale / mscale_all_dim (DeepSeek) set the default attention factor.
    const int32_t max_pos = r.get_int("max_position_embeddings", 0);
    rope.original_max_position_embeddings = original_context(type);
    rope.factor = p.get_double(
        "factor", static_cast<double>(max_pos) / rope.original_max_position_embeddings);
    const auto mscale = [&](double m) {
      return rope.factor <= 1.0 ? 1.0 : 0.1 * m * std::log(rope.factor) + 1.0;
    };
    const double m = p.get_double("mscale", 0.0), m_all = p.get_double("mscale_all_dim", 0.0);
    rope.attention_factor = p.get_double(
        "attention_factor", m != 0 && m_all != 0 ? mscale(m) / mscale(m_all) : mscale(1.0));
    // A 0 or null beta means the default, as transformers' `or` does.
    rope.beta_fast = p.get_double("beta_fast", 0.0);
    if (rope.beta_fast == 0) rope.beta_fast = 32.0;
    rope.beta_slow = p.get_double("beta_slow", 0.0);
    if (rope.beta_slow == 0) rope.beta_slow = 1.0;
    rope.truncate = p.get_bool("truncate", true);
    if (rope.beta_fast <= 0 || rope.beta_slow <= 0) {
      fail(StatusCode::kInvalidArgument, "'{}': rope_scaling.beta_fast and beta_slow must be > 0",
           r.file().string());
    }
  } else if (type == "dynamic") {
    // Dynamic NTK: transformers keeps the unscaled frequencies while a forward's length stays
    // within the original context and recomputes them (a larger base) for each longer one.
    // Cached keys were rotated with the frequencies of their own forward, so a paged cache cannot
    // follow that; the model is served up to the original context, where it is exact
    // (ModelConfig::max_position_embeddings is capped to it, model/model_config.h).
    rope.type = RopeConfig::Type::kDynamic;
    rope.factor = p.get_double("factor", 1.0);
    rope.original_max_position_embeddings = original_context(type);
  } else {
    fail(StatusCode::kUnimplemented,
         "'{}': rope_scaling type '{}' is not supported (default, linear, llama3, longrope, yarn, "
         "dynamic are)",
         r.file().string(), type);
  }
  if (rope.factor <= 0)
    fail(StatusCode::kInvalidArgument, "'{}': rope_scaling.factor must be > 0", r.file().string());
  return rope;
}

bool MoeConfig::is_sparse(int32_t layer) const {
  return num_experts > 0 && sparse_step > 0 && (layer + 1) % sparse_step == 0 &&
         std::find(dense_layers.begin(), dense_layers.end(), layer) == dense_layers.end();
}

bool MoeConfig::has_dense_layers(int32_t num_layers) const {
  for (int32_t i = 0; i < num_layers; ++i) {
    if (!is_sparse(i)) return true;
  }
  return false;
}

float ModelConfig::attention_scale() const {
  return query_scale > 0 ? query_scale : 1.0f / std::sqrt(static_cast<float>(head_dim));
}

void validate_model_config(const ModelConfig& c) {
  auto positive = [&](int32_t v, const char* name) {
    if (v <= 0)
      fail(StatusCode::kInvalidArgument, "'{}': {} must be > 0, got {}",
           (c.dir / "config.json").string(), name, v);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.num_layers, "num_hidden_layers");
  positive(c.num_q_heads, "num_attention_heads");
  positive(c.num_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.max_position_embeddings, "max_position_embeddings");
  if (c.num_q_heads % c.num_kv_heads != 0) {
    fail(StatusCode::kInvalidArgument,
         "'{}': num_attention_heads {} is not a multiple of num_key_value_heads {}",
         (c.dir / "config.json").string(), c.num_q_heads, c.num_kv_heads);
  }
  if (c.rope.type == RopeConfig::Type::kLongRope &&
      (c.rope.short_factor.size() != static_cast<size_t>(c.head_dim / 2) ||
       c.rope.long_factor.size() != static_cast<size_t>(c.head_dim / 2))) {
    fail(
        StatusCode::kInvalidArgument,
        "'{}': longrope short_factor and long_factor need head_dim / 2 = {} entries, got {} and {}",
        (c.dir / "config.json").string(), c.head_dim / 2, c.rope.short_factor.size(),
        c.rope.long_factor.size());
  }
  if (!c.layer_windows.empty() && c.layer_windows.size() != static_cast<size_t>(c.num_layers)) {
    fail(StatusCode::kInvalidArgument, "'{}': {} layer types for {} layers",
         (c.dir / "config.json").string(), c.layer_windows.size(), c.num_layers);
  }
  for (const int32_t w : c.layer_windows) {
    if (w < 0) {
      fail(StatusCode::kInvalidArgument, "'{}': sliding_window must be > 0, got {}",
           (c.dir / "config.json").string(), w);
    }
  }
  if (c.moe.num_experts > 0) {
    positive(c.moe.top_k, "num_experts_per_tok");
    positive(c.moe.intermediate_size, "moe_intermediate_size");
    positive(c.moe.sparse_step, "decoder_sparse_step");
    if (c.moe.top_k > c.moe.num_experts) {
      fail(StatusCode::kInvalidArgument, "'{}': num_experts_per_tok {} is more than the {} experts",
           (c.dir / "config.json").string(), c.moe.top_k, c.moe.num_experts);
    }
  }
  if (c.rope.type != RopeConfig::Type::kNone && c.head_dim % 2 != 0) {
    fail(StatusCode::kInvalidArgument, "'{}': head_dim {} must be even for rotary embeddings",
         (c.dir / "config.json").string(), c.head_dim);
  }
}

}  // namespace llmserve
