#include "builder/weight_capture_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/status.h"

namespace llmserve::builder {

WeightCaptureBackend::FreeBlocks::~FreeBlocks() {
  for (const auto& [size, p] : blocks) std::free(p);
}

Buffer WeightCaptureBackend::allocate(size_t nbytes) {
  const size_t size = std::max<size_t>(nbytes, 1);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(free_->mu);
    if (const auto it = free_->blocks.find(size); it != free_->blocks.end()) {
      p = it->second;
      free_->blocks.erase(it);
    }
  }
  if (p == nullptr) p = std::malloc(size);
  if (p == nullptr)
    fail(StatusCode::kResourceExhausted, "llmserve build: cannot allocate {} bytes of host memory",
         nbytes);
  // Small blocks go back to malloc (which reuses them itself); large ones (mapped afresh by
  // malloc each time) wait for the next allocation of their size.
  constexpr size_t kKeepFrom = size_t{1} << 20;
  if (size < kKeepFrom) return Buffer(p, nbytes, [](void* q) { std::free(q); });
  return Buffer(p, nbytes, [free = free_, size](void* q) {
    std::lock_guard<std::mutex> lock(free->mu);
    free->blocks.emplace(size, q);
  });
}

void WeightCaptureBackend::upload(const void* host, Tensor dst) {
  if (dst.nbytes() > 0) std::memcpy(dst.data, host, dst.nbytes());
}

void WeightCaptureBackend::download(Tensor src, void* host) {
  if (src.nbytes() > 0) std::memcpy(host, src.data, src.nbytes());
}

void WeightCaptureBackend::transpose(Tensor src, Tensor dst) {
  const int64_t rows = src.dim(0), cols = src.dim(1);
  if (dst.dim(0) != cols || dst.dim(1) != rows || src.dtype != dst.dtype) {
    fail(StatusCode::kInternal, "transpose {} -> {}", src.shape_string(), dst.shape_string());
  }
  const size_t e = dtype_size(src.dtype);
  const auto* in = static_cast<const uint8_t*>(src.data);
  auto* out = static_cast<uint8_t*>(dst.data);
  constexpr int64_t kTile = 32;  // tiles keep both sides in cache
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) {
          std::memcpy(out + static_cast<size_t>(c * rows + r) * e,
                      in + static_cast<size_t>(r * cols + c) * e, e);
        }
      }
    }
  }
}

size_t WeightCaptureBackend::free_memory() const {
  const long pages = sysconf(_SC_AVPHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size)
                                    : 0;
}

}  // namespace llmserve::builder
