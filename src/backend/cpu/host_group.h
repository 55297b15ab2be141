// HostGroup: the all-reduce of a tensor-parallel group whose ranks are threads of this process
// sharing host memory (the cpu backend's communicator). It exists so the sharded math can be run
// and tested without GPUs; on CUDA the ranks talk through NCCL instead.
//
// Every rank sums all ranks' buffers in rank order, so each gets the bit-identical result that
// NCCL's ring also guarantees. Thread-safety: each rank calls from its own thread; calls are
// collective (every rank, same order, same element count).
#pragma once

#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace llmserve {

class HostGroup {
 public:
  explicit HostGroup(int32_t size);

  int32_t size() const { return size_; }
  // data[i] = sum over ranks r of rank r's data[i], for i < count; waits for every rank.
  void all_reduce_sum(int32_t rank, float* data, int64_t count);

 private:
  int32_t size_;
  std::barrier<> barrier_;
  std::vector<float*> inputs_;            // per rank, valid between the two barriers
  std::vector<std::vector<float>> sums_;  // per rank
};

// HostPipe: point-to-point messages between rank threads (pipeline stages hand the residual
// stream on). send() copies and returns; recv() waits for the next message from that sender.
class HostPipe {
 public:
  void send(int32_t from, int32_t to, const float* data, int64_t count);
  void recv(int32_t to, int32_t from, float* data, int64_t count);

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<std::pair<int32_t, int32_t>, std::deque<std::vector<float>>> queues_;  // (from, to)
};

}  // namespace llmserve
