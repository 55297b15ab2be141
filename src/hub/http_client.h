// A small blocking HTTP/1.1 client for the hub: GET over http or https (OpenSSL, peer and host
// name verified against the system store, SSL_CERT_FILE, and an optional extra CA file), following
// redirects, streaming the body to a callback. One connection per request (a pull makes a handful
// of large requests, so keep-alive would buy nothing). Boost.Beast stays inside http_client.cpp.
//
// Failures: a network problem (resolve, connect, TLS handshake, timeout, a body cut short) throws
// Error(kUnavailable) naming the URL — the caller may retry; a certificate that does not verify
// throws Error(kFailedPrecondition) — retrying cannot help. HTTP error statuses are not
// exceptions: they come back in FetchResult for the caller to explain.
// Thread-safety: one HttpClient per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/url.h"

namespace llmserve::hub {

// Header fields in order; names compare case-insensitively.
class HttpHeaders {
 public:
  void add(std::string name, std::string value) {
    entries_.emplace_back(std::move(name), std::move(value));
  }
  // The first field called `name`, if any.
  std::optional<std::string> get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct HttpClientOptions {
  std::string ca_file;                        // extra trusted CAs (PEM), on top of the system's
  std::chrono::milliseconds timeout{30'000};  // for connecting and for each read or write
  int max_redirects = 10;
  std::string user_agent = "llmserve/0.1.0";
};

struct FetchRequest {
  Url url;
  HttpHeaders headers;              // extra request fields, e.g. Range; kept across redirects
  std::string token;                // sent as "Authorization: Bearer …" ...
  std::optional<Url> token_origin;  // ... only to this origin (see may_send_token)
};

struct FetchHop {  // one redirect response that was followed
  Url url;
  int status = 0;
  HttpHeaders headers;
};

struct FetchResult {
  Url url;  // the URL that gave the final answer
  int status = 0;
  HttpHeaders headers;
  std::vector<FetchHop> redirects;  // in order; empty when the first answer was final
  std::string error_body;           // up to 64 KiB of a non-2xx final answer's body
};

struct BodyCallbacks {
  // Called once with the final 2xx answer (redirects and headers, no body yet) before any data;
  // may throw to abandon the transfer.
  std::function<void(const FetchResult&)> on_head;
  // Called with each piece of the 2xx body, in order.
  std::function<void(std::string_view)> on_data;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GET `request.url`, following up to max_redirects redirects (301/302/303/307/308). A 2xx
  // body goes to `body`; a complete transfer returns normally.
  FetchResult get(const FetchRequest& request, const BodyCallbacks& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmserve::hub
