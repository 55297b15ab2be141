// Scheduler: see scheduler.h for the order of a step and the preemption rules.
#include "engine/scheduler.h"

#include <algorithm>
#include <climits>
#include <utility>

namespace llmserve {
namespace {

BlockPoolConfig block_pool_config(const SchedulerConfig& config) {
  BlockPoolConfig pool;
  pool.num_blocks = config.num_blocks;
  pool.block_size = config.block_size;
  pool.enable_prefix_caching = config.enable_prefix_caching;
  return pool;
}

bool is_scheduled(const SchedulerOutput& out, const Sequence* seq) {
  return std::ranges::any_of(out.scheduled,
                             [seq](const ScheduledSequence& s) { return s.seq == seq; });
}

const SchedulerConfig& validated(const SchedulerConfig& config) {
  if (Status status = Scheduler::validate(config); !status.is_ok()) throw Error(std::move(status));
  return config;
}

template <typename... Args>
Status internal_error(fmt::format_string<Args...> f, Args&&... args) {
  return {StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...)};
}

}  // namespace

Status Scheduler::validate(const SchedulerConfig& config) {
  const auto require_positive = [](const char* field, int32_t value) {
    return value > 0 ? Status::ok() : invalid_argument("{} must be > 0, got {}", field, value);
  };
  for (const auto& [field, value] : {std::pair{"block_size", config.block_size},
                                     {"num_blocks", config.num_blocks},
                                     {"max_num_tokens", config.max_num_tokens},
                                     {"max_batch_size", config.max_batch_size},
                                     {"max_model_len", config.max_model_len},
                                     {"max_prompt_logprob_rows", config.max_prompt_logprob_rows}}) {
    if (Status status = require_positive(field, value); !status.is_ok()) return status;
  }
  if (config.max_num_tokens < config.max_batch_size) {
    return invalid_argument(
        "max_num_tokens ({}) must be >= max_batch_size ({}) so every running sequence can "
        "decode each step",
        config.max_num_tokens, config.max_batch_size);
  }
  if (!config.enable_chunked_prefill && config.max_num_tokens < config.max_model_len) {
    return invalid_argument(
        "max_num_tokens ({}) must be >= max_model_len ({}) without chunked prefill, or a long "
        "prompt could never be scheduled",
        config.max_num_tokens, config.max_model_len);
  }
  if (Status status = config.speculative.validate(); !status.is_ok()) return status;
  if (config.kv_window < 0)
    return invalid_argument("kv_window must be >= 0, got {}", config.kv_window);
  return BlockPool::validate(block_pool_config(config));
}

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(validated(config)), block_pool_(block_pool_config(config_)) {}

Status Scheduler::check_admissible(int32_t num_prompt_tokens, int32_t max_tokens) const {
  if (num_prompt_tokens <= 0) {
    return invalid_argument("prompt is empty: at least one prompt token is needed");
  }
  if (max_tokens <= 0) return invalid_argument("max_tokens must be >= 1, got {}", max_tokens);
  const int64_t num_tokens = static_cast<int64_t>(num_prompt_tokens) + max_tokens;
  if (num_tokens > config_.max_model_len) {
    return {StatusCode::kOutOfRange,
            fmt::format("prompt ({} tokens) + max_tokens ({}) = {} exceeds max_model_len ({})",
                        num_prompt_tokens, max_tokens, num_tokens, config_.max_model_len)};
  }
  const int32_t num_blocks = max_blocks_per_sequence(config_, num_tokens);
  if (num_blocks > config_.num_blocks) {
    return {StatusCode::kOutOfRange,
            fmt::format("prompt ({} tokens) + max_tokens ({}) needs {} KV blocks of {} tokens, "
                        "more than the whole KV cache (num_blocks = {})",
                        num_prompt_tokens, max_tokens, num_blocks, config_.block_size,
                        config_.num_blocks)};
  }
  return Status::ok();
}

int32_t Scheduler::max_blocks_per_sequence(const SchedulerConfig& config, int64_t num_tokens) {
  const int64_t bs = config.block_size;
  const int64_t all = (num_tokens + bs - 1) / bs;
  if (config.kv_window <= 0) return static_cast<int32_t>(std::min<int64_t>(all, INT32_MAX));
  // A step's new tokens: a prefill chunk, or a decode with its drafts.
  const int64_t step =
      std::max<int64_t>(config.max_num_tokens, 1 + config.speculative.num_speculative_tokens);
  const int64_t span = config.kv_window - 1 + step;
  return static_cast<int32_t>(std::min(all, (span + bs - 1) / bs + 1));
}

Status Scheduler::add(std::unique_ptr<Sequence> seq) {
  if (seq == nullptr) return invalid_argument("add: null sequence");
  if (Status status = check_admissible(seq->num_tokens(), seq->max_tokens()); !status.is_ok()) {
    return status;
  }
  if (sequences_.contains(seq->id)) return invalid_argument("sequence id {} is live", seq->id);
  seq->status = SequenceStatus::kWaiting;
  seq->arrival_index = next_arrival_index_++;
  seq->num_computed_tokens = 0;
  seq->num_cached_tokens = 0;
  seq->block_table.clear();
  if (seq->num_preemptions == 0) ++num_waiting_new_;
  enqueue_waiting(seq.get());
  sequences_.emplace(seq->id, std::move(seq));
  return Status::ok();
}

std::unique_ptr<Sequence> Scheduler::finish(uint64_t seq_id) {
  const auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) return nullptr;
  Sequence* seq = it->second.get();
  if (seq->status == SequenceStatus::kRunning) {
    std::erase(running_, seq);
    block_pool_.deallocate(*seq);
  } else {
    std::erase(waiting_, seq);
    if (seq->num_preemptions == 0) --num_waiting_new_;
  }
  seq->status = SequenceStatus::kFinished;
  std::unique_ptr<Sequence> owned = std::move(it->second);
  sequences_.erase(it);
  return owned;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  out.block_size = config_.block_size;
  StepBudget budget{config_.max_num_tokens, config_.max_prompt_logprob_rows};
  schedule_decodes(out, budget);
  schedule_prefill_chunks(out, budget);
  admit_waiting(out, budget);
  last_num_batched_tokens_ = out.num_batched_tokens;
  return out;
}

void Scheduler::schedule_decodes(SchedulerOutput& out, StepBudget& budget) {
  // validate() keeps max_batch_size <= max_num_tokens, so every decode fits the budget; drafts
  // take only what is left after one token for each decode still to come.
  const SpeculativeConfig& spec = config_.speculative;
  int32_t num_decodes_left = 0;
  if (spec.enabled()) {
    num_decodes_left = static_cast<int32_t>(
        std::ranges::count_if(running_, [](const Sequence* s) { return s->is_decoding(); }));
  }
  const bool speculate = spec.enabled() && num_decodes_left <= spec.max_batch_size;
  for (size_t i = 0; i < running_.size() && budget.num_tokens > 0;) {
    Sequence& seq = *running_[i];
    if (!seq.is_decoding()) {
      ++i;
      continue;
    }
    --num_decodes_left;
    drafts_.clear();
    if (speculate) propose_drafts(seq, budget.num_tokens - 1 - num_decodes_left, drafts_);
    const auto num_drafts = static_cast<int32_t>(drafts_.size());
    bool is_self_preempted = false;
    while (num_drafts == 0 && !is_self_preempted && !block_pool_.can_append(seq, 1)) {
      Sequence* victim = preemption_victim(i);
      is_self_preempted = victim == &seq;
      preempt(out, budget, victim);
    }
    if (is_self_preempted) continue;  // running_[i] is now the sequence after it
    block_pool_.may_append(seq, 1 + num_drafts);
    add_to_output(out, seq, 1 + num_drafts);
    if (num_drafts > 0) {
      ScheduledSequence& s = out.scheduled.back();
      s.verify_tokens.reserve(static_cast<size_t>(1 + num_drafts));
      s.verify_tokens.push_back(seq.last_token());
      s.verify_tokens.insert(s.verify_tokens.end(), drafts_.begin(), drafts_.end());
      out.num_drafts += num_drafts;
      ++num_spec_decodes_;
      num_draft_tokens_ += num_drafts;
    }
    budget.num_tokens -= 1 + num_drafts;
    ++i;
  }
}

void Scheduler::propose_drafts(Sequence& seq, int32_t max_drafts,
                               std::vector<int32_t>& drafts) const {
  // The grammar's matcher cannot be advanced tentatively; the token after the drafts counts
  // toward the completion limit too.
  if (!seq.allows_speculation || seq.sampling.grammar != nullptr) return;
  if (seq.num_spec_skips > 0) {  // backing off: its recent drafts were all rejected
    --seq.num_spec_skips;
    return;
  }
  const SpeculativeConfig& spec = config_.speculative;
  max_drafts = std::min({max_drafts, spec.num_speculative_tokens,
                         seq.max_tokens() - seq.num_completion_tokens() - 1});
  if (max_drafts <= 0) return;
  if (spec.mode == SpeculativeMode::kDraft) {
    drafts.assign(static_cast<size_t>(max_drafts), 0);  // the engine's draft model fills them
  } else {
    propose_ngram(seq.token_ids, spec.ngram_min, spec.ngram_max, max_drafts, drafts);
  }
  // Drafts never preempt: keep those the free blocks can hold.
  while (!drafts.empty() && !block_pool_.can_append(seq, 1 + static_cast<int32_t>(drafts.size())))
    drafts.pop_back();
}

void Scheduler::schedule_prefill_chunks(SchedulerOutput& out, StepBudget& budget) {
  // Only with chunked prefill is a running sequence still prefilling (without it a prompt is
  // admitted whole), and then only one (check_invariants). So a chunk takes the blocks there
  // are and never preempts: if none are free it waits, and the blocks are held by decodes,
  // which finish or preempt the latest sequence.
  for (Sequence* seq : running_) {
    if (budget.num_tokens == 0) break;
    if (seq->is_decoding()) continue;
    const int32_t limit = prompt_logprob_chunk_limit(*seq, budget.num_prompt_logprob_rows);
    const int32_t num_new = std::min({seq->num_uncomputed_tokens(), budget.num_tokens,
                                      block_pool_.num_appendable_tokens(*seq), limit});
    if (num_new == 0) continue;
    const bool is_cut_by_rows = num_new == limit && num_new < seq->num_uncomputed_tokens();
    block_pool_.may_append(*seq, num_new);
    add_to_output(out, *seq, num_new);
    budget.num_tokens = is_cut_by_rows ? 0 : budget.num_tokens - num_new;
    budget.num_prompt_logprob_rows -= out.scheduled.back().num_prompt_logprob_rows;
  }
}

int32_t Scheduler::prompt_logprob_chunk_limit(const Sequence& seq, int32_t num_rows) {
  if (!seq.wants_prompt_logprobs()) return INT32_MAX;
  return std::max(0, seq.next_prompt_logprob - 1 - seq.num_computed_tokens) + num_rows;
}

void Scheduler::admit_waiting(SchedulerOutput& out, StepBudget& budget) {
  if (budget.has_preempted) return;  // the pool is short; admitting would only thrash
  while (!waiting_.empty() && budget.num_tokens > 0 && num_running() < config_.max_batch_size) {
    Sequence& seq = *waiting_.front();
    const PrefixMatch match =
        seq.wants_prompt_logprobs() ? PrefixMatch{} : block_pool_.match_prefix(seq);
    const int32_t num_uncached = seq.num_tokens() - match.num_tokens;
    const int32_t limit = prompt_logprob_chunk_limit(seq, budget.num_prompt_logprob_rows);
    const int32_t num_new = std::min({num_uncached, budget.num_tokens, limit});
    if (num_new == 0) break;  // no prompt-logprob rows left this step
    if (num_new < std::min(num_uncached, limit) && !config_.enable_chunked_prefill) break;
    if (!block_pool_.can_allocate(match, match.num_tokens + num_new)) break;
    waiting_.pop_front();
    if (seq.num_preemptions == 0) --num_waiting_new_;
    // Mixed priorities (waiting_ is sorted, so front and back differ): did it jump the queue?
    if (!waiting_.empty() && waiting_.back()->priority != seq.priority &&
        std::ranges::any_of(waiting_, [&](const Sequence* w) {
          return w->arrival_index < seq.arrival_index && w->num_preemptions == 0;
        })) {
      ++num_priority_admissions_;
    }
    block_pool_.allocate(seq, match, match.num_tokens + num_new);
    seq.status = SequenceStatus::kRunning;
    running_.push_back(&seq);
    out.admitted_seq_ids.push_back(seq.id);
    add_to_output(out, seq, num_new);
    const bool is_cut_by_rows = num_new == limit && num_new < num_uncached;
    budget.num_tokens = is_cut_by_rows ? 0 : budget.num_tokens - num_new;
    budget.num_prompt_logprob_rows -= out.scheduled.back().num_prompt_logprob_rows;
  }
}

void Scheduler::add_to_output(SchedulerOutput& out, Sequence& seq, int32_t num_new_tokens) {
  out.scheduled.push_back(ScheduledSequence{
      .seq = &seq,
      .seq_id = seq.id,
      .num_computed_tokens = seq.num_computed_tokens,
      .num_new_tokens = num_new_tokens,
      .is_prefill_chunk = !seq.is_decoding(),
      // (>: a speculative decode's drafts go past the sequence's tokens)
      .needs_sample = seq.num_computed_tokens + num_new_tokens >= seq.num_tokens(),
      .num_prompt_logprob_rows =
          seq.num_prompt_logprob_rows(seq.num_computed_tokens, num_new_tokens),
  });
  out.num_batched_tokens += num_new_tokens;
}

Sequence* Scheduler::preemption_victim(size_t first) const {
  Sequence* victim = running_[first];
  for (size_t i = first + 1; i < running_.size(); ++i) {
    if (running_[i]->priority >= victim->priority) victim = running_[i];
  }
  return victim;
}

void Scheduler::preempt(SchedulerOutput& out, StepBudget& budget, Sequence* victim) {
  if (is_scheduled(out, victim)) {
    fail(StatusCode::kInternal, "preempting sequence {} already scheduled this step", victim->id);
  }
  std::erase(running_, victim);
  block_pool_.deallocate(*victim);
  victim->num_computed_tokens = 0;  // recomputed from scratch (minus prefix hits) later
  victim->num_cached_tokens = 0;
  victim->num_draft_computed_tokens = 0;
  victim->status = SequenceStatus::kWaiting;
  ++victim->num_preemptions;
  ++num_preemptions_;
  enqueue_waiting(victim);
  out.preempted_seq_ids.push_back(victim->id);
  budget.has_preempted = true;
}

void Scheduler::enqueue_waiting(Sequence* seq) {
  const auto before = [](const Sequence* a, const Sequence* b) {
    return a->priority != b->priority ? a->priority < b->priority
                                      : a->arrival_index < b->arrival_index;
  };
  // New arrivals of one priority land at the back: check it first.
  if (waiting_.empty() || before(waiting_.back(), seq)) {
    waiting_.push_back(seq);
  } else {
    waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, before), seq);
  }
}

void Scheduler::update(const SchedulerOutput& output, const StepResult& result) {
  const int32_t num_sampled = output.num_sampled();
  int64_t num_accepted = 0;
  if (!result.accepted.empty()) {
    if (static_cast<int32_t>(result.accepted.size()) != num_sampled) {
      fail(StatusCode::kInternal, "update: {} accepted counts for {} sequences that sample",
           result.accepted.size(), num_sampled);
    }
    for (int32_t a : result.accepted) num_accepted += a;
  }
  if (static_cast<int64_t>(result.samples.size()) != num_sampled + num_accepted) {
    fail(StatusCode::kInternal, "update: {} sampled tokens for {} sequences that sample",
         result.samples.size(), num_sampled);
  }
  size_t next_sample = 0, sampled_index = 0;
  for (const ScheduledSequence& s : output.scheduled) {
    int32_t accepted = 0;
    const SampleResult* samples = nullptr;
    if (s.needs_sample) {
      accepted = result.num_accepted(sampled_index++);
      if (accepted > s.num_drafts()) {
        fail(StatusCode::kInternal, "update: {} drafts accepted of {}", accepted, s.num_drafts());
      }
      samples = &result.samples[next_sample];
      next_sample += static_cast<size_t>(1 + accepted);
    }
    const auto it = sequences_.find(s.seq_id);
    if (it == sequences_.end() || it->second.get() != s.seq) continue;  // aborted/finished
    Sequence& seq = *s.seq;
    if (seq.status != SequenceStatus::kRunning ||
        seq.num_computed_tokens != s.num_computed_tokens) {
      fail(StatusCode::kInternal, "update: sequence {} changed since schedule()", seq.id);
    }
    if (s.num_drafts() == 0) {
      seq.num_computed_tokens += s.num_new_tokens;
      if (samples != nullptr) seq.token_ids.push_back(samples->token_id);
    } else {
      // The KV of the last token and of the accepted drafts stays; the token chosen after them
      // is the next step's input. The rejected drafts' blocks go back.
      for (int32_t j = 0; j < accepted; ++j) {
        if (samples[j].token_id != s.verify_tokens[static_cast<size_t>(j) + 1]) {
          fail(StatusCode::kInternal, "update: sequence {} accepted a token that is not its draft",
               seq.id);
        }
      }
      seq.num_computed_tokens += 1 + accepted;
      for (int32_t j = 0; j <= accepted; ++j) seq.token_ids.push_back(samples[j].token_id);
      block_pool_.trim(seq);
      num_accepted_tokens_ += accepted;
      // A verify step costs more than a decode (and a CUDA decode loses its graph): after n
      // fruitless ones in a row, the next 2^n - 1 decodes (at most 63) go without drafts.
      if (accepted > 0) {
        seq.num_spec_misses = 0;
      } else {
        seq.num_spec_misses = std::min(seq.num_spec_misses + 1, 6);
        seq.num_spec_skips = (1 << seq.num_spec_misses) - 1;
      }
    }
    block_pool_.cache_full_blocks(seq);
    num_window_released_blocks_ += block_pool_.release_out_of_window(seq, config_.kv_window);
  }
}

const Sequence* Scheduler::find(uint64_t seq_id) const {
  const auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

Sequence* Scheduler::find(uint64_t seq_id) {
  const auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

int32_t Scheduler::num_waiting_new() const {
  return num_waiting_new_;
}

SchedulerStats Scheduler::stats() const {
  return SchedulerStats{
      .num_waiting = num_waiting(),
      .num_running = num_running(),
      .num_free_blocks = block_pool_.num_free_blocks(),
      .num_used_blocks = block_pool_.num_used_blocks(),
      .num_cached_blocks = block_pool_.num_cached_blocks(),
      .prefix_cache = block_pool_.prefix_cache_stats(),
      .num_preemptions = num_preemptions_,
      .num_spec_decodes = num_spec_decodes_,
      .num_draft_tokens = num_draft_tokens_,
      .num_accepted_tokens = num_accepted_tokens_,
      .num_priority_admissions = num_priority_admissions_,
      .num_window_released_blocks = num_window_released_blocks_,
      .num_batched_tokens = last_num_batched_tokens_,
  };
}

Status Scheduler::check_invariants() const {
  std::vector<const Sequence*> live;
  for (size_t i = 1; i < waiting_.size(); ++i) {
    const Sequence& a = *waiting_[i - 1];
    const Sequence& b = *waiting_[i];
    if (a.priority > b.priority ||
        (a.priority == b.priority && a.arrival_index > b.arrival_index)) {
      return internal_error("waiting sequence {} is queued after {}", a.id, b.id);
    }
  }
  for (const Sequence* seq : waiting_) {
    if (seq->status != SequenceStatus::kWaiting || !seq->block_table.empty() ||
        seq->num_computed_tokens != 0) {
      return internal_error("waiting sequence {} is not reset", seq->id);
    }
    live.push_back(seq);
  }
  for (const Sequence* seq : running_) {
    if (seq->status != SequenceStatus::kRunning) {
      return internal_error("running sequence {} has another status", seq->id);
    }
    live.push_back(seq);
  }
  if (live.size() != sequences_.size()) {
    return internal_error("{} sequences queued but {} live", live.size(), sequences_.size());
  }
  for (const Sequence* seq : live) {
    const Sequence* owned = find(seq->id);
    if (owned != seq) return internal_error("sequence {} queued twice or not owned", seq->id);
  }
  // A chunk is cut short only when it takes the rest of the budget or of the free blocks, and
  // either stops admission for that step: so at most one sequence is ever mid-prefill.
  if (std::ranges::count_if(running_, [](const Sequence* s) { return !s->is_decoding(); }) > 1) {
    return internal_error("more than one running sequence is mid-prefill");
  }
  if (const auto never_admitted = std::ranges::count_if(
          waiting_, [](const Sequence* s) { return s->num_preemptions == 0; });
      never_admitted != num_waiting_new_) {
    return internal_error("{} waiting sequences never admitted, counted {}", never_admitted,
                          num_waiting_new_);
  }
  if (num_running() > config_.max_batch_size) {
    return internal_error("{} running > max_batch_size {}", num_running(), config_.max_batch_size);
  }
  return block_pool_.check_invariants(live);
}

}  // namespace llmserve
