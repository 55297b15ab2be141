// RankPool: runs one task per tensor-parallel rank at the same time and waits for all of them —
// rank 0 on the calling thread, rank r > 0 on its own worker thread — so that every rank reaches
// its collectives (all-reduce) together. Each worker binds its rank's device once at start; rank
// 0's device is bound on the calling thread at every run (the engine's constructor and its loop
// run on different threads). Alone (size 1) run() just calls the task.
//
// Thread-safety: run() is called by one thread at a time (the engine thread, or the constructor
// before it starts).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmserve {

class RankPool {
 public:
  // `bind(r)` runs on rank r's thread before its tasks (e.g. Backend::bind_thread).
  RankPool(int32_t size, std::function<void(int32_t)> bind);
  ~RankPool();
  RankPool(const RankPool&) = delete;
  RankPool& operator=(const RankPool&) = delete;

  int32_t size() const { return size_; }
  // Runs task(r) for every rank r and returns when all have finished; rethrows the lowest rank's
  // exception, if any.
  void run(const std::function<void(int32_t)>& task);

 private:
  void work(int32_t rank);

  int32_t size_;
  std::function<void(int32_t)> bind_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int32_t)>* task_ = nullptr;
  uint64_t generation_ = 0;
  int32_t pending_ = 0;
  bool stopping_ = false;
  std::vector<std::exception_ptr> errors_;
  std::vector<std::thread> workers_;
};

}  // namespace llmserve
