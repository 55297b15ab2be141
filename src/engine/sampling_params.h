// SamplingParams: how one request wants its tokens chosen and when generation may stop.
//
// One plain struct that every frontend (KServe generate, OpenAI, gRPC) fills and that is validated
// in exactly one place, validate(), before the request reaches the engine. The sampler
// (sampler.h) reads it; the sequence reads max_tokens / min_tokens / ignore_eos / stop_token_ids to
// decide when to finish. Stop strings are matched on detokenized text by the frontend; they are
// only validated here. Defaults follow the OpenAI / vLLM conventions. Every member has a default
// initializer, so designated initialisation ({.temperature = 0, .max_tokens = 64}) is warning-free.
//
// Thread-safety: a value type; validate() is const and touches no shared state.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "grammar/compiled_grammar.h"

namespace llmserve {

inline constexpr float kMaxPresencePenalty = 2.0f;  // |presence_penalty| and |frequency_penalty|
inline constexpr int32_t kMaxLogprobs = 20;         // top alternatives a request may ask for
inline constexpr size_t kMaxNumStopStrings = 16;
inline constexpr float kMaxLogitBias = 100.0f;  // |bias| of a logit_bias entry (OpenAI's range)
inline constexpr size_t kMaxLogitBiasEntries = 1024;
inline constexpr size_t kMaxBadWords = 128;      // token sequences of bad_words
inline constexpr size_t kMaxBadWordTokens = 32;  // tokens of one

struct LogitBias {
  int32_t token = 0;
  float bias = 0.0f;  // added to the token's logit before penalties, masks and temperature
};

struct SamplingParams {
  float temperature = 1.0f;         // >= 0; 0 => greedy (argmax, ties to the lowest id)
  int32_t top_k = 0;                // 0 or -1 => off; >= vocab behaves as off
  float top_p = 1.0f;               // (0, 1]; 1 => off
  float min_p = 0.0f;               // [0, 1]; 0 => off
  float repetition_penalty = 1.0f;  // > 0; HF/CTRL style over prompt + generated tokens; 1 => off
  float presence_penalty = 0.0f;    // [-2, 2]; OpenAI style over generated tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; OpenAI style over generated tokens
  std::optional<uint64_t> seed{};   // same seed => same output; absent => engine picks one
  int32_t max_tokens = 16;          // >= 1
  int32_t min_tokens = 0;           // [0, max_tokens]; eos and stop_token_ids masked until reached
  bool ignore_eos = false;          // eos does not end the sequence (and is not masked)
  std::vector<int32_t> stop_token_ids{};  // each in [0, vocab_size)
  std::vector<std::string> stop{};        // stop strings: non-empty, at most kMaxNumStopStrings
  int32_t logprobs = -1;  // -1 => none; 0..20 => sampled token's logprob + this many alternatives
  // -1 => none; 0..20 => each prompt token's logprob (but the first's: nothing precedes it) + this
  // many alternatives, from the raw logits at the position before it (vLLM's prompt_logprobs).
  int32_t prompt_logprobs = -1;
  // OpenAI logit_bias: tokens in [0, vocab_size), each once, |bias| <= kMaxLogitBias. Logprobs
  // stay those of the model's own distribution.
  std::vector<LogitBias> logit_bias{};
  // bad_words (vLLM, TensorRT-LLM) as token sequences: the last token of each cannot be drawn
  // where the tokens before it end the output so far (a one-token word: never). Each non-empty,
  // ids in [0, vocab_size); not combinable with a grammar.
  std::vector<std::vector<int32_t>> bad_words{};
  // Structured output (response_format, guided_*): only tokens the grammar accepts next may be
  // drawn, and eos only where the grammar may end (sampler.h rule 2b). Compiled for this model's
  // vocabulary; not combinable with ignore_eos or min_tokens (the grammar decides the end).
  std::shared_ptr<const grammar::CompiledGrammar> grammar{};

  bool is_greedy() const { return temperature == 0.0f; }
  bool has_logprobs() const { return logprobs >= 0; }
  bool has_prompt_logprobs() const { return prompt_logprobs >= 0; }

  // Ok, or kInvalidArgument (kOutOfRange for a stop token id outside the vocabulary) with a
  // message that names the field, e.g. "temperature must be >= 0, got -1". NaN and infinities
  // are rejected for every float field.
  Status validate(int32_t vocab_size) const;
};

}  // namespace llmserve
