// The default model's GPT-2 vocabulary as a grammar TokenizerInfo (shared by the driver and the
// bench): each token's bytes, EOS as the stop token.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "grammar/tokenizer_info.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::grammar {

inline std::shared_ptr<const TokenizerInfo> vocab_from(const Tokenizer& tok) {
  std::vector<std::string> bytes;
  std::vector<int32_t> stops;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) bytes.push_back(tok.token_bytes(id));
  if (auto eos = tok.eos_token_id()) {
    stops.push_back(*eos);
    bytes[static_cast<size_t>(*eos)].clear();
  }
  return std::make_shared<TokenizerInfo>(std::move(bytes), std::move(stops));
}

}  // namespace llmserve::grammar
