#include "server/http/router.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "server/api_key.h"

namespace llmserve::http {

namespace {
const std::string kEmpty;
bool is_param(const std::string& segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

const std::string& HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}

const std::string& HttpRequest::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

void respond_json(HttpExchange& ex, int status, const std::string& json_body, Headers extra) {
  ex.respond(status, "application/json", json_body, std::move(extra));
}

void respond_error(HttpExchange& ex, int status, const std::string& message, Headers extra) {
  nlohmann::json j = {{"error", message}};
  respond_json(ex, status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
               std::move(extra));
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::optional<std::string> url_decode(const std::string& s, bool is_query) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (is_query && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void Router::add(std::string method, const std::string& pattern, HttpHandler handler,
                 RouteAccess access) {
  routes_.push_back({std::move(method), split_path(pattern), std::move(handler), access});
}

Router::Match Router::match(const std::string& method, const std::string& path) const {
  Match m;
  const auto segments = split_path(path);
  std::vector<std::string> allowed;
  for (const Route& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      if (is_param(r.segments[i])) {
        params[r.segments[i].substr(1, r.segments[i].size() - 2)] = segments[i];
      } else {
        ok = r.segments[i] == segments[i];
      }
    }
    if (!ok) continue;
    // HEAD is GET without the body (RFC 9110 §9.3.2): the server drops the body when writing.
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      m.handler = &r.handler;
      m.params = std::move(params);
      m.access = r.access;
      return m;
    }
    allowed.push_back(r.method);
  }
  if (allowed.empty()) {
    m.status = 404;
    return m;
  }
  m.status = 405;
  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) allowed.push_back("HEAD");
  for (const auto& a : allowed) {
    if (m.allow.find(a) != std::string::npos) continue;
    m.allow += m.allow.empty() ? a : ", " + a;
  }
  return m;
}

void Router::set_error_body(std::string prefix, ErrorBody body) {
  error_bodies_.emplace_back(std::move(prefix), std::move(body));
}

void Router::respond(HttpExchange& ex, const std::string& path, int status,
                     const std::string& message, Headers extra) const {
  for (const auto& [prefix, body] : error_bodies_) {
    if (path.rfind(prefix, 0) == 0)
      return respond_json(ex, status, body(status, message), std::move(extra));
  }
  respond_error(ex, status, message, std::move(extra));
}

bool Router::is_authorized(const HttpRequest& request) const {
  return api_key_matches(request.header("authorization"), api_key_);
}

void Router::dispatch(const std::shared_ptr<HttpExchange>& ex, HttpRequest& request) const {
  Match m = match(request.method, request.path);
  // Unknown routes and methods are answered only to an authorized client (server/api_key.h).
  if ((!m.handler || m.access == RouteAccess::kProtected) && !is_authorized(request)) {
    respond(*ex, request.path, 401, "Unauthorized: send 'Authorization: Bearer <api key>'",
            {{"WWW-Authenticate", "Bearer"}});
    return;
  }
  if (!m.handler) {
    if (m.status == 405) {
      respond(*ex, request.path, 405, "Method Not Allowed", {{"Allow", m.allow}});
    } else {
      respond(*ex, request.path, 404, "Not Found");
    }
    return;
  }
  request.params = std::move(m.params);
  if (request.method != "POST" || workers_ == nullptr) {
    (*m.handler)(ex);
    return;
  }
  const bool is_queued = workers_->try_post([handler = m.handler, ex] {
    try {
      (*handler)(ex);
    } catch (const std::exception& e) {  // as the I/O thread's dispatch does (http_server.cpp)
      LOG_ERROR("http handler for {} failed: {}", ex->request().path, e.what());
      ex->respond(500, "application/json", R"({"error":"internal error"})");
    }
  });
  if (!is_queued) {
    respond(*ex, request.path, 503,
            fmt::format("the server is busy: {} requests are waiting to be tokenized "
                        "(--tokenizer-queue-size); retry later",
                        workers_->max_queued()),
            {{"Retry-After", "1"}});
  }
}

}  // namespace llmserve::http
