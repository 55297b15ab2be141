// RegexSplitter: one compiled pre-tokenizer pattern (PCRE2, UTF + Unicode properties, JIT when
// available) and the "Isolated" split of Hugging Face's Split pre-tokenizer: every match becomes
// a piece, and so does every gap between matches; pieces cover the input in order, none empty.
//
// Semantics pinned to Hugging Face tokenizers (Oniguruma) rather than PCRE2's defaults: \s and
// \S mean Unicode White_Space (PCRE2 alone would also count U+180E). Input need not be valid
// UTF-8: each maximal invalid byte sequence becomes its own piece and the regex runs on the valid
// stretches between them, as if they were separate texts.
//
// Thread-safety: immutable after construction; split() may be called from any number of threads
// (match state is per call, the JIT stack per thread).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace llmserve {

class RegexSplitter {
 public:
  enum class PatternKind { kRegex, kLiteral };

  // where: names the pattern's origin in error messages ("tokenizer.json: pre_tokenizer...").
  // Throws Error(kInvalidArgument) if the pattern does not compile.
  RegexSplitter(std::string_view pattern, PatternKind kind, std::string_view where);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of text to out (views into text).
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // Calls sink(begin, end) for each non-empty match, left to right, not overlapping; invalid
  // UTF-8 never matches. For Replace (normalizer and decoder).
  using MatchSink = std::function<void(std::size_t begin, std::size_t end)>;
  void for_each_match(std::string_view text, const MatchSink& sink) const;

  // text with every match replaced by content (verbatim, no group references).
  std::string replace_all(std::string_view text, std::string_view content) const;

  const std::string& pattern() const { return pattern_; }

 private:
  // sink(begin, end, is_valid) for the valid stretches and the invalid runs of text, in order.
  using StretchSink = std::function<void(std::size_t begin, std::size_t end, bool is_valid)>;
  static void for_each_stretch(std::string_view text, const StretchSink& sink);
  void match_valid(std::string_view text, void* match_data, const MatchSink& sink) const;

  std::string pattern_;   // as compiled, after the \s rewrite
  void* code_ = nullptr;  // pcre2_code_8*
};

// The \s / \S rewrite, exposed for tests.
std::string rewrite_whitespace_classes(std::string_view pattern);

}  // namespace llmserve
