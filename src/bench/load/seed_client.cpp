#include "bench/load/seed_client.h"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <limits>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmserve::bench::load {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

const char* env(const char* name) {
  return std::getenv(name);
}

// One POST the way `curl -X POST -s URL -d PAYLOAD` makes it. Returns the body (any status, as
// curl -s without -f does); throws std::exception for connection and protocol failures.
std::string post(const SeedClientConfig& c, const std::string& payload) {
  asio::io_context io;
  tcp::resolver resolver(io);
  tcp::socket socket(io);
  asio::connect(socket, resolver.resolve(c.host, std::to_string(c.port)));
  http::request<http::string_body> req{http::verb::post, "/v2/models/" + c.model_name + "/generate",
                                       11};
  req.set(http::field::host, fmt::format("{}:{}", c.host, c.port));
  req.set(http::field::user_agent, "curl/7.81.0");
  req.set(http::field::accept, "*/*");
  req.set(http::field::content_type, "application/x-www-form-urlencoded");
  req.body() = payload;
  req.prepare_payload();
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read(socket, buffer, parser);
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  return parser.get().body();
}

// print(f"  {answer.strip()}") for each piece of re.split(r"(\s{2,}|\n)", text).
void print_answers(std::FILE* out, const std::string& text) {
  static const std::regex kSplit(R"((\s{2,}|\n))");
  auto strip = [](std::string s) {
    const char* ws = " \t\n\r\f\v";
    s.erase(0, s.find_first_not_of(ws) == std::string::npos ? s.size() : s.find_first_not_of(ws));
    s.erase(s.find_last_not_of(ws) + 1);
    return s;
  };
  size_t pos = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), kSplit), end; it != end; ++it) {
    const size_t at = static_cast<size_t>(it->position());
    std::fprintf(out, "  %s\n", strip(text.substr(pos, at - pos)).c_str());
    std::fprintf(out, "  %s\n", strip(it->str()).c_str());
    pos = at + static_cast<size_t>(it->length());
  }
  std::fprintf(out, "  %s\n", strip(text.substr(pos)).c_str());
}

}  // namespace

SeedClientConfig SeedClientConfig::from_env(std::FILE* err) {
  SeedClientConfig c;
  if (const char* d = env("TRTLLM_DEBUG")) {
    std::string_view v(d);
    c.is_debug = v == "1" || v == "true" || v == "yes" || v == "debug";
  }
  const char* model = env("TRTLLM_MODEL_NAME");
  if (model == nullptr)
    fail(StatusCode::kInvalidArgument,
         "Required environment variable 'TRTLLM_MODEL_NAME' not provided.");
  c.model_name = model;
  const char* url = env("TRTLLM_TRITON_URL");
  if (url == nullptr)
    fail(StatusCode::kInvalidArgument,
         "Required environment variable 'TRTLLM_TRITON_URL' not provided.");
  std::string host = url;
  if (host.rfind("http://", 0) == 0) host = host.substr(7);
  if (!host.empty() && host.back() == '/') host.pop_back();
  if (size_t colon = host.rfind(':');
      colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    const std::string port = host.substr(colon + 1);
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p <= 0 || p > 65535) {
      fail(StatusCode::kInvalidArgument, "TRTLLM_TRITON_URL '{}': bad port", url);
    }
    c.port = static_cast<uint16_t>(p);
    host = host.substr(0, colon);
  }
  c.host = host;
  if (const char* m = env("TRTLLM_MAX_TOKENS")) {
    // Python's int(): surrounding whitespace allowed, nothing else.
    std::string v(m);
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(v.c_str(), &end, 10);
    while (end != nullptr && *end != '\0' && std::isspace(static_cast<unsigned char>(*end))) ++end;
    if (v.find_first_not_of(" \t\n") == std::string::npos || *end != '\0' || errno != 0 ||
        n < INT32_MIN || n > INT32_MAX) {
      std::fprintf(
          err,
          "error: Environment variable TRTLLM_MAX_TOKENS=%s is not valid and will be ignored.\n",
          m);
      std::fprintf(err, " \n");
      std::fflush(err);
    } else {
      c.max_tokens = static_cast<int32_t>(n);
    }
  }
  return c;
}

std::string SeedClientConfig::url() const {
  return fmt::format("{}:{}/v2/models/{}/generate", host, port, model_name);
}

std::string seed_payload(std::string_view prompt, int32_t max_tokens) {
  return fmt::format("{{\"text_input\": {}, \"max_tokens\": {}}}",
                     nlohmann::json(std::string(prompt)).dump(), max_tokens);
}

int run_seed_client(const SeedClientConfig& c, std::FILE* out, std::FILE* err) {
  if (c.is_debug) {
    std::fprintf(out, "model_name: \"%s\".\ntriton_url: \"%s\".\nmax_tokens: %d.\n",
                 c.model_name.c_str(), c.url().c_str(), c.max_tokens);
  }
  size_t index = 0;
  int32_t error_count = 0;
  for (int64_t n = 0; c.max_requests <= 0 || n < c.max_requests; ++n) {
    const std::string_view question = kSeedPrompts[index];
    const std::string payload = seed_payload(question, c.max_tokens);
    std::fprintf(out, "> curl -X POST -s %s -d %s \n", c.url().c_str(), payload.c_str());
    std::fflush(out);
    index = (index + 1) % kSeedPrompts.size();
    try {
      const auto start = std::chrono::steady_clock::now();
      std::string body = post(c, payload);
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(out, "  completed in %s seconds.\n \n", fmt::format("{}", elapsed).c_str());
      if (c.is_debug) std::fprintf(out, "output: \"%s\".\n", body.c_str());
      auto result = nlohmann::json::parse(body);  // throws on non-JSON, like json.loads
      if (!result.is_object() || !result.contains("text_output"))
        throw std::runtime_error("'text_output'");
      const std::string text = result["text_output"].get<std::string>();  // throws unless a string
      std::fprintf(out, "Prompt:\n  %.*s\n \nResponse:\n", static_cast<int>(question.size()),
                   question.data());
      print_answers(out, text);
      std::fprintf(out, " \n");
      std::fflush(out);
    } catch (const std::exception& e) {
      ++error_count;
      std::fprintf(err, " \nerror: %s\n       Inference command has failed %d time(s).\n", e.what(),
                   error_count);
      std::fflush(err);
      if (error_count > c.max_failures) {
        std::fprintf(err, "fatal: Quitting after %d failures.\n", c.max_failures);
        std::fflush(err);
        return 255;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(c.pause_ms));
    std::fprintf(out, " \n");
    std::fflush(out);
  }
  return 0;
}

}  // namespace llmserve::bench::load
