// IncrementalDetokenizer: streaming decode for one request. Each push() returns the text that
// the new token completes; bytes of a UTF-8 character cut short by a token boundary are held back
// until the character is whole (or proven broken, then it becomes U+FFFD). The contract:
//   concat(push(id) for all ids) + flush() == tokenizer.decode(ids)
// for the same DecodeOptions. It holds at most 3 bytes back.
// Thread-safety: one per request; not thread-safe. The Tokenizer must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace llmserve {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, const DecodeOptions& options = {});

  // Text newly completed by this token (possibly empty). Throws Error(kOutOfRange) for an id
  // outside the vocabulary (and then holds the same state as before the call).
  std::string push(int32_t id);
  // Whatever is held back, with an incomplete character as U+FFFD; resets the held bytes.
  std::string flush();

  bool has_pending() const { return !pending_.empty(); }

 private:
  const Tokenizer& tokenizer_;
  DecodeOptions options_;
  std::string pending_;  // an incomplete UTF-8 character: at most 3 bytes
};

}  // namespace llmserve
