#include "server/generation_pump.h"

namespace llmserve {

GenerationPump::GenerationPump(std::shared_ptr<GenerationHandle> handle, Executor executor,
                               ChunkFn on_chunk, DoneFn on_done)
    : id_(handle->id()),
      executor_(std::move(executor)),
      on_chunk_(std::move(on_chunk)),
      on_done_(std::move(on_done)),
      handle_(std::move(handle)) {}

std::shared_ptr<GenerationPump> GenerationPump::start(std::shared_ptr<GenerationHandle> handle,
                                                      Executor executor, ChunkFn on_chunk,
                                                      DoneFn on_done) {
  std::shared_ptr<GenerationPump> p(new GenerationPump(std::move(handle), std::move(executor),
                                                       std::move(on_chunk), std::move(on_done)));
  p->self_ = p;
  // The stream owns the listener and the pump owns the handle (and so the stream): a weak
  // reference keeps that from being a cycle.
  std::weak_ptr<GenerationPump> weak = p;
  p->handle_->set_listener([weak] {
    if (auto q = weak.lock()) q->schedule();
  });
  p->schedule();  // outputs may have arrived before the listener was set
  return p;
}

bool GenerationPump::cancel() {
  std::lock_guard lock(handle_mutex_);
  if (!handle_) return false;
  handle_->cancel();
  return true;
}

void GenerationPump::schedule() {
  if (is_scheduled_.exchange(true)) return;
  executor_([p = shared_from_this()] {
    p->is_scheduled_ = false;
    p->drain();
  });
}

void GenerationPump::drain() {
  std::unique_lock drain_lock(drain_mutex_);
  if (is_done_) return;
  GenerateChunk chunk;
  while (handle_->try_next(chunk)) {
    on_chunk_(chunk, *handle_);
    if (chunk.is_final()) break;
  }
  if (!chunk.is_final()) return;
  is_done_ = true;
  handle_->set_listener(nullptr);
  std::shared_ptr<GenerationHandle> handle;
  {
    std::lock_guard lock(handle_mutex_);
    handle = std::move(handle_);
  }
  handle.reset();  // reports the record
  on_chunk_ = nullptr;
  DoneFn done = std::move(on_done_);
  drain_lock.unlock();
  if (done) done();
  self_.reset();
}

}  // namespace llmserve
