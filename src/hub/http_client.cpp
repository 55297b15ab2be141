// The client runs each asynchronous Beast/Asio operation to completion on a private io_context
// (so every step gets tcp_stream's timeout) and hides the plain/TLS difference behind one template.
#include "hub/http_client.h"

#include <strings.h>
#include <array>
#include <cstdint>
#include <limits>

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/logging.h"
#include "common/status.h"

namespace llmserve::hub {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr size_t kMaxErrorBody = 64 * 1024;

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

[[noreturn]] void network_failure(const Url& url, std::string_view what, const error_code& ec) {
  fail(StatusCode::kUnavailable, "{} {}: {}", what, url.to_string(), ec.message());
}

HttpHeaders to_headers(const http::fields& fields) {
  HttpHeaders h;
  for (const auto& f : fields) h.add(std::string(f.name_string()), std::string(f.value()));
  return h;
}

}  // namespace

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [n, v] : entries_) {
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
  }
  return std::nullopt;
}

struct HttpClient::Impl {
  HttpClientOptions options;
  asio::io_context io;
  ssl::context tls{ssl::context::tls_client};

  explicit Impl(HttpClientOptions o) : options(std::move(o)) {
    // The system store; OpenSSL also honours SSL_CERT_FILE / SSL_CERT_DIR here.
    tls.set_default_verify_paths();
    if (!options.ca_file.empty()) {
      error_code ec;
      tls.load_verify_file(options.ca_file, ec);
      if (ec) fail(StatusCode::kInvalidArgument, "--ca-file {}: {}", options.ca_file, ec.message());
    }
    tls.set_verify_mode(ssl::verify_peer);
  }

  // Starts one asynchronous operation and runs the io_context until it completes.
  template <typename Initiate>
  error_code run(Initiate&& initiate) {
    error_code result;
    initiate([&result](const error_code& ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  tcp::resolver::results_type resolve(const Url& url) {
    tcp::resolver resolver(io);
    tcp::resolver::results_type results;
    error_code ec;
    resolver.async_resolve(url.host, std::to_string(url.port),
                           [&](const error_code& e, tcp::resolver::results_type r) {
                             ec = e;
                             results = std::move(r);
                           });
    io.restart();
    io.run();
    if (ec) network_failure(url, "cannot resolve the host of", ec);
    return results;
  }

  // One request/answer on a connected (and, for https, handshaken) stream.
  template <typename Stream>
  FetchResult exchange(Stream& stream, const Url& url, const http::request<http::empty_body>& req,
                       const BodyCallbacks& body, std::vector<FetchHop>& hops) {
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(options.timeout);
    if (auto ec = run([&](auto h) { http::async_write(stream, req, std::move(h)); })) {
      network_failure(url, "cannot send the request to", ec);
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    // Not boost::none: Boost 1.74 compares the length against an empty optional and refuses.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    lowest.expires_after(options.timeout);
    if (auto ec =
            run([&](auto h) { http::async_read_header(stream, buffer, parser, std::move(h)); })) {
      network_failure(url, "no answer from", ec);
    }
    FetchResult result;
    result.url = url;
    result.status = static_cast<int>(parser.get().result_int());
    result.headers = to_headers(parser.get().base());
    if (is_redirect(result.status)) return result;  // the body of a redirect is not read
    const bool is_success = result.status >= 200 && result.status < 300;
    if (is_success) {
      result.redirects = hops;
      if (body.on_head) body.on_head(result);
    }
    std::array<char, 64 * 1024> chunk;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      lowest.expires_after(options.timeout);
      auto ec = run([&](auto h) { http::async_read(stream, buffer, parser, std::move(h)); });
      if (ec == http::error::need_buffer) ec = {};
      if (ec) network_failure(url, "the transfer broke off from", ec);
      std::string_view data(chunk.data(), chunk.size() - parser.get().body().size);
      if (data.empty()) continue;
      if (is_success) {
        if (body.on_data) body.on_data(data);
      } else {
        result.error_body.append(data.substr(0, kMaxErrorBody - result.error_body.size()));
        if (result.error_body.size() >= kMaxErrorBody) break;
      }
    }
    return result;
  }

  FetchResult fetch_once(const FetchRequest& request, const Url& url, const BodyCallbacks& body,
                         std::vector<FetchHop>& hops) {
    http::request<http::empty_body> req{http::verb::get, url.target, 11};
    req.set(http::field::host, url.host_header());
    req.set(http::field::user_agent, options.user_agent);
    req.set(http::field::accept_encoding, "identity");
    req.set(http::field::connection, "close");
    for (const auto& [name, value] : request.headers.entries()) req.set(name, value);
    if (!request.token.empty() && request.token_origin &&
        may_send_token(*request.token_origin, url)) {
      req.set(http::field::authorization, "Bearer " + request.token);
    }
    auto endpoints = resolve(url);
    if (!url.is_https()) {
      beast::tcp_stream stream(io);
      stream.expires_after(options.timeout);
      if (auto ec = run([&](auto h) { stream.async_connect(endpoints, std::move(h)); })) {
        network_failure(url, "cannot connect to", ec);
      }
      return exchange(stream, url, req, body, hops);
    }
    beast::ssl_stream<beast::tcp_stream> stream(io, tls);
    // OpenSSL checks the name (or IP address) itself, so a mismatch reports as one.
    X509_VERIFY_PARAM* param = SSL_get0_param(stream.native_handle());
    error_code not_ip;
    asio::ip::make_address(url.host, not_ip);
    if (!not_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
      SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());  // SNI: names only
    }
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(options.timeout);
    if (auto ec = run([&](auto h) { lowest.async_connect(endpoints, std::move(h)); })) {
      network_failure(url, "cannot connect to", ec);
    }
    lowest.expires_after(options.timeout);
    if (auto ec =
            run([&](auto h) { stream.async_handshake(ssl::stream_base::client, std::move(h)); })) {
      long verify = SSL_get_verify_result(stream.native_handle());
      if (verify != X509_V_OK) {
        const bool is_wrong_host =
            verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH;
        fail(StatusCode::kFailedPrecondition, "the TLS certificate of {} does not verify: {} ({})",
             url.host_header(), X509_verify_cert_error_string(verify),
             is_wrong_host ? "it names another host"
                           : "trust its CA with --ca-file or SSL_CERT_FILE");
      }
      network_failure(url, "TLS handshake failed with", ec);
    }
    // No close_notify: the body is delimited by HTTP framing, and the connection is dropped.
    return exchange(stream, url, req, body, hops);
  }
};

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpClient::~HttpClient() = default;

FetchResult HttpClient::get(const FetchRequest& request, const BodyCallbacks& body) {
  std::vector<FetchHop> hops;
  Url url = request.url;
  for (;;) {
    FetchResult result = impl_->fetch_once(request, url, body, hops);
    if (!is_redirect(result.status)) {
      result.redirects = std::move(hops);
      return result;
    }
    auto location = result.headers.get("Location");
    if (!location) return result;  // a redirect without a target is the caller's error to show
    auto next = resolve_location(url, *location);
    if (!next) {
      fail(StatusCode::kUnavailable, "{} redirected to an unusable location '{}'", url.to_string(),
           *location);
    }
    if (static_cast<int>(hops.size()) >= impl_->options.max_redirects) {
      fail(StatusCode::kUnavailable, "more than {} redirects from {}", impl_->options.max_redirects,
           request.url.to_string());
    }
    LOG_DEBUG("{} {} -> {}", result.status, url.to_string(), next->to_string());
    hops.push_back({url, result.status, std::move(result.headers)});
    url = std::move(*next);
  }
}

}  // namespace llmserve::hub
