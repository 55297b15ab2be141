#include "engine/request.h"

namespace llmserve {

bool RequestStream::next(RequestOutput& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !queue_.empty(); })) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

bool RequestStream::try_next(RequestOutput& out) {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

void RequestStream::set_listener(std::function<void()> listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

bool RequestStream::is_finished() const {
  std::lock_guard lock(mutex_);
  return is_finished_;
}

void RequestStream::push(RequestOutput out) {
  std::function<void()> listener;
  {
    std::lock_guard lock(mutex_);
    is_finished_ = is_finished_ || out.is_final();
    queue_.push_back(std::move(out));
    listener = listener_;
  }
  ready_.notify_all();
  if (listener) listener();
}

}  // namespace llmserve
