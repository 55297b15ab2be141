// When a sequence stops, decided from tokens alone (stop strings are matched on text by the
// frontend, which then cancels with reason kStop). Used by the engine after every sampled token.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "engine/sampling_params.h"

namespace llmserve {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };

std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", ...

// `token` was just sampled and recorded, so `num_generated` counts it. End-of-sequence ids stop
// unless ignore_eos; stop_token_ids always stop; both only once min_tokens are generated (the
// sampler masks them before that, this is the belt to its braces). max_tokens gives kLength.
FinishReason check_finish(const SamplingParams& params, int32_t num_generated, int32_t token,
                          std::span<const int32_t> eos_token_ids);

}  // namespace llmserve
