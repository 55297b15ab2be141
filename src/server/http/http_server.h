// HttpServer: HTTP/1.1 on Boost.Beast/Asio with a small pool of I/O threads. Each connection is a
// session on its own strand: it reads one request at a time (keep-alive), hands it to the Router
// as an HttpExchange, and while the response is pending keeps a read open so that a peer close
// is noticed at once (HttpExchange::on_disconnect). Streams do not hold threads: a handler posts
// work to the exchange when the engine has output.
//
// Limits: request bodies over max_body_bytes → 413, headers over 16 KiB → 431; a connection idle
// for idle_timeout between requests is closed, one slower than read_timeout sending a request gets
// 408 and is closed; beyond max_connections open connections a new one gets 503 and is closed.
// When accept() fails (out of file descriptors) the acceptor backs off 50 ms instead of spinning,
// and logs it.
//
// Thread-safety: start()/stop() from one controlling thread; num_active_requests() anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/http/router.h"

namespace llmserve::http {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;  // 0: pick a free port (see port())
  int32_t num_threads = 2;
  uint64_t max_body_bytes = 64ull << 20;
  std::chrono::milliseconds idle_timeout{
      65'000};  // keep-alive idle between requests (--http-idle-timeout)
  std::chrono::milliseconds read_timeout{
      30'000};  // to receive one complete request (--http-read-timeout)
  // Open connections beyond this are answered 503 + Connection: close (--max-connections); 0: no
  // limit (the process's open-file limit is then the only one).
  int64_t max_connections = 0;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, const Router& router);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. Throws Error(kUnavailable) when it cannot bind.
  void start();
  // Stops accepting, closes every connection, joins the I/O threads. Idempotent.
  void stop();
  uint16_t port() const { return bound_port_; }
  // Requests received whose response is not fully written yet (for graceful drain).
  int64_t num_active_requests() const { return num_active_->load(); }
  // Open connections, and connections refused over max_connections since start.
  int64_t num_connections() const { return num_connections_->load(); }
  int64_t num_refused_connections() const { return num_refused_->load(); }

 private:
  struct Impl;
  HttpServerOptions options_;
  const Router& router_;
  std::unique_ptr<Impl> impl_;
  std::vector<std::thread> threads_;
  std::shared_ptr<std::atomic<int64_t>> num_active_ = std::make_shared<std::atomic<int64_t>>(0);
  std::shared_ptr<std::atomic<int64_t>> num_connections_ =
      std::make_shared<std::atomic<int64_t>>(0);
  std::shared_ptr<std::atomic<int64_t>> num_refused_ = std::make_shared<std::atomic<int64_t>>(0);
  uint16_t bound_port_ = 0;
};

}  // namespace llmserve::http
