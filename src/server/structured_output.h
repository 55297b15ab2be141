// StructuredOutputs: turns what a request asks of its output's shape (OpenAI response_format,
// vLLM's guided_json / guided_regex / guided_choice / guided_grammar, Triton's
// guided_decoding_guide_type + guided_decoding_guide) into a grammar compiled for the served
// model's vocabulary (src/grammar/), which SamplingParams::grammar hands to the sampler.
//
// One per GenerationService. The vocabulary's TokenizerInfo (every token's bytes, the model's eos
// ids, a byte trie) is built on first use, so a server whose clients never ask pays nothing.
// Compiled grammars are kept in an LRU cache keyed by (kind, text): clients send the same schema
// with every request, and compiling one costs milliseconds to a second (docs/grammar.md).
//
// Thread-safety: compile() may be called from any thread; a compile runs outside the cache lock
// (two threads may compile the same guide once each; the second result is dropped).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "grammar/compiled_grammar.h"
#include "tokenizer/tokenizer.h"

namespace llmserve {

enum class GuideKind {
  kNone,        // free text
  kJsonObject,  // any JSON object (text unused)
  kJsonSchema,  // text: a JSON Schema document
  kRegex,       // text: a regular expression (grammar/regex.h)
  kChoice,      // text: a JSON array of strings, the output is one of them exactly
  kGrammar,     // text: GBNF-style EBNF (grammar/ebnf.h)
  // text: {"schema": S, "begin": B, "separator": P, "end": E, "parallel": bool}: B, one JSON
  // document of schema S (or, with parallel, one or more joined by P), E — forced tool calls
  // (src/server/openai/tool_calls.h writes these).
  kToolCall,
};

// "none", "json_object", "json_schema", "regex", "choice", "grammar".
std::string_view guide_kind_name(GuideKind kind);

// What a request asks of its output's shape, as a frontend read it (GenerateRequest::guide);
// GenerationService::start compiles it.
struct Guide {
  GuideKind kind = GuideKind::kNone;
  std::string text;   // as GuideKind says
  std::string field;  // the request field it came from, first in error messages
};

// TensorRT-LLM's inputs guided_decoding_guide_type (json: any JSON object; json_schema, regex and
// ebnf_grammar take guided_decoding_guide) → guide; kInvalidArgument naming the input otherwise.
Status guide_from_trtllm(const std::optional<std::string>& type,
                         const std::optional<std::string>& text, Guide& guide);

class StructuredOutputs {
 public:
  // vocab_size: the model's (logit rows), which may exceed the tokenizer's; ids past the
  // tokenizer's are never allowed. eos_ids: where a grammar may end the output.
  StructuredOutputs(const Tokenizer& tokenizer, int32_t vocab_size, std::vector<int32_t> eos_ids,
                    size_t cache_size = 64);

  // kInvalidArgument naming `field` (e.g. "response_format.json_schema.schema.properties.age:
  // ...") when the guide is malformed or asks for something the engine cannot honour. Never a
  // silent fallback to free text.
  Status compile(GuideKind kind, std::string_view text, std::string_view field,
                 std::shared_ptr<const grammar::CompiledGrammar>& out);

  size_t cache_size() const;  // entries cached now

 private:
  std::shared_ptr<const grammar::TokenizerInfo> vocabulary();

  const Tokenizer& tokenizer_;
  const int32_t vocab_size_;
  const std::vector<int32_t> eos_ids_;
  const size_t capacity_;
  std::once_flag vocabulary_once_;
  std::shared_ptr<const grammar::TokenizerInfo> vocabulary_;
  mutable std::mutex mu_;
  // Most recently used first; the map points into the list.
  using Entry = std::pair<std::string, std::shared_ptr<const grammar::CompiledGrammar>>;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace llmserve
