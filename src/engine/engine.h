// Engine: in-flight batching over a paged KV cache, on one engine thread.
//
// Frontends call submit() from any thread and read the returned RequestStream; cancel() from any
// thread ends a request at the next step boundary and frees its KV blocks. submit() turns the
// request into its Sequence (sequence.h: the one per-request object) and queues it in a locked
// inbox; the engine thread moves the inbox into the scheduler, which owns every sequence from
// then on, and loops schedule → runner step → update, pushing each request's new tokens to
// its stream. However a request ends, end() is the one place that finishes its sequence in the
// scheduler and sends its final output. Nothing in the step loop takes a lock except the inbox
// swap and the stats snapshot.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "engine/engine_config.h"
#include "engine/model_runner.h"
#include "engine/output_writer.h"
#include "engine/request.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "model/model.h"

namespace llmserve {

// A snapshot for metrics and logs; all counters cumulative since start.
struct EngineStats {
  int32_t num_waiting = 0;  // submitted, not yet admitted (includes the inbox)
  int32_t num_running = 0;
  int32_t num_total_blocks = 0;
  int32_t num_used_blocks = 0;
  int32_t num_free_blocks = 0;
  int32_t block_size = 0;
  int64_t num_prefix_query_tokens = 0;
  int64_t num_prefix_hit_tokens = 0;
  int64_t num_preemptions = 0;
  int64_t num_window_released_blocks = 0;  // KV blocks freed below a sliding window
  // Speculative decoding: decodes that carried drafts, drafts proposed, drafts accepted.
  int64_t num_spec_decodes = 0;
  int64_t num_draft_tokens = 0;
  int64_t num_accepted_tokens = 0;
  int64_t num_priority_admissions = 0;  // admitted ahead of an earlier arrival (lower priority)
  int64_t num_queue_timeouts = 0;       // ended waiting: Request::queue_deadline passed
  int64_t num_deadlines_exceeded = 0;   // ended: Request::deadline passed
  int64_t num_steps = 0;
  int32_t last_step_num_tokens = 0;
  int32_t last_step_num_seqs = 0;
  int64_t num_prompt_tokens = 0;  // prefilled (recomputation included)
  int64_t num_generated_tokens = 0;
  // Host time of the engine thread's steps, in its three parts: scheduling, the runner's step
  // (forward + sampling, waiting on the device included) and the update after it (stop rules,
  // pushing tokens to the streams). Always kept: a clock read each.
  double schedule_ms = 0;
  double runner_ms = 0;
  double update_ms = 0;
  StepTimeline device_steps;  // when EngineConfig::step_timing
};

class Engine {
 public:
  // Loads the model, sizes and allocates the KV pool, starts the engine thread.
  // Throws Error for a bad config or model.
  explicit Engine(const EngineConfig& config);
  ~Engine();  // stop() + join
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Thread-safe. Validates the request (sampling params against the vocabulary, prompt length
  // against max_model_len and the pool) and the queue limit: kInvalidArgument / kOutOfRange for a
  // bad request, kResourceExhausted ("overloaded") when the waiting queue is full, kUnavailable
  // after stop(). On success `stream` receives the outputs.
  Status submit(Request request, std::shared_ptr<RequestStream>& stream);
  // Thread-safe; a no-op for unknown or finished ids. The stream ends with kCancelled.
  void cancel(uint64_t request_id);
  // Thread-safe. Stops the loop; unfinished requests end with kCancelled (status kUnavailable).
  void stop();

  EngineStats stats() const;  // thread-safe
  const ModelConfig& model_config() const { return models_[0]->config(); }
  const EngineConfig& config() const { return config_; }
  int32_t max_model_len() const { return scheduler_config_.max_model_len; }
  std::string_view device_name() const { return backends_[0]->name(); }
  DType activation_dtype() const { return backends_[0]->activation_dtype(); }
  int32_t num_ranks() const { return static_cast<int32_t>(backends_.size()); }

 private:
  struct Inbox {
    std::vector<std::unique_ptr<Sequence>> sequences;
    std::vector<uint64_t> cancels;
  };

  // The KV pool shape of `model` in the configured KV dtype.
  KvCacheSpec kv_spec(const Model& model, int32_t num_blocks) const;
  void size_kv_cache();
  void loop();
  // Waits while idle; moves the inbox's sequences into the scheduler (under the lock, so submit()
  // always counts them as waiting) and hands back the cancels. False when stopping.
  bool take_inbox(std::vector<uint64_t>& cancels);
  void expire_deadlines();
  // Ends every live sequence with `reason` and `error`.
  void end_all(FinishReason reason, const Status& error);
  // schedule → runner step → scheduler update → one output per sampled sequence.
  void step();
  // Appends each entry's scored prompt tokens (StepResult::prompt_logprobs) to its sequence's
  // prompt_logprobs, which its first token's output carries.
  void keep_prompt_logprobs(const SchedulerOutput& out, const StepResult& result);
  // Fills the drafts of `out`'s speculative decodes from the draft model (speculative.h).
  void propose_with_draft(SchedulerOutput& out);
  // Sends `seq` its output for this step (its last when `out.finish_reason` is set, which also
  // finishes it in the scheduler).
  void emit(Sequence& seq, RequestOutput out, Clock::time_point now);
  // Ends a live request early (cancel, deadline, failure, stop). A no-op for unknown ids.
  void end(uint64_t id, FinishReason reason, Status error);
  // The counters submit() and stats() read, under the lock.
  void publish_counts_locked();
  void publish_stats();

  EngineConfig config_;
  SchedulerConfig scheduler_config_;
  // One per tensor-parallel rank (one alone); rank 0 samples. The pool runs a task on every rank.
  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<RankPool> rank_pool_;
  std::vector<std::unique_ptr<Model>> models_;
  std::vector<KvCache> kv_caches_;
  std::unique_ptr<ModelRunner> runner_;
  // --speculative draft: the draft model on rank 0's backend, its KV cache (the target's block
  // ids) and an eager runner for it.
  std::unique_ptr<Model> draft_model_;
  KvCache draft_kv_;
  std::unique_ptr<ModelRunner> draft_runner_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<int32_t> eos_token_ids_;
  std::unique_ptr<OutputWriter> writer_;  // every output of a live sequence goes through it

  // Engine thread only.
  EngineStats totals_;
  int64_t num_deadlines_ = 0;  // live sequences with a deadline or a queue deadline

  // Shared with frontends.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  Inbox inbox_;
  bool is_stopping_ = false;
  EngineStats stats_;
  std::atomic<uint64_t> next_id_{1};
  // As of the last publish: submit() sheds load against them (with the inbox's size).
  int32_t num_waiting_in_scheduler_ = 0;  // never admitted yet
  int32_t num_running_ = 0;
  std::thread thread_;
};

}  // namespace llmserve
