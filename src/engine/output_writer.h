// OutputWriter: hands the engine's outputs to their RequestStreams.
//
// A push is cheap alone but not in bulk: at batch 512 the pushes of one step (a lock, a queue
// node, a wake-up and the frontend's listener per sequence) took ~0.7 ms of the engine thread
// (docs/performance.md, "Host time between steps"), and on a GPU that is time the device waits
// through before the next step is launched. Threaded, the engine thread only collects a step's
// outputs and hands the lot over (one lock); a writer thread pushes them while the next step
// runs. Unthreaded (the CPU backend, whose forward already uses every core), flush() pushes in
// place, exactly as before.
//
// Order: outputs reach each stream in the order add() saw them, whatever the mode, so a request's
// final output is always its last.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "engine/request.h"

namespace llmserve {

class OutputWriter {
 public:
  explicit OutputWriter(bool threaded);
  ~OutputWriter();  // pushes what is left, then joins the writer thread
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  bool is_threaded() const { return thread_.joinable(); }
  // Engine thread: buffers an output for `stream`.
  void add(std::shared_ptr<RequestStream> stream, RequestOutput out);
  // Engine thread: hands the buffered outputs over (threaded) or pushes them now.
  void flush();
  // Engine thread: flush(), then waits until every output handed over has been pushed.
  void drain();

 private:
  using Item = std::pair<std::shared_ptr<RequestStream>, RequestOutput>;
  void run();

  std::vector<Item> pending_;  // engine thread only
  std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work or stop
  std::condition_variable written_;  // drain(): the handed-over batch is pushed
  std::vector<Item> handed_;         // under mutex_
  bool is_writing_ = false;          // under mutex_
  bool is_stopping_ = false;         // under mutex_
  std::thread thread_;
};

}  // namespace llmserve
