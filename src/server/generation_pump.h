// GenerationPump: drives one GenerationHandle onto an executor without holding a thread; the one
// way every frontend reads a generation (HTTP through its connection's strand,
// server/http/exchange_pump.h; gRPC through its drain thread, server/grpc/infer_calls.cpp).
//
// The engine thread's listener only posts a drain to the executor; a drain reads every ready chunk
// with try_next() and hands each to `on_chunk`. Drains of one pump never overlap, so on_chunk sees
// the chunks in order and exactly one final chunk (cancel() still ends with a final kCancelled
// one). After the final chunk the pump lets go of the handle, which reports the request's record,
// and then calls `on_done`: a frontend that answers its client there has counted the request
// before the client can see the answer.
//
// Thread-safety: start() from any thread; cancel() from any thread, also from inside on_chunk's
// caller's locks (it takes only the pump's handle lock, which no callback runs under).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "server/generation_service.h"

namespace llmserve {

class GenerationPump : public std::enable_shared_from_this<GenerationPump> {
 public:
  using Executor = std::function<void(std::function<void()> task)>;  // must run every task
  using ChunkFn = std::function<void(GenerateChunk& chunk, GenerationHandle& handle)>;
  using DoneFn = std::function<void()>;

  // Starts pumping `handle`; the pump keeps itself alive until on_done returned.
  static std::shared_ptr<GenerationPump> start(std::shared_ptr<GenerationHandle> handle,
                                               Executor executor, ChunkFn on_chunk,
                                               DoneFn on_done = nullptr);
  // Cancels the engine request unless the pump has finished; true if it had not.
  bool cancel();
  uint64_t id() const { return id_; }

 private:
  GenerationPump(std::shared_ptr<GenerationHandle> handle, Executor executor, ChunkFn on_chunk,
                 DoneFn on_done);
  void schedule();
  void drain();

  const uint64_t id_;
  Executor executor_;
  ChunkFn on_chunk_;
  DoneFn on_done_;
  std::mutex drain_mutex_;   // one drain at a time
  std::mutex handle_mutex_;  // guards handle_ against cancel() while the drain lets go of it
  std::shared_ptr<GenerationHandle> handle_;
  std::shared_ptr<GenerationPump> self_;  // alive until the final chunk was handled
  std::atomic<bool> is_scheduled_{false};
  bool is_done_ = false;  // under drain_mutex_
};

}  // namespace llmserve
