// ModelRunner: runs one step the scheduler planned. step(SchedulerOutput) is the engine's one
// entry: it packs the scheduled sequences into one flat, padding-free ForwardBatch (positions,
// slots and block tables all derived from the SchedulerOutput), runs the model on the backend and
// chooses each sampled sequence's next token under its SamplingParams. It knows nothing about
// queues or request lifetimes; the scheduler decides what runs and the engine what a token means.
//
// Decode steps (every sequence one new token, one logit row) can run as replayed graphs on
// backends that record them (CUDA): capture_graphs() records one forward per batch-size bucket;
// a step of B sequences pads itself with dummy sequences to the smallest bucket >= B. Dummies
// decode token 0 at position 0 into a KV block the block pool never hands out (pad_block).
// Graphed steps use a fixed block-table width and context bound, so one recording serves every
// decode step of that bucket.
// Tensor/pipeline parallel: the runner drives every rank's model (one per backend of the group)
// through a RankPool — the host batch is built once, each rank uploads it and runs its forward (or
// replays its own graph) at the same time (later pipeline stages wait in their receive); the
// output rank's logits (rank 0 of the last stage) are the result, and sampling runs there.
// Not thread-safe: used by the engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "engine/rank_pool.h"
#include "engine/sampler.h"
#include "engine/scheduler_output.h"
#include "model/model.h"

namespace llmserve {

// A sequence's tokens for forward_logits(): any tokens at any positions, with logits for none,
// the last or all of them (tests and teacher-forced scoring).
struct RunnerSequence {
  const int32_t* new_tokens = nullptr;  // the tokens to process this step
  int32_t num_new_tokens = 0;
  int32_t num_computed_tokens = 0;  // tokens already in the KV cache
  const std::vector<int32_t>* block_table = nullptr;
  LogitRows logits = LogitRows::kLast;
  // The length that picks the sequence's rope table rows (model/rope.h rope_table_offset: the
  // prompt's length while it prefills, as transformers runs a prompt in one forward); 0: the
  // tokens up to the end of this step.
  int32_t rope_length = 0;
  // With `logits` kNone or kLast: logits also for this many new tokens before (prompt logprobs).
  int32_t num_extra_logit_rows = 0;
};

struct RunnerOptions {
  int32_t max_num_tokens = 8192;     // largest step
  int32_t max_batch_size = 256;      // most sequences in a step
  int32_t max_model_len = 2048;      // longest sequence
  int32_t pad_block = -1;            // KV block for graph padding; < 0: no graphs
  int32_t max_graph_batch_size = 0;  // largest graphed decode batch; 0: no graphs
  bool step_timing = false;          // Backend::enable_step_timing on the output rank
};

// One tensor-parallel rank: its model shard, the backend it runs on and its KV cache.
struct RunnerRank {
  Model* model = nullptr;
  Backend* backend = nullptr;
  const KvCache* kv_cache = nullptr;
};

class ModelRunner {
 public:
  ModelRunner(Model& model, Backend& backend, const KvCache& kv_cache, RunnerOptions options = {});
  // Several ranks, run through `pool` (which must have one thread per rank and outlive the runner).
  ModelRunner(std::vector<RunnerRank> ranks, RankPool* pool, RunnerOptions options);

  // Records the decode graphs (no-op when the backend has none or options disable them).
  // Returns how many were recorded; logs their count and the time taken.
  int32_t capture_graphs();

  // Runs the step `out` plans and picks the next token of every entry with needs_sample (and
  // verifies a speculative decode's drafts, speculative.h: StepResult::accepted): on the
  // backend when it can — argmax when every row is plain greedy, the backend's sampler
  // (Backend::can_sample) when no row wants logprobs or has a grammar; only token ids cross to the
  // host — else the host sampler over downloaded logits. Entries with prompt-logprob rows put the
  // step on the host path too; each row's prompt token is scored there (score_token) into
  // StepResult::prompt_logprobs. Valid until the next call.
  const StepResult& step(const SchedulerOutput& out);

  // Runs `sequences` as one batch; returns [num logit rows, vocab] fp32, row-major, in sequence
  // order. Valid until the next call of either entry.
  std::span<const float> forward_logits(std::span<const RunnerSequence> sequences);

  int32_t vocab_size() const { return model_.config().vocab_size; }
  // The output rank's device time of the steps so far (empty unless options.step_timing).
  StepTimeline step_timeline() const { return backend_.step_timeline(); }
  int32_t block_size() const { return kv_cache_.spec.block_size; }
  int32_t num_blocks() const { return kv_cache_.spec.num_blocks; }
  int32_t num_ranks() const { return static_cast<int32_t>(ranks_.size()); }
  int64_t num_graph_replays() const { return num_graph_replays_; }

 private:
  struct Graph {
    int32_t batch_size = 0;
    std::vector<std::unique_ptr<StepGraph>> graphs;  // per rank
    Tensor logits;  // where the output rank's recorded forward leaves its logits
  };
  // The graph for a decode step of `n` sequences, or nullptr.
  Graph* graph_for(std::span<const RunnerSequence> sequences);
  // Builds batch_ for `sequences` plus `padding` dummy decode sequences.
  void build_batch(std::span<const RunnerSequence> sequences, int32_t padding, int32_t min_blocks);
  BatchTensors upload_for_graph(Backend& backend);
  // task(r) on every rank at once (directly when alone).
  void on_ranks(const std::function<void(int32_t)>& task);
  // Runs the step (graph or eager) and returns the logits in backend memory.
  Tensor forward(std::span<const RunnerSequence> sequences);
  Tensor ids_for(int64_t rows);  // backend I32 [rows] for token ids
  // The greedy token (argmax, lowest id on ties) of each logit row, on the backend.
  std::span<const int32_t> greedy_ids(Tensor logits);
  // Each logit row's token drawn on the backend under rows[i].
  std::span<const int32_t> sampled_ids(Tensor logits, const std::vector<RowSampling>& rows,
                                       const std::vector<TokenAdjustment>& adjustments);

  std::vector<RunnerRank> ranks_;
  RankPool* pool_ = nullptr;
  // The output rank (rank 0 of the last pipeline stage): whose logits the step returns and where
  // sampling runs.
  size_t output_ = 0;
  Model& model_;
  Backend& backend_;
  const KvCache& kv_cache_;
  RunnerOptions options_;
  int32_t graph_blocks_per_seq_ = 0;
  std::vector<Graph> graphs_;  // ascending batch size
  std::vector<int32_t> pad_table_;
  int32_t pad_token_ = 0;
  ForwardBatch batch_;
  std::vector<float> logits_;
  std::vector<Buffer> ids_buffer_;
  Tensor ids_;  // I32 [max logit rows] in backend memory
  std::vector<int32_t> host_ids_;
  int64_t num_graph_replays_ = 0;
  // step()'s working sets, kept to reuse their memory.
  std::vector<RunnerSequence> step_sequences_;
  std::vector<RowSampling> sampling_rows_;
  std::vector<TokenAdjustment> adjustments_;
  // Per logit row of a step: whose it is and the sampling state it is drawn under.
  struct HostRow {
    const Sequence* seq = nullptr;
    const SamplingState* state = nullptr;
    size_t logit_row = 0;  // its row of the step's logits
  };
  // A logit row that scores a prompt token (ScheduledSequence::num_prompt_logprob_rows).
  struct PromptRow {
    const Sequence* seq = nullptr;
    int32_t token_id = 0;  // the prompt token it scores: the one after the row's position
    size_t logit_row = 0;
  };
  // Samples host_rows_ over `logits` (downloaded) on the host into row_samples_, and scores
  // prompt_rows_ into result_.prompt_logprobs.
  // Samples each host row in place: the rows are this step's download (logits_), each read once.
  void sample_on_host(std::span<float> logits, std::span<const int32_t> eos);
  std::vector<HostRow> host_rows_;
  std::vector<PromptRow> prompt_rows_;
  std::vector<SamplingState> spec_states_;
  std::vector<SampleResult> row_samples_;
  StepResult result_;
};

}  // namespace llmserve
