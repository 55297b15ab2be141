// Rotary position embedding tables. Builds the [max_positions, head_dim] table the backend's rope
// op reads (cos in [:, :d/2], sin in [:, d/2:]) from a RopeConfig, including HF's "linear" and
// "llama3" frequency scaling. Frequencies are computed in double, then rounded to fp32.
#pragma once

#include <vector>

#include "model/model_config.h"

namespace llmserve {

// inv_freq[i] for i in [0, head_dim/2), after scaling.
std::vector<double> rope_inverse_frequencies(const RopeConfig& rope, int32_t head_dim);
std::vector<float> build_rope_table(const RopeConfig& rope, int32_t head_dim,
                                    int32_t max_positions);

}  // namespace llmserve
