#include "engine/output_writer.h"

namespace llmserve {

OutputWriter::OutputWriter(bool threaded) {
  if (threaded) thread_ = std::thread([this] { run(); });
}

OutputWriter::~OutputWriter() {
  flush();
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    is_stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void OutputWriter::add(std::shared_ptr<RequestStream> stream, RequestOutput out) {
  pending_.emplace_back(std::move(stream), std::move(out));
}

void OutputWriter::flush() {
  if (pending_.empty()) return;
  if (!thread_.joinable()) {
    for (auto& [stream, out] : pending_) stream->push(std::move(out));
    pending_.clear();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (handed_.empty()) {
      std::swap(handed_, pending_);  // the writer's previous batch is done: reuse its memory
    } else {
      handed_.insert(handed_.end(), std::make_move_iterator(pending_.begin()),
                     std::make_move_iterator(pending_.end()));
      pending_.clear();
    }
  }
  wake_.notify_one();
}

void OutputWriter::drain() {
  flush();
  if (!thread_.joinable()) return;
  std::unique_lock lock(mutex_);
  written_.wait(lock, [&] { return handed_.empty() && !is_writing_; });
}

void OutputWriter::run() {
  std::vector<Item> batch;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return is_stopping_ || !handed_.empty(); });
    if (handed_.empty()) return;  // stopping, nothing left
    std::swap(batch, handed_);
    is_writing_ = true;
    lock.unlock();
    for (auto& [stream, out] : batch) stream->push(std::move(out));
    batch.clear();
    lock.lock();
    is_writing_ = false;
    if (handed_.empty()) written_.notify_all();
  }
}

}  // namespace llmserve
