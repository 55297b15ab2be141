// Fuzzes the OpenAI frontend's request parsing: /v1/completions and /v1/chat/completions bodies
// through parse_json and openai::parse_request (and parse_tokenize / parse_detokenize) with the
// embedded default model's tokenizer and chat template (messages, content parts, tools and
// tool_calls become template values). Any input must produce a parsed request or an ApiError —
// never a crash, hang, leak, undefined behaviour or another exception (which the server would
// answer with a 500). The first byte picks the API: odd is chat ('1'), even completions ('0'); the
// rest is the body. Also replayed over tests/fuzz/corpus/openai by ctest
// (fuzz_regression_main.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/http/json_body.h"
#include "server/openai/request_parsing.h"

namespace {

using namespace llmserve;

// GenerationService::max_prompt_bytes() for a tokenizer: max_model_len times the longest token
// times 4.
int64_t max_prompt_bytes(const Tokenizer& t, int32_t max_model_len) {
  size_t longest = 1;
  for (int32_t id = 0; id < t.vocab_size(); ++id)
    longest = std::max({longest, t.token_bytes(id).size(), t.id_to_token(id).size()});
  return int64_t{max_model_len} * static_cast<int64_t>(longest) * 4;
}

std::string token_or_empty(const Tokenizer& t, std::optional<int32_t> id) {
  return id ? t.id_to_token(*id) : std::string();
}

// What the frontend holds for models/default: its tokenizer, its template compiled, its limits
// (max_model_len is its n_positions, as the engine sets it).
struct DefaultModel {
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat_template;
  openai::ParseContext context;

  explicit DefaultModel(std::unique_ptr<Tokenizer> tok)
      : tokenizer(std::move(tok)),
        chat_template(ChatTemplate::compile(tokenizer->chat_template())),
        context{.tokenizer = *tokenizer,
                .chat_template = &chat_template,
                .bos_token = token_or_empty(*tokenizer, tokenizer->bos_token_id()),
                .eos_token = token_or_empty(*tokenizer, tokenizer->eos_token_id()),
                .max_model_len = 256,
                .max_prompt_bytes = max_prompt_bytes(*tokenizer, 256)} {}
};

const DefaultModel& model() {
  static const DefaultModel* m = new DefaultModel(
      Tokenizer::from_dir(std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default"));
  return *m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const DefaultModel& m = model();
  if (size == 0) return 0;
  const openai::Api api = data[0] % 2 == 1 ? openai::Api::kChat : openai::Api::kCompletions;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  nlohmann::json body;
  if (!parse_json(text, body).is_ok() || !body.is_object()) return 0;
  if (data[0] % 4 >= 2) {  // the same body as /tokenize and /detokenize (vLLM's routes)
    try {
      const std::vector<int32_t> ids = openai::parse_tokenize(body, m.context);
      for (int32_t id : ids) {
        if (id < 0 || id >= m.context.tokenizer.vocab_size()) __builtin_trap();
      }
    } catch (const openai::ApiError& e) {
      if (e.status != 400 || e.message.empty()) __builtin_trap();
    }
    try {
      (void)openai::parse_detokenize(body, m.context);
    } catch (const openai::ApiError& e) {
      if (e.status != 400 || e.message.empty()) __builtin_trap();
    }
  }
  openai::ParsedRequest parsed;
  try {
    openai::parse_request(body, api, m.context, parsed);
  } catch (const openai::ApiError& e) {
    if (e.status != 400 || e.message.empty()) __builtin_trap();
    return 0;
  }
  // What the parser promises of an accepted request.
  const auto& ids = std::get<std::vector<int32_t>>(parsed.request.prompt);
  if (ids.empty() || parsed.prompt_len != static_cast<int32_t>(ids.size()) ||
      parsed.prompt_len >= m.context.max_model_len || parsed.request.sampling.max_tokens < 1 ||
      parsed.prompt_len + parsed.request.sampling.max_tokens > m.context.max_model_len) {
    __builtin_trap();
  }
  for (const openai::ParsedRequest::Prompt& more : parsed.more_prompts) {
    const auto len = static_cast<int32_t>(more.ids.size());
    if (len == 0 || len + parsed.request.sampling.max_tokens > m.context.max_model_len)
      __builtin_trap();
  }
  if ((parsed.more_prompts.size() + 1) * static_cast<size_t>(parsed.n) > openai::kMaxPrompts)
    __builtin_trap();
  return 0;
}
