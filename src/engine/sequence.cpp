// Sequence: see sequence.h. Only the constructor lives here; the rest is inline bookkeeping.
#include "engine/sequence.h"

#include <utility>

namespace llmserve {

Sequence::Sequence(uint64_t id, std::vector<int32_t> prompt_token_ids, int32_t max_tokens)
    : id(id),
      token_ids(std::move(prompt_token_ids)),
      num_prompt_tokens(static_cast<int32_t>(token_ids.size())),
      max_tokens(max_tokens) {}

}  // namespace llmserve
