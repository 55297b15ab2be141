// The sampling flags shared by `generate` and the benchmark commands, bound to a SamplingParams.
#pragma once

#include <CLI/CLI.hpp>

#include "engine/sampling_params.h"

namespace llmserve::cli {

struct SamplingFlags {
  SamplingParams params;
  uint64_t seed = 0;
  void add_to(CLI::App& app);
  // Copies flags into params (the seed only when --seed was given).
  SamplingParams resolve(const CLI::App& app) const;
};

}  // namespace llmserve::cli
