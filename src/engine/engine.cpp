#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/logging.h"
#include "engine/philox.h"
#include "model/engine_manifest.h"
#include "model/quantized_checkpoint.h"
#include "model/rope.h"

namespace llmserve {

namespace {

// The final output of a request that ends without a token.
RequestOutput ending(FinishReason reason, Status error) {
  RequestOutput out;
  out.finish_reason = reason;
  out.error = std::move(error);
  return out;
}

}  // namespace

Engine::Engine(const EngineConfig& config) : config_(config) {
  if (Status s = config_.validate(); !s.is_ok()) throw Error(s);
  if (config_.seed == 0) config_.seed = std::random_device{}() | 1ull << 40;
  const bool from_engine = is_engine_dir(config_.model_dir);
  if (from_engine) {
    const EngineManifest manifest = read_engine_manifest(config_.model_dir);
    apply_engine_manifest(config_, manifest);
    if (Status s = config_.validate(); !s.is_ok()) throw Error(s);
    LOG_INFO(
        "engine '{}': built by llmserve {} on {} for {}{} {}, --quantization {}{}, --tp {} --pp "
        "{}",
        config_.model_dir.string(), manifest.llmserve_version, manifest.created, manifest.device,
        manifest.gpu_arch.empty() ? "" : " " + manifest.gpu_arch, dtype_name(manifest.dtype),
        quantization_name(manifest.quantization),
        manifest.quantize_lm_head ? " --quantize-lm-head" : "", manifest.tp, manifest.pp);
  }
  if (!from_engine) {
    // A pre-quantized checkpoint is read dequantized (model/quantized_checkpoint.h) and, unless
    // asked otherwise, quantized again the same way: fp8 ones as fp8 on cuda (lossless for
    // per-channel scales), AWQ/GPTQ ones as int4-wo at their own group size.
    const CheckpointQuantizationConfig q = read_checkpoint_quantization(config_.model_dir);
    if (q.kind != CheckpointQuantization::kNone) {
      if (config_.quantization == Quantization::kNone)
        config_.quantization = served_quantization(q, config_.device == DeviceKind::kCuda);
      LOG_INFO(
          "checkpoint quantized with {} ({}): weights dequantized at load, served {}",
          checkpoint_quantization_name(q.kind), q.method,
          config_.quantization == Quantization::kNone
              ? "in the activation dtype"
              : fmt::format("with --quantization {}", quantization_name(config_.quantization)));
    }
  }
  DType dtype = DType::kF32;
  if (config_.device == DeviceKind::kCuda ||
      (config_.device == DeviceKind::kNull && config_.dtype)) {
    const DType stored = load_model_config(config_.model_dir).checkpoint_dtype;
    dtype = config_.dtype.value_or(stored == DType::kBF16 ? DType::kBF16 : DType::kF16);
  } else if (config_.device == DeviceKind::kCpu) {
    // The weights' dtype; activations and the KV cache are fp32 whatever it is.
    dtype = config_.dtype ? *config_.dtype : default_cpu_weight_dtype(config_.model_dir);
  }
  const auto load_start = std::chrono::steady_clock::now();
  const int32_t tp = config_.tensor_parallel_size, pp = config_.pipeline_parallel_size;
  if (tp * pp > 1) {  // a clear error before any GPU work
    shard_config(load_model_config(config_.model_dir), ModelShard{0, tp, 0, pp});
  }
  if (config_.device == DeviceKind::kCpu) configure_cpu_threads(config_.cpu_threads);
  backends_ = create_backend_group(config_.device, dtype, tp, pp);
  if (config_.quantization == Quantization::kFp8 && config_.device == DeviceKind::kCuda &&
      !gpu_arch_has_fp8(backends_[0]->device_arch())) {
    fail(StatusCode::kUnimplemented,
         "--quantization fp8 needs a GPU with fp8 tensor cores (compute capability 8.9+: "
         "L4, L40S, H100, H200, ...); this one is {}. Use int8-wo",
         backends_[0]->device_arch());
  }
  rank_pool_ = std::make_unique<RankPool>(
      tp * pp, [this](int32_t r) { backends_[static_cast<size_t>(r)]->bind_thread(); });
  const auto backend_ready = std::chrono::steady_clock::now();
  models_.resize(backends_.size());
  rank_pool_->run([&](int32_t r) {
    models_[static_cast<size_t>(r)] =
        load_model(config_.model_dir, *backends_[static_cast<size_t>(r)],
                   LoadOptions{config_.quantization, config_.quantize_lm_head});
  });
  const auto ms = [](auto a, auto b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  const auto weights_ready = std::chrono::steady_clock::now();
  const DType act = backends_[0]->activation_dtype(), weights = backends_[0]->weight_dtype();
  LOG_INFO("weights of '{}' on {}{} ({}) in {:.0f} ms (device set-up {:.0f} ms)",
           config_.model_dir.filename().string(), backends_[0]->name(),
           tp * pp > 1 ? fmt::format(" (tp {} x pp {})", tp, pp) : "",
           act == weights
               ? std::string(dtype_name(act))
               : fmt::format("{} weights, {} activations", dtype_name(weights), dtype_name(act)),
           ms(backend_ready, weights_ready), ms(load_start, backend_ready));
  const ModelConfig& mc = models_[0]->config();
  eos_token_ids_ = mc.eos_token_ids;
  if (config_.speculative.mode == SpeculativeMode::kDraft) {
    draft_model_ = load_model(config_.speculative.draft_model_dir, *backends_[0], LoadOptions{});
    if (draft_model_->config().vocab_size != mc.vocab_size) {
      fail(StatusCode::kInvalidArgument,
           "--draft-model '{}' has a vocabulary of {} tokens, the model {}: the draft must share "
           "the model's tokenizer",
           config_.speculative.draft_model_dir.string(), draft_model_->config().vocab_size,
           mc.vocab_size);
    }
    LOG_INFO("draft model '{}' ({} layers) for speculative decoding",
             config_.speculative.draft_model_dir.filename().string(),
             draft_model_->config().num_layers);
  }

  scheduler_config_.block_size = config_.block_size;
  scheduler_config_.max_num_tokens = config_.max_num_tokens;
  scheduler_config_.max_batch_size = config_.max_batch_size;
  scheduler_config_.max_model_len =
      config_.max_model_len > 0 ? config_.max_model_len : mc.max_position_embeddings;
  if (scheduler_config_.max_model_len > mc.max_position_embeddings) {
    fail(StatusCode::kInvalidArgument,
         "--max-model-len {} exceeds the model's max_position_embeddings {}{}",
         scheduler_config_.max_model_len, mc.max_position_embeddings,
         mc.rope.type == RopeConfig::Type::kDynamic
             ? " (dynamic NTK rope scaling is served up to its original context, where "
               "transformers' frequencies are the unscaled ones)"
             : "");
  }
  scheduler_config_.enable_prefix_caching = config_.enable_prefix_caching;
  scheduler_config_.enable_chunked_prefill = config_.enable_chunked_prefill;
  scheduler_config_.speculative = config_.speculative;
  // Blocks below a sliding window go back to the pool when every layer has one (the draft
  // model's too: it reads the same block tables), behind the wider of the two windows.
  scheduler_config_.kv_window = mc.kv_window();
  if (draft_model_) {
    const int32_t draft_window = draft_model_->config().kv_window();
    scheduler_config_.kv_window = scheduler_config_.kv_window > 0 && draft_window > 0
                                      ? std::max(scheduler_config_.kv_window, draft_window)
                                      : 0;
  }
  if (!config_.enable_chunked_prefill &&
      scheduler_config_.max_num_tokens < scheduler_config_.max_model_len) {
    // Without chunking every prompt must fit in one step's budget.
    scheduler_config_.max_num_tokens = scheduler_config_.max_model_len;
  }
  // Activations first, so the KV cache is sized from what is really left. A logit row per
  // sequence, or per position of the speculative decodes of a step, and the rows a step may
  // spend on prompt logprobs (at 128 rows, 64 MiB of fp32 logits for a 128k vocabulary).
  int32_t max_logit_rows = config_.max_batch_size;
  if (config_.speculative.enabled()) {
    max_logit_rows = std::max(max_logit_rows,
                              std::min(config_.speculative.max_batch_size, config_.max_batch_size) *
                                  (1 + config_.speculative.num_speculative_tokens));
  }
  max_logit_rows += scheduler_config_.max_prompt_logprob_rows;
  rank_pool_->run([&](int32_t r) {
    models_[static_cast<size_t>(r)]->reserve(scheduler_config_.max_num_tokens, max_logit_rows);
  });
  if (draft_model_) {
    draft_model_->reserve(scheduler_config_.max_num_tokens,
                          std::max(1, config_.speculative.max_batch_size));
  }
  size_kv_cache();
  scheduler_ = std::make_unique<Scheduler>(scheduler_config_);
  RunnerOptions runner_options;
  runner_options.max_num_tokens = scheduler_config_.max_num_tokens;
  runner_options.max_batch_size = config_.max_batch_size;
  runner_options.max_model_len = scheduler_config_.max_model_len;
  runner_options.pad_block = scheduler_config_.num_blocks;  // the extra block size_kv_cache adds
  runner_options.max_graph_batch_size =
      std::min(config_.max_graph_batch_size, config_.max_batch_size);
  runner_options.step_timing = config_.step_timing;
  std::vector<RunnerRank> ranks;
  for (size_t r = 0; r < backends_.size(); ++r)
    ranks.push_back({models_[r].get(), backends_[r].get(), &kv_caches_[r]});
  runner_ = std::make_unique<ModelRunner>(std::move(ranks), rank_pool_.get(), runner_options);
  if (draft_model_) {
    RunnerOptions draft_options = runner_options;
    draft_options.max_batch_size = std::max(1, config_.speculative.max_batch_size);
    draft_options.pad_block = -1;  // eager: no graphs
    draft_options.max_graph_batch_size = 0;
    draft_options.step_timing = false;
    draft_runner_ =
        std::make_unique<ModelRunner>(*draft_model_, *backends_[0], draft_kv_, draft_options);
  }
  const auto kv_ready = std::chrono::steady_clock::now();
  runner_->capture_graphs();
  const auto done = std::chrono::steady_clock::now();
  // The cold-start breakdown (docs/performance.md tracks process start -> ready).
  LOG_INFO(
      "engine ready in {:.0f} ms: device set-up {:.0f} ms, weights {:.0f} ms ({}), activations + "
      "KV cache {:.0f} ms, "
      "graphs {:.0f} ms",
      ms(load_start, done), ms(load_start, backend_ready), ms(backend_ready, weights_ready),
      from_engine ? "built engine" : "checkpoint", ms(weights_ready, kv_ready), ms(kv_ready, done));
  publish_stats();
  writer_ = std::make_unique<OutputWriter>(
      config_.output_thread.value_or(config_.device != DeviceKind::kCpu));
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  stop();
  if (thread_.joinable()) thread_.join();
}

KvCacheSpec Engine::kv_spec(const Model& model, int32_t num_blocks) const {
  KvCacheSpec spec = model.kv_cache_spec(config_.block_size, num_blocks);
  if (config_.kv_cache_dtype) spec.dtype = *config_.kv_cache_dtype;
  return spec;
}

void Engine::size_kv_cache() {
  // Per rank, a block holds its heads of its stage's layers; the largest rank decides.
  size_t bytes_per_block = 0;
  for (const auto& m : models_)
    bytes_per_block = std::max(bytes_per_block, kv_spec(*m, 1).bytes_per_block());
  // A draft model's cache shares the block ids (speculative.h): each block costs both.
  if (draft_model_) bytes_per_block += kv_spec(*draft_model_, 1).bytes_per_block();
  int32_t num_blocks = config_.num_kv_blocks;
  if (num_blocks == 0) {
    double fraction = config_.kv_cache_memory_fraction;
    if (fraction <= 0) fraction = config_.device == DeviceKind::kCuda ? 0.9 : 0.2;
    // Every rank holds the same number of blocks (of its own heads): the tightest rank decides.
    std::vector<size_t> free(backends_.size());
    rank_pool_->run([&](int32_t r) {
      free[static_cast<size_t>(r)] = backends_[static_cast<size_t>(r)]->free_memory();
    });
    const size_t least_free = *std::min_element(free.begin(), free.end());
    const double budget =
        static_cast<double>(least_free) * fraction - static_cast<double>(bytes_per_block);
    // More blocks than max_batch_size full-length sequences can never be used at once.
    const int64_t useful =
        static_cast<int64_t>(config_.max_batch_size) *
        Scheduler::max_blocks_per_sequence(scheduler_config_, scheduler_config_.max_model_len);
    num_blocks = static_cast<int32_t>(std::min<int64_t>(
        useful, static_cast<int64_t>(budget / static_cast<double>(bytes_per_block))));
  }
  const int32_t needed =
      Scheduler::max_blocks_per_sequence(scheduler_config_, scheduler_config_.max_model_len);
  if (num_blocks < needed) {
    fail(StatusCode::kResourceExhausted,
         "the KV cache holds {} blocks of {} tokens ({} MiB each) but one sequence of "
         "max_model_len {} needs {}; "
         "raise --kv-cache-memory-fraction or --num-kv-blocks, or lower --max-model-len",
         num_blocks, config_.block_size, bytes_per_block >> 20, scheduler_config_.max_model_len,
         needed);
  }
  scheduler_config_.num_blocks = num_blocks;
  // One block more than the scheduler may hand out: the target of padded graph decode steps.
  kv_caches_.resize(backends_.size());
  rank_pool_->run([&](int32_t r) {
    const auto i = static_cast<size_t>(r);
    kv_caches_[i] = backends_[i]->allocate_kv_cache(kv_spec(*models_[i], num_blocks + 1));
  });
  if (draft_model_)
    draft_kv_ = backends_[0]->allocate_kv_cache(kv_spec(*draft_model_, num_blocks + 1));
  LOG_INFO("KV cache: {} blocks x {} tokens = {} tokens, {:.1f} MiB ({}) on {}{}", num_blocks,
           config_.block_size, static_cast<int64_t>(num_blocks) * config_.block_size,
           static_cast<double>(bytes_per_block) * num_blocks / (1 << 20),
           dtype_name(kv_caches_[0].spec.dtype), backends_[0]->name(),
           backends_.size() > 1 ? fmt::format(" per rank ({} ranks)", backends_.size()) : "");
}

Status Engine::submit(Request request, std::shared_ptr<RequestStream>& stream) {
  const int32_t vocab = models_[0]->config().vocab_size;
  if (Status s = request.sampling.validate(vocab); !s.is_ok()) return s;
  for (int32_t id : request.prompt_token_ids) {
    if (id < 0 || id >= vocab) {
      return {StatusCode::kOutOfRange,
              fmt::format("prompt token id {} is outside the vocabulary of {}", id, vocab)};
    }
  }
  if (Status s = scheduler_->check_admissible(static_cast<int32_t>(request.prompt_token_ids.size()),
                                              request.sampling.max_tokens);
      !s.is_ok()) {
    return s;
  }
  const uint64_t id = next_id_++;
  auto new_stream = std::make_shared<RequestStream>(id);
  auto seq = std::make_unique<Sequence>(id, std::move(request), new_stream,
                                        config_.seed ^ (id * 0x9E3779B97F4A7C15ull));
  // A LongRoPE prompt past the original context is computed with the long factors: its KV
  // differs from the same tokens' in a shorter prompt (model/rope.h), so its own hash chain.
  const ModelConfig& mc = models_[0]->config();
  if (rope_table_offset(mc.rope, mc.max_position_embeddings, seq->num_prompt_tokens) != 0)
    seq->prefix_cache_salt = 0x4c6f6e67526f5045ull;  // "LongRoPE"
  std::lock_guard lock(mutex_);
  if (is_stopping_) return {StatusCode::kUnavailable, "the engine is shutting down"};
  // Requests the running batch can still take are not queued: a burst that arrives before the
  // engine loop picks it up must not be shed while batch slots are free.
  const int32_t num_waiting =
      num_waiting_in_scheduler_ + static_cast<int32_t>(inbox_.sequences.size());
  const int32_t free_slots = std::max(0, config_.max_batch_size - num_running_);
  if (config_.max_queue_size > 0 && num_waiting >= config_.max_queue_size + free_slots) {
    return {StatusCode::kResourceExhausted,
            fmt::format(
                "overloaded: {} requests are already waiting for batch capacity (--max-queue-size)",
                config_.max_queue_size)};
  }
  inbox_.sequences.push_back(std::move(seq));
  stream = std::move(new_stream);
  wake_.notify_one();
  return Status::ok();
}

void Engine::cancel(uint64_t request_id) {
  std::lock_guard lock(mutex_);
  inbox_.cancels.push_back(request_id);
  wake_.notify_one();
}

void Engine::stop() {
  std::lock_guard lock(mutex_);
  is_stopping_ = true;
  wake_.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  EngineStats s = stats_;
  s.num_waiting = num_waiting_in_scheduler_ + static_cast<int32_t>(inbox_.sequences.size());
  return s;
}

bool Engine::take_inbox(std::vector<uint64_t>& cancels) {
  std::vector<std::pair<std::shared_ptr<RequestStream>, Status>> refused;
  {
    std::unique_lock lock(mutex_);
    if (!scheduler_->has_unfinished()) {
      wake_.wait(lock, [&] {
        return is_stopping_ || !inbox_.sequences.empty() || !inbox_.cancels.empty();
      });
    }
    if (is_stopping_) return false;
    for (auto& seq : inbox_.sequences) {
      std::shared_ptr<RequestStream> stream = seq->stream;
      const bool has_deadline = seq->deadline || seq->queue_deadline;
      // submit() checked admissibility, so this refuses nothing today; if it did, say so.
      if (Status s = scheduler_->add(std::move(seq)); !s.is_ok()) {
        refused.emplace_back(std::move(stream), std::move(s));
      } else if (has_deadline) {
        ++num_deadlines_;
      }
    }
    inbox_.sequences.clear();
    std::swap(cancels, inbox_.cancels);
    publish_counts_locked();
  }
  for (auto& [stream, status] : refused)  // outside the lock: push() runs the stream's listener
    stream->push(ending(FinishReason::kError, std::move(status)));
  return true;
}

void Engine::loop() {
  std::vector<uint64_t> cancels;
  while (take_inbox(cancels)) {
    try {
      for (uint64_t id : cancels)
        end(id, FinishReason::kCancelled, Status(StatusCode::kCancelled, "cancelled"));
      cancels.clear();
      expire_deadlines();
      if (scheduler_->has_unfinished()) step();
    } catch (const std::exception& e) {
      // A failed step (e.g. out of device memory) fails the requests in flight, not the server.
      LOG_ERROR("engine step failed: {}; failing {} requests", e.what(),
                scheduler_->num_waiting() + scheduler_->num_running());
      end_all(FinishReason::kError, Status(StatusCode::kInternal, e.what()));
    }
    // Stats first: a client that has seen a step's tokens then finds the step in /metrics.
    publish_stats();
    writer_->flush();  // threaded: pushed while the next step runs
  }
  end_all(FinishReason::kCancelled, Status(StatusCode::kUnavailable, "the engine stopped"));
  writer_->drain();
  std::lock_guard lock(mutex_);
  for (auto& seq : inbox_.sequences) {
    seq->stream->push(
        ending(FinishReason::kCancelled, Status(StatusCode::kUnavailable, "the engine stopped")));
  }
  inbox_.sequences.clear();
  publish_counts_locked();
}

void Engine::end_all(FinishReason reason, const Status& error) {
  std::vector<uint64_t> ids;
  scheduler_->for_each([&](const Sequence& seq) { ids.push_back(seq.id); });
  for (uint64_t id : ids) end(id, reason, error);
}

void Engine::expire_deadlines() {
  if (num_deadlines_ == 0) return;  // the common case: no request has one
  const auto now = Clock::now();
  std::vector<uint64_t> expired, queue_expired;
  scheduler_->for_each([&](const Sequence& seq) {
    if (seq.deadline && *seq.deadline <= now) {
      expired.push_back(seq.id);
    } else if (seq.queue_deadline && *seq.queue_deadline <= now && !seq.was_admitted()) {
      queue_expired.push_back(seq.id);
    }
  });
  for (uint64_t id : expired) {
    end(id, FinishReason::kError,
        Status(StatusCode::kDeadlineExceeded, "the request's deadline passed"));
  }
  for (uint64_t id : queue_expired) {
    end(id, FinishReason::kError,
        Status(StatusCode::kUnavailable,
               "request timeout expired: the request waited longer than its queue timeout"));
  }
  totals_.num_deadlines_exceeded += static_cast<int64_t>(expired.size());
  totals_.num_queue_timeouts += static_cast<int64_t>(queue_expired.size());
}

void Engine::step() {
  using Ms = std::chrono::duration<double, std::milli>;
  const auto begin = Clock::now();
  SchedulerOutput out = scheduler_->schedule();
  const auto scheduled = Clock::now();
  totals_.schedule_ms += Ms(scheduled - begin).count();
  for (uint64_t id : out.admitted_seq_ids) {
    Sequence* seq = scheduler_->find(id);
    if (seq == nullptr || seq->was_admitted()) continue;  // re-admitted after a preemption
    seq->times.admitted = scheduled;
    seq->num_prompt_cached_tokens = seq->num_cached_tokens;
  }
  {
    // Admission moved requests from waiting to running: both counts change together under
    // submit()'s lock, so its load check never sees a request as neither (or as both).
    std::lock_guard lock(mutex_);
    publish_counts_locked();
  }
  if (out.is_empty()) return;
  for (const ScheduledSequence& s : out.scheduled) {
    if (s.is_prefill_chunk) totals_.num_prompt_tokens += s.num_new_tokens;
  }
  totals_.num_steps++;
  totals_.last_step_num_tokens = out.num_batched_tokens;
  totals_.last_step_num_seqs = static_cast<int32_t>(out.scheduled.size());
  const auto run_begin = Clock::now();  // the draft model's proposals count as the runner's
  if (draft_runner_ && out.num_drafts > 0) propose_with_draft(out);
  const StepResult& result = runner_->step(out);
  const auto now = Clock::now();
  totals_.runner_ms += Ms(now - run_begin).count();
  scheduler_->update(out, result);
  keep_prompt_logprobs(out, result);
  size_t next_sample = 0, sampled_index = 0;
  for (const ScheduledSequence& s : out.scheduled) {
    if (!s.needs_sample) continue;
    Sequence& seq = *s.seq;
    // One token, or a speculative decode's accepted drafts and the token after them: each counts
    // as generated and is checked against the stop rules in turn; the first that finishes the
    // sequence is its last (update() appended the rest, which the finished sequence drops).
    const int32_t num_tokens = 1 + result.num_accepted(sampled_index++);
    if (draft_runner_ && s.num_drafts() > 0) {
      // The draft saw the last token and drafts [0, d - 1) at positions from num_computed_tokens:
      // valid as far as the accepted drafts go.
      seq.num_draft_computed_tokens =
          s.num_computed_tokens + 1 + std::min(num_tokens - 1, s.num_drafts() - 1);
    }
    const SampleResult* samples = &result.samples[next_sample];
    next_sample += static_cast<size_t>(num_tokens);
    if (!seq.times.first_token) seq.times.first_token = now;
    RequestOutput o;
    // The first token's output carries the prompt's logprobs, all scored by now.
    if (seq.sampling.has_prompt_logprobs() && seq.sampling_state.num_generated() == 0)
      o.prompt_logprobs = std::move(seq.prompt_logprobs);
    for (int32_t j = 0; j < num_tokens && !o.is_final(); ++j) {
      const SampleResult& sample = samples[j];
      seq.sampling_state.on_token(sample.token_id);
      totals_.num_generated_tokens++;
      o.token_ids.push_back(sample.token_id);
      if (seq.sampling.has_logprobs()) o.logprobs.push_back(sample);
      o.finish_reason = check_finish(seq.sampling, seq.sampling_state.num_generated(),
                                     sample.token_id, eos_token_ids_);
    }
    emit(seq, std::move(o), now);  // may finish `seq`: the last use of s.seq
  }
  totals_.update_ms += Ms(Clock::now() - now).count();
}

void Engine::keep_prompt_logprobs(const SchedulerOutput& out, const StepResult& result) {
  size_t next = 0;
  for (const ScheduledSequence& s : out.scheduled) {
    if (s.num_prompt_logprob_rows == 0) continue;
    const auto first = result.prompt_logprobs.begin() + static_cast<std::ptrdiff_t>(next);
    next += static_cast<size_t>(s.num_prompt_logprob_rows);
    Sequence& seq = *s.seq;
    // Chunks run in order and prefix reuse skips such sequences, so the rows continue where the
    // last ones ended (a recompute after a preemption scores only what was not scored).
    if (first->token_id != seq.token_ids[static_cast<size_t>(seq.next_prompt_logprob)]) {
      fail(StatusCode::kInternal, "sequence {}: prompt logprobs out of order at token {}", seq.id,
           seq.next_prompt_logprob);
    }
    seq.prompt_logprobs.insert(seq.prompt_logprobs.end(), first, first + s.num_prompt_logprob_rows);
    seq.next_prompt_logprob += s.num_prompt_logprob_rows;
  }
}

void Engine::propose_with_draft(SchedulerOutput& out) {
  // Round 0 feeds each speculating sequence what its draft cache lacks, up to its last token;
  // round j > 0 feeds draft j - 1. Every round's greedy pick is the next draft.
  std::vector<ScheduledSequence*> spec;
  for (ScheduledSequence& s : out.scheduled) {
    if (s.num_drafts() > 0) spec.push_back(&s);
  }
  int32_t max_drafts = 0;
  for (const ScheduledSequence* s : spec) max_drafts = std::max(max_drafts, s->num_drafts());
  const auto vocab = static_cast<size_t>(draft_runner_->vocab_size());
  std::vector<RunnerSequence> batch;
  std::vector<ScheduledSequence*> rows;
  for (int32_t round = 0; round < max_drafts; ++round) {
    batch.clear();
    rows.clear();
    for (ScheduledSequence* s : spec) {
      if (round >= s->num_drafts()) continue;
      Sequence& seq = *s->seq;
      if (round == 0) {
        // Not below the blocks a sliding window released (kv_window covers the draft's window,
        // so what its queries see is still there; a lagging draft cache then starts at the first
        // kept position — its drafts may differ, the verified output does not).
        const int32_t first_kept = seq.num_released_blocks * scheduler_config_.block_size;
        const int32_t from =
            std::max(std::min(seq.num_draft_computed_tokens, s->num_computed_tokens), first_kept);
        batch.push_back({seq.token_ids.data() + from, seq.num_tokens() - from, from,
                         &seq.block_table, LogitRows::kLast});
      } else {
        batch.push_back({&s->verify_tokens[static_cast<size_t>(round)], 1,
                         s->num_computed_tokens + round, &seq.block_table, LogitRows::kLast});
      }
      rows.push_back(s);
    }
    const std::span<const float> logits = draft_runner_->forward_logits(batch);
    for (size_t r = 0; r < rows.size(); ++r) {
      rows[r]->verify_tokens[static_cast<size_t>(round) + 1] =
          argmax_token(logits.subspan(r * vocab, vocab));
    }
  }
}

void Engine::emit(Sequence& seq, RequestOutput out, Clock::time_point now) {
  out.emitted = now;
  out.num_prompt_tokens = seq.num_prompt_tokens;
  out.num_cached_tokens = seq.num_prompt_cached_tokens;
  out.num_generated_tokens = seq.sampling_state.num_generated();
  if (out.is_final()) seq.times.finished = now;
  out.times = seq.times;
  std::shared_ptr<RequestStream> stream = seq.stream;
  if (out.is_final()) {
    if (seq.deadline || seq.queue_deadline) --num_deadlines_;
    const bool was_waiting = !seq.was_admitted();
    scheduler_->finish(seq.id);  // destroys `seq`
    if (was_waiting) {           // the waiting count drops before its client hears of the end
      std::lock_guard lock(mutex_);
      publish_counts_locked();
    }
  }
  writer_->add(std::move(stream), std::move(out));
}

void Engine::end(uint64_t id, FinishReason reason, Status error) {
  Sequence* seq = scheduler_->find(id);
  if (seq == nullptr) return;
  emit(*seq, ending(reason, std::move(error)), Clock::now());
}

void Engine::publish_counts_locked() {
  num_waiting_in_scheduler_ = scheduler_->num_waiting_new();
  num_running_ = scheduler_->num_running();
}

void Engine::publish_stats() {
  SchedulerStats s = scheduler_->stats();
  std::lock_guard lock(mutex_);
  stats_ = totals_;
  stats_.device_steps = runner_->step_timeline();
  stats_.num_running = s.num_running;
  publish_counts_locked();  // finished requests freed their slots
  stats_.num_total_blocks = scheduler_config_.num_blocks;
  stats_.num_used_blocks = s.num_used_blocks;
  stats_.num_free_blocks = s.num_free_blocks;
  stats_.block_size = scheduler_config_.block_size;
  stats_.num_prefix_query_tokens = s.prefix_cache.num_query_tokens;
  stats_.num_prefix_hit_tokens = s.prefix_cache.num_hit_tokens;
  stats_.num_preemptions = s.num_preemptions;
  stats_.num_window_released_blocks = s.num_window_released_blocks;
  stats_.num_priority_admissions = s.num_priority_admissions;
  stats_.num_spec_decodes = s.num_spec_decodes;
  stats_.num_draft_tokens = s.num_draft_tokens;
  stats_.num_accepted_tokens = s.num_accepted_tokens;
}

}  // namespace llmserve
