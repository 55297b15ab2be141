// Router: maps (method, path) to a handler. Patterns are '/'-separated segments, each literal or a
// {name} parameter matching one non-empty segment, e.g.
// "/v2/models/{model}/versions/{version}/infer". Unknown path → 404 {"error":"Not Found"}; a known
// path with another method → 405 with Allow. Routes that are not public need `Authorization: Bearer
// <api key>` when an API key is set (401). The router's own errors (401/404/405) use Triton's body,
// or the body a frontend registered for its path prefix (OpenAI's envelope under /v1/).
//
// POST requests carry bodies whose handling grows with their size (JSON parse, chat template,
// tokenization): dispatch() hands them to the WorkerPool set with set_workers(), so the I/O thread
// goes straight back to other connections and GET routes (health, metadata) stay fast. When the
// pool's queue is full a POST gets 503 + Retry-After (--request-queue-size). Without a pool every
// handler runs on the I/O thread.
//
// Thread-safety: add routes before serving; dispatch() is then const and may run concurrently.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/worker_pool.h"
#include "server/http/http_exchange.h"

namespace llmserve::http {

enum class RouteAccess { kProtected, kPublic };

class Router {
 public:
  void add(std::string method, const std::string& pattern, HttpHandler handler,
           RouteAccess access = RouteAccess::kProtected);
  void set_api_key(std::string key) { api_key_ = std::move(key); }
  // Where POST handlers run; must outlive the serving. nullptr: on the I/O thread.
  void set_workers(WorkerPool* workers) { workers_ = workers; }
  // The JSON body of the router's own errors for paths under `prefix`.
  using ErrorBody = std::function<std::string(int status, const std::string& message)>;
  void set_error_body(std::string prefix, ErrorBody body);

  struct Match {
    const HttpHandler* handler = nullptr;  // null: see status
    int status = 200;                      // 404 or 405 (or 401) when no handler
    std::string allow;                     // for 405: "GET, POST"
    std::map<std::string, std::string> params;
    RouteAccess access = RouteAccess::kProtected;
  };
  // Pure lookup (no auth check): used by dispatch() and the tests.
  Match match(const std::string& method, const std::string& path) const;
  // Fills request params, checks the API key and calls the handler, or answers 401/404/405.
  void dispatch(const std::shared_ptr<HttpExchange>& ex, HttpRequest& request) const;
  bool is_authorized(const HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{x}" marks a parameter
    HttpHandler handler;
    RouteAccess access;
  };
  void respond(HttpExchange& ex, const std::string& path, int status, const std::string& message,
               Headers extra = {}) const;

  std::vector<Route> routes_;
  std::string api_key_;
  WorkerPool* workers_ = nullptr;
  std::vector<std::pair<std::string, ErrorBody>> error_bodies_;
};

// Splits "/a/b/" into {"a", "b"}; empty segments are dropped.
std::vector<std::string> split_path(const std::string& path);
// Percent-decodes (and '+' → ' ' when is_query); nullopt for a bad escape.
std::optional<std::string> url_decode(const std::string& s, bool is_query);

}  // namespace llmserve::http
