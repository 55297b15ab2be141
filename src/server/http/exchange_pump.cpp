#include "server/http/exchange_pump.h"

#include "common/logging.h"

namespace llmserve::http {

std::shared_ptr<GenerationPump> pump_generation(const std::shared_ptr<HttpExchange>& ex,
                                                std::shared_ptr<GenerationHandle> handle,
                                                GenerationPump::ChunkFn on_chunk) {
  auto pump = GenerationPump::start(
      std::move(handle), [ex](std::function<void()> task) { ex->post(std::move(task)); },
      std::move(on_chunk));
  std::weak_ptr<GenerationPump> weak = pump;
  ex->on_disconnect([weak] {
    if (auto p = weak.lock(); p && p->cancel())
      LOG_INFO("request {} cancelled: the client disconnected", p->id());
  });
  return pump;
}

}  // namespace llmserve::http
