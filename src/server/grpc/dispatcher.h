// Dispatcher: one worker thread that runs posted tasks in order. The engine thread's stream
// listeners post here (they must not detokenize or write to the network themselves), so reading
// GenerationHandles and answering RPCs happens on this thread, one task at a time.
//
// Thread-safety: post() from any thread; stop() once, from the owner.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace llmserve::grpc_frontend {

class Dispatcher {
 public:
  Dispatcher();
  ~Dispatcher();  // stop()
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void post(std::function<void()> task);
  // Runs what is queued, then joins the thread. Tasks posted afterwards are dropped.
  void stop();

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool is_stopping_ = false;
  std::thread thread_;
};

}  // namespace llmserve::grpc_frontend
