// Fuzzes the safetensors header parser: any byte string must either parse into tensors that lie
// inside the file or throw llmserve::Error — never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tensors = llmserve::parse_safetensors_header({data, size}, size, "fuzz");
    for (const auto& [name, info] : tensors) {
      if (8 + info.end > size) __builtin_trap();
    }
  } catch (const llmserve::Error&) {
  }
  return 0;
}
