// The HTTP boundary every frontend handler sees: a parsed HttpRequest and an HttpExchange to
// answer it. Handlers never see Boost.Beast; the server (http_server.h) implements HttpExchange.
//
// An exchange answers exactly one request, either with one respond() or with a server-sent event
// stream (start_sse, send_event..., end). A handler may keep the shared_ptr and complete the
// exchange later.
//
// Thread-safety: every HttpExchange method may be called from any thread; writes are posted to
// the connection's strand and go out in call order. Calls after the exchange completed, or after
// the client went away, are ignored.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace llmserve::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // as sent: path + query
  std::string path;                            // percent-decoded, without the query
  std::map<std::string, std::string> query;    // decoded ?k=v pairs
  std::map<std::string, std::string> headers;  // keys lower-case
  std::map<std::string, std::string> params;   // route parameters, e.g. {model}
  std::string body;

  // The header's value, or "" when absent; `name` lower-case.
  const std::string& header(const std::string& name) const;
  const std::string& param(const std::string& name) const;
};

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;

  // One complete response (Content-Length framed).
  virtual void respond(int status, std::string content_type, std::string body,
                       Headers extra = {}) = 0;
  // Starts a 200 text/event-stream response (chunked); each send_event() writes `data: <data>\n\n`
  // and flushes. send_event returns false once the client is gone (the event is dropped).
  virtual void start_sse(Headers extra = {}) = 0;
  virtual bool send_event(std::string data) = 0;
  virtual void end() = 0;  // ends the event stream
  // `callback` runs (on the connection's strand) if the peer closes before the response is
  // complete, e.g. to cancel the engine request (each callback given runs; set them early).
  virtual void on_disconnect(std::function<void()> callback) = 0;
  virtual bool is_client_gone() const = 0;
  // Runs `fn` on the connection's strand (serialized with the I/O of this connection).
  virtual void post(std::function<void()> fn) = 0;
};

using HttpHandler = std::function<void(const std::shared_ptr<HttpExchange>&)>;

// Helpers for JSON APIs.
void respond_json(HttpExchange& ex, int status, const std::string& json_body, Headers extra = {});
// Triton's error object {"error": message}.
void respond_error(HttpExchange& ex, int status, const std::string& message, Headers extra = {});

}  // namespace llmserve::http
