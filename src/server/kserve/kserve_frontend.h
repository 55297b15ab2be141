// KServeFrontend: the KServe v2 HTTP protocol and Triton's generate extension over the one
// GenerationService (docs/server.md). It registers its routes on a Router:
//   GET  /v2/health/live, /v2/health/ready, /v2                          (public)
//   GET  /v2/models/{m}[/versions/{v}], .../ready, .../config, .../stats, /v2/models/stats
//   POST /v2/models/{m}[/versions/{v}]/infer (JSON or binary tensors), .../generate,
//   .../generate_stream POST /v2/repository/index
// Errors are Triton's {"error": "..."}: 400 bad input (naming the field) or unknown model name
// (Triton's INVALID_ARG "Request for unknown model: '<m>' is not found"), 404 unknown version or
// route, 503 + Retry-After when overloaded, not ready or draining.
//
// Thread-safety: handlers run concurrently (GETs on the connections' I/O threads, POSTs on the
// tokenizer threads: router.h); the frontend holds no mutable state of its own (statistics live in
// GenerationService, readiness in ServingState).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/generation_service.h"
#include "server/http/router.h"
#include "server/http/serving_state.h"
#include "server/kserve/request_parsing.h"
#include "server/kserve/stats_json.h"

namespace llmserve::kserve {

struct ServedModel {
  std::string name;                  // the public model name
  std::vector<std::string> aliases;  // other names that reach it
  std::string version = "1";
  bool is_name(const std::string& n) const;
};

class KServeFrontend {
 public:
  KServeFrontend(GenerationService& service, const http::ServingState& state, ServedModel model);
  void add_routes(http::Router& router);

 private:
  enum class Api { kInfer, kGenerate, kGenerateStream };
  using ExchangePtr = std::shared_ptr<http::HttpExchange>;

  // kserve_metadata.cpp
  void add_metadata_routes(http::Router& router);
  void server_metadata(const ExchangePtr& ex) const;
  void model_metadata(const ExchangePtr& ex) const;
  void model_ready(const ExchangePtr& ex) const;
  void model_config(const ExchangePtr& ex) const;
  void model_stats(const ExchangePtr& ex) const;
  void all_model_stats(const ExchangePtr& ex) const;
  void repository_index(const ExchangePtr& ex) const;
  // Ok, kInvalidArgument for an unknown model name, kNotFound for an unknown version.
  Status resolve_model(const http::HttpRequest& request) const;

  // kserve_inference.cpp
  void add_inference_routes(http::Router& router);
  void infer(const ExchangePtr& ex, Api api);
  Status parse_request(const http::HttpRequest& request, Api api, ParsedRequest& parsed) const;
  void reply_unary(const ExchangePtr& ex, Api api, std::shared_ptr<ParsedRequest> parsed,
                   std::shared_ptr<GenerationHandle> handle);
  void reply_stream(const ExchangePtr& ex, std::shared_ptr<ParsedRequest> parsed,
                    std::shared_ptr<GenerationHandle> handle);

  GenerationService& service_;
  const http::ServingState& state_;
  ServedModel model_;
};

}  // namespace llmserve::kserve
