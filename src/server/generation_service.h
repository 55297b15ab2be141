// GenerationService: the one path from any frontend (KServe v2, Triton generate, OpenAI, gRPC)
// to the engine. A frontend parses its wire format into a GenerateRequest, calls start(), and
// reads GenerateChunks (text deltas with token ids, logprobs and the finish reason) from the
// handle. Tokenization happens in start() on the caller's thread; detokenization and stop-string
// matching happen in GenerationHandle::next() on the reader's thread, so the engine thread only
// runs the model. A stop string cancels the engine request and ends the stream with kStop.
//
// Every request is counted once in stats() and reported once to the observers (metrics): a
// started one by its GenerationHandle when the frontend lets go of it (after the last byte went
// out, however the request ended), a refused one by reject().
//
// Thread-safety: start(), reject() and stats() from any thread. A handle is read by one thread at
// a time; cancel() from any thread. Observers are added before requests start.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "engine/engine.h"
#include "server/model_stats.h"
#include "server/request_record.h"
#include "server/structured_output.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace llmserve {

struct GenerateRequest {
  std::variant<std::string, std::vector<int32_t>> prompt;  // text, or token ids as-is
  SamplingParams sampling;                                 // sampling.stop holds the stop strings
  bool add_special_tokens = true;   // bos for text prompts, as the tokenizer says
  bool skip_special_tokens = true;  // in the output text
  bool include_stop_str_in_output = false;
  Guide guide;  // structured output: compiled by start() into sampling.grammar
  // Words that must not be generated: start() tokenizes each into sampling.bad_words, as is and
  // with a leading space (the word's form after another word), as vLLM does.
  std::vector<std::string> bad_words;
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> deadline;
  std::optional<Clock::time_point> queue_deadline;  // Triton's `timeout`: unadmitted by then → 503
  int32_t priority = 0;                             // lower first (Request::priority)
  bool speculative = true;  // false: no speculative drafts for this request (Request::speculative)
  std::string model;        // for the record
  std::string protocol;     // for the record
};

struct GenerateChunk {
  std::string text;                    // new text (never half a UTF-8 character)
  std::vector<int32_t> token_ids;      // new tokens
  std::vector<SampleResult> logprobs;  // aligned with token_ids when asked for
  // sampling.prompt_logprobs: prompt tokens 1.. scored, on the chunk of the first token only
  // (RequestOutput::prompt_logprobs).
  std::vector<SampleResult> prompt_logprobs;
  FinishReason finish_reason = FinishReason::kNone;
  Status error;  // with kError / kCancelled
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;
  int32_t num_generated_tokens = 0;
  bool is_final() const { return finish_reason != FinishReason::kNone; }
};

// Triton's reserved scheduling parameters (KServe HTTP and gRPC) onto `r`:
//   priority: 0 is the default level; levels 1..kMaxTritonPriority are admitted ahead of
//             requests without one, 1 first (Request::priority kTritonPriorityBase + level);
//   timeout:  microseconds the request may wait for its first admission (0: no limit); past it
//             the request ends with 503 / UNAVAILABLE "request timeout expired" (Triton's
//             REJECTED).
// Other keys are not scheduling parameters: ok, `r` untouched. A value out of range → 400.
inline constexpr int64_t kMaxTritonPriority = 1'000'000;
inline constexpr int32_t kTritonPriorityBase = -1'000'001;
Status apply_triton_scheduling(std::string_view key, uint64_t value, GenerateRequest& r);
bool is_triton_scheduling_parameter(std::string_view key);

class GenerationService;

class GenerationHandle {
 public:
  // Reports the record: `completed` is now. A request dropped before its final chunk is cancelled
  // in the engine and recorded as cancelled.
  ~GenerationHandle();
  GenerationHandle(const GenerationHandle&) = delete;
  GenerationHandle& operator=(const GenerationHandle&) = delete;

  uint64_t id() const { return stream_->id(); }
  // Next chunk, blocking up to `timeout`; false on timeout. After the final chunk, false at once.
  bool next(GenerateChunk& chunk, std::chrono::milliseconds timeout = std::chrono::hours(24));
  // Non-blocking variant for event-driven frontends (see set_listener).
  bool try_next(GenerateChunk& chunk);
  // Called on the engine thread whenever new output is ready: must only post work elsewhere.
  void set_listener(std::function<void()> listener) { stream_->set_listener(std::move(listener)); }
  void cancel();  // e.g. the client disconnected; the stream then ends with kCancelled
  bool is_done() const { return is_done_; }
  const std::vector<int32_t>& prompt_token_ids() const { return prompt_token_ids_; }
  // The record so far (complete once the final chunk was read); frontends add their
  // serialization time to output_duration. Reported when the handle goes.
  RequestRecord& record() { return record_; }

 private:
  friend class GenerationService;
  GenerationHandle(GenerationService& service, const GenerateRequest& request,
                   std::shared_ptr<RequestStream> stream, std::vector<int32_t> prompt_token_ids);
  void convert(RequestOutput& out, GenerateChunk& chunk);

  GenerationService& service_;
  std::shared_ptr<RequestStream> stream_;
  IncrementalDetokenizer detokenizer_;
  StopMatcher stop_matcher_;
  std::vector<int32_t> prompt_token_ids_;
  bool is_stopped_by_text_ = false;
  bool is_done_ = false;
  std::optional<Clock::time_point> last_emit_;
  RequestRecord record_;
};

class GenerationService {
 public:
  GenerationService(Engine& engine, const Tokenizer& tokenizer);

  // Tokenizes and submits. A text prompt longer than max_prompt_bytes() is refused before any
  // tokenizer work (kOutOfRange, as a prompt of too many tokens). On error (bad params, prompt too
  // long, overloaded, shutting down) returns the engine's Status and `handle` stays null; the
  // frontend answers its client and calls reject(), as for a request it refused itself.
  Status start(const GenerateRequest& request, std::shared_ptr<GenerationHandle>& handle);
  // Records a request refused before it started (failure kRejected, completed now).
  void reject(const GenerateRequest& request, const Status& status);
  void add_observer(RequestObserver* observer) { observers_.push_back(observer); }
  // The statistics extension's counters over every request of every protocol (HTTP /stats and
  // gRPC ModelStatistics render these).
  const ModelStats& stats() const { return stats_; }

  // Bytes beyond which a text prompt cannot fit the engine's max_model_len in tokens: max_model_len
  // times the longest token's bytes, times 4 for normalizers that shrink text.
  int64_t max_prompt_bytes() const { return max_prompt_bytes_; }

  Engine& engine() { return engine_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // Compiles response_format / guided_* guides for this model (cached).
  StructuredOutputs& structured_outputs() { return structured_; }

 private:
  friend class GenerationHandle;
  // Counts a completed record in stats() and hands it to every observer.
  void report(RequestRecord& record);

  Engine& engine_;
  const Tokenizer& tokenizer_;
  int64_t max_prompt_bytes_ = 0;
  StructuredOutputs structured_;
  std::vector<RequestObserver*> observers_;
  ModelStats stats_;
};

}  // namespace llmserve
