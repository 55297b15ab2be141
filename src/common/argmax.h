// The index of a float row's maximum, the first one among equals (as std::max_element), for the
// greedy samplers: CpuBackend::argmax_rows and the host sampler's argmax_token. A vocabulary row
// is 50k-150k values, read once a decode step per sequence; the plain loop's compare-and-branch
// per value took ~6 % of a batch-1 decode step of the default model (perf, docs/performance.md).
#pragma once

#include <cstdint>

namespace llmserve {

// argmax of x[0, n): the first index holding the largest value (NaNs are never chosen unless
// every value is NaN); -1 when n <= 0. AVX2 where the CPU has it, chosen at run time.
int64_t argmax_first(const float* x, int64_t n);

}  // namespace llmserve
