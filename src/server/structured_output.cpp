#include "server/structured_output.h"

#include <nlohmann/json.hpp>

#include "grammar/ebnf.h"
#include "grammar/json_schema.h"
#include "grammar/regex.h"

namespace llmserve {

std::string_view guide_kind_name(GuideKind kind) {
  switch (kind) {
    case GuideKind::kNone:
      return "none";
    case GuideKind::kJsonObject:
      return "json_object";
    case GuideKind::kJsonSchema:
      return "json_schema";
    case GuideKind::kRegex:
      return "regex";
    case GuideKind::kChoice:
      return "choice";
    case GuideKind::kGrammar:
      return "grammar";
    case GuideKind::kToolCall:
      return "tool_call";
  }
  return "unknown";
}

Status guide_from_trtllm(const std::optional<std::string>& type,
                         const std::optional<std::string>& text, Guide& guide) {
  if (!type) {
    if (text) {
      return invalid_argument(
          "input 'guided_decoding_guide' needs 'guided_decoding_guide_type' (json, json_schema, "
          "regex or ebnf_grammar)");
    }
    return Status::ok();
  }
  guide.field = "guided_decoding_guide";
  if (*type == "json") {
    guide.kind = GuideKind::kJsonObject;
    return Status::ok();
  }
  if (*type == "json_schema") {
    guide.kind = GuideKind::kJsonSchema;
  } else if (*type == "regex") {
    guide.kind = GuideKind::kRegex;
  } else if (*type == "ebnf_grammar") {
    guide.kind = GuideKind::kGrammar;
  } else {
    return invalid_argument(
        "input 'guided_decoding_guide_type' must be json, json_schema, regex or ebnf_grammar, "
        "got '{}'",
        *type);
  }
  if (!text) {
    return invalid_argument(
        "input 'guided_decoding_guide' is required with guided_decoding_guide_type '{}'", *type);
  }
  guide.text = *text;
  return Status::ok();
}

namespace {

// GuideKind::kToolCall: begin doc (separator doc)* end around the schema's grammar.
Status tool_call_grammar(std::string_view text, std::string_view field, grammar::Grammar& out) {
  const auto guide = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!guide.is_object() || !guide.contains("schema")) {
    return invalid_argument("{}: not a tool-call guide", field);
  }
  const auto literal = [&](const char* key) {
    auto it = guide.find(key);
    return it != guide.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (Status s = grammar::json_schema_grammar_from_json(guide["schema"], field, out); !s.is_ok())
    return s;
  const int32_t doc = out.root();
  using grammar::Element;
  grammar::Sequence seq;
  if (!literal("begin").empty()) seq.push_back(Element::text(literal("begin")));
  seq.push_back(Element::ref(doc));
  if (guide.value("parallel", false)) {
    grammar::Sequence more;
    if (!literal("separator").empty()) more.push_back(Element::text(literal("separator")));
    more.push_back(Element::ref(doc));
    seq.push_back(Element::repeat(out.add_rule("more_calls", {more}), 0, -1));
  }
  if (!literal("end").empty()) seq.push_back(Element::text(literal("end")));
  out.set_root(out.add_rule("tool_calls", {seq}));
  return Status::ok();
}

Status build_grammar(GuideKind kind, std::string_view text, std::string_view field,
                     grammar::Grammar& out) {
  switch (kind) {
    case GuideKind::kNone:
      break;
    case GuideKind::kJsonObject:
      out = grammar::json_object_grammar();
      return Status::ok();
    case GuideKind::kJsonSchema:
      return grammar::json_schema_grammar(text, field, out);
    case GuideKind::kRegex:
      return grammar::regex_grammar(text, field, out);
    case GuideKind::kGrammar:
      return grammar::ebnf_grammar(text, field, out);
    case GuideKind::kToolCall:
      return tool_call_grammar(text, field, out);
    case GuideKind::kChoice: {
      const auto choices = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!choices.is_array() || choices.empty()) {
        return invalid_argument("{}: must be a non-empty array of strings", field);
      }
      std::vector<std::string> list;
      for (size_t i = 0; i < choices.size(); ++i) {
        if (!choices[i].is_string()) {
          return invalid_argument("{}[{}]: must be a string", field, i);
        }
        list.push_back(choices[i].get<std::string>());
      }
      return grammar::choice_grammar(list, field, out);
    }
  }
  return invalid_argument("{}: unknown guide kind", field);
}

}  // namespace

StructuredOutputs::StructuredOutputs(const Tokenizer& tokenizer, int32_t vocab_size,
                                     std::vector<int32_t> eos_ids, size_t cache_size)
    : tokenizer_(tokenizer),
      vocab_size_(vocab_size),
      eos_ids_(std::move(eos_ids)),
      capacity_(std::max<size_t>(cache_size, 1)) {}

std::shared_ptr<const grammar::TokenizerInfo> StructuredOutputs::vocabulary() {
  std::call_once(vocabulary_once_, [&] {
    std::vector<std::string> bytes(static_cast<size_t>(vocab_size_));
    const int32_t known = std::min(vocab_size_, tokenizer_.vocab_size());
    for (int32_t id = 0; id < known; ++id) {
      // Special tokens (eos, chat markers) have no bytes a grammar could match: left empty,
      // never allowed, except eos where the grammar may end.
      if (!tokenizer_.is_special(id)) bytes[static_cast<size_t>(id)] = tokenizer_.token_bytes(id);
    }
    vocabulary_ = std::make_shared<grammar::TokenizerInfo>(std::move(bytes), eos_ids_);
  });
  return vocabulary_;
}

Status StructuredOutputs::compile(GuideKind kind, std::string_view text, std::string_view field,
                                  std::shared_ptr<const grammar::CompiledGrammar>& out) {
  std::string key(guide_kind_name(kind));
  key += '\n';
  key += text;
  {
    const std::lock_guard lock(mu_);
    if (auto it = index_.find(key); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      out = it->second->second;
      return Status::ok();
    }
  }
  grammar::Grammar g;
  if (Status s = build_grammar(kind, text, field, g); !s.is_ok()) return s;
  std::shared_ptr<const grammar::CompiledGrammar> compiled;
  if (Status s = grammar::CompiledGrammar::compile(g, vocabulary(), compiled); !s.is_ok()) {
    return invalid_argument("{}: {}", field, s.message());
  }
  const std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    out = it->second->second;
    return Status::ok();
  }
  lru_.emplace_front(key, compiled);
  index_[key] = lru_.begin();
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  out = std::move(compiled);
  return Status::ok();
}

size_t StructuredOutputs::cache_size() const {
  const std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace llmserve
