// The gRPC transport: one ModelStreamInfer stream per request on grpc++'s callback API. The
// reactor's callbacks run on gRPC's threads, one at a time per stream (one read in flight), so
// the trace needs no lock; the finished trace is posted back to the run's I/O thread.
//
// The request is Triton's decoupled TensorRT-LLM form: text_input BYTES, max_tokens INT32,
// min_tokens INT32 (= max_tokens unless --no-ignore-eos), temperature FP32, stream BOOL = true.
// The client half-closes with its one request; the stream's last response carries the parameter
// triton_final_response = true and the server then ends the stream.
#include <condition_variable>
#include <cstring>
#include <mutex>

#include <grpcpp/grpcpp.h>
#include <boost/asio/post.hpp>

#include "bench/load/transport.h"
#include "grpc_service.grpc.pb.h"

namespace llmserve::bench::load {
namespace {

namespace asio = boost::asio;
using inference::ModelInferRequest;
using inference::ModelStreamInferResponse;

std::string raw_bytes_element(std::string_view s) {
  std::string out(4, '\0');
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.append(s);
  return out;
}

template <typename T>
void add_input(ModelInferRequest& r, const char* name, const char* datatype, T value) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  in->add_shape(1);
  in->add_shape(1);
  std::string raw(sizeof(T), '\0');
  std::memcpy(raw.data(), &value, sizeof(T));
  r.add_raw_input_contents(raw);
}

// The text of a BYTES output's first element, from raw_output_contents or typed contents.
std::string text_output(const inference::ModelInferResponse& r) {
  for (int i = 0; i < r.outputs_size(); ++i) {
    if (r.outputs(i).name() != "text_output") continue;
    if (i < r.raw_output_contents_size()) {
      const std::string& raw = r.raw_output_contents(i);
      if (raw.size() < 4) return "";
      uint32_t n = 0;
      for (int b = 0; b < 4; ++b)
        n |= static_cast<uint32_t>(static_cast<unsigned char>(raw[static_cast<size_t>(b)]))
             << (8 * b);
      return raw.substr(4, std::min<size_t>(n, raw.size() - 4));
    }
    if (r.outputs(i).contents().bytes_contents_size() > 0)
      return r.outputs(i).contents().bytes_contents(0);
  }
  return "";
}

// Calls still inside their reactor. The transport waits for none before it (and the channel) goes
// away: a call's last act, after deleting itself and posting its trace, is to leave. Without it
// the run could end, and the process exit, while a gRPC thread was still destroying a finished
// call's ClientContext (ASan: use after free; CI saw the load generator abort at exit).
class InFlight {
 public:
  void enter() {
    std::lock_guard lock(mu_);
    ++count_;
  }
  void leave() {
    std::lock_guard lock(mu_);
    if (--count_ == 0) idle_.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return count_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  int64_t count_ = 0;
};

class GrpcCall final : public grpc::ClientBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  GrpcCall(inference::GRPCInferenceService::Stub& stub, asio::io_context& io,
           const LoadOptions& options, const Prompt& prompt, Transport::DoneFn done,
           InFlight& in_flight)
      : io_(io), done_(std::move(done)), in_flight_(in_flight) {
    in_flight_.enter();
    request_.set_model_name(options.model);
    auto* text = request_.add_inputs();
    text->set_name("text_input");
    text->set_datatype("BYTES");
    text->add_shape(1);
    text->add_shape(1);
    request_.add_raw_input_contents(raw_bytes_element(prompt.text));
    add_input<int32_t>(request_, "max_tokens", "INT32", prompt.max_tokens);
    if (options.ignore_eos) add_input<int32_t>(request_, "min_tokens", "INT32", prompt.max_tokens);
    add_input<float>(request_, "temperature", "FP32", static_cast<float>(options.temperature));
    add_input<uint8_t>(request_, "stream", "BOOL", 1);
    trace_.expected_input_tokens = prompt.num_input_tokens;
    trace_.max_tokens = prompt.max_tokens;
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              std::chrono::duration<double>(options.request_timeout_s)));
    trace_.start = Clock::now();
    stub.async()->ModelStreamInfer(&context_, this);
    StartWriteLast(&request_, grpc::WriteOptions());  // one request per stream: half-close with it
    StartRead(&response_);
    StartCall();
  }

  void OnWriteDone(bool) override {}

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the server ended the stream; OnDone follows
    const auto now = Clock::now();
    if (!response_.error_message().empty()) {
      trace_.fail("stream_error", response_.error_message());
    } else {
      const auto& r = response_.infer_response();
      std::string text = text_output(r);
      // llmserve says how many tokens a response carries; other servers (Triton) do not, and
      // each non-empty response then counts as one token.
      const auto tokens = r.parameters().find("llmserve_output_tokens");
      if (tokens != r.parameters().end()) {
        trace_.num_piece_tokens += static_cast<int32_t>(tokens->second.int64_param());
      } else if (!text.empty()) {
        trace_.num_piece_tokens += 1;
      }
      if (!text.empty()) {
        trace_.piece_times.push_back(now);
        if (trace_.text.size() < 4096) trace_.text += text;
      }
      auto it = r.parameters().find("triton_final_response");
      if (it != r.parameters().end() && it->second.bool_param()) trace_.is_complete = true;
    }
    response_.Clear();
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    trace_.end = Clock::now();
    if (!status.ok()) {
      trace_.fail(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? "timeout"
                  : status.error_code() == grpc::StatusCode::UNAVAILABLE
                      ? "connect"
                      : "grpc_" + std::to_string(status.error_code()),
                  status.error_message());
    } else if (!trace_.is_complete) {
      trace_.fail("incomplete", "the stream ended without triton_final_response");
    }
    // The reactor (and its ClientContext) goes first, then the trace is handed over, then the
    // transport is told this call is gone.
    asio::io_context& io = io_;
    InFlight& in_flight = in_flight_;
    auto finished = [done = std::move(done_), trace = std::move(trace_)]() mutable {
      done(std::move(trace));
    };
    delete this;
    asio::post(io, std::move(finished));
    in_flight.leave();
  }

 private:
  asio::io_context& io_;
  Transport::DoneFn done_;
  InFlight& in_flight_;
  grpc::ClientContext context_;
  ModelInferRequest request_;
  ModelStreamInferResponse response_;
  RequestTrace trace_;
};

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(asio::io_context& io, const LoadOptions& options) : io_(io), options_(options) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(options.host + ":" + std::to_string(options.port),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  ~GrpcTransport() override { in_flight_.wait_idle(); }

  void send(const Prompt& prompt, DoneFn done) override {
    new GrpcCall(*stub_, io_, options_, prompt, std::move(done),
                 in_flight_);  // deletes itself in OnDone
  }

 private:
  InFlight in_flight_;  // destroyed last: waited on by the destructor
  asio::io_context& io_;
  const LoadOptions& options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

}  // namespace

std::unique_ptr<Transport> make_grpc_transport(asio::io_context& io, const LoadOptions& options) {
  return std::make_unique<GrpcTransport>(io, options);
}

}  // namespace llmserve::bench::load
