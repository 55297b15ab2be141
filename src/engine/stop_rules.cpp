#include "engine/stop_rules.h"

#include <algorithm>

namespace llmserve {

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "none";
}

FinishReason check_finish(const SamplingParams& params, int32_t num_generated, int32_t token,
                          std::span<const int32_t> eos_token_ids) {
  if (num_generated >= params.min_tokens) {
    const bool is_eos =
        std::find(eos_token_ids.begin(), eos_token_ids.end(), token) != eos_token_ids.end();
    if (is_eos && !params.ignore_eos) return FinishReason::kStop;
    if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) !=
        params.stop_token_ids.end()) {
      return FinishReason::kStop;
    }
  }
  if (num_generated >= params.max_tokens) return FinishReason::kLength;
  return FinishReason::kNone;
}

}  // namespace llmserve
