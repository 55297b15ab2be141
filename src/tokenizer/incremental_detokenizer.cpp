// See incremental_detokenizer.h. Correctness rests on one property of maximal-subpart U+FFFD
// replacement: once a prefix of the byte stream ends on a character boundary (no truncated but
// valid sequence at its end), decoding it separately gives the same text as decoding it as part
// of the whole stream.
#include "tokenizer/incremental_detokenizer.h"

#include "tokenizer/utf8.h"

namespace llmserve {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer,
                                               const DecodeOptions& options)
    : tokenizer_(tokenizer), options_(options) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  const std::string& bytes = tokenizer_.token_bytes(id);
  if (options_.skip_special_tokens && tokenizer_.is_special(id)) return {};
  pending_ += bytes;
  const std::size_t ready = pending_.size() - utf8::incomplete_tail_length(pending_);
  std::string text = utf8::to_valid_lossy(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return text;
}

std::string IncrementalDetokenizer::flush() {
  std::string text = utf8::to_valid_lossy(pending_);
  pending_.clear();
  return text;
}

}  // namespace llmserve
