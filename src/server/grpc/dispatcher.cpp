#include "server/grpc/dispatcher.h"

namespace llmserve::grpc_frontend {

Dispatcher::Dispatcher() : thread_([this] { loop(); }) {}

Dispatcher::~Dispatcher() {
  stop();
}

void Dispatcher::post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (is_stopping_) return;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void Dispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    is_stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Dispatcher::loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return is_stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace llmserve::grpc_frontend
