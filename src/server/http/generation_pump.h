// GenerationPump: drives one GenerationHandle for an HTTP exchange without holding a thread.
// The engine thread's listener only posts a drain to the connection's strand; the drain reads
// every ready chunk with try_next() and hands it to `on_chunk` (on that strand). When the client
// disconnects the engine request is cancelled; the final (kCancelled) chunk still arrives, so
// on_chunk sees exactly one final chunk in every case and can finish the request record there.
//
// Thread-safety: start() once, from the exchange's strand or the handler; the rest is internal.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "server/generation_service.h"
#include "server/http/http_exchange.h"

namespace llmserve::http {

class GenerationPump : public std::enable_shared_from_this<GenerationPump> {
 public:
  using ChunkFn = std::function<void(GenerateChunk& chunk)>;
  static void start(std::shared_ptr<HttpExchange> ex, std::shared_ptr<GenerationHandle> handle,
                    ChunkFn on_chunk);

 private:
  GenerationPump(std::shared_ptr<HttpExchange> ex, std::shared_ptr<GenerationHandle> handle,
                 ChunkFn on_chunk)
      : ex_(std::move(ex)), handle_(std::move(handle)), on_chunk_(std::move(on_chunk)) {}
  void schedule();
  void drain();

  std::shared_ptr<HttpExchange> ex_;
  std::shared_ptr<GenerationHandle> handle_;
  ChunkFn on_chunk_;
  std::shared_ptr<GenerationPump> self_;  // alive until the final chunk was handled
  std::atomic<bool> is_scheduled_{false};
  bool is_done_ = false;
};

}  // namespace llmserve::http
