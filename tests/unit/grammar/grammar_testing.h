// Helpers for the grammar tests: vocabularies, compiling, and matching whole strings.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "grammar/compiled_grammar.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"

namespace llmserve::grammar::testing {

// Every single byte as a token (ids 0-255), then `extra` tokens, then a stop token (the last id)
// and a special token with no bytes just before it.
inline std::shared_ptr<const TokenizerInfo> byte_vocab(std::vector<std::string> extra = {}) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  for (auto& t : extra) tokens.push_back(std::move(t));
  tokens.emplace_back();  // special
  tokens.emplace_back();  // stop
  auto stop = static_cast<int32_t>(tokens.size() - 1);
  return std::make_shared<TokenizerInfo>(std::move(tokens), std::vector<int32_t>{stop});
}

inline std::shared_ptr<const CompiledGrammar> compile_or_die(
    const Grammar& g, std::shared_ptr<const TokenizerInfo> vocab = byte_vocab()) {
  std::shared_ptr<const CompiledGrammar> out;
  Status s = CompiledGrammar::compile(g, std::move(vocab), out);
  EXPECT_TRUE(s.is_ok()) << s.message() << "\n" << g.to_string();
  return out;
}

// True when the grammar matches exactly these bytes.
inline bool matches(const std::shared_ptr<const CompiledGrammar>& cg, std::string_view text) {
  GrammarMatcher m(cg);
  if (!text.empty() && !m.accept_bytes(text)) return false;
  return m.can_terminate();
}

inline bool matches(const Grammar& g, std::string_view text) {
  return matches(compile_or_die(g), text);
}

}  // namespace llmserve::grammar::testing
