// Where models come from on the command line: --model DIR, --model ORG/NAME (pulled from the hub
// when no such directory exists), or the embedded default model (models/default of the source
// tree or of an install) when --model is not given.
#pragma once

#include <filesystem>
#include <string>

namespace llmserve::cli {

// Returns `flag` if it is a directory or not of the form ORG/NAME; an ORG/NAME that is not a
// directory is pulled (hub::pull: $HF_ENDPOINT, $HF_TOKEN, $LLMSERVE_CACHE_DIR, revision main) and
// its directory returned. With no flag, the default model directory: $LLMSERVE_DEFAULT_MODEL, then
// models/default next to or above the executable, then /usr/share/llmserve/models/default.
// Throws Error(kNotFound) listing the places it looked.
std::filesystem::path resolve_model_dir(const std::string& flag);

}  // namespace llmserve::cli
