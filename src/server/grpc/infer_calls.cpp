#include "server/grpc/infer_calls.h"

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "server/generation_pump.h"
#include "server/grpc/infer_request.h"
#include "server/status_table.h"

namespace llmserve::grpc_frontend {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

// A request the client started and the engine accepted; `pump` reads it (after begin_generation).
struct Generation {
  std::shared_ptr<GenerationHandle> handle;  // until the pump takes it
  std::shared_ptr<GenerationPump> pump;
  InferOptions options;
  std::string model_name;
  std::string text;        // what was read and not yet sent (non-streamed replies accumulate here)
  int64_t num_tokens = 0;  // tokens behind `text`
  std::vector<float> logprobs;  // of those tokens (return_log_probs)
};

// Validates and starts one request. On failure the rejection is recorded and returned.
Status begin_generation(const CallContext& context, ::grpc::CallbackServerContext* server_context,
                        const ModelInferRequest& wire, Generation& generation) {
  GenerateRequest request;
  request.model = wire.model_name();
  request.protocol = "grpc";
  Status s = context.check_model(wire.model_name(), wire.model_version());
  if (s.is_ok()) s = parse_infer_request(wire, request, generation.options);
  const auto deadline = server_context->deadline();
  if (deadline < std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    request.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          deadline - std::chrono::system_clock::now());
  }
  if (s.is_ok()) s = context.service->start(request, generation.handle);
  if (!s.is_ok()) {
    context.service->reject(request, s);
    return s;
  }
  generation.model_name = wire.model_name();
  if (!generation.options.is_input_excluded)
    generation.text = std::get<std::string>(request.prompt);
  return Status::ok();
}

// The gRPC status a generation ended with when it did not end well.
::grpc::Status failure_status(const GenerateChunk& chunk) {
  if (!chunk.error.is_ok()) return to_grpc_status(chunk.error);
  return {::grpc::StatusCode::CANCELLED, "request cancelled"};
}

bool is_success(const GenerateChunk& chunk) {
  return chunk.finish_reason == FinishReason::kStop || chunk.finish_reason == FinishReason::kLength;
}

// Pumps g's handle on the context's drain thread into call->on_chunk / call->on_done (keyed by
// the handle's id); the call is held weakly.
template <typename Call>
void pump(const std::shared_ptr<Call>& call, Generation& g) {
  const uint64_t id = g.handle->id();
  std::weak_ptr<Call> weak = call;
  WorkerPool* drains = call->context.drains;
  g.pump = GenerationPump::start(
      std::move(g.handle),
      [drains](std::function<void()> task) { drains->try_post(std::move(task)); },
      [weak, id](GenerateChunk& chunk, GenerationHandle&) {
        if (auto c = weak.lock()) c->on_chunk(id, chunk);
      },
      [weak, id] {
        if (auto c = weak.lock()) c->on_done(id);
      });
}

const ::grpc::Status& busy_status() {
  static const ::grpc::Status status(
      ::grpc::StatusCode::UNAVAILABLE,
      "the server is busy: too many requests are waiting to be tokenized "
      "(--tokenizer-queue-size); retry later");
  return status;
}

class UnaryInferCall : public ::grpc::ServerUnaryReactor,
                       public std::enable_shared_from_this<UnaryInferCall> {
 public:
  UnaryInferCall(const CallContext& c, ModelInferResponse* response)
      : context(c), response_(response) {}

  // Prepares `request` on the context's workers (or here without them), then generates.
  void begin(::grpc::CallbackServerContext* server_context, const ModelInferRequest* request) {
    self_ = shared_from_this();
    auto prepare = [self = self_, server_context, request] {
      self->prepare(server_context, *request);
    };
    if (context.workers == nullptr) return prepare();
    if (!context.workers->try_post(std::move(prepare))) {
      std::lock_guard lock(mutex_);
      is_finished_ = true;
      Finish(busy_status());
    }
  }

  void on_chunk(uint64_t, const GenerateChunk& chunk) {
    std::lock_guard lock(mutex_);
    generation_.text += chunk.text;
    for (const SampleResult& r : chunk.logprobs) generation_.logprobs.push_back(r.logprob);
    if (chunk.is_final()) final_ = chunk;
  }

  // After the final chunk, once the handle reported the request's record.
  void on_done(uint64_t) {
    std::lock_guard lock(mutex_);
    is_finished_ = true;
    const bool ok = final_ && is_success(*final_);
    if (ok)
      fill_text_response(generation_.model_name, generation_.options, generation_.text,
                         generation_.logprobs, *response_);
    Finish(ok       ? ::grpc::Status::OK
           : final_ ? failure_status(*final_)
                    : ::grpc::Status(::grpc::StatusCode::CANCELLED, "request cancelled"));
  }

  void OnCancel() override {
    std::lock_guard lock(mutex_);
    is_cancelled_ = true;
    if (generation_.pump) generation_.pump->cancel();
  }
  void OnDone() override { self_.reset(); }

  const CallContext context;

 private:
  void prepare(::grpc::CallbackServerContext* server_context, const ModelInferRequest& request) {
    Generation g;
    const Status s = begin_generation(context, server_context, request, g);
    std::lock_guard lock(mutex_);
    if (!s.is_ok()) {
      is_finished_ = true;
      Finish(to_grpc_status(s));
      return;
    }
    generation_ = std::move(g);
    pump(self_, generation_);
    if (is_cancelled_) generation_.pump->cancel();  // the final chunk still finishes the call
  }

  std::mutex mutex_;
  ModelInferResponse* response_;
  Generation generation_;
  std::optional<GenerateChunk> final_;
  bool is_finished_ = false;
  bool is_cancelled_ = false;
  std::shared_ptr<UnaryInferCall> self_;
};

class StreamInferCall
    : public ::grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>,
      public std::enable_shared_from_this<StreamInferCall> {
 public:
  StreamInferCall(const CallContext& c, ::grpc::CallbackServerContext* server_context)
      : context(c), server_context_(server_context) {}

  void begin() {
    self_ = shared_from_this();
    {
      std::lock_guard lock(mutex_);
      is_reading_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    {
      std::lock_guard lock(mutex_);
      if (!ok) {
        is_reading_ = false;
        is_read_done_ = true;
      } else if (is_finished_ || is_cancelled_) {
        is_reading_ = false;
      } else if (context.workers != nullptr) {
        // is_reading_ stays true until the request is prepared and the next read starts, so the
        // call cannot finish meanwhile and requests start in the order they came.
        auto request = std::make_shared<ModelInferRequest>(std::move(request_));
        if (context.workers->try_post([self = self_, request] { self->prepare(*request); })) return;
        in_band_error(*request, busy_status().error_message());
      } else {
        begin_request(request_);
      }
    }
    read_next();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mutex_);
      writes_.pop_front();
      is_writing_ = false;
      if (!ok) cancel_all();  // the client is gone
    }
    write_next();
  }

  void OnCancel() override {
    {
      std::lock_guard lock(mutex_);
      cancel_all();
    }
    write_next();
  }

  void OnDone() override {
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, g] : active_) g.pump->cancel();
    }
    self_.reset();
  }

  void on_chunk(uint64_t id, const GenerateChunk& chunk) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = active_.find(id); it != active_.end()) add_chunk(it->second, chunk);
    }
    write_next();
  }

  // After the final chunk, once the handle reported the request's record.
  void on_done(uint64_t id) {
    {
      std::lock_guard lock(mutex_);
      active_.erase(id);
    }
    write_next();
  }

  const CallContext context;

 private:
  // On a worker: starts `request` (or answers its error in band), then reads the next one.
  void prepare(const ModelInferRequest& request) {
    {
      std::lock_guard lock(mutex_);
      if (!is_finished_ && !is_cancelled_) begin_request(request);
    }
    read_next();
  }

  // Starts the next read unless the call is ending; then pumps what is queued.
  void read_next() {
    bool should_read = false;
    {
      std::lock_guard lock(mutex_);
      should_read = !is_finished_ && !is_cancelled_ && !is_read_done_;
      is_reading_ = should_read;
    }
    if (should_read) StartRead(&request_);
    write_next();
  }

  // Under the lock: starts `request` or answers its error in band.
  void begin_request(const ModelInferRequest& request) {
    Generation g;
    if (Status s = begin_generation(context, server_context_, request, g); !s.is_ok())
      return in_band_error(request, s.message());
    const uint64_t id = g.handle->id();
    Generation& started = active_.emplace(id, std::move(g)).first->second;
    pump(self_, started);
  }

  void in_band_error(const ModelInferRequest& request, const std::string& message) {
    ModelStreamInferResponse& r = writes_.emplace_back();
    r.set_error_message(message);
    r.mutable_infer_response()->set_model_name(request.model_name());
    r.mutable_infer_response()->set_id(request.id());
  }

  // Under the lock: queues the responses of one chunk of `g`.
  void add_chunk(Generation& g, const GenerateChunk& chunk) {
    g.text += chunk.text;
    g.num_tokens += static_cast<int64_t>(chunk.token_ids.size());
    for (const SampleResult& r : chunk.logprobs) g.logprobs.push_back(r.logprob);
    if (chunk.is_final()) {
      if (is_success(chunk)) {
        queue_text(g, true);
      } else if (!is_cancelled_) {
        ModelStreamInferResponse& r = writes_.emplace_back();
        r.set_error_message(failure_status(chunk).error_message());
        r.mutable_infer_response()->set_model_name(g.model_name);
        r.mutable_infer_response()->set_id(g.options.id);
      }
    } else if (g.options.is_streaming && !g.text.empty()) {
      queue_text(g, false);
    }
  }

  void queue_text(Generation& g, bool is_final) {
    if (is_cancelled_) return;
    ModelStreamInferResponse& r = writes_.emplace_back();
    ModelInferResponse& ir = *r.mutable_infer_response();
    fill_text_response(g.model_name, g.options, g.text, g.logprobs, ir);
    (*ir.mutable_parameters())[std::string(kFinalResponseParameter)].set_bool_param(is_final);
    // Not Triton's: how many generated tokens this response's text carries (load generators
    // count tokens exactly from it; Triton's clients ignore unknown parameters).
    (*ir.mutable_parameters())[std::string(kOutputTokensParameter)].set_int64_param(g.num_tokens);
    g.text.clear();
    g.num_tokens = 0;
    g.logprobs.clear();
  }

  void cancel_all() {
    is_cancelled_ = true;
    for (auto& [id, g] : active_) g.pump->cancel();
  }

  // Starts the next write, or finishes the call once nothing is left to read, run or write.
  void write_next() {
    ModelStreamInferResponse* to_write = nullptr;
    std::optional<::grpc::Status> status;
    {
      std::lock_guard lock(mutex_);
      if (is_finished_ || is_writing_) return;
      if (is_cancelled_) writes_.clear();
      if (!writes_.empty()) {
        is_writing_ = true;
        to_write = &writes_.front();
      } else if (!is_reading_ && active_.empty() && (is_read_done_ || is_cancelled_)) {
        is_finished_ = true;
        status = is_cancelled_ ? ::grpc::Status(::grpc::StatusCode::CANCELLED, "stream cancelled")
                               : ::grpc::Status::OK;
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (status) Finish(*status);
  }

  ::grpc::CallbackServerContext* server_context_;
  std::mutex mutex_;
  ModelInferRequest request_;                    // the read in flight
  std::map<uint64_t, Generation> active_;        // by handle id
  std::deque<ModelStreamInferResponse> writes_;  // front() is being written when is_writing_
  bool is_reading_ = false;
  bool is_read_done_ = false;
  bool is_writing_ = false;
  bool is_cancelled_ = false;
  bool is_finished_ = false;
  std::shared_ptr<StreamInferCall> self_;
};

}  // namespace

::grpc::Status to_grpc_status(const Status& status) {
  if (status.is_ok()) return ::grpc::Status::OK;
  return {static_cast<::grpc::StatusCode>(protocol_status(status.code()).grpc_code),
          status.message()};
}

::grpc::ServerUnaryReactor* start_model_infer(const CallContext& context,
                                              ::grpc::CallbackServerContext* server_context,
                                              const ModelInferRequest* request,
                                              ModelInferResponse* response) {
  auto call = std::make_shared<UnaryInferCall>(context, response);
  call->begin(server_context, request);
  return call.get();
}

::grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* start_model_stream_infer(
    const CallContext& context, ::grpc::CallbackServerContext* server_context) {
  auto call = std::make_shared<StreamInferCall>(context, server_context);
  call->begin();
  return call.get();
}

}  // namespace llmserve::grpc_frontend
