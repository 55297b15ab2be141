#include "backend/cpu/host_group.h"

#include <algorithm>

#include "common/status.h"

namespace llmserve {

HostGroup::HostGroup(int32_t size)
    : size_(size),
      barrier_(size),
      inputs_(static_cast<size_t>(size)),
      sums_(static_cast<size_t>(size)) {}

void HostGroup::all_reduce_sum(int32_t rank, float* data, int64_t count) {
  const auto r = static_cast<size_t>(rank);
  inputs_[r] = data;
  barrier_.arrive_and_wait();  // every rank's input is published
  std::vector<float>& sum = sums_[r];
  sum.assign(static_cast<size_t>(count), 0.0f);
  for (const float* in : inputs_) {
    for (int64_t i = 0; i < count; ++i) sum[static_cast<size_t>(i)] += in[i];
  }
  barrier_.arrive_and_wait();  // every rank has read every input: now they may be overwritten
  std::copy(sum.begin(), sum.end(), data);
}

void HostPipe::send(int32_t from, int32_t to, const float* data, int64_t count) {
  std::lock_guard lock(mutex_);
  queues_[{from, to}].emplace_back(data, data + count);
  arrived_.notify_all();
}

void HostPipe::recv(int32_t to, int32_t from, float* data, int64_t count) {
  std::unique_lock lock(mutex_);
  auto& queue = queues_[{from, to}];
  arrived_.wait(lock, [&] { return !queue.empty(); });
  std::vector<float> message = std::move(queue.front());
  queue.pop_front();
  lock.unlock();
  if (static_cast<int64_t>(message.size()) != count) {
    fail(StatusCode::kInternal, "pipeline: rank {} sent {} values, rank {} expected {}", from,
         message.size(), to, count);
  }
  std::copy(message.begin(), message.end(), data);
}

}  // namespace llmserve
