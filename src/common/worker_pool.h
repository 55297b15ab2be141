// WorkerPool: a fixed set of threads running posted tasks from one bounded FIFO queue.
//
// The servers prepare requests on it (JSON parse, chat template, tokenization: CPU work that grows
// with the prompt) so that a large prompt never holds an HTTP I/O thread or a gRPC callback
// thread; health checks and token streams stay served meanwhile. The bound turns a flood of
// prompts into prompt refusals (503 / UNAVAILABLE) instead of unbounded memory and latency.
//
// Thread-safety: try_post() and the counters from any thread. The destructor stops taking tasks,
// runs those already queued, and joins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace llmserve {

class WorkerPool {
 public:
  // `name` prefixes the threads' names (at most 15 characters in all on Linux).
  WorkerPool(int32_t num_threads, int64_t max_queued, const std::string& name);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`, or returns false (task untouched) when max_queued tasks are waiting already.
  // A task that throws is logged; the worker goes on.
  bool try_post(std::function<void()> task);

  // Stops taking tasks, runs those already queued, and joins the threads. Idempotent.
  void stop();

  int32_t num_threads() const { return static_cast<int32_t>(threads_.size()); }
  int64_t max_queued() const { return max_queued_; }
  int64_t num_queued() const;                                  // waiting, not yet running
  int64_t num_running() const { return num_running_.load(); }  // being run by a worker now
  int64_t num_refused() const { return num_refused_.load(); }  // try_post() false, since start

 private:
  void run();

  const int64_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable has_work_;
  std::deque<std::function<void()>> queue_;
  bool is_stopping_ = false;
  std::atomic<int64_t> num_running_{0};
  std::atomic<int64_t> num_refused_{0};
  std::vector<std::thread> threads_;
};

}  // namespace llmserve
