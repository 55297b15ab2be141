// Switches one of the CPU backend's kernel families (backend/cpu/cpu_backend.h: the 16-bit, int4
// and int8 kernels, each with a portable fallback) for the lifetime of a scope, restoring the
// previous setting after: ScopedCpuKernels<set_cpu_int8_dot_kernels> widened(false);
#pragma once

#include "backend/cpu/cpu_backend.h"

namespace llmserve::testing {

template <bool (*kSet)(bool)>
class ScopedCpuKernels {
 public:
  explicit ScopedCpuKernels(bool enabled) : previous_(kSet(enabled)) {}
  ~ScopedCpuKernels() { kSet(previous_); }
  ScopedCpuKernels(const ScopedCpuKernels&) = delete;
  ScopedCpuKernels& operator=(const ScopedCpuKernels&) = delete;

 private:
  bool previous_;
};

}  // namespace llmserve::testing
