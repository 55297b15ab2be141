#include "server/http/generation_pump.h"

#include "common/logging.h"

namespace llmserve::http {

void GenerationPump::start(std::shared_ptr<HttpExchange> ex,
                           std::shared_ptr<GenerationHandle> handle, ChunkFn on_chunk) {
  std::shared_ptr<GenerationPump> p(
      new GenerationPump(std::move(ex), std::move(handle), std::move(on_chunk)));
  p->self_ = p;
  std::weak_ptr<GenerationPump> weak = p;
  // The stream owns the listener and the pump owns the handle (and so the stream): a weak
  // reference keeps that from being a cycle.
  p->handle_->set_listener([weak] {
    if (auto q = weak.lock()) q->schedule();
  });
  p->ex_->on_disconnect([weak] {
    if (auto q = weak.lock(); q && !q->is_done_) {
      LOG_INFO("request {} cancelled: the client disconnected", q->handle_->id());
      q->handle_->cancel();
    }
  });
  p->schedule();  // outputs may have arrived before the listener was set
}

void GenerationPump::schedule() {
  if (is_scheduled_.exchange(true)) return;
  ex_->post([p = shared_from_this()] {
    p->is_scheduled_ = false;
    p->drain();
  });
}

void GenerationPump::drain() {
  if (is_done_) return;
  GenerateChunk chunk;
  while (handle_->try_next(chunk)) {
    const bool is_final = chunk.is_final();
    on_chunk_(chunk);
    if (is_final) {
      is_done_ = true;
      handle_->set_listener(nullptr);
      on_chunk_ = nullptr;
      self_.reset();
      return;
    }
  }
}

}  // namespace llmserve::http
