// Boost.Beast lives only in this file. A Session owns one connection; everything it does runs on
// the connection's strand (the socket's executor), so it needs no locks. HttpExchange calls from
// other threads are posted there and matched to the request they answer by a sequence number.
#include "server/http/http_server.h"

#include <utility>  // Beast 1.74 with GCC 12 needs it before its headers.

#include <algorithm>
#include <deque>
#include <vector>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/logging.h"
#include "common/status.h"

namespace llmserve::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr auto kLingerTimeout = std::chrono::seconds(2);

struct Shared {
  const Router& router;
  HttpServerOptions options;
  std::shared_ptr<std::atomic<int64_t>> num_active;
  std::shared_ptr<std::atomic<int64_t>> num_connections;  // live Sessions
};

// What a connection beyond --max-connections gets before it is closed.
const std::string& too_many_connections() {
  static const std::string response = [] {
    const std::string body = R"js({"error":"too many connections (--max-connections)"})js";
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nServer: llmserve\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
  }();
  return response;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string status_line(int status) {
  auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  return fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(reason.data(), reason.size()));
}

class Session;

class BeastExchange : public HttpExchange {
 public:
  BeastExchange(std::shared_ptr<Session> session, uint64_t seq, HttpRequest request)
      : session_(std::move(session)), seq_(seq), request_(std::move(request)) {}
  const HttpRequest& request() const override { return request_; }
  HttpRequest& mutable_request() { return request_; }
  void respond(int status, std::string content_type, std::string body, Headers extra) override;
  void start_sse(Headers extra) override;
  bool send_event(std::string data) override;
  void end() override;
  void on_disconnect(std::function<void()> callback) override;
  bool is_client_gone() const override;
  void post(std::function<void()> fn) override;

 private:
  std::shared_ptr<Session> session_;
  uint64_t seq_;
  HttpRequest request_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Shared& shared)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), shared_(shared) {
    shared_.num_connections->fetch_add(1);
  }
  ~Session() { shared_.num_connections->fetch_sub(1); }

  void start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->wait_for_bytes(); });
  }

  // --- called on the strand (through post) by BeastExchange ---
  void enqueue(uint64_t seq, std::string data, bool is_last) {
    if (seq != seq_ || !is_busy_ || is_response_complete_ || is_closed_) return;
    writes_.push_back(std::move(data));
    if (is_last) is_response_complete_ = true;
    if (!is_writing_) do_write();
  }
  void set_on_disconnect(uint64_t seq, std::function<void()> cb) {
    if (seq != seq_ || !is_busy_) return;
    if (is_client_gone_) {
      cb();
      return;
    }
    on_disconnect_.push_back(std::move(cb));
  }
  bool is_keep_alive() const { return keep_alive_; }
  bool is_gone(uint64_t seq) const { return is_client_gone_.load() || seq != seq_atomic_.load(); }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  void arm_timer(std::chrono::steady_clock::duration d) {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (!ec && gen == self->timer_gen_) self->close();
    });
  }
  // The request must arrive whole within read_timeout. When it does not, the pending read is
  // cancelled and on_read answers 408 (RFC 9110 §15.5.9) before closing.
  void arm_read_timer() {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(shared_.options.read_timeout);
    timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->timer_gen_) return;
      self->is_read_timed_out_ = true;
      beast::error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void disarm_timer() {
    ++timer_gen_;
    timer_.cancel();
  }

  void wait_for_bytes() {
    if (is_closed_) return;
    if (buffer_.size() > 0 && !is_busy_) {
      read_request();
      return;
    }
    if (!is_busy_) arm_timer(shared_.options.idle_timeout);
    is_watching_ = true;
    socket_.async_read_some(
        buffer_.prepare(8192),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_watch(ec, n); });
  }

  void on_watch(beast::error_code ec, size_t n) {
    is_watching_ = false;
    if (is_lingering_) {
      if (ec) {
        close();
      } else {
        discard();
      }
      return;
    }
    const bool is_resuming = std::exchange(is_resume_pending_, false);
    if (ec && !(is_resuming && ec == asio::error::operation_aborted)) {
      peer_gone();
      return;
    }
    if (!ec) buffer_.commit(n);
    if (is_busy_) return;  // a pipelined request: parsed once the current response is out
    disarm_timer();
    read_request();
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(shared_.options.max_body_bytes);
    parser_->header_limit(kMaxHeaderBytes);
    arm_read_timer();
    bhttp::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      on_read(ec);
      return;
    }
    auto read_body = [self = shared_from_this()] {
      bhttp::async_read(self->socket_, self->buffer_, *self->parser_,
                        [self](beast::error_code ec, size_t) { self->on_read(ec); });
    };
    const auto& msg = parser_->get();
    auto expect = msg.find(bhttp::field::expect);
    if (expect != msg.end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
      continue_ = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(continue_),
                        [self = shared_from_this(), read_body](beast::error_code ec, size_t) {
                          if (ec) {
                            self->close();
                            return;
                          }
                          read_body();
                        });
      return;
    }
    read_body();
  }

  void on_read(beast::error_code ec) {
    disarm_timer();
    // The read timer closed the socket first (a slow client): the read ends with whatever error the
    // closed descriptor gives, and nobody is left to answer. Answering would count a response as
    // in flight that can never be written, which held every later drain for its full timeout.
    if (is_closed_) return;
    if (std::exchange(is_read_timed_out_, false) && ec) {
      answer_and_close(408, fmt::format("the request was not received in full within {} ms "
                                        "(--http-read-timeout)",
                                        shared_.options.read_timeout.count()));
      return;
    }
    if (ec == bhttp::error::body_limit) {
      answer_and_close(413,
                       fmt::format("request body exceeds the limit of {} bytes (--max-body-bytes)",
                                   shared_.options.max_body_bytes));
      return;
    }
    if (ec == bhttp::error::header_limit) {
      answer_and_close(431, "request headers too large");
      return;
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      answer_and_close(400, fmt::format("malformed HTTP request: {}", ec.message()));
      return;
    }
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    HttpRequest r;
    r.method = std::string(msg.method_string());
    r.target = std::string(msg.target());
    const size_t q = r.target.find('?');
    auto path = url_decode(r.target.substr(0, q), false);
    if (q != std::string::npos) {
      for (const auto& kv : split_query(r.target.substr(q + 1))) r.query.insert(kv);
    }
    for (const auto& f : msg) {
      r.headers[lower(std::string_view(f.name_string().data(), f.name_string().size()))] =
          std::string(f.value());
    }
    r.body = std::move(msg.body());
    begin_response();
    if (!path) {
      keep_alive_ = false;
      enqueue(seq_, error_response(400, "malformed percent-encoding in the request path"), true);
    } else {
      r.path = std::move(*path);
      auto ex = std::make_shared<BeastExchange>(shared_from_this(), seq_, std::move(r));
      try {
        shared_.router.dispatch(ex, ex->mutable_request());
      } catch (const std::exception& e) {
        LOG_ERROR("http handler for {} failed: {}", ex->request().path, e.what());
        ex->respond(500, "application/json", fmt::format("{{\"error\":\"internal error\"}}"), {});
      }
    }
    if (!is_watching_ && !is_closed_ && !is_response_complete_) wait_for_bytes();
  }

  static std::vector<std::pair<std::string, std::string>> split_query(const std::string& q) {
    std::vector<std::pair<std::string, std::string>> out;
    size_t i = 0;
    while (i <= q.size()) {
      size_t j = q.find('&', i);
      if (j == std::string::npos) j = q.size();
      std::string item = q.substr(i, j - i);
      if (!item.empty()) {
        const size_t eq = item.find('=');
        auto k = url_decode(item.substr(0, eq), true);
        auto v = url_decode(eq == std::string::npos ? "" : item.substr(eq + 1), true);
        if (k && v) out.emplace_back(*k, *v);
      }
      i = j + 1;
    }
    return out;
  }

  void begin_response() {
    ++seq_;
    seq_atomic_ = seq_;
    is_busy_ = true;
    is_response_complete_ = false;
    on_disconnect_.clear();
    shared_.num_active->fetch_add(1);
  }

  std::string error_response(int status, const std::string& message) {
    std::string body = fmt::format("{{\"error\":\"{}\"}}", message);  // our own messages: no quotes
    return status_line(status) +
           fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
                       body.size(), keep_alive_ ? "" : "Connection: close\r\n") +
           body;
  }

  void answer_and_close(int status, const std::string& message) {
    if (is_closed_) return;
    keep_alive_ = false;
    begin_response();
    enqueue(seq_, error_response(status, message), true);
    arm_timer(kLingerTimeout);  // a peer that reads nothing cannot hold the connection
  }

  void do_write() {
    is_writing_ = true;
    asio::async_write(
        socket_, asio::buffer(writes_.front()),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    is_writing_ = false;
    if (ec) {
      peer_gone();
      return;
    }
    writes_.pop_front();
    if (!writes_.empty()) {
      do_write();
      return;
    }
    if (is_response_complete_) on_response_done();
  }

  void on_response_done() {
    end_busy();
    if (!keep_alive_) {
      linger_and_close();
      return;
    }
    if (buffer_.size() > 0 && is_watching_) {
      // A pipelined request is already buffered: stop the watch read, then parse it.
      is_resume_pending_ = true;
      beast::error_code ec;
      socket_.cancel(ec);
      return;
    }
    if (is_watching_) {
      arm_timer(shared_.options.idle_timeout);
      return;
    }
    wait_for_bytes();
  }

  void end_busy() {
    if (!is_busy_) return;
    is_busy_ = false;
    on_disconnect_.clear();
    shared_.num_active->fetch_sub(1);
  }

  void peer_gone() {
    is_client_gone_ = true;
    // Once the handler queued its last write the request is complete, whatever the peer does.
    if (is_busy_ && !is_response_complete_) {
      auto callbacks = std::move(on_disconnect_);
      on_disconnect_.clear();
      for (auto& cb : callbacks) cb();
    }
    close();
  }

  // Half-closes and discards what the peer still sends, so it reads our last response instead
  // of a reset (e.g. a 413 sent before the body was read).
  void linger_and_close() {
    is_lingering_ = true;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    arm_timer(kLingerTimeout);
    discard();
  }
  void discard() {
    if (is_watching_) return;  // the watch read drains it
    socket_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) {
                                self->close();
                                return;
                              }
                              self->discard();
                            });
  }

  void close() {
    if (is_closed_) return;
    is_closed_ = true;
    is_client_gone_ = true;
    end_busy();
    disarm_timer();
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  const Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string continue_;
  std::array<char, 4096> discard_{};
  std::deque<std::string> writes_;
  std::vector<std::function<void()>> on_disconnect_;
  uint64_t seq_ = 0;
  std::atomic<uint64_t> seq_atomic_{0};
  uint64_t timer_gen_ = 0;
  bool is_busy_ = false;
  bool is_watching_ = false;
  bool is_writing_ = false;
  bool is_response_complete_ = false;
  bool is_closed_ = false;
  bool is_lingering_ = false;
  bool is_resume_pending_ = false;
  bool is_read_timed_out_ = false;
  bool keep_alive_ = true;
  std::atomic<bool> is_client_gone_{false};
};

std::string header_lines(const Headers& extra) {
  std::string out;
  for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
  return out;
}

void BeastExchange::respond(int status, std::string content_type, std::string body, Headers extra) {
  const bool is_head = request_.method == "HEAD";  // the headers GET would send, no body
  asio::post(session_->executor(),
             [s = session_, seq = seq_, status, ct = std::move(content_type),
              body = std::move(body), extra = std::move(extra), is_head]() mutable {
               std::string head = status_line(status) + "Server: llmserve\r\nContent-Type: " + ct +
                                  fmt::format("\r\nContent-Length: {}\r\n", body.size()) +
                                  (s->is_keep_alive() ? "" : "Connection: close\r\n") +
                                  header_lines(extra) + "\r\n";
               s->enqueue(seq, is_head ? head : head + body, true);
             });
}

void BeastExchange::start_sse(Headers extra) {
  asio::post(session_->executor(), [s = session_, seq = seq_, extra = std::move(extra)] {
    std::string head =
        status_line(200) +
        "Server: llmserve\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n" +
        (s->is_keep_alive() ? "" : "Connection: close\r\n") + header_lines(extra) + "\r\n";
    s->enqueue(seq, std::move(head), false);
  });
}

bool BeastExchange::send_event(std::string data) {
  if (session_->is_gone(seq_)) return false;
  std::string event = "data: " + data + "\n\n";
  std::string chunk = fmt::format("{:x}\r\n", event.size()) + event + "\r\n";
  asio::post(session_->executor(), [s = session_, seq = seq_, chunk = std::move(chunk)]() mutable {
    s->enqueue(seq, std::move(chunk), false);
  });
  return true;
}

void BeastExchange::end() {
  asio::post(session_->executor(),
             [s = session_, seq = seq_] { s->enqueue(seq, "0\r\n\r\n", true); });
}

void BeastExchange::on_disconnect(std::function<void()> callback) {
  asio::post(session_->executor(), [s = session_, seq = seq_, cb = std::move(callback)]() mutable {
    s->set_on_disconnect(seq, std::move(cb));
  });
}

bool BeastExchange::is_client_gone() const {
  return session_->is_gone(seq_);
}

void BeastExchange::post(std::function<void()> fn) {
  asio::post(session_->executor(), std::move(fn));
}

}  // namespace

struct HttpServer::Impl {
  Impl(const Shared& s, std::shared_ptr<std::atomic<int64_t>> refused)
      : shared(s), acceptor(ioc), backoff(ioc), num_refused(std::move(refused)) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (ec) {
        on_accept_error(ec);
        return;
      }
      if (shared.options.max_connections > 0 &&
          shared.num_connections->load() >= shared.options.max_connections) {
        refuse(std::move(socket));
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), shared)->start();
      }
      accept();
    });
  }

  // Over the limit: a 503 and the connection closed, so the client backs off instead of waiting.
  void refuse(tcp::socket socket) {
    num_refused->fetch_add(1);
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    asio::async_write(*s, asio::buffer(too_many_connections()), [s](beast::error_code, size_t) {
      beast::error_code ignored;
      s->shutdown(tcp::socket::shutdown_both, ignored);
      s->close(ignored);
    });
  }

  // Out of file descriptors (EMFILE/ENFILE) or buffers: accepting again at once fails again at
  // once, a busy loop that starves the I/O threads. Wait a little, say so (once a minute at most).
  void on_accept_error(beast::error_code ec) {
    ++num_accept_errors;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_accept_log > std::chrono::minutes(1)) {
      LOG_WARN(
          "HTTP accept failed {} time(s) since the last report: {}; backing off (raise the "
          "open-file limit "
          "or lower --max-connections)",
          num_accept_errors, ec.message());
      num_accept_errors = 0;
      last_accept_log = now;
    }
    backoff.expires_after(std::chrono::milliseconds(50));
    backoff.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) accept();
    });
  }

  Shared shared;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer backoff;
  std::shared_ptr<std::atomic<int64_t>> num_refused;
  // Touched only by the accept chain (one outstanding accept or back-off at a time).
  int64_t num_accept_errors = 0;
  std::chrono::steady_clock::time_point last_accept_log{};
};

HttpServer::HttpServer(HttpServerOptions options, const Router& router)
    : options_(std::move(options)), router_(router) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  impl_ = std::make_unique<Impl>(Shared{router_, options_, num_active_, num_connections_},
                                 num_refused_);
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (ec)
    fail(StatusCode::kInvalidArgument, "--host '{}' is not an IP address: {}", options_.host,
         ec.message());
  tcp::endpoint endpoint(address, options_.port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    fail(StatusCode::kUnavailable, "cannot listen on {}:{}: {}", options_.host, options_.port,
         ec.message());
  bound_port_ = a.local_endpoint().port();
  impl_->accept();
  for (int32_t i = 0; i < std::max(1, options_.num_threads); ++i) {
    threads_.emplace_back([this] { impl_->ioc.run(); });
  }
}

void HttpServer::stop() {
  if (!impl_ || threads_.empty()) return;
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->backoff.cancel();
  });
  impl_->ioc.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace llmserve::http
