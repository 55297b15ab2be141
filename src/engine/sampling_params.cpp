// SamplingParams::validate: the single place request sampling options are checked.
//
// Checks run in declaration order and the first failure is returned, so a request with several
// problems is told about the first field. Every comparison is written so that NaN fails it.
#include "engine/sampling_params.h"

#include <algorithm>
#include <cmath>

namespace llmserve {
namespace {

// "<name> must be finite, got inf" for NaN / +-inf, else ok.
Status check_finite(const char* name, float value) {
  if (std::isfinite(value)) return Status::ok();
  return invalid_argument("{} must be a finite number, got {}", name, value);
}

Status check_in_closed_range(const char* name, float value, float lo, float hi) {
  if (Status s = check_finite(name, value); !s.is_ok()) return s;
  if (value >= lo && value <= hi) return Status::ok();
  return invalid_argument("{} must be in [{}, {}], got {}", name, lo, hi, value);
}

Status validate_floats(const SamplingParams& p) {
  if (Status s = check_finite("temperature", p.temperature); !s.is_ok()) return s;
  if (!(p.temperature >= 0.0f)) {
    return invalid_argument("temperature must be >= 0, got {}", p.temperature);
  }
  if (Status s = check_finite("top_p", p.top_p); !s.is_ok()) return s;
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return invalid_argument("top_p must be in (0, 1], got {}", p.top_p);
  }
  if (Status s = check_in_closed_range("min_p", p.min_p, 0.0f, 1.0f); !s.is_ok()) return s;
  if (Status s = check_finite("repetition_penalty", p.repetition_penalty); !s.is_ok()) return s;
  if (!(p.repetition_penalty > 0.0f)) {
    return invalid_argument("repetition_penalty must be > 0, got {}", p.repetition_penalty);
  }
  if (Status s = check_in_closed_range("presence_penalty", p.presence_penalty, -kMaxPresencePenalty,
                                       kMaxPresencePenalty);
      !s.is_ok()) {
    return s;
  }
  return check_in_closed_range("frequency_penalty", p.frequency_penalty, -kMaxPresencePenalty,
                               kMaxPresencePenalty);
}

Status validate_stops(const SamplingParams& p, int32_t vocab_size) {
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i) {
    const int32_t id = p.stop_token_ids[i];
    if (id < 0 || id >= vocab_size) {
      return {StatusCode::kOutOfRange,
              fmt::format("stop_token_ids[{}] must be in [0, {}), got {}", i, vocab_size, id)};
    }
  }
  if (p.stop.size() > kMaxNumStopStrings) {
    return invalid_argument("stop must hold at most {} strings, got {}", kMaxNumStopStrings,
                            p.stop.size());
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    if (p.stop[i].empty()) return invalid_argument("stop[{}] must not be empty", i);
  }
  return Status::ok();
}

Status validate_logit_bias(const SamplingParams& p, int32_t vocab_size) {
  if (p.logit_bias.size() > kMaxLogitBiasEntries) {
    return invalid_argument("logit_bias must hold at most {} tokens, got {}", kMaxLogitBiasEntries,
                            p.logit_bias.size());
  }
  std::vector<int32_t> seen;
  for (const LogitBias& b : p.logit_bias) {
    if (b.token < 0 || b.token >= vocab_size) {
      return {StatusCode::kOutOfRange,
              fmt::format("logit_bias token {} is not in [0, {})", b.token, vocab_size)};
    }
    if (!std::isfinite(b.bias) || std::abs(b.bias) > kMaxLogitBias) {
      return invalid_argument("logit_bias of token {} must be in [-{}, {}], got {}", b.token,
                              kMaxLogitBias, kMaxLogitBias, b.bias);
    }
    seen.push_back(b.token);
  }
  std::sort(seen.begin(), seen.end());
  if (const auto dup = std::adjacent_find(seen.begin(), seen.end()); dup != seen.end())
    return invalid_argument("logit_bias names token {} twice", *dup);
  return Status::ok();
}

}  // namespace

Status SamplingParams::validate(int32_t vocab_size) const {
  if (Status s = validate_floats(*this); !s.is_ok()) return s;
  if (top_k < -1) {
    return invalid_argument("top_k must be -1 or 0 (off) or >= 1, got {}", top_k);
  }
  if (max_tokens < 1) return invalid_argument("max_tokens must be >= 1, got {}", max_tokens);
  if (min_tokens < 0) return invalid_argument("min_tokens must be >= 0, got {}", min_tokens);
  if (min_tokens > max_tokens) {
    return invalid_argument("min_tokens must be <= max_tokens ({}), got {}", max_tokens,
                            min_tokens);
  }
  if (Status s = validate_stops(*this, vocab_size); !s.is_ok()) return s;
  if (Status s = validate_logit_bias(*this, vocab_size); !s.is_ok()) return s;
  if (bad_words.size() > kMaxBadWords) {
    return invalid_argument("bad_words must hold at most {} words, got {}", kMaxBadWords,
                            bad_words.size());
  }
  for (const auto& word : bad_words) {
    if (word.empty() || word.size() > kMaxBadWordTokens) {
      return invalid_argument("bad_words: each word must be 1 to {} tokens, got {}",
                              kMaxBadWordTokens, word.size());
    }
    for (int32_t id : word) {
      if (id < 0 || id >= vocab_size) {
        return {StatusCode::kOutOfRange,
                fmt::format("bad_words token {} is not in [0, {})", id, vocab_size)};
      }
    }
  }
  if (logprobs < -1 || logprobs > kMaxLogprobs) {
    return invalid_argument("logprobs must be in [-1, {}] (-1 = none), got {}", kMaxLogprobs,
                            logprobs);
  }
  if (prompt_logprobs < -1 || prompt_logprobs > kMaxLogprobs) {
    return invalid_argument("prompt_logprobs must be in [-1, {}] (-1 = none), got {}", kMaxLogprobs,
                            prompt_logprobs);
  }
  if (grammar != nullptr) {
    if (ignore_eos) {
      return invalid_argument(
          "ignore_eos cannot be combined with structured output: the grammar "
          "decides where the output ends");
    }
    if (min_tokens > 0) {
      return invalid_argument(
          "min_tokens cannot be combined with structured output: the grammar "
          "decides where the output ends");
    }
    if (!bad_words.empty()) {
      return invalid_argument(
          "bad_words cannot be combined with structured output: the grammar decides which "
          "tokens may come next");
    }
    if (grammar->tokenizer().vocab_size() != vocab_size) {
      return {StatusCode::kInternal,
              fmt::format("structured output compiled for {} tokens, the model has {}",
                          grammar->tokenizer().vocab_size(), vocab_size)};
    }
  }
  return Status::ok();
}

}  // namespace llmserve
