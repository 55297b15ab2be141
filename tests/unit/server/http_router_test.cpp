#include "server/api_key.h"
#include "server/http/router.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "server/http/status_mapping.h"

namespace llmserve::http {
namespace {

// Records what a handler (or the router) answered.
class FakeExchange : public HttpExchange {
 public:
  explicit FakeExchange(HttpRequest r) : request_(std::move(r)) {}
  const HttpRequest& request() const override { return request_; }
  void respond(int s, std::string ct, std::string b, Headers extra) override {
    status = s;
    content_type = std::move(ct);
    body = std::move(b);
    headers = std::move(extra);
  }
  void start_sse(Headers) override { status = 200; }
  bool send_event(std::string data) override {
    events.push_back(std::move(data));
    return true;
  }
  void end() override {}
  void on_disconnect(std::function<void()>) override {}
  bool is_client_gone() const override { return false; }
  void post(std::function<void()> fn) override { fn(); }
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }

  HttpRequest request_;
  int status = 0;
  std::string content_type, body;
  Headers headers;
  std::vector<std::string> events;
};

struct Dispatched {
  std::shared_ptr<FakeExchange> ex;
  HttpRequest& request() { return ex->request_; }
};

Dispatched dispatch(const Router& router, std::string method, std::string path,
                    std::map<std::string, std::string> headers = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = std::move(headers);
  auto ex = std::make_shared<FakeExchange>(r);
  router.dispatch(ex, ex->request_);
  return {ex};
}

Router make_router(std::vector<std::string>& calls) {
  Router router;
  auto record = [&calls](std::string name) {
    return [&calls, name](const std::shared_ptr<HttpExchange>& ex) {
      std::string s = name;
      for (const auto& [k, v] : ex->request().params) s += " " + k + "=" + v;
      calls.push_back(s);
      ex->respond(200, "text/plain", "", {});
    };
  };
  router.add("GET", "/v2/health/live", record("live"), RouteAccess::kPublic);
  router.add("GET", "/v2/models/stats", record("all_stats"));
  router.add("GET", "/v2/models/{model}", record("metadata"));
  router.add("POST", "/v2/models/{model}/generate", record("generate"));
  router.add("POST", "/v2/models/{model}/versions/{version}/generate", record("generate_v"));
  router.add("PUT", "/v2/models/{model}/generate", record("put_generate"));
  return router;
}

TEST(HttpRouter, MatchesLiteralAndParameterSegments) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  EXPECT_EQ(dispatch(router, "GET", "/v2/health/live").ex->status, 200);
  dispatch(router, "POST", "/v2/models/gpt2/generate");
  dispatch(router, "POST", "/v2/models/gpt2/versions/1/generate");
  dispatch(router, "GET", "/v2/models/llama");
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0], "live");
  EXPECT_EQ(calls[1], "generate model=gpt2");
  EXPECT_EQ(calls[2], "generate_v model=gpt2 version=1");
  EXPECT_EQ(calls[3], "metadata model=llama");
}

TEST(HttpRouter, EarlierLiteralRouteWinsOverParameter) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  dispatch(router, "GET", "/v2/models/stats");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], "all_stats");
}

TEST(HttpRouter, TrailingAndDoubleSlashesAreIgnored) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  EXPECT_EQ(dispatch(router, "GET", "/v2/health/live/").ex->status, 200);
  EXPECT_EQ(dispatch(router, "GET", "//v2//health/live").ex->status, 200);
}

TEST(HttpRouter, UnknownPathIs404WithTritonErrorBody) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  auto d = dispatch(router, "GET", "/v2/nothing");
  EXPECT_EQ(d.ex->status, 404);
  EXPECT_EQ(d.ex->body, R"({"error":"Not Found"})");
  EXPECT_EQ(d.ex->content_type, "application/json");
  EXPECT_EQ(dispatch(router, "POST", "/v2/models/m/generate/extra").ex->status, 404);
  EXPECT_TRUE(calls.empty());
}

// HEAD runs the GET handler (the server drops the body); GET routes allow HEAD in a 405's Allow.
TEST(HttpRouter, HeadIsGetAndAllowedWithIt) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  EXPECT_EQ(dispatch(router, "HEAD", "/v2/health/live").ex->status, 200);
  EXPECT_EQ(dispatch(router, "HEAD", "/v2/models/m/generate").ex->status, 405);
  auto d = dispatch(router, "POST", "/v2/health/live");
  EXPECT_EQ(d.ex->status, 405);
  EXPECT_EQ(d.ex->header("Allow"), "GET, HEAD");
}

TEST(HttpRouter, KnownPathWithOtherMethodIs405WithAllow) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  auto d = dispatch(router, "GET", "/v2/models/m/generate");
  EXPECT_EQ(d.ex->status, 405);
  EXPECT_EQ(d.ex->header("Allow"), "POST, PUT");
  EXPECT_EQ(d.ex->body, R"({"error":"Method Not Allowed"})");
}

TEST(HttpRouter, PrefixErrorBodyReplacesTritonsUnderItsPrefixOnly) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  router.add("POST", "/v1/completions",
             [&calls](const std::shared_ptr<HttpExchange>&) { calls.push_back("completions"); });
  router.set_api_key("k1");
  router.set_error_body("/v1/", [](int status, const std::string& message) {
    return "{\"error\":{\"message\":\"" + message + "\",\"status\":" + std::to_string(status) +
           "}}";
  });
  auto d = dispatch(router, "POST", "/v1/completions");
  EXPECT_EQ(d.ex->status, 401);
  EXPECT_EQ(d.ex->header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(
      d.ex->body,
      R"({"error":{"message":"Unauthorized: send 'Authorization: Bearer <api key>'","status":401}})");
  const std::map<std::string, std::string> key = {{"authorization", "Bearer k1"}};
  EXPECT_EQ(dispatch(router, "GET", "/v1/nothing", key).ex->body,
            R"({"error":{"message":"Not Found","status":404}})");
  EXPECT_EQ(dispatch(router, "GET", "/v2/nothing", key).ex->body,
            R"({"error":"Not Found"})");  // Triton's, outside /v1/
  EXPECT_TRUE(calls.empty());
}

TEST(HttpRouter, ApiKeyGuardsProtectedRoutesOnly) {
  std::vector<std::string> calls;
  Router router = make_router(calls);
  router.set_api_key("k1");
  auto d = dispatch(router, "POST", "/v2/models/m/generate");
  EXPECT_EQ(d.ex->status, 401);
  EXPECT_EQ(d.ex->header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(dispatch(router, "POST", "/v2/models/m/generate", {{"authorization", "Bearer k2"}})
                .ex->status,
            401);
  EXPECT_EQ(dispatch(router, "POST", "/v2/models/m/generate", {{"authorization", "Bearer k1"}})
                .ex->status,
            200);
  EXPECT_EQ(dispatch(router, "POST", "/v2/models/m/generate", {{"authorization", "bearer k1"}})
                .ex->status,
            200);
  EXPECT_EQ(dispatch(router, "POST", "/v2/models/m/generate", {{"authorization", "BEARER   k1"}})
                .ex->status,
            200);
  EXPECT_EQ(dispatch(router, "GET", "/v2/health/live").ex->status, 200);
  // Unknown routes and methods are 401 to an unauthorized client, so routes cannot be enumerated;
  // with the key they are the usual 404 / 405.
  EXPECT_EQ(dispatch(router, "GET", "/v2/nothing").ex->status, 401);
  EXPECT_EQ(dispatch(router, "GET", "/v2/models/m/generate").ex->status, 401);
  EXPECT_EQ(dispatch(router, "GET", "/v2/nothing", {{"authorization", "Bearer k1"}}).ex->status,
            404);
  EXPECT_EQ(
      dispatch(router, "GET", "/v2/models/m/generate", {{"authorization", "Bearer k1"}}).ex->status,
      405);
}

TEST(HttpRouter, PostHandlersRunOnTheWorkersGetHandlersInline) {
  Router router;
  std::promise<std::thread::id> post_thread;
  std::thread::id get_thread;
  router.add("POST", "/v2/models/{model}/generate", [&](const std::shared_ptr<HttpExchange>&) {
    post_thread.set_value(std::this_thread::get_id());
  });
  router.add("GET", "/v2", [&](const std::shared_ptr<HttpExchange>&) {
    get_thread = std::this_thread::get_id();
  });
  WorkerPool workers(1, 10, "test");
  router.set_workers(&workers);
  dispatch(router, "GET", "/v2");
  EXPECT_EQ(get_thread, std::this_thread::get_id());
  auto d = dispatch(router, "POST", "/v2/models/m/generate");
  auto post_id = post_thread.get_future();
  ASSERT_EQ(post_id.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_NE(post_id.get(), std::this_thread::get_id());
  EXPECT_EQ(d.ex->request().param("model"), "m");
}

TEST(HttpRouter, PostBeyondTheWorkerQueueIs503WithRetryAfter) {
  Router router;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  std::promise<void> handled;
  router.add("POST", "/slow", [&](const std::shared_ptr<HttpExchange>&) {
    started.set_value();
    released.wait();
  });
  router.add("POST", "/v1/completions", [&](const std::shared_ptr<HttpExchange>& ex) {
    ex->respond(200, "application/json", "{}", {});
    handled.set_value();
  });
  router.set_error_body("/v1/", [](int status, const std::string& message) {
    return "{\"openai\": " + std::to_string(status) + ", \"m\": \"" + message + "\"}";
  });
  WorkerPool workers(1, 1, "test");
  router.set_workers(&workers);
  dispatch(router, "POST", "/slow");
  started.get_future().wait();                                 // the worker is busy
  auto queued = dispatch(router, "POST", "/v1/completions");   // fills the queue
  auto refused = dispatch(router, "POST", "/v1/completions");  // beyond it
  EXPECT_EQ(refused.ex->status, 503);
  EXPECT_EQ(refused.ex->header("Retry-After"), "1");
  EXPECT_NE(refused.ex->body.find("\"openai\": 503"), std::string::npos) << refused.ex->body;
  EXPECT_NE(refused.ex->body.find("--tokenizer-queue-size"), std::string::npos) << refused.ex->body;
  release.set_value();
  ASSERT_EQ(handled.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(queued.ex->status, 200);
}

TEST(ApiKey, BearerSchemeAnyCaseAndExactKey) {
  EXPECT_TRUE(api_key_matches("", ""));  // no key configured
  EXPECT_TRUE(api_key_matches("anything", ""));
  EXPECT_TRUE(api_key_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(api_key_matches("bearer s3cret", "s3cret"));
  EXPECT_TRUE(api_key_matches("bEaReR  s3cret", "s3cret"));
  for (const char* no :
       {"", "Bearer", "Bearer ", "Bearers3cret", "Basic s3cret", "Bearer s3cre", "Bearer s3cret2",
        "Bearer S3CRET", "Bearer s3cret ", "s3cret", "Token s3cret"}) {
    EXPECT_FALSE(api_key_matches(no, "s3cret")) << no;
  }
}

TEST(HttpRouter, SplitsAndDecodesPaths) {
  EXPECT_EQ(split_path("/a/b/"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_path("/").empty());
  EXPECT_EQ(url_decode("a%2Fb%20c", false), "a/b c");
  EXPECT_EQ(url_decode("a+b", true), "a b");
  EXPECT_EQ(url_decode("a+b", false), "a+b");
  EXPECT_FALSE(url_decode("bad%2", false).has_value());
  EXPECT_FALSE(url_decode("bad%zz", false).has_value());
}

TEST(HttpStatusMapping, FollowsTriton) {
  EXPECT_EQ(http_status_for(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status_for(StatusCode::kOutOfRange), 400);
  EXPECT_EQ(http_status_for(StatusCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(StatusCode::kResourceExhausted), 503);
  EXPECT_EQ(http_status_for(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http_status_for(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(http_status_for(StatusCode::kInternal), 500);
  HttpRequest r;
  FakeExchange ex(r);
  respond_status(ex, Status(StatusCode::kResourceExhausted, "overloaded"));
  EXPECT_EQ(ex.status, 503);
  EXPECT_EQ(ex.header("Retry-After"), "1");
  EXPECT_EQ(ex.body, R"({"error":"overloaded"})");
}

}  // namespace
}  // namespace llmserve::http
