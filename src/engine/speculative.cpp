// Prompt-lookup proposals and the speculative-decoding settings: see speculative.h.
#include "engine/speculative.h"

#include <algorithm>

namespace llmserve {

Status parse_speculative_mode(std::string_view name, SpeculativeMode& mode) {
  if (name == "none") {
    mode = SpeculativeMode::kNone;
  } else if (name == "ngram") {
    mode = SpeculativeMode::kNgram;
  } else if (name == "draft") {
    mode = SpeculativeMode::kDraft;
  } else {
    return invalid_argument("speculative must be one of none, ngram, draft; got '{}'", name);
  }
  return Status::ok();
}

const char* speculative_mode_name(SpeculativeMode mode) {
  switch (mode) {
    case SpeculativeMode::kNgram:
      return "ngram";
    case SpeculativeMode::kDraft:
      return "draft";
    default:
      return "none";
  }
}

Status SpeculativeConfig::validate() const {
  if (!enabled()) return Status::ok();
  if (mode == SpeculativeMode::kDraft && draft_model_dir.empty()) {
    return invalid_argument("draft_model_dir is required with speculative mode draft");
  }
  if (num_speculative_tokens < 1 || num_speculative_tokens > kMaxSpeculativeTokens) {
    return invalid_argument("num_speculative_tokens must be in [1, {}], got {}",
                            kMaxSpeculativeTokens, num_speculative_tokens);
  }
  if (ngram_min < 1) return invalid_argument("ngram_min must be >= 1, got {}", ngram_min);
  if (ngram_max < ngram_min) {
    return invalid_argument("ngram_max ({}) must be >= ngram_min ({})", ngram_max, ngram_min);
  }
  if (max_batch_size < 0) {
    return invalid_argument("speculative max_batch_size must be >= 0, got {}", max_batch_size);
  }
  return Status::ok();
}

void propose_ngram(std::span<const int32_t> tokens, int32_t ngram_min, int32_t ngram_max,
                   int32_t max_drafts, std::vector<int32_t>& drafts) {
  const auto len = static_cast<int64_t>(tokens.size());
  if (max_drafts <= 0) return;
  for (int64_t n = std::min<int64_t>(ngram_max, len - 1); n >= ngram_min; --n) {
    const std::span<const int32_t> suffix = tokens.subspan(static_cast<size_t>(len - n));
    // The latest earlier occurrence followed by max_drafts tokens; near the end a periodic
    // text's latest occurrences are followed by fewer, so then the one followed by the most.
    int64_t best_from = -1, best_count = 0;
    for (int64_t s = len - n - 1; s >= 0 && best_count < max_drafts; --s) {
      if (tokens[static_cast<size_t>(s)] != suffix[0] ||
          !std::equal(suffix.begin(), suffix.end(), tokens.begin() + s)) {
        continue;
      }
      const int64_t from = s + n;  // what followed the occurrence (from < len)
      const int64_t count = std::min<int64_t>(max_drafts, len - from);
      if (count > best_count) best_from = from, best_count = count;
    }
    if (best_count > 0) {
      drafts.insert(drafts.end(), tokens.begin() + best_from,
                    tokens.begin() + best_from + best_count);
      return;
    }
  }
}

}  // namespace llmserve
