// RowSampling: how to draw one token from one row of logits on a backend that samples
// (Backend::sample_rows): the host sampler's rules (src/engine/sampler.cpp) — token adjustments
// (repetition / frequency / presence penalties, min-token masks), then temperature, top-k,
// top-p, min-p — with the uniform draw u computed on the host from the request's Philox stream,
// so the same u picks the same token on either side. Plain data, copied to the device as is.
#pragma once

#include <cstdint>

namespace llmserve {

// One token of a row whose logit is adjusted before sampling (each token at most once per row).
struct TokenAdjustment {
  int32_t token = 0;
  int32_t output_count = 0;                // times generated so far
  int32_t flags = 0;                       // kInPrompt | kMasked
  float bias = 0.0f;                       // logit_bias, added before the penalties
  static constexpr int32_t kInPrompt = 1;  // counts for the repetition penalty
  static constexpr int32_t kMasked = 2;    // -inf (stop/eos before min_tokens; a bad word)
};

struct RowSampling {
  float temperature = 0.0f;  // 0: greedy (the lowest id among the largest logits)
  int32_t top_k = 0;         // <= 0 or >= vocab: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  double uniform = 0.0;      // u in [0, 1)
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t first_adjustment = 0;  // this row's entries in the adjustment array
  int32_t num_adjustments = 0;
};

}  // namespace llmserve
