// IncrementalDetokenizer: streaming decode for one request. Each push() returns the text that
// the new token completes; what later tokens may still change is held back: bytes of a UTF-8
// character cut short by a token boundary (byte-level), a run of byte-fallback tokens ("<0xNN>",
// which decode as U+FFFD per byte if the run is not valid UTF-8 as a whole), trailing characters
// a decoder's Strip may cut. The leading-space rules (Strip after Fuse, Metaspace) apply only at
// the start of the text, as in a whole decode. The contract:
//   concat(push(id) for all ids) + flush() == tokenizer.decode(ids)
// for the same DecodeOptions; both run the tokenizer's decoder chain (decoder.h).
// Thread-safety: one per request; not thread-safe. The Tokenizer must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/decoder.h"
#include "tokenizer/tokenizer.h"

namespace llmserve {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, const DecodeOptions& options = {});

  // Text newly completed by this token (possibly empty). Throws Error(kOutOfRange) for an id
  // outside the vocabulary (and then holds the same state as before the call).
  std::string push(int32_t id);
  // Whatever is held back, as if the text ended here (an incomplete character as U+FFFD).
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  DecodeOptions options_;
  DecoderStream stream_;
};

}  // namespace llmserve
