#include "engine/model_runner.h"

#include <algorithm>
#include <chrono>
#include <exception>

#include "common/logging.h"
#include "common/status.h"
#include "model/rope.h"

namespace llmserve {

ModelRunner::ModelRunner(Model& model, Backend& backend, const KvCache& kv_cache,
                         RunnerOptions options)
    : ModelRunner({RunnerRank{&model, &backend, &kv_cache}}, nullptr, options) {}

namespace {

// The rank whose logits a step returns: tensor-parallel rank 0 of the last pipeline stage.
size_t output_rank(const std::vector<RunnerRank>& ranks) {
  for (size_t i = 0; i < ranks.size(); ++i) {
    const ModelShard s = ranks[i].model->shard();
    if (s.is_last_stage() && s.rank == 0) return i;
  }
  fail(StatusCode::kInternal, "ModelRunner: no rank holds the last stage");
}

}  // namespace

ModelRunner::ModelRunner(std::vector<RunnerRank> ranks, RankPool* pool, RunnerOptions options)
    : ranks_(std::move(ranks)),
      pool_(pool),
      output_(output_rank(ranks_)),
      model_(*ranks_[output_].model),
      backend_(*ranks_[output_].backend),
      kv_cache_(*ranks_[output_].kv_cache),
      options_(options) {
  if (ranks_.size() > 1 && (pool_ == nullptr || pool_->size() != num_ranks())) {
    fail(StatusCode::kInternal, "ModelRunner: {} ranks need a RankPool of that size",
         ranks_.size());
  }
  const int32_t bs = kv_cache_.spec.block_size;
  graph_blocks_per_seq_ = (options_.max_model_len + bs - 1) / bs;
  const BatchLimits limits{
      .max_num_tokens = std::max(options_.max_num_tokens, options_.max_batch_size),
      .max_batch_size = options_.max_batch_size + 1,
      .max_blocks_per_seq = graph_blocks_per_seq_};
  on_ranks([&](int32_t r) { ranks_[static_cast<size_t>(r)].backend->reserve_batch(limits); });
  if (options_.pad_block >= 0) pad_table_.assign(1, options_.pad_block);
  if (options_.step_timing) backend_.enable_step_timing();
}

void ModelRunner::on_ranks(const std::function<void(int32_t)>& task) {
  if (pool_ == nullptr) {
    task(0);
  } else {
    pool_->run(task);
    backend_.bind_thread();  // what follows (sampling, downloads) runs on the output rank's device
  }
}

void ModelRunner::build_batch(std::span<const RunnerSequence> sequences, int32_t padding,
                              int32_t min_blocks) {
  batch_.clear();
  const int32_t bs = kv_cache_.spec.block_size;
  const ModelConfig& c = model_.config();
  for (const RunnerSequence& s : sequences) {
    const int32_t length = std::max(s.rope_length, s.num_computed_tokens + s.num_new_tokens);
    batch_.add_sequence(s.new_tokens, s.num_new_tokens, s.num_computed_tokens, *s.block_table, bs,
                        s.logits, rope_table_offset(c.rope, c.max_position_embeddings, length),
                        s.num_extra_logit_rows);
  }
  for (int32_t i = 0; i < padding; ++i)
    batch_.add_sequence(&pad_token_, 1, 0, pad_table_, bs, LogitRows::kLast);
  batch_.finalize(min_blocks);
}

BatchTensors ModelRunner::upload_for_graph(Backend& backend) {
  BatchTensors b = backend.upload_batch(batch_);
  // The recorded launches must cover any decode step of this bucket.
  b.max_query_len = 1;
  b.max_context_len = options_.max_model_len;
  return b;
}

int32_t ModelRunner::capture_graphs() {
  if (options_.pad_block < 0 || options_.max_graph_batch_size <= 0 || !backend_.can_capture())
    return 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<int32_t> sizes;
  for (int32_t n : {1,   2,   4,   8,   16,  24,  32,  48,  64,  96,  128, 160,
                    192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024}) {
    if (n <= options_.max_graph_batch_size) sizes.push_back(n);
  }
  for (int32_t n : sizes) {
    build_batch({}, n, graph_blocks_per_seq_);
    Graph g;
    g.batch_size = n;
    g.graphs.resize(ranks_.size());
    on_ranks([&](int32_t r) {
      const RunnerRank& rank = ranks_[static_cast<size_t>(r)];
      BatchTensors b = upload_for_graph(*rank.backend);
      rank.model->forward(
          b,
          *rank.kv_cache);  // eager first: plans, scratch and lazy buffers exist before recording
      rank.backend->synchronize();
      Tensor logits;
      g.graphs[static_cast<size_t>(r)] =
          rank.backend->capture([&] { logits = rank.model->forward(b, *rank.kv_cache); });
      if (static_cast<size_t>(r) == output_) g.logits = logits;
    });
    for (const auto& graph : g.graphs) {
      if (!graph) return 0;  // the backend records no graphs
    }
    graphs_.push_back(std::move(g));
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  LOG_INFO("recorded {} decode graphs (batch sizes 1..{}) in {:.0f} ms", graphs_.size(),
           sizes.back(), ms);
  return static_cast<int32_t>(graphs_.size());
}

ModelRunner::Graph* ModelRunner::graph_for(std::span<const RunnerSequence> sequences) {
  if (graphs_.empty() || sequences.empty()) return nullptr;
  for (const RunnerSequence& s : sequences) {
    if (s.num_new_tokens != 1 || s.logits != LogitRows::kLast || s.num_extra_logit_rows != 0)
      return nullptr;
    if (s.num_computed_tokens + 1 > options_.max_model_len) return nullptr;
  }
  const auto n = static_cast<int32_t>(sequences.size());
  for (Graph& g : graphs_) {
    if (g.batch_size >= n) return &g;
  }
  return nullptr;
}

Tensor ModelRunner::forward(std::span<const RunnerSequence> sequences) {
  if (Graph* g = graph_for(sequences)) {
    const auto n = static_cast<int32_t>(sequences.size());
    build_batch(sequences, g->batch_size - n, graph_blocks_per_seq_);
    backend_.mark_step_begin();
    on_ranks([&](int32_t r) {
      upload_for_graph(*ranks_[static_cast<size_t>(r)].backend);
      g->graphs[static_cast<size_t>(r)]->replay();
    });
    ++num_graph_replays_;
    return g->logits.rows(0, n);
  }
  build_batch(sequences, 0, 0);
  backend_.mark_step_begin();
  Tensor logits;
  on_ranks([&](int32_t r) {
    const RunnerRank& rank = ranks_[static_cast<size_t>(r)];
    BatchTensors uploaded = rank.backend->upload_batch(batch_);
    Tensor out = rank.model->forward(uploaded, *rank.kv_cache);
    if (static_cast<size_t>(r) == output_) logits = out;
  });
  return logits;
}

std::span<const float> ModelRunner::forward_logits(std::span<const RunnerSequence> sequences) {
  Tensor logits = forward(sequences);
  logits_.resize(static_cast<size_t>(logits.numel()));
  backend_.download(logits, logits_.data());
  return logits_;
}

const StepResult& ModelRunner::step(const SchedulerOutput& out) {
  step_sequences_.clear();
  sampling_rows_.clear();
  adjustments_.clear();
  host_rows_.clear();
  prompt_rows_.clear();
  spec_states_.clear();
  // A speculative decode's rows after the first sample under the state its drafts lead to: one
  // copy per such row, never reallocated while host_rows_ points into it.
  spec_states_.reserve(static_cast<size_t>(out.num_drafts));
  const std::span<const int32_t> eos = model_.config().eos_token_ids;
  bool is_plain_greedy = true, needs_host = false;
  size_t logit_row = 0;
  for (const ScheduledSequence& s : out.scheduled) {
    const bool verifies = s.num_drafts() > 0;
    step_sequences_.push_back(
        {verifies ? s.verify_tokens.data() : s.seq->token_ids.data() + s.num_computed_tokens,
         s.num_new_tokens, s.num_computed_tokens, &s.seq->block_table,
         !s.needs_sample ? LogitRows::kNone
         : verifies      ? LogitRows::kAll
                         : LogitRows::kLast,
         s.seq->num_prompt_tokens, s.num_prompt_logprob_rows});
    // The prompt rows are the chunk's last positions before the sampled one; position p scores
    // token p + 1.
    const int32_t first_scored = s.num_computed_tokens + s.num_new_tokens -
                                 (s.needs_sample ? 1 : 0) - s.num_prompt_logprob_rows + 1;
    for (int32_t j = 0; j < s.num_prompt_logprob_rows; ++j) {
      prompt_rows_.push_back(
          {s.seq, s.seq->token_ids[static_cast<size_t>(first_scored + j)], logit_row++});
    }
    if (!s.needs_sample) continue;
    const SamplingParams& params = s.seq->sampling;
    // Logprobs and grammar masks are the host sampler's (sampler.h).
    needs_host = needs_host || params.has_logprobs() || params.grammar != nullptr;
    if (verifies && params.grammar != nullptr) {
      fail(StatusCode::kInternal, "step: sequence {} has drafts and a grammar", s.seq_id);
    }
    // Position j of a speculative decode samples as a plain decode would after drafts [0, j).
    const SamplingState* state = &s.seq->sampling_state;
    for (int32_t j = 0; j <= s.num_drafts(); ++j) {
      if (j > 0) {
        spec_states_.push_back(*state);
        spec_states_.back().on_token(s.verify_tokens[static_cast<size_t>(j)]);
        state = &spec_states_.back();
      }
      host_rows_.push_back({s.seq, state, logit_row++});
      sampling_rows_.push_back(make_row_sampling(params, *state, eos, adjustments_));
      is_plain_greedy =
          is_plain_greedy && params.is_greedy() && sampling_rows_.back().num_adjustments == 0;
    }
  }
  row_samples_.assign(host_rows_.size(), SampleResult{});
  result_.prompt_logprobs.assign(prompt_rows_.size(), SampleResult{});
  if (prompt_rows_.empty() && !needs_host && (is_plain_greedy || backend_.can_sample())) {
    Tensor logits = forward(step_sequences_);
    const std::span<const int32_t> ids =
        is_plain_greedy ? greedy_ids(logits) : sampled_ids(logits, sampling_rows_, adjustments_);
    backend_.mark_step_end();
    for (size_t i = 0; i < ids.size(); ++i) row_samples_[i].token_id = ids[i];
  } else {
    forward_logits(step_sequences_);
    backend_.mark_step_end();
    sample_on_host(logits_, eos);
  }
  result_.samples.clear();
  result_.accepted.clear();
  size_t row = 0;
  for (const ScheduledSequence& s : out.scheduled) {
    if (!s.needs_sample) continue;
    // Drafts are accepted while they are what was chosen at their position; the first choice
    // that differs (or the one after the last draft) ends the step's tokens.
    int32_t accepted = 0;
    for (int32_t j = 0; j <= s.num_drafts(); ++j) {
      const SampleResult& chosen = row_samples_[row + static_cast<size_t>(j)];
      result_.samples.push_back(chosen);
      if (j == s.num_drafts() || chosen.token_id != s.verify_tokens[static_cast<size_t>(j) + 1])
        break;
      ++accepted;
    }
    row += static_cast<size_t>(1 + s.num_drafts());
    if (out.num_drafts > 0) result_.accepted.push_back(accepted);
  }
  return result_;
}

void ModelRunner::sample_on_host(std::span<float> logits, std::span<const int32_t> eos) {
  const auto vocab = static_cast<size_t>(vocab_size());
  const auto num_samples = static_cast<int64_t>(host_rows_.size());
  const auto rows = num_samples + static_cast<int64_t>(prompt_rows_.size());
  // Rows are independent: sample() and score_token() are pure and each row's state (its grammar's
  // matcher included) is its own, so they run in parallel; an exception cannot leave an OpenMP
  // region, so the first is carried out.
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic) if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    try {
      if (r >= num_samples) {
        const PromptRow& p = prompt_rows_[static_cast<size_t>(r - num_samples)];
        result_.prompt_logprobs[static_cast<size_t>(r - num_samples)] =
            score_token(logits.subspan(p.logit_row * vocab, vocab), p.token_id,
                        p.seq->sampling.prompt_logprobs);
        continue;
      }
      const HostRow& h = host_rows_[static_cast<size_t>(r)];
      row_samples_[static_cast<size_t>(r)] =
          sample(logits.subspan(h.logit_row * vocab, vocab), h.seq->sampling, *h.state, eos);
    } catch (...) {
#pragma omp critical(llmserve_host_sampling)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

Tensor ModelRunner::ids_for(int64_t rows) {
  if (ids_.numel() < rows) {
    ids_buffer_.clear();
    ids_ = backend_.allocate_tensor(ids_buffer_, DType::kI32,
                                    {std::max<int64_t>(rows, options_.max_batch_size)});
  }
  return ids_.rows(0, rows);
}

std::span<const int32_t> ModelRunner::greedy_ids(Tensor logits) {
  const int64_t rows = logits.dim(0);
  host_ids_.resize(static_cast<size_t>(rows));
  if (rows == 0) return host_ids_;  // a step of prefill chunks only: nothing to sample
  Tensor ids = ids_for(rows);
  backend_.argmax_rows(logits, ids);
  backend_.download(ids, host_ids_.data());
  return host_ids_;
}

std::span<const int32_t> ModelRunner::sampled_ids(Tensor logits,
                                                  const std::vector<RowSampling>& rows,
                                                  const std::vector<TokenAdjustment>& adjustments) {
  const int64_t n = logits.dim(0);
  if (n != static_cast<int64_t>(rows.size())) {
    fail(StatusCode::kInternal, "step: {} logit rows, {} sampling rows", n, rows.size());
  }
  host_ids_.resize(static_cast<size_t>(n));
  if (n == 0) return host_ids_;
  Tensor ids = ids_for(n);
  backend_.sample_rows(logits, rows, adjustments, ids);
  backend_.download(ids, host_ids_.data());
  return host_ids_;
}

}  // namespace llmserve
