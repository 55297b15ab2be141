// Sequence: see sequence.h. Only the constructors live here; the rest is inline bookkeeping.
#include "engine/sequence.h"

#include <utility>

namespace llmserve {

namespace {

SamplingParams with_max_tokens(int32_t max_tokens) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  return p;
}

}  // namespace

Sequence::Sequence(uint64_t id, Request request, std::shared_ptr<RequestStream> stream,
                   uint64_t default_seed)
    : id(id),
      token_ids(std::move(request.prompt_token_ids)),
      num_prompt_tokens(static_cast<int32_t>(token_ids.size())),
      sampling(std::move(request.sampling)),
      sampling_state(sampling, token_ids, default_seed),
      deadline(request.deadline),
      queue_deadline(request.queue_deadline),
      stream(std::move(stream)) {
  priority = request.priority;
  allows_speculation = request.speculative;
  times.arrival = request.arrival;
}

Sequence::Sequence(uint64_t id, std::vector<int32_t> prompt_token_ids, int32_t max_tokens)
    : id(id),
      token_ids(std::move(prompt_token_ids)),
      num_prompt_tokens(static_cast<int32_t>(token_ids.size())),
      sampling(with_max_tokens(max_tokens)),
      sampling_state(sampling, token_ids, 0) {}

}  // namespace llmserve
