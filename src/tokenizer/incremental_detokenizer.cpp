// See incremental_detokenizer.h. The decoder chain's stream does the work; this binds it to a
// tokenizer and its options.
#include "tokenizer/incremental_detokenizer.h"

namespace llmserve {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer,
                                               const DecodeOptions& options)
    : tokenizer_(tokenizer), options_(options), stream_(tokenizer.decoder()) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  return tokenizer_.decode_step(stream_, id, options_);
}

std::string IncrementalDetokenizer::flush() {
  return stream_.finish();
}

}  // namespace llmserve
