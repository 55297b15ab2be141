#include "backend/null/null_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "backend/host_batch.h"
#include "common/status.h"

namespace llmserve {

std::chrono::microseconds NullBackend::step_delay_from_env() {
  const char* v = std::getenv("LLMSERVE_NULL_STEP_DELAY_MS");
  if (v == nullptr || *v == '\0') return {};
  char* end = nullptr;
  const double ms = std::strtod(v, &end);
  if (*end != '\0' || !(ms >= 0 && ms <= 60'000)) {
    fail(StatusCode::kInvalidArgument,
         "LLMSERVE_NULL_STEP_DELAY_MS must be milliseconds in [0, 60000], got '{}'", v);
  }
  return std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
}

Buffer NullBackend::allocate(size_t nbytes) {
  // calloc: large blocks come straight from mmap as untouched zero pages, so they cost no RSS.
  void* p = std::calloc(std::max<size_t>(nbytes, 1), 1);
  if (p == nullptr)
    fail(StatusCode::kResourceExhausted, "null backend: cannot allocate {} bytes", nbytes);
  return Buffer(p, nbytes, [](void* q) { std::free(q); });
}

void NullBackend::download(Tensor src, void* host) {
  if (src.nbytes() > 0) std::memcpy(host, src.data, src.nbytes());
}

size_t NullBackend::free_memory() const {
  long pages = sysconf(_SC_AVPHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size)
                                    : 0;
}

void NullBackend::argmax_rows(Tensor logits, Tensor ids) {
  if (ids.nbytes() > 0) std::memset(ids.data, 0, ids.nbytes());
}

BatchTensors NullBackend::upload_batch(const ForwardBatch& batch) {
  if (step_delay_.count() > 0) std::this_thread::sleep_for(step_delay_);
  batch_copy_ = batch;
  const ForwardBatch& b = batch_copy_;
  BatchTensors t = host_batch_views(b);
  return t;
}

}  // namespace llmserve
