// Rotary position embedding tables. Builds the [max_positions, head_dim] table the backend's rope
// op reads (cos in [:, :d/2], sin in [:, d/2:]) from a RopeConfig, including HF's "linear",
// "llama3", "longrope" (Phi-3) and "yarn" frequency scaling. Frequencies are computed in double,
// then rounded to fp32.
#pragma once

#include <vector>

#include "model/model_config.h"

namespace llmserve {

// inv_freq[i] for i in [0, head_dim/2), after scaling (LongRoPE: the short or the long factors).
std::vector<double> rope_inverse_frequencies(const RopeConfig& rope, int32_t head_dim,
                                             bool long_factors = false);
// The table: max_positions rows, or for LongRoPE 2 * max_positions (the short factors' rows, then
// the long factors'), cos/sin times the attention factor (LongRoPE, YaRN).
std::vector<float> build_rope_table(const RopeConfig& rope, int32_t head_dim,
                                    int32_t max_positions);
// The row offset into build_rope_table's table for the tokens of a sequence of `length` tokens:
// LongRoPE's long rows (max_positions) once it is longer than the original context, as
// transformers switches per forward (by the largest position + 1); else 0. What decides a
// sequence's length for a step: ModelRunner (the prompt's length while it prefills).
int32_t rope_table_offset(const RopeConfig& rope, int32_t max_positions, int32_t length);

}  // namespace llmserve
