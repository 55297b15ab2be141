// Internals shared by the CPU backend's files (cpu_backend.cpp: the op set; cpu_matmul.cpp: the
// matmuls and their kernels): the x86 clone attribute, the e4m3 value table and dtype checks.
#pragma once

#include <array>
#include <cstdint>

#include "backend/tensor.h"
#include "common/half.h"
#include "common/status.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define LLMSERVE_CPU_X86 1
#endif

// x86-64: an AVX2 + FMA clone (x86-64-v3) of the hot loops below, picked at load time where the
// CPU has it, else the baseline; each cloned function does a whole unit of work (a query head's
// attention, a block of weight rows), so the dispatch is rare. Not under AddressSanitizer, whose
// ifunc resolvers run before its runtime is up.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define LLMSERVE_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LLMSERVE_CPU_CLONES
#endif

namespace llmserve::cpu_detail {

// The fp32 value of every e4m3 code (fp8 weights, inputs and KV cache entries).
inline const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> values = [] {
    std::array<float, 256> v{};
    for (int c = 0; c < 256; ++c)
      v[static_cast<size_t>(c)] = e4m3_to_float(static_cast<uint8_t>(c));
    return v;
  }();
  return values;
}

inline void require_f32(const Tensor& t, const char* what) {
  if (t.dtype != DType::kF32) {
    fail(StatusCode::kInternal, "cpu backend: {} must be F32, got {}", what, dtype_name(t.dtype));
  }
}

inline bool is_16bit(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16;
}

// A 2-D weight read by an op: the backend's weight dtypes, and nothing else.
inline void require_weight(const Tensor& t, const char* what) {
  if (t.dtype != DType::kF32 && !is_16bit(t.dtype)) {
    fail(StatusCode::kInternal, "cpu backend: {} must be F32, F16 or BF16, got {}", what,
         dtype_name(t.dtype));
  }
}

}  // namespace llmserve::cpu_detail
