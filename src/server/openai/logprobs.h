// Logprobs in OpenAI's and vLLM's wire formats, built from the engine's scores (SampleResult,
// engine/sampler.h):
//   completions  {"tokens", "token_logprobs", "top_logprobs", "text_offset"}: one entry per token;
//                with echo the prompt's tokens come first, the first of them with null
//                token_logprobs and top_logprobs (nothing precedes it), and text_offset runs on
//                across prompt and completion. top_logprobs maps each alternative's text to its
//                logprob and always holds the token itself.
//   chat         {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}
//   prompt_logprobs (vLLM, completions per choice and chat per response): a list with one entry
//                per prompt token, null for the first, then {"<token id>": {"logprob", "rank",
//                "decoded_token"}} holding the prompt token and the top k (ranks from 1).
// A logprob of -inf is written as -9999.0, as vLLM does (JSON has no infinities).
//
// Thread-safety: a LogprobsBuilder belongs to one reply; the tokenizer's decode is const.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::openai {

// Logprobs of one choice accumulated in the wire format of either API.
class LogprobsBuilder {
 public:
  // text_offset: where the first token's text starts in the choice's text (completions).
  LogprobsBuilder(const Tokenizer& tokenizer, bool is_chat, size_t text_offset = 0);

  // Generated tokens' scores, in order.
  void add(std::span<const SampleResult> results);
  // Completions with echo: the prompt's tokens before any add(); `scores` are prompt tokens 1..
  // (RequestOutput::prompt_logprobs), their alternatives cut to `num_top`.
  void add_prompt(std::span<const int32_t> prompt_ids, std::span<const SampleResult> scores,
                  int32_t num_top);
  size_t text_offset() const { return text_offset_; }
  const nlohmann::json& value() const { return is_chat_ ? chat_ : completion_; }

 private:
  std::string piece(int32_t id) const;
  // One completions entry: `r` null for a token without a score.
  void add_completion_token(int32_t token_id, const SampleResult* r, size_t num_top);

  const Tokenizer& tok_;
  bool is_chat_ = false;
  size_t text_offset_ = 0;
  nlohmann::json completion_;
  nlohmann::json chat_;
};

// vLLM's prompt_logprobs list for `prompt_ids` from their scores (prompt tokens 1..), the top
// alternatives cut to `num_top`.
nlohmann::json prompt_logprobs_json(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids,
                                    std::span<const SampleResult> scores, int32_t num_top);

}  // namespace llmserve::openai
