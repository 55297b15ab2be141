// Normalizer: Hugging Face tokenizers' normalizers, the steps that rewrite a text (one stretch
// between non-normalized added tokens) before pre-tokenization, in order: Prepend (only to a
// non-empty text), Replace (String or Regex pattern, content verbatim), NFC / NFD / NFKC / NFKD
// and Lowercase (ICU; Lowercase is Unicode's full lowercasing per character, as Rust's
// char::to_lowercase, so without final sigma), Strip (Unicode White_Space on the left and/or
// right). A Sequence is just several steps. Input need not be valid UTF-8: the Unicode steps leave
// invalid bytes as they are and transform the valid stretches between them. Thread-safety:
// immutable after construction; normalize() may be called concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tokenizer/regex_splitter.h"

namespace llmserve {

class Normalizer {
 public:
  enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd, kLowercase };

  void add_prepend(std::string prefix);
  void add_replace(std::string_view pattern, RegexSplitter::PatternKind kind, std::string content,
                   std::string_view where);
  void add_unicode(UnicodeForm form);
  void add_strip(bool left, bool right);

  bool empty() const { return steps_.empty(); }
  std::string normalize(std::string_view text) const;

 private:
  struct Prepend {
    std::string prefix;
  };
  struct Replace {
    std::shared_ptr<const RegexSplitter> pattern;
    std::string content;
  };
  struct Unicode {
    UnicodeForm form;
  };
  struct Strip {
    bool left;
    bool right;
  };
  using Step = std::variant<Prepend, Replace, Unicode, Strip>;
  std::vector<Step> steps_;
};

// One Unicode transform of valid UTF-8 (exposed for tests).
std::string unicode_transform(std::string_view text, Normalizer::UnicodeForm form);

}  // namespace llmserve
