#include "grammar/matcher.h"

#include <random>

#include <gtest/gtest.h>

#include "grammar/ebnf.h"
#include "grammar/json_schema.h"
#include "grammar_testing.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::grammar {
namespace {

using testing::byte_vocab;
using testing::compile_or_die;

bool bit(const std::vector<uint32_t>& mask, int32_t id) {
  return (mask[id >> 5] >> (id & 31)) & 1;
}

// A vocabulary of every byte plus random multi-byte tokens drawn from JSON-ish text, so tokens
// cross the grammar's rule boundaries the way real BPE tokens do.
std::shared_ptr<const TokenizerInfo> random_vocab(std::mt19937& rng) {
  static const std::string kPieces[] = {
      "{", "}", "[",    "]",    "\"", ":", ",",    " ",    "a",    "b",    "x",      "1",  "0", "-",
      ".", "e", "true", "null", "\\", "n", "\xC3", "\xA9", "name", "\": ", "\", \"", "}]", "12"};
  std::vector<std::string> extra;
  std::uniform_int_distribution<size_t> piece(0, std::size(kPieces) - 1);
  std::uniform_int_distribution<int> len(1, 4);
  for (int i = 0; i < 400; ++i) {
    std::string t;
    for (int k = len(rng); k > 0; --k) t += kPieces[piece(rng)];
    extra.push_back(t);
  }
  return byte_vocab(std::move(extra));
}

// Walks one matcher of cg choosing random allowed tokens, and checks every step's mask against
// accept_token on a copy of the matcher, token by token.
void walk_checking_masks(const std::shared_ptr<const CompiledGrammar>& cg, std::mt19937& rng,
                         uint32_t seed) {
  const TokenizerInfo* vocab = &cg->tokenizer();
  GrammarMatcher m(cg);
  std::vector<uint32_t> mask(static_cast<size_t>(vocab->mask_words()));
  for (int step = 0; step < 60 && !m.is_terminated(); ++step) {
    m.fill_next_token_bitmask(mask);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < vocab->vocab_size(); ++id) {
      GrammarMatcher copy = m;
      bool expected = copy.accept_token(id);
      ASSERT_EQ(bit(mask, id), expected) << "seed " << seed << " step " << step << " token " << id
                                         << " '" << vocab->token_bytes(id) << "'";
      if (expected) allowed.push_back(id);
    }
    ASSERT_FALSE(allowed.empty()) << "dead end at step " << step;
    // Prefer ending once the document may end, so walks finish.
    int32_t stop = vocab->stop_token_ids()[0];
    int32_t pick = step > 40 && bit(mask, stop) ? stop : allowed[rng() % allowed.size()];
    ASSERT_TRUE(m.accept_token(pick));
  }
}

void check_masks_by_brute_force(const Grammar& g, uint32_t seed) {
  std::mt19937 rng(seed);
  auto vocab = random_vocab(rng);
  walk_checking_masks(compile_or_die(g, vocab), rng, seed);
}

TEST(GrammarMatcher, MasksMatchBruteForceJson) {
  for (uint32_t seed = 1; seed <= 6; ++seed) check_masks_by_brute_force(json_value_grammar(), seed);
}

TEST(GrammarMatcher, MasksMatchBruteForceSchema) {
  Grammar g;
  ASSERT_TRUE(json_schema_grammar(R"({"type":"object","properties":{"name":{"type":"string",
      "maxLength":5},"a":{"type":"array","items":{"type":"integer","minimum":-3}},
      "b":{"enum":["x","true"]}},"required":["a"]})",
                                  "schema", g)
                  .is_ok());
  for (uint32_t seed = 10; seed <= 14; ++seed) check_masks_by_brute_force(g, seed);
}

// Matchers of one compiled grammar share its masks by state (CompiledGrammar::shared_mask), keyed
// without their own stack-frame ids: eight walks over one grammar, each reaching states the
// others decided first under other frame numberings, still match brute force at every step.
TEST(GrammarMatcher, MasksSharedAcrossMatchersMatchBruteForce) {
  Grammar g;
  ASSERT_TRUE(json_schema_grammar(R"({"type":"object","properties":{"o":{"type":"object",
      "properties":{"s":{"type":"string","maxLength":3},"n":{"type":"array","items":
      {"type":"integer"},"maxItems":2}}},"b":{"enum":["x","true"]}},"required":["o","b"]})",
                                  "schema", g)
                  .is_ok());
  std::mt19937 rng(30);
  auto cg = compile_or_die(g, random_vocab(rng));
  for (uint32_t seed = 30; seed < 38; ++seed) {
    rng.seed(seed);
    walk_checking_masks(cg, rng, seed);
  }
}

// Two matchers reach the same position under different stacks that each pool numbers frame 1:
// after "ax" the rule s returns to "!", after "bx" to "?", and the tokens that leave s ("yy!",
// "yy?") are allowed by the stack alone. The shared masks tell the states apart.
TEST(GrammarMatcher, SharedMasksKeyStacksNotFrameIds) {
  Grammar g;
  ASSERT_TRUE(ebnf_grammar(R"(root ::= "a" s "!" | "b" s "?"
s ::= "x" "yy")",
                           "grammar", g)
                  .is_ok());
  auto cg = compile_or_die(g, byte_vocab({"yy!", "yy?"}));
  const int32_t bang = 256, query = 257;  // the extra tokens' ids
  std::vector<uint32_t> mask(static_cast<size_t>(cg->tokenizer().mask_words()));
  GrammarMatcher a(cg);
  ASSERT_TRUE(a.accept_bytes("ax"));
  a.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, bang));
  EXPECT_FALSE(bit(mask, query));
  GrammarMatcher b(cg);
  ASSERT_TRUE(b.accept_bytes("bx"));
  b.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, query));
  EXPECT_FALSE(bit(mask, bang));
  EXPECT_TRUE(bit(mask, 'y'));
}

TEST(GrammarMatcher, StopTokenOnlyWhereTheGrammarMayEnd) {
  auto vocab = byte_vocab();
  int32_t stop = vocab->stop_token_ids()[0];
  int32_t special = stop - 1;
  Grammar g;
  ASSERT_TRUE(ebnf_grammar("root ::= \"ab\" \"c\"?", "g", g).is_ok());
  GrammarMatcher m(compile_or_die(g, vocab));
  std::vector<uint32_t> mask(static_cast<size_t>(vocab->mask_words()));
  EXPECT_FALSE(m.accept_token(stop));
  EXPECT_FALSE(m.accept_token(special));
  EXPECT_TRUE(m.accept_token('a'));
  EXPECT_TRUE(m.accept_token('b'));
  m.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, stop));
  EXPECT_TRUE(bit(mask, 'c'));
  EXPECT_FALSE(bit(mask, special));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_TRUE(m.accept_token(stop));
  EXPECT_TRUE(m.is_terminated());
  EXPECT_FALSE(m.accept_token('c'));
  m.fill_next_token_bitmask(mask);
  for (uint32_t w : mask) EXPECT_EQ(w, 0u);
  m.rollback(1);  // the stop token too can be undone
  EXPECT_FALSE(m.is_terminated());
  EXPECT_TRUE(m.accept_token('c'));
  m.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, stop));
  EXPECT_FALSE(bit(mask, 'c'));
}

TEST(GrammarMatcher, RejectedTokenLeavesStateAndRollbackRestores) {
  auto vocab = byte_vocab({"{\"", "\":", "12,", "x\"}"});
  Grammar g;
  ASSERT_TRUE(json_schema_grammar(R"({"type":"object","properties":{"x":{"type":"integer"}},
      "required":["x"]})",
                                  "s", g)
                  .is_ok());
  auto cg = compile_or_die(g, vocab);
  GrammarMatcher m(cg, 4);
  std::vector<uint32_t> before(static_cast<size_t>(vocab->mask_words())), after(before.size());
  ASSERT_TRUE(m.accept_token(256));  // {"
  m.fill_next_token_bitmask(before);
  EXPECT_FALSE(m.accept_token('y'));
  EXPECT_FALSE(m.accept_token(259));  // x"} : the value is missing
  m.fill_next_token_bitmask(after);
  EXPECT_EQ(before, after);
  ASSERT_TRUE(m.accept_token('x'));
  ASSERT_TRUE(m.accept_token(257));  // ":
  ASSERT_TRUE(m.accept_token('1'));
  m.rollback(2);
  m.fill_next_token_bitmask(after);
  EXPECT_TRUE(bit(after, 257));
  EXPECT_FALSE(bit(after, '1'));
  m.rollback(1);
  m.fill_next_token_bitmask(after);
  EXPECT_EQ(before, after);
  EXPECT_THROW(m.rollback(2), Error);
  ASSERT_TRUE(m.accept_bytes("x\": 5}"));
  EXPECT_TRUE(m.can_terminate());
}

TEST(GrammarMatcher, Utf8SplitAcrossTokens) {
  // "é" is C3 A9; "€" is E2 82 AC. Tokens carry halves of them.
  auto vocab = byte_vocab({"\"\xC3", "\xA9\"", "\xE2\x82", "\xAC"});
  Grammar g;
  ASSERT_TRUE(json_schema_grammar(R"({"type":"string","maxLength":2})", "s", g).is_ok());
  auto cg = compile_or_die(g, vocab);
  GrammarMatcher m(cg);
  std::vector<uint32_t> mask(static_cast<size_t>(vocab->mask_words()));
  ASSERT_TRUE(m.accept_token(256));  // "\xC3
  m.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, 0xA9));
  EXPECT_TRUE(bit(mask, 257));
  EXPECT_FALSE(bit(mask, 'a'));  // a continuation byte must come
  EXPECT_FALSE(bit(mask, 0xC3));
  ASSERT_TRUE(m.accept_token(0xA9));
  ASSERT_TRUE(m.accept_token(258));  // € begun
  m.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, 259));
  EXPECT_FALSE(bit(mask, '"'));
  ASSERT_TRUE(m.accept_token(259));
  m.fill_next_token_bitmask(mask);
  EXPECT_TRUE(bit(mask, '"'));
  EXPECT_FALSE(bit(mask, 'a'));  // maxLength 2 reached
}

TEST(GrammarMatcher, Gpt2VocabularyJsonDocument) {
  auto tok = Tokenizer::from_dir(std::string(LLMSERVE_SOURCE_DIR) + "/models/default");
  std::vector<std::string> bytes;
  std::vector<int32_t> stops;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) bytes.push_back(tok->token_bytes(id));
  if (tok->eos_token_id()) {
    stops.push_back(*tok->eos_token_id());
    bytes[static_cast<size_t>(*tok->eos_token_id())].clear();
  }
  auto vocab = std::make_shared<TokenizerInfo>(std::move(bytes), stops);
  Grammar g;
  ASSERT_TRUE(json_schema_grammar(R"({"type":"object","properties":{"name":{"type":"string"},
      "age":{"type":"integer","minimum":0}},"required":["name","age"]})",
                                  "s", g)
                  .is_ok());
  auto cg = compile_or_die(g, vocab);
  std::string doc = R"({"name": "Juliet, \"the\" fair", "age": 14})";
  GrammarMatcher m(cg);
  std::vector<uint32_t> mask(static_cast<size_t>(vocab->mask_words()));
  for (int32_t id : tok->encode(doc, {.add_special_tokens = false})) {
    m.fill_next_token_bitmask(mask);
    ASSERT_TRUE(bit(mask, id)) << tok->token_bytes(id);
    ASSERT_TRUE(m.accept_token(id)) << tok->token_bytes(id);
  }
  m.fill_next_token_bitmask(mask);
  ASSERT_FALSE(stops.empty());
  EXPECT_TRUE(bit(mask, stops[0]));
  EXPECT_TRUE(m.accept_token(stops[0]));
}

}  // namespace
}  // namespace llmserve::grammar
