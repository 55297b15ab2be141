// The HTTP transport: one HttpCall per request over a pool of keep-alive connections, all on the
// run's one I/O thread. A call reads the reply with a buffer_body parser so SSE events are seen
// (and timestamped) as their bytes arrive, chunked or not.
#include <array>
#include <limits>
#include <optional>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "bench/load/protocol.h"
#include "bench/load/sse_parser.h"
#include "bench/load/transport.h"
#include "common/status.h"

namespace llmserve::bench::load {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

class HttpTransport;

class HttpCall : public std::enable_shared_from_this<HttpCall> {
 public:
  HttpCall(HttpTransport& transport, const Prompt& prompt, Transport::DoneFn done);
  void start();

 private:
  void connect();
  void write();
  void read_header();
  void read_body();
  void take_body_bytes(size_t n);
  void end_body();
  // A reused connection the server had already closed: try once more on a fresh one.
  bool retry_fresh(const error_code& ec);
  void fail(const error_code& ec, const char* what);
  // Ends the trace at `end`: a unary reply passes the instant its body completed, so its TTFT
  // (the same instant) equals its e2e exactly instead of differing by the JSON parse.
  void finish(Clock::time_point end = Clock::now());

  HttpTransport& transport_;
  Transport::DoneFn done_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::array<char, 4096> chunk_{};
  SseParser sse_;
  std::string body_;  // unary and error replies
  RequestTrace trace_;
  int status_ = 0;
  bool is_reused_ = false;
  bool is_timed_out_ = false;
  bool is_finished_ = false;
};

class HttpTransport final : public Transport {
 public:
  HttpTransport(asio::io_context& io, const LoadOptions& options) : io_(io), options_(options) {
    tcp::resolver resolver(io);
    error_code ec;
    auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec || results.empty()) {
      fail(StatusCode::kInvalidArgument, "cannot resolve '{}': {}", options.host, ec.message());
    }
    endpoint_ = results.begin()->endpoint();
    path_ = request_path(options.target, options.model);
    host_header_ = options.host + ":" + std::to_string(options.port);
  }

  void send(const Prompt& prompt, DoneFn done) override {
    std::make_shared<HttpCall>(*this, prompt, std::move(done))->start();
  }
  void close_idle() override { idle_.clear(); }

  asio::io_context& io_;
  const LoadOptions& options_;
  tcp::endpoint endpoint_;
  std::string path_;
  std::string host_header_;
  std::vector<tcp::socket> idle_;  // keep-alive connections no call is using
};

HttpCall::HttpCall(HttpTransport& transport, const Prompt& prompt, Transport::DoneFn done)
    : transport_(transport),
      done_(std::move(done)),
      socket_(transport.io_),
      deadline_(transport.io_),
      sse_([this](std::string_view data) {
        take_payload(transport_.options_.target, data, Clock::now(), trace_);
      }) {
  const LoadOptions& o = transport.options_;
  request_.method(http::verb::post);
  request_.target(transport.path_);
  request_.version(11);
  request_.set(http::field::host, transport.host_header_);
  request_.set(http::field::user_agent, "llmserve-bench");
  request_.set(http::field::content_type, "application/json");
  if (is_streaming(o.target)) request_.set(http::field::accept, "text/event-stream");
  if (!o.api_key.empty()) request_.set(http::field::authorization, "Bearer " + o.api_key);
  request_.body() = request_body(o.target, prompt, o);
  request_.prepare_payload();
  trace_.expected_input_tokens = prompt.num_input_tokens;
  trace_.max_tokens = prompt.max_tokens;
}

void HttpCall::start() {
  trace_.start = Clock::now();
  auto self = shared_from_this();
  deadline_.expires_after(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(transport_.options_.request_timeout_s)));
  deadline_.async_wait([self](const error_code& ec) {
    if (ec || self->is_finished_) return;
    self->is_timed_out_ = true;
    error_code ignored;
    self->socket_.close(ignored);
  });
  if (!transport_.idle_.empty()) {
    socket_ = std::move(transport_.idle_.back());
    transport_.idle_.pop_back();
    is_reused_ = true;
    write();
  } else {
    connect();
  }
}

void HttpCall::connect() {
  socket_.async_connect(transport_.endpoint_, [self = shared_from_this()](const error_code& ec) {
    if (ec) return self->fail(ec, "connect");
    self->socket_.set_option(tcp::no_delay(true));
    self->write();
  });
}

void HttpCall::write() {
  http::async_write(socket_, request_, [self = shared_from_this()](const error_code& ec, size_t) {
    if (ec) {
      if (self->retry_fresh(ec)) return;
      return self->fail(ec, "io");
    }
    self->read_header();
  });
}

bool HttpCall::retry_fresh(const error_code& ec) {
  if (!is_reused_ || is_timed_out_) return false;
  is_reused_ = false;
  error_code ignored;
  socket_.close(ignored);
  socket_ = tcp::socket(transport_.io_);
  buffer_.clear();
  parser_.reset();
  connect();
  return true;
}

void HttpCall::read_header() {
  parser_.emplace();
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](const error_code& ec, size_t) {
                            if (ec) {
                              if (self->retry_fresh(ec)) return;
                              return self->fail(ec, "io");
                            }
                            self->status_ = static_cast<int>(self->parser_->get().result_int());
                            self->read_body();
                          });
}

void HttpCall::read_body() {
  if (parser_->is_done()) return end_body();
  auto& body = parser_->get().body();
  body.data = chunk_.data();
  body.size = chunk_.size();
  http::async_read_some(
      socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
        if (ec == http::error::need_buffer) ec = {};
        self->take_body_bytes(self->chunk_.size() - self->parser_->get().body().size);
        if (ec) return self->fail(ec, "io");
        self->read_body();
      });
}

void HttpCall::take_body_bytes(size_t n) {
  if (n == 0) return;
  std::string_view bytes(chunk_.data(), n);
  if (status_ == 200 && is_streaming(transport_.options_.target)) {
    sse_.feed(bytes);
  } else {
    body_.append(bytes);
  }
}

void HttpCall::end_body() {
  const Clock::time_point body_end = Clock::now();
  const Target target = transport_.options_.target;
  if (status_ != 200) {
    take_error_reply(status_, body_, trace_);
  } else if (is_streaming(target)) {
    sse_.finish();
    // Triton's generate_stream has no end marker: the end of the body is the end.
    if (target == Target::kGenerateStream) trace_.is_complete = true;
  } else {
    take_payload(target, body_, body_end, trace_);
    trace_.is_complete = true;
  }
  if (trace_.is_ok() && !trace_.is_complete)
    trace_.fail("incomplete", "the stream ended without [DONE]");
  if (parser_->keep_alive() && !is_timed_out_) {
    transport_.idle_.push_back(std::move(socket_));
  }
  // A stream's last pieces are timed as the SSE parser flushes them, after body_end.
  finish(is_streaming(target) ? Clock::now() : body_end);
}

void HttpCall::fail(const error_code& ec, const char* what) {
  if (is_timed_out_) {
    trace_.fail("timeout", "no complete reply within --request-timeout");
  } else {
    trace_.fail(what, ec.message());
  }
  error_code ignored;
  socket_.close(ignored);
  finish();
}

void HttpCall::finish(Clock::time_point end) {
  if (is_finished_) return;
  is_finished_ = true;
  deadline_.cancel();
  trace_.end = end;
  done_(std::move(trace_));
}

}  // namespace

std::unique_ptr<Transport> make_http_transport(asio::io_context& io, const LoadOptions& options) {
  return std::make_unique<HttpTransport>(io, options);
}

}  // namespace llmserve::bench::load
