// The sampler's rule 2b (sampler.h): with SamplingParams::grammar, only tokens the grammar takes
// next may be drawn, eos only where it may end, and SamplingState::on_token advances the grammar.
// A tiny hand-made vocabulary, so every expected token is worked out by hand.
#include <cmath>
#include <limits>
#include <memory>

#include <gtest/gtest.h>

#include "engine/sampler.h"
#include "grammar/ebnf.h"

namespace llmserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int32_t kEos = 5;

// Tokens: 0 "a", 1 "b", 2 "ab", 3 "c", 4 "x", 5 eos (no bytes).
std::shared_ptr<const grammar::CompiledGrammar> compile(std::string_view ebnf) {
  auto vocab = std::make_shared<grammar::TokenizerInfo>(
      std::vector<std::string>{"a", "b", "ab", "c", "x", ""}, std::vector<int32_t>{kEos});
  grammar::Grammar g;
  EXPECT_TRUE(grammar::ebnf_grammar(ebnf, "test", g).is_ok());
  std::shared_ptr<const grammar::CompiledGrammar> out;
  EXPECT_TRUE(grammar::CompiledGrammar::compile(g, vocab, out).is_ok());
  return out;
}

TEST(SamplerGrammar, MasksTokensOutsideTheGrammar) {
  SamplingParams p{.temperature = 0.0f};
  p.grammar = compile(R"(root ::= "a" "b"? "c")");
  SamplingState state(p, {}, 0);
  // The model prefers x, then c: only "a" and "ab" are in the grammar at the start.
  std::vector<float> logits = {0.1f, 3.0f, 0.2f, 4.0f, 5.0f, 6.0f};
  process_logits(logits, p, state, std::vector<int32_t>{kEos});
  EXPECT_EQ(logits[0], 0.1f);
  EXPECT_EQ(logits[2], 0.2f);
  for (int32_t id : {1, 3, 4, 5}) EXPECT_EQ(logits[id], kNegInf) << id;
  std::vector<float> again = {0.1f, 3.0f, 0.2f, 4.0f, 5.0f, 6.0f};
  EXPECT_EQ(sample(again, p, state, std::vector<int32_t>{kEos}).token_id, 2);  // "ab"
  state.on_token(2);
  // After "ab" only "c"; eos only once the grammar may end.
  std::vector<float> next = {9.0f, 9.0f, 9.0f, 1.0f, 9.0f, 9.0f};
  EXPECT_EQ(sample(next, p, state, std::vector<int32_t>{kEos}).token_id, 3);
  state.on_token(3);
  std::vector<float> last = {9.0f, 9.0f, 9.0f, 9.0f, 9.0f, 1.0f};
  EXPECT_EQ(sample(last, p, state, std::vector<int32_t>{kEos}).token_id, kEos);
  state.on_token(kEos);
  EXPECT_TRUE(state.matcher()->is_terminated());
}

TEST(SamplerGrammar, SampledDrawsStayInTheLanguage) {
  SamplingParams p{.temperature = 1.5f, .seed = 11};
  p.grammar = compile(R"(root ::= ("a" | "b")+ "c")");
  for (uint64_t seed = 0; seed < 50; ++seed) {
    p.seed = seed;
    SamplingState state(p, {}, 0);
    std::string text;
    for (int step = 0; step < 40; ++step) {
      std::vector<float> logits = {0.0f, 0.0f, 0.0f, 0.5f, 3.0f, 0.0f};
      const int32_t id = sample(logits, p, state, std::vector<int32_t>{kEos}).token_id;
      state.on_token(id);
      if (id == kEos) break;
      text += std::vector<std::string>{"a", "b", "ab", "c", "x"}[static_cast<size_t>(id)];
    }
    ASSERT_TRUE(state.matcher()->is_terminated()) << text;
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), 'c') << text;
    EXPECT_EQ(text.find('x'), std::string::npos) << text;
    EXPECT_EQ(text.find('c'), text.size() - 1) << text;
  }
}

TEST(SamplerGrammar, ATokenOutsideTheGrammarIsAnInternalError) {
  SamplingParams p;
  p.grammar = compile(R"(root ::= "a")");
  SamplingState state(p, {}, 0);
  EXPECT_THROW(state.on_token(4), Error);
}

TEST(SamplerGrammar, ValidateRefusesWhatTheGrammarDecides) {
  SamplingParams p;
  p.grammar = compile(R"(root ::= "a")");
  EXPECT_TRUE(p.validate(6).is_ok());
  p.ignore_eos = true;
  EXPECT_EQ(p.validate(6).code(), StatusCode::kInvalidArgument);
  p.ignore_eos = false;
  p.min_tokens = 1;
  EXPECT_EQ(p.validate(6).code(), StatusCode::kInvalidArgument);
  p.min_tokens = 0;
  EXPECT_EQ(p.validate(7).code(), StatusCode::kInternal);  // compiled for another vocabulary
}

}  // namespace
}  // namespace llmserve
