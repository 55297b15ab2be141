// KServe v2 health, metadata, model config, statistics and repository routes (docs/server.md,
// 3.8, 3.9), and the route table of the frontend.
#include <algorithm>

#include "server/http/status_mapping.h"
#include "server/kserve/ensemble_tensors.h"
#include "server/kserve/kserve_frontend.h"

namespace llmserve::kserve {

using nlohmann::json;

namespace {
constexpr const char* kServerVersion = "0.1.0";

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json tensor_metadata(const TensorSpec& t) {
  json shape = json::array({-1});  // max_batch_size >= 1: the batch dimension comes first
  for (int64_t d : t.dims) shape.push_back(d);
  return {{"name", t.name}, {"datatype", datatype_name(t.datatype)}, {"shape", shape}};
}
}  // namespace

bool ServedModel::is_name(const std::string& n) const {
  return n == name || std::find(aliases.begin(), aliases.end(), n) != aliases.end();
}

KServeFrontend::KServeFrontend(GenerationService& service, const http::ServingState& state,
                               ServedModel model)
    : service_(service), state_(state), model_(std::move(model)) {}

void KServeFrontend::add_routes(http::Router& router) {
  add_metadata_routes(router);
  add_inference_routes(router);
}

void KServeFrontend::add_metadata_routes(http::Router& router) {
  using http::RouteAccess;
  auto bind = [this](void (KServeFrontend::*fn)(const ExchangePtr&) const) {
    return [this, fn](const ExchangePtr& ex) { (this->*fn)(ex); };
  };
  router.add(
      "GET", "/v2/health/live",
      [](const ExchangePtr& ex) { ex->respond(200, "text/plain", "", {}); }, RouteAccess::kPublic);
  router.add(
      "GET", "/v2/health/ready",
      [this](const ExchangePtr& ex) {
        if (state_.accepts_requests()) {
          ex->respond(200, "text/plain", "", {});
        } else {
          http::respond_error(
              *ex, 503, state_.is_draining ? "the server is shutting down" : "the model is loading",
              {{"Retry-After", "1"}});
        }
      },
      RouteAccess::kPublic);
  router.add("GET", "/v2", bind(&KServeFrontend::server_metadata));
  router.add("GET", "/v2/models/stats", bind(&KServeFrontend::all_model_stats));
  router.add("POST", "/v2/repository/index", bind(&KServeFrontend::repository_index));
  for (const std::string prefix : {"/v2/models/{model}", "/v2/models/{model}/versions/{version}"}) {
    router.add("GET", prefix, bind(&KServeFrontend::model_metadata));
    router.add("GET", prefix + "/ready", bind(&KServeFrontend::model_ready));
    router.add("GET", prefix + "/config", bind(&KServeFrontend::model_config));
    router.add("GET", prefix + "/stats", bind(&KServeFrontend::model_stats));
  }
}

Status KServeFrontend::resolve_model(const http::HttpRequest& request) const {
  const std::string& name = request.param("model");
  if (!model_.is_name(name)) {
    return {StatusCode::kInvalidArgument,
            fmt::format("Request for unknown model: '{}' is not found", name)};
  }
  const std::string& version = request.param("version");
  if (!version.empty() && version != model_.version) {
    return {StatusCode::kNotFound,
            fmt::format("Request for unknown model: '{}' version {} is not found", name, version)};
  }
  return Status::ok();
}

void KServeFrontend::server_metadata(const ExchangePtr& ex) const {
  json j = {
      {"name", "llmserve"},
      {"version", kServerVersion},
      // Not model_repository: its index answers, but load and unload do not exist (one
      // model, served from start to exit), and clients read the list as a promise.
      {"extensions", {"model_configuration", "statistics", "generate", "binary_tensor_data"}}};
  http::respond_json(*ex, 200, dump(j));
}

void KServeFrontend::model_metadata(const ExchangePtr& ex) const {
  if (Status s = resolve_model(ex->request()); !s.is_ok()) return http::respond_status(*ex, s);
  json inputs = json::array(), outputs = json::array();
  for (const auto& t : ensemble_inputs()) inputs.push_back(tensor_metadata(t));
  for (const auto& t : ensemble_outputs()) outputs.push_back(tensor_metadata(t));
  json j = {{"name", ex->request().param("model")},
            {"versions", {model_.version}},
            {"platform", "ensemble"},
            {"inputs", inputs},
            {"outputs", outputs}};
  http::respond_json(*ex, 200, dump(j));
}

void KServeFrontend::model_ready(const ExchangePtr& ex) const {
  if (Status s = resolve_model(ex->request()); !s.is_ok()) return http::respond_status(*ex, s);
  if (state_.accepts_requests()) {
    ex->respond(200, "text/plain", "", {});
  } else {
    http::respond_error(*ex, 503, "the model is not ready", {{"Retry-After", "1"}});
  }
}

void KServeFrontend::model_config(const ExchangePtr& ex) const {
  if (Status s = resolve_model(ex->request()); !s.is_ok()) return http::respond_status(*ex, s);
  json inputs = json::array(), outputs = json::array();
  for (const auto& t : ensemble_inputs()) {
    inputs.push_back({{"name", t.name},
                      {"data_type", config_datatype_name(t.datatype)},
                      {"dims", t.dims},
                      {"optional", t.is_optional}});
  }
  for (const auto& t : ensemble_outputs()) {
    outputs.push_back(
        {{"name", t.name}, {"data_type", config_datatype_name(t.datatype)}, {"dims", t.dims}});
  }
  const EngineConfig& ec = service_.engine().config();
  json j = {
      {"name", ex->request().param("model")},
      {"platform", "ensemble"},
      {"backend", "llmserve"},
      {"version_policy", {{"latest", {{"num_versions", 1}}}}},
      {"max_batch_size", ec.max_batch_size},
      {"input", inputs},
      {"output", outputs},
      {"model_transaction_policy", {{"decoupled", false}}},
      {"parameters",
       {{"max_model_len", {{"string_value", std::to_string(service_.engine().max_model_len())}}},
        {"max_num_tokens", {{"string_value", std::to_string(ec.max_num_tokens)}}},
        {"max_queue_size", {{"string_value", std::to_string(ec.max_queue_size)}}}}}};
  http::respond_json(*ex, 200, dump(j));
}

void KServeFrontend::model_stats(const ExchangePtr& ex) const {
  if (Status s = resolve_model(ex->request()); !s.is_ok()) return http::respond_status(*ex, s);
  json j = {{"model_stats",
             json::array({model_stats_json(service_.stats().snapshot(),
                                           ex->request().param("model"), model_.version)})}};
  http::respond_json(*ex, 200, dump(j));
}

void KServeFrontend::all_model_stats(const ExchangePtr& ex) const {
  json j = {{"model_stats", json::array({model_stats_json(service_.stats().snapshot(), model_.name,
                                                          model_.version)})}};
  http::respond_json(*ex, 200, dump(j));
}

void KServeFrontend::repository_index(const ExchangePtr& ex) const {
  const char* state = state_.accepts_requests() ? "READY" : "UNAVAILABLE";
  json j = json::array(
      {{{"name", model_.name}, {"version", model_.version}, {"state", state}, {"reason", ""}}});
  http::respond_json(*ex, 200, dump(j));
}

}  // namespace llmserve::kserve
