// Decoder: Hugging Face tokenizers' decoder chain, token strings -> text, as a stream, so that
// Tokenizer::decode and the IncrementalDetokenizer share one implementation and agree by
// construction. The steps (Hugging Face's names and semantics):
//   - Replace(String or Regex pattern, content), per token;
//   - ByteFallback: a run of "<0xNN>" tokens becomes its bytes as one token when they are valid
//     UTF-8, else one U+FFFD per byte (so a run is held until it ends);
//   - Strip(content, start, stop): up to start leading and stop trailing content characters off
//     each token;
//   - Metaspace(replacement, prepend_scheme): the replacement becomes ' ', except in the first
//     token, where (unless the scheme is never) every replacement is dropped;
//   - Fuse: all tokens become one; the steps after it see one growing token (the text), so Strip
//     there cuts the start and end of the whole text, and Metaspace drops every replacement;
//   - ByteLevel: GPT-2's byte alphabet back to bytes, then invalid UTF-8 -> U+FFFD per maximal
//     subpart; it fuses like Fuse. Only as the first step: the Tokenizer then hands in each
//     token's bytes directly (Tokenizer::token_bytes).
// After a fusing step only Strip, Replace with a String pattern, Metaspace and Fuse are accepted;
// the rest, and ByteLevel anywhere but first, are rejected with kUnimplemented naming the step.
// With no fusing step, the tokens are concatenated.
// Thread-safety: a Decoder is immutable after loading; a DecoderStream is one per text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tokenizer/regex_splitter.h"

namespace llmserve {

class Decoder {
 public:
  // where: the step's field path, for the errors described above.
  void add_replace(std::string_view pattern, RegexSplitter::PatternKind kind, std::string content,
                   std::string_view where);
  void add_byte_fallback(std::string_view where);
  void add_strip(std::string content, std::size_t start, std::size_t stop, std::string_view where);
  void add_metaspace(std::string replacement, bool strips_first, std::string_view where);
  void add_fuse();
  void add_byte_level(std::string_view where);

  bool starts_with_byte_level() const { return fuse_ == Fuse::kByteLevel && token_steps_.empty(); }
  bool empty() const { return token_steps_.empty() && fuse_ == Fuse::kNone; }

  // One token's text outside any context: the per-token steps as for a token that is not first,
  // "<0xNN>" as its raw byte. What Tokenizer::token_bytes reports for non-byte-level tokenizers.
  std::string token_text(std::string_view token) const;

 private:
  friend class DecoderStream;
  struct Replace {
    std::shared_ptr<const RegexSplitter> pattern;
    std::string content;
  };
  struct ByteFallback {};
  struct Strip {
    std::string content;  // one character
    std::size_t start;
    std::size_t stop;
  };
  struct Metaspace {
    std::string replacement;  // one character
    bool strips_first;        // prepend_scheme is not never
  };
  using Step = std::variant<Replace, ByteFallback, Strip, Metaspace>;
  enum class Fuse { kNone, kFuse, kByteLevel };

  void check_not_fused(std::string_view name, std::string_view where) const;

  std::vector<Step> token_steps_;  // before the fusing step
  Fuse fuse_ = Fuse::kNone;
  std::vector<Step> text_steps_;  // after it
};

// Streaming run of a Decoder over one text: concat(push(t) for all t) + finish() equals the
// chain's output for the whole token list. Holds back what later tokens may still change: a
// ByteFallback run, a cut UTF-8 character (ByteLevel), trailing characters a Strip or Replace
// after Fuse may still remove.
class DecoderStream {
 public:
  explicit DecoderStream(const Decoder& decoder);
  std::string push(std::string_view token);
  // Releases what is held back as if the text ended here; the stream stays usable (it does not
  // become "first" again).
  std::string finish();

 private:
  void feed_token(std::size_t step, std::string token, std::string& out);
  void flush_bytes(std::size_t step, std::string& out);
  void feed_fused(std::string_view text, std::string& out);
  void feed_text(std::size_t step, std::string text, std::string& out);

  const Decoder& decoder_;
  std::vector<std::size_t> token_counts_;   // per token step: tokens seen (Metaspace's "first")
  std::vector<std::string> pending_bytes_;  // per token step: ByteFallback's current run
  std::string pending_utf8_;                // ByteLevel: a cut character
  struct TextState {
    std::size_t stripped_or_seen = 0;  // Strip: leading characters looked at
    bool past_start = false;
    std::size_t held = 0;  // Strip: trailing content characters held back
    std::string buffer;    // Replace: a possible match's beginning
  };
  std::vector<TextState> text_states_;
};

}  // namespace llmserve
