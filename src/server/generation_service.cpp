#include "server/generation_service.h"

#include <algorithm>

#include "common/logging.h"

namespace llmserve {

GenerationHandle::GenerationHandle(GenerationService& service, const GenerateRequest& request,
                                   std::shared_ptr<RequestStream> stream,
                                   std::vector<int32_t> prompt_token_ids)
    : service_(service),
      stream_(std::move(stream)),
      detokenizer_(service.tokenizer(),
                   DecodeOptions{.skip_special_tokens = request.skip_special_tokens}),
      stop_matcher_(request.sampling.stop, request.include_stop_str_in_output),
      prompt_token_ids_(std::move(prompt_token_ids)) {
  record_.model = request.model;
  record_.protocol = request.protocol;
  record_.arrival = request.arrival;
  record_.num_prompt_tokens = static_cast<int32_t>(prompt_token_ids_.size());
}

GenerationHandle::~GenerationHandle() {
  if (!is_done_) {  // dropped before the end: nobody reads what the engine would still make
    service_.engine().cancel(stream_->id());
    record_.failure = FailureReason::kCancelled;
    record_.status = Status(StatusCode::kCancelled, "the frontend dropped the request");
  }
  record_.completed = Clock::now();
  try {
    service_.report(record_);
  } catch (const std::exception& e) {  // a destructor must not throw; metrics are not worth a crash
    LOG_ERROR("request {}: reporting its record failed: {}", stream_->id(), e.what());
  }
}

bool GenerationHandle::next(GenerateChunk& chunk, std::chrono::milliseconds timeout) {
  if (is_done_) return false;
  RequestOutput out;
  if (!stream_->next(out, timeout)) return false;
  convert(out, chunk);
  return true;
}

bool GenerationHandle::try_next(GenerateChunk& chunk) {
  if (is_done_) return false;
  RequestOutput out;
  if (!stream_->try_next(out)) return false;
  convert(out, chunk);
  return true;
}

void GenerationHandle::cancel() {
  service_.engine().cancel(stream_->id());
}

void GenerationHandle::convert(RequestOutput& out, GenerateChunk& chunk) {
  const auto start = Clock::now();
  chunk = GenerateChunk();
  chunk.num_prompt_tokens = out.num_prompt_tokens;
  chunk.num_cached_tokens = out.num_cached_tokens;
  chunk.num_generated_tokens = out.num_generated_tokens;
  chunk.prompt_logprobs = std::move(out.prompt_logprobs);
  for (size_t i = 0; i < out.token_ids.size(); ++i) {
    const int32_t id = out.token_ids[i];
    if (is_stopped_by_text_) break;  // tokens the engine made before it saw the cancel
    chunk.token_ids.push_back(id);
    if (i < out.logprobs.size()) chunk.logprobs.push_back(std::move(out.logprobs[i]));
    // An eos or stop token id ends the sequence and is not text.
    if (out.finish_reason == FinishReason::kStop && i + 1 == out.token_ids.size()) break;
    auto m = stop_matcher_.push(detokenizer_.push(id));
    chunk.text += m.text;
    if (m.stopped) {
      is_stopped_by_text_ = true;
      service_.engine().cancel(stream_->id());
    }
  }
  if (!out.token_ids.empty()) {
    const auto now = out.emitted;
    if (last_emit_)
      record_.inter_token_seconds.push_back(
          std::chrono::duration<double>(now - *last_emit_).count());
    last_emit_ = now;
  }
  if (out.is_final()) {
    is_done_ = true;
    chunk.finish_reason = is_stopped_by_text_ ? FinishReason::kStop : out.finish_reason;
    if (!is_stopped_by_text_) {
      chunk.text += stop_matcher_.push(detokenizer_.flush()).text + stop_matcher_.flush();
      chunk.error = out.error;
    }
    record_.admitted = out.times.admitted;
    record_.first_token = out.times.first_token;
    record_.finished = out.times.finished;
    record_.num_cached_tokens = out.num_cached_tokens;
    record_.num_generated_tokens = out.num_generated_tokens;
    record_.is_success =
        chunk.finish_reason == FinishReason::kStop || chunk.finish_reason == FinishReason::kLength;
    if (!record_.is_success) {
      record_.status = chunk.error;
      // Triton's reasons: a queue timeout before admission is REJECTED (its "Request timeout
      // expired"), a cancel CANCELED, anything else the backend's.
      if (chunk.finish_reason == FinishReason::kCancelled) {
        record_.failure = FailureReason::kCancelled;
      } else if (chunk.error.code() == StatusCode::kUnavailable && !out.times.admitted) {
        record_.failure = FailureReason::kRejected;
      } else {
        record_.failure = FailureReason::kBackend;
      }
    }
  }
  record_.output_duration += Clock::now() - start;
}

GenerationService::GenerationService(Engine& engine, const Tokenizer& tokenizer)
    : engine_(engine),
      tokenizer_(tokenizer),
      structured_(tokenizer, engine.model_config().vocab_size,
                  engine.model_config().eos_token_ids) {
  // Every token covers at least one byte of its text and at most its own bytes' length.
  size_t longest = 1;
  for (int32_t id = 0; id < tokenizer_.vocab_size(); ++id) {
    longest =
        std::max({longest, tokenizer_.token_bytes(id).size(), tokenizer_.id_to_token(id).size()});
  }
  max_prompt_bytes_ =
      static_cast<int64_t>(engine_.max_model_len()) * static_cast<int64_t>(longest) * 4;
}

Status GenerationService::start(const GenerateRequest& request,
                                std::shared_ptr<GenerationHandle>& handle) {
  const auto start = Clock::now();
  std::vector<int32_t> ids;
  if (const auto* text = std::get_if<std::string>(&request.prompt)) {
    if (static_cast<int64_t>(text->size()) > max_prompt_bytes_) {
      return {StatusCode::kOutOfRange,
              fmt::format("the prompt is {} bytes, more than max_model_len ({} tokens) can hold "
                          "({} bytes at most)",
                          text->size(), engine_.max_model_len(), max_prompt_bytes_)};
    }
    EncodeOptions enc;
    enc.add_special_tokens = request.add_special_tokens;
    ids = tokenizer_.encode(*text, enc);
  } else {
    ids = std::get<std::vector<int32_t>>(request.prompt);
  }
  const auto tokenized = Clock::now();
  Request r;
  r.prompt_token_ids = ids;
  r.sampling = request.sampling;
  if (request.bad_words.size() > kMaxBadWords) {
    return invalid_argument("bad_words must hold at most {} words, got {}", kMaxBadWords,
                            request.bad_words.size());
  }
  for (const std::string& word : request.bad_words) {
    const size_t first = word.find_first_not_of(' ');
    if (first == std::string::npos) return invalid_argument("bad_words: a word is empty");
    const std::string bare = word.substr(first);
    const EncodeOptions enc{.add_special_tokens = false};
    std::vector<int32_t> plain = tokenizer_.encode(bare, enc);
    std::vector<int32_t> spaced = tokenizer_.encode(" " + bare, enc);
    if (spaced != plain) r.sampling.bad_words.push_back(std::move(spaced));
    r.sampling.bad_words.push_back(std::move(plain));
  }
  if (request.guide.kind != GuideKind::kNone) {
    if (Status s = structured_.compile(request.guide.kind, request.guide.text, request.guide.field,
                                       r.sampling.grammar);
        !s.is_ok()) {
      return s;
    }
  }
  r.arrival = request.arrival;
  r.deadline = request.deadline;
  r.queue_deadline = request.queue_deadline;
  r.priority = request.priority;
  r.speculative = request.speculative;
  std::shared_ptr<RequestStream> stream;
  if (Status s = engine_.submit(std::move(r), stream); !s.is_ok()) return s;
  handle.reset(new GenerationHandle(*this, request, std::move(stream), std::move(ids)));
  handle->record_.input_duration = tokenized - start;
  return Status::ok();
}

bool is_triton_scheduling_parameter(std::string_view key) {
  return key == "priority" || key == "timeout";
}

Status apply_triton_scheduling(std::string_view key, uint64_t value, GenerateRequest& r) {
  if (key == "priority") {
    if (value > static_cast<uint64_t>(kMaxTritonPriority)) {
      return invalid_argument(
          "parameter 'priority' must be in [0, {}] (0: the default level), got {}",
          kMaxTritonPriority, value);
    }
    r.priority = value == 0 ? 0 : kTritonPriorityBase + static_cast<int32_t>(value);
  } else if (key == "timeout") {
    // A day at most: beyond it a steady_clock deadline is no limit anyway.
    constexpr uint64_t kMaxUs = 24ull * 3600 * 1'000'000;
    if (value > kMaxUs) {
      return invalid_argument("parameter 'timeout' (microseconds) must be at most {}, got {}",
                              kMaxUs, value);
    }
    if (value == 0) {
      r.queue_deadline.reset();
    } else {
      r.queue_deadline = r.arrival + std::chrono::microseconds(value);
    }
  }
  return Status::ok();
}

void GenerationService::reject(const GenerateRequest& request, const Status& status) {
  RequestRecord r;
  r.model = request.model;
  r.protocol = request.protocol;
  r.arrival = request.arrival;
  r.status = status;
  r.failure = FailureReason::kRejected;
  r.completed = Clock::now();
  report(r);
}

void GenerationService::report(RequestRecord& record) {
  stats_.on_request_done(record);
  for (RequestObserver* o : observers_) o->on_request_done(record);
}

}  // namespace llmserve
