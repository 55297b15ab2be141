// The engine flags shared by `generate`, `bench offline` and (later) `serve`, bound to an
// EngineConfig. Each flag also reads an LLMSERVE_* environment variable (e.g.
// LLMSERVE_MAX_BATCH_SIZE) for Kubernetes.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/engine.h"

namespace llmserve::cli {

// "auto" → nullopt; float16/half/fp16, bfloat16/bf16, float32/float/fp32. Throws Error naming
// `flag` for anything else.
std::optional<DType> parse_dtype_flag(const std::string& value, const char* flag = "--dtype");

struct EngineFlags {
  EngineConfig config;
  std::string model;
  std::string engine_cache;
  std::string device = "auto";
  std::string dtype = "auto";
  bool enforce_eager = false;
  bool no_prefix_caching = false;
  bool no_chunked_prefill = false;

  void add_to(CLI::App& app);
  // Resolves the model directory (building it into --engine-cache first when that is set), device
  // and dtype; throws Error for a bad --device / --dtype.
  EngineConfig resolve() const;
};

}  // namespace llmserve::cli
