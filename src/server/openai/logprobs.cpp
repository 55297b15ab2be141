// Logprobs in OpenAI's and vLLM's wire formats: see logprobs.h.
#include "server/openai/logprobs.h"

#include <algorithm>

#include "common/status.h"

namespace llmserve::openai {

using nlohmann::json;

namespace {

// JSON has no -inf; vLLM writes -9999.0 for it.
float finite(float logprob) {
  return std::max(logprob, -9999.0f);
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

void check_scores(std::span<const int32_t> prompt_ids, std::span<const SampleResult> scores) {
  if (!prompt_ids.empty() && scores.size() + 1 != prompt_ids.size()) {
    fail(StatusCode::kInternal, "{} prompt logprobs for a prompt of {} tokens", scores.size(),
         prompt_ids.size());
  }
}

}  // namespace

LogprobsBuilder::LogprobsBuilder(const Tokenizer& tokenizer, bool is_chat, size_t text_offset)
    : tok_(tokenizer),
      is_chat_(is_chat),
      text_offset_(text_offset),
      completion_(json{{"tokens", json::array()},
                       {"token_logprobs", json::array()},
                       {"top_logprobs", json::array()},
                       {"text_offset", json::array()}}),
      chat_(json{{"content", json::array()}}) {}

std::string LogprobsBuilder::piece(int32_t id) const {
  return tok_.decode(std::span<const int32_t>(&id, 1));
}

void LogprobsBuilder::add_completion_token(int32_t token_id, const SampleResult* r,
                                           size_t num_top) {
  const std::string text = piece(token_id);
  json top = nullptr;
  if (r != nullptr) {
    top = json::object();
    for (size_t k = 0; k < std::min(num_top, r->top_logprobs.size()); ++k) {
      const TokenLogprob& t = r->top_logprobs[k];
      top[piece(t.token_id)] = finite(t.logprob);
    }
    if (!top.contains(text)) top[text] = finite(r->logprob);
  }
  completion_["tokens"].push_back(text);
  completion_["token_logprobs"].push_back(r != nullptr ? json(finite(r->logprob)) : json(nullptr));
  completion_["top_logprobs"].push_back(std::move(top));
  completion_["text_offset"].push_back(text_offset_);
  text_offset_ += text.size();
}

void LogprobsBuilder::add(std::span<const SampleResult> results) {
  for (const SampleResult& r : results) {
    if (!is_chat_) {
      add_completion_token(r.token_id, &r, r.top_logprobs.size());
      continue;
    }
    const std::string text = piece(r.token_id);
    json top = json::array();
    for (const TokenLogprob& t : r.top_logprobs) {
      const std::string s = piece(t.token_id);
      top.push_back({{"token", s}, {"logprob", finite(t.logprob)}, {"bytes", bytes_of(s)}});
    }
    chat_["content"].push_back({{"token", text},
                                {"logprob", finite(r.logprob)},
                                {"bytes", bytes_of(text)},
                                {"top_logprobs", std::move(top)}});
  }
}

void LogprobsBuilder::add_prompt(std::span<const int32_t> prompt_ids,
                                 std::span<const SampleResult> scores, int32_t num_top) {
  check_scores(prompt_ids, scores);
  for (size_t i = 0; i < prompt_ids.size(); ++i) {
    add_completion_token(prompt_ids[i], i == 0 ? nullptr : &scores[i - 1],
                         static_cast<size_t>(std::max(num_top, 0)));
  }
}

json prompt_logprobs_json(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids,
                          std::span<const SampleResult> scores, int32_t num_top) {
  check_scores(prompt_ids, scores);
  const auto piece = [&](int32_t id) { return tokenizer.decode(std::span<const int32_t>(&id, 1)); };
  json list = json::array();
  if (!prompt_ids.empty()) list.push_back(nullptr);
  for (const SampleResult& r : scores) {
    json entry = json::object();
    entry[std::to_string(r.token_id)] = {
        {"logprob", finite(r.logprob)}, {"rank", r.rank}, {"decoded_token", piece(r.token_id)}};
    const size_t n = std::min(static_cast<size_t>(std::max(num_top, 0)), r.top_logprobs.size());
    for (size_t k = 0; k < n; ++k) {
      const TokenLogprob& t = r.top_logprobs[k];
      const std::string key = std::to_string(t.token_id);
      if (entry.contains(key)) continue;
      entry[key] = {
          {"logprob", finite(t.logprob)}, {"rank", k + 1}, {"decoded_token", piece(t.token_id)}};
    }
    list.push_back(std::move(entry));
  }
  return list;
}

}  // namespace llmserve::openai
