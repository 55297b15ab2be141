#include <gtest/gtest.h>

#include "grammar/ebnf.h"
#include "grammar/regex.h"
#include "grammar_testing.h"

namespace llmserve::grammar {
namespace {

using testing::compile_or_die;
using testing::matches;

std::shared_ptr<const CompiledGrammar> re(std::string_view pattern) {
  Grammar g;
  Status s = regex_grammar(pattern, "guided_regex", g);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return compile_or_die(g);
}

std::string re_error(std::string_view pattern) {
  Grammar g;
  Status s = regex_grammar(pattern, "guided_regex", g);
  EXPECT_FALSE(s.is_ok()) << pattern;
  return s.message();
}

std::shared_ptr<const CompiledGrammar> ebnf(std::string_view text) {
  Grammar g;
  Status s = ebnf_grammar(text, "guided_grammar", g);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return compile_or_die(g);
}

std::string ebnf_error(std::string_view text) {
  Grammar g;
  Status s = ebnf_grammar(text, "guided_grammar", g);
  EXPECT_FALSE(s.is_ok()) << text;
  return s.message();
}

TEST(Regex, Basics) {
  auto g = re(R"re(^(\d{3}-)?\d{4}|[A-Z][a-z]*\.?$)re");
  for (const char* ok : {"555-1234", "1234", "Hello", "X.", "Ab."})
    EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {"55-1234", "12345", "hello", "", "X.."})
    EXPECT_FALSE(matches(g, bad)) << bad;
  auto w = re(R"(\w+\s\S*)");
  EXPECT_TRUE(matches(w, "ab_9 x\xC3\xA9"));
  EXPECT_TRUE(matches(w, "a\xC2\xA0"));  // \s includes U+00A0
  auto dot = re("a.c");
  EXPECT_TRUE(matches(dot,
                      "a\xE2\x82\xAC"
                      "c"));  // . is a code point, not a byte
  EXPECT_FALSE(matches(dot, "a\nc"));
  EXPECT_FALSE(matches(dot,
                       "a\xE2\x82"
                       "c"));
  auto cls = re(R"([^a-c\d]{2,}x+?)");
  EXPECT_TRUE(matches(cls, "zzx"));
  EXPECT_FALSE(matches(cls, "z1x"));
  auto esc = re(R"(\u00e9\x41\.\(\u{1F600})");
  EXPECT_TRUE(matches(esc,
                      "\xC3\xA9"
                      "A.(\xF0\x9F\x98\x80"));
  auto named = re(R"re((?<year>\d{2})(?:ab|cd)*)re");
  EXPECT_TRUE(matches(named, "24abcdab"));
}

TEST(Regex, ErrorsNameTheOffset) {
  EXPECT_EQ(re_error("ab(c"), "guided_regex: regex error at offset 4: missing ')'");
  EXPECT_EQ(re_error("a)"), "guided_regex: regex error at offset 1: unbalanced ')'");
  EXPECT_EQ(re_error("*a"), "guided_regex: regex error at offset 0: nothing to repeat");
  EXPECT_EQ(re_error(R"re((a)\1)re"),
            "guided_regex: regex error at offset 4: unsupported escape '\\1' (backreferences "
            "and \\b are not supported)");
  EXPECT_EQ(re_error("a{3,2}"),
            "guided_regex: regex error at offset 6: repetition {m,n} with n < m");
  EXPECT_EQ(re_error("a^b"),
            "guided_regex: regex error at offset 1: '^' is only supported at the start of the "
            "pattern");
  // (a?)* would let the repetition match nothing forever: refused by the lowering.
  Grammar g;
  ASSERT_TRUE(regex_grammar("(a?)*", "guided_regex", g).is_ok());
  std::shared_ptr<const CompiledGrammar> out;
  Status s = CompiledGrammar::compile(g, testing::byte_vocab(), out);
  EXPECT_NE(s.message().find("left-recursive"), std::string::npos) << s.message();
}

TEST(Ebnf, Gbnf) {
  auto g = ebnf(R"gbnf(
    # arithmetic
    root ::= expr
    expr ::= term (("+" | "-") term)*
    term ::= num | "(" expr ")"
    num  ::= [0-9]+ ("." [0-9]{1,2})?
  )gbnf");
  for (const char* ok : {"1", "1+2", "(1-2.5)+3", "((4))"}) EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {"", "1+", "(1", "1.234", "+1"}) EXPECT_FALSE(matches(g, bad)) << bad;
  auto s = ebnf("root ::= 'a' \"\\n\" [^\\n\\x00]? .\nother::=root \"\"");
  EXPECT_TRUE(matches(s, "a\nb\xC3\xA9"));
  EXPECT_TRUE(matches(s, "a\n\xC3\xA9"));
  auto multi = ebnf("root ::= \"x\"\n   | \"y\"\n   | item{2}\nitem ::= [a-b]");
  EXPECT_TRUE(matches(multi, "y"));
  EXPECT_TRUE(matches(multi, "ab"));
}

TEST(Ebnf, Errors) {
  EXPECT_EQ(ebnf_error("root ::= foo"),
            "guided_grammar: line 1, column 10: rule 'foo' is not defined");
  EXPECT_EQ(ebnf_error("start ::= \"a\""), "guided_grammar: the grammar has no rule named 'root'");
  EXPECT_EQ(ebnf_error("root ::= \"a\"\nroot ::= \"b\""),
            "guided_grammar: line 2, column 9: rule 'root' is defined twice");
  EXPECT_EQ(ebnf_error("root ::= (\"a\""), "guided_grammar: line 1, column 14: missing ')'");
  EXPECT_EQ(ebnf_error("root ::= \"a"), "guided_grammar: line 1, column 12: unterminated string");
  EXPECT_EQ(ebnf_error("root ::= root \"a\" | \"b\""),
            "guided_grammar: rule 'root' is left-recursive (it can call itself before matching "
            "any byte; rewrite it with repetition)");
  EXPECT_EQ(ebnf_error("root ::= \"a\" root"),
            "guided_grammar: rule 'root' can never finish (every alternative recurses forever)");
}

TEST(Choice, ExactStrings) {
  Grammar g;
  ASSERT_TRUE(choice_grammar({"yes", "no", "yes!"}, "guided_choice", g).is_ok());
  auto cg = compile_or_die(g);
  EXPECT_TRUE(matches(cg, "yes"));
  EXPECT_TRUE(matches(cg, "yes!"));
  EXPECT_FALSE(matches(cg, "ye"));
  EXPECT_EQ(choice_grammar({}, "guided_choice", g).message(),
            "guided_choice: needs at least one choice");
}

}  // namespace
}  // namespace llmserve::grammar
