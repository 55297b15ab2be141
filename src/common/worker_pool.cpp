#include "common/worker_pool.h"

#include <pthread.h>

#include <exception>
#include <utility>

#include "common/logging.h"

namespace llmserve {

WorkerPool::WorkerPool(int32_t num_threads, int64_t max_queued, const std::string& name)
    : max_queued_(max_queued) {
  threads_.reserve(static_cast<size_t>(num_threads));
  for (int32_t i = 0; i < num_threads; ++i) {
    threads_.emplace_back([this] { run(); });
    const std::string thread_name = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(threads_.back().native_handle(), thread_name.c_str());
  }
}

WorkerPool::~WorkerPool() {
  stop();
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mutex_);
    is_stopping_ = true;
  }
  has_work_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool WorkerPool::try_post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (is_stopping_ || static_cast<int64_t>(queue_.size()) >= max_queued_) {
      num_refused_.fetch_add(1);
      return false;
    }
    queue_.push_back(std::move(task));
  }
  has_work_.notify_one();
  return true;
}

int64_t WorkerPool::num_queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queue_.size());
}

void WorkerPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      has_work_.wait(lock, [this] { return is_stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
      num_running_.fetch_add(1);
    }
    try {
      task();
    } catch (const std::exception& e) {
      LOG_ERROR("worker task failed: {}", e.what());
    } catch (...) {
      LOG_ERROR("worker task failed with an unknown exception");
    }
    num_running_.fetch_sub(1);
  }
}

}  // namespace llmserve
