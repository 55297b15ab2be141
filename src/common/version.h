// The llmserve release, as `llmserve --version` prints it and engine manifests record it.
#pragma once

#include <string_view>

namespace llmserve {

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace llmserve
