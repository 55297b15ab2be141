// Where models come from on the command line: --model DIR, or the embedded default model
// (models/default of the source tree or of an install) when --model is not given.
#pragma once

#include <filesystem>
#include <string>

namespace llmserve::cli {

// Returns `flag` if non-empty, else the default model directory: $LLMSERVE_DEFAULT_MODEL, then
// models/default next to or above the executable, then /usr/share/llmserve/models/default.
// Throws Error(kNotFound) listing the places it looked.
std::filesystem::path resolve_model_dir(const std::string& flag);

}  // namespace llmserve::cli
