// Stop strings across token boundaries: hold-back, first-completed wins, include flag, no false
// stops, and independence from how the text is cut into pieces.
#include "tokenizer/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>

namespace llmserve {
namespace {

struct Outcome {
  std::string text;
  bool stopped = false;
  std::string matched;
};

Outcome run(StopMatcher& matcher, const std::vector<std::string>& pieces) {
  Outcome out;
  for (const auto& piece : pieces) {
    const auto r = matcher.push(piece);
    out.text += r.text;
    if (r.stopped) {
      out.stopped = true;
      out.matched = r.matched;
      break;
    }
  }
  if (!out.stopped) out.text += matcher.flush();
  return out;
}

TEST(StopMatcherTest, StopAcrossTokenBoundaries) {
  StopMatcher m({"</s>"});
  auto r = m.push("Hello <");
  EXPECT_EQ(r.text, "Hello ");
  EXPECT_FALSE(r.stopped);
  r = m.push("/");
  EXPECT_EQ(r.text, "");
  r = m.push("s> trailing");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.matched, "</s>");
  EXPECT_TRUE(m.push("more").stopped);
  EXPECT_EQ(m.push("more").text, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcherTest, IncludeStopInOutput) {
  StopMatcher m({"</s>"}, /*include_stop_in_output=*/true);
  EXPECT_EQ(m.push("ab</").text, "ab");
  const auto r = m.push("s>cd");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "</s>");
}

TEST(StopMatcherTest, HeldBackTextIsReleasedWhenItCannotMatch) {
  StopMatcher m({"\n\nUser:"});
  EXPECT_EQ(m.push("a\n").text, "a");
  EXPECT_EQ(m.push("\nUse").text, "");
  EXPECT_EQ(m.push("d").text, "\n\nUsed");
  EXPECT_EQ(m.push("\n").text, "");
  EXPECT_EQ(m.flush(), "\n");
  EXPECT_FALSE(m.is_stopped());
}

TEST(StopMatcherTest, NoFalseStops) {
  StopMatcher m({"STOP", "\n\n"});
  const auto out = run(m, {"ST", "OP", "S"});
  EXPECT_TRUE(out.stopped);
  StopMatcher n({"STOP", "\n\n"});
  const auto clean = run(n, {"STO", "P!"});
  EXPECT_TRUE(clean.stopped);
  StopMatcher k({"STOP", "\n\n"});
  const auto none = run(k, {"ST", "O", "p\n", "x\n"});
  EXPECT_FALSE(none.stopped);
  EXPECT_EQ(none.text, "STOp\nx\n");
}

TEST(StopMatcherTest, FirstCompletedStopWinsAmongMany) {
  StopMatcher a({"abc", "b"});
  auto out = run(a, {"xabc"});
  EXPECT_EQ(out.matched, "b");  // "b" is complete before "abc" is
  EXPECT_EQ(out.text, "xa");
  StopMatcher b({"op", "stop"});
  out = run(b, {"non-st", "op"});
  EXPECT_EQ(out.matched, "stop");  // both end together: the longer one
  EXPECT_EQ(out.text, "non-");
  StopMatcher c({"yy", "x"});
  out = run(c, {"ayyx"});
  EXPECT_EQ(out.matched, "yy");
  EXPECT_EQ(out.text, "a");
}

TEST(StopMatcherTest, MultiByteStopString) {
  StopMatcher m({"\xF0\x9F\x98\x80"});  // 😀
  const auto out = run(m, {"ok \xE4\xB8\xAD", "\xF0\x9F\x98\x80", " tail"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "ok \xE4\xB8\xAD");
}

TEST(StopMatcherTest, NoStopsPassesEverythingAndEmptyStopsAreIgnored) {
  StopMatcher m({"", ""});
  EXPECT_EQ(m.push("abc").text, "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcherTest, ResultIndependentOfChunking) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<std::string> stops = {"ab", "bba", "aaab", "ca"};
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) text += "abcx"[rng() % 4];
    for (bool include : {false, true}) {
      StopMatcher whole(stops, include);
      const Outcome expected = run(whole, {text});
      std::vector<std::string> pieces;
      for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t len = 1 + rng() % 3;
        pieces.push_back(text.substr(pos, len));
        pos += len;
      }
      StopMatcher chunked(stops, include);
      const Outcome got = run(chunked, pieces);
      ASSERT_EQ(got.text, expected.text) << text;
      ASSERT_EQ(got.stopped, expected.stopped) << text;
      ASSERT_EQ(got.matched, expected.matched) << text;
      // Independently: output is the text up to the earliest-ending stop occurrence.
      std::size_t best_end = std::string::npos;
      std::string best;
      for (const auto& s : stops) {
        const auto pos = text.find(s);
        if (pos == std::string::npos) continue;
        if (pos + s.size() < best_end || (pos + s.size() == best_end && s.size() > best.size())) {
          best_end = pos + s.size();
          best = s;
        }
      }
      if (best.empty()) {
        ASSERT_EQ(expected.text, text);
      } else {
        ASSERT_EQ(expected.text, text.substr(0, include ? best_end : best_end - best.size()));
      }
    }
  }
}

}  // namespace
}  // namespace llmserve
