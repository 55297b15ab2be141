#include "bench/load/server_metrics.h"

#include <cmath>
#include <cstdlib>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace llmserve::bench::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<double> prometheus_sum(std::string_view text, std::string_view name) {
  std::optional<double> sum;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#' || !line.starts_with(name)) continue;
    std::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != ' ' && rest[0] != '{')) continue;  // a longer name
    if (rest[0] == '{') {
      const size_t close = rest.find('}');
      if (close == std::string_view::npos) continue;
      rest = rest.substr(close + 1);
    }
    while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
    const std::string value(rest.substr(0, rest.find(' ')));  // a timestamp may follow
    char* parsed_end = nullptr;
    const double v = std::strtod(value.c_str(), &parsed_end);
    if (parsed_end == value.c_str() || !std::isfinite(v)) continue;
    sum = sum.value_or(0.0) + v;
  }
  return sum;
}

std::optional<SpecCounters> parse_spec_counters(std::string_view text) {
  const auto drafts = prometheus_sum(text, "llmserve_spec_decode_num_drafts_total");
  const auto tokens = prometheus_sum(text, "llmserve_spec_decode_num_draft_tokens_total");
  const auto accepted = prometheus_sum(text, "llmserve_spec_decode_num_accepted_tokens_total");
  if (!drafts || !tokens || !accepted) return std::nullopt;
  return SpecCounters{std::llround(*drafts), std::llround(*tokens), std::llround(*accepted)};
}

std::optional<std::string> fetch_metrics(const std::string& host, uint16_t port,
                                         std::chrono::milliseconds timeout) {
  // The exchange runs on its own io_context for at most `timeout`; whatever has not finished
  // by then is abandoned with the context.
  asio::io_context io;
  tcp::resolver resolver(io);
  tcp::socket socket(io);
  beast::flat_buffer buffer;
  http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
  request.set(http::field::host, host);
  request.set(http::field::connection, "close");
  http::response<http::string_body> response;
  bool done = false;
  resolver.async_resolve(
      host, std::to_string(port), [&](boost::system::error_code e, tcp::resolver::results_type r) {
        if (e) return;
        asio::async_connect(socket, r, [&](boost::system::error_code e2, const tcp::endpoint&) {
          if (e2) return;
          http::async_write(socket, request, [&](boost::system::error_code e3, size_t) {
            if (e3) return;
            http::async_read(socket, buffer, response,
                             [&](boost::system::error_code e4, size_t) { done = !e4; });
          });
        });
      });
  io.run_for(timeout);
  if (!done || response.result() != http::status::ok) return std::nullopt;
  return std::move(response.body());
}

}  // namespace llmserve::bench::load
