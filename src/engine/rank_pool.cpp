#include "engine/rank_pool.h"

namespace llmserve {

RankPool::RankPool(int32_t size, std::function<void(int32_t)> bind)
    : size_(size), bind_(std::move(bind)), errors_(static_cast<size_t>(size)) {
  for (int32_t r = 1; r < size_; ++r) workers_.emplace_back([this, r] { work(r); });
}

RankPool::~RankPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void RankPool::work(int32_t rank) {
  if (bind_) bind_(rank);
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int32_t)>* task = nullptr;
    {
      std::unique_lock lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      task = task_;
    }
    std::exception_ptr error;
    try {
      (*task)(rank);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    errors_[static_cast<size_t>(rank)] = error;
    if (--pending_ == 0) done_.notify_one();
  }
}

void RankPool::run(const std::function<void(int32_t)>& task) {
  if (size_ == 1) {
    task(0);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    task_ = &task;
    pending_ = size_ - 1;
    ++generation_;
  }
  start_.notify_all();
  std::exception_ptr error;
  try {
    if (bind_) bind_(0);
    task(0);
  } catch (...) {
    error = std::current_exception();
  }
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  task_ = nullptr;
  for (size_t r = 1; r < errors_.size() && !error; ++r) error = errors_[r];
  for (auto& e : errors_) e = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

}  // namespace llmserve
