// LoadRunner over HTTP against a scripted in-process server (no model): the closed loop runs
// exactly its requests, a keep-alive connection the server dropped is retried on a fresh one,
// and replies are parsed from SSE split across writes.
#include "bench/load/load_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

namespace llmserve::bench::load {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Answers every request with a 3-token OpenAI completions stream, in several writes, then closes
// the connection although it said keep-alive (so the client's next request on it must retry).
class OneShotSseServer {
 public:
  OneShotSseServer() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotSseServer() {
    is_stopping_ = true;
    boost::system::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int num_connections() const { return num_connections_; }

 private:
  void serve() {
    while (!is_stopping_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || is_stopping_) return;
      ++num_connections_;
      std::string request;
      asio::read_until(s, asio::dynamic_buffer(request), "\r\n\r\n", ec);
      if (ec) continue;
      const size_t length_at = request.find("Content-Length: ");
      const size_t header_end = request.find("\r\n\r\n") + 4;
      const size_t length = std::stoul(request.substr(length_at + 16));
      if (request.size() < header_end + length) {
        std::string rest(header_end + length - request.size(), '\0');
        asio::read(s, asio::buffer(rest), ec);
      }
      const std::string head =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
          "Connection: keep-alive\r\n\r\n";
      asio::write(s, asio::buffer(head), ec);
      for (std::string event :
           {std::string("data: {\"choices\":[{\"text\":\"a\"}]}\n\n"),
            std::string("data: {\"choices\":[{\"text\":\"b\"}]}\n\ndata: {\"choices\":[{\"te"),
            std::string("xt\":\"c\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,"
                        "\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")}) {
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", event.size());
        asio::write(s, asio::buffer(std::string(size) + event + "\r\n"), ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      asio::write(s, asio::buffer(std::string("0\r\n\r\n")), ec);
      s.close(ec);  // despite keep-alive
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> is_stopping_{false};
  std::atomic<int> num_connections_{0};
};

TEST(LoadRunner, ClosedLoopRetriesDroppedKeepAliveConnections) {
  OneShotSseServer server;
  LoadOptions o;
  o.port = server.port();
  o.concurrencies = {1};
  o.num_requests = 5;
  o.num_warmup = 1;
  o.show_progress = false;
  std::vector<Prompt> prompts = {{"x", 4, 3}};
  LoadRunner runner(o, prompts);
  auto points = runner.run();
  ASSERT_EQ(points.size(), 1u);
  const LoadSummary& s = points[0];
  EXPECT_EQ(s.num_requests, 5);
  EXPECT_EQ(s.num_ok, 5) << (s.errors.empty() ? "" : s.errors.begin()->first);
  EXPECT_EQ(s.num_output_tokens, 15);
  EXPECT_EQ(s.num_output_len_mismatches, 0);
  EXPECT_EQ(s.num_input_len_mismatches, 0);
  EXPECT_EQ(s.itl.count, 10);
  for (const auto& t : runner.last_traces()) {
    EXPECT_EQ(t.text, "abc");
    EXPECT_LE(t.piece_times.front() - t.start, t.end - t.start);
  }
  EXPECT_EQ(server.num_connections(), 6);  // warm-up + 5, each on a fresh connection
}

TEST(LoadRunner, OpenLoopSendsItsArrivals) {
  OneShotSseServer server;
  LoadOptions o;
  o.port = server.port();
  o.mode = LoadMode::kOpenLoop;
  o.rates = {200};
  o.num_requests = 8;
  o.show_progress = false;
  LoadRunner runner(o, {{"x", 4, 3}});
  auto s = runner.run().at(0);
  EXPECT_EQ(s.num_ok, 8);
  EXPECT_DOUBLE_EQ(s.request_rate, 200);
}

}  // namespace
}  // namespace llmserve::bench::load
