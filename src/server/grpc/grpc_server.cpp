#include "server/grpc/grpc_server.h"

#include <algorithm>
#include <limits>

#include <grpcpp/grpcpp.h>

#include "grpc_service.grpc.pb.h"
#include "health.grpc.pb.h"
#include "server/api_key.h"
#include "server/grpc/infer_calls.h"
#include "server/grpc/infer_request.h"
#include "server/grpc/stats_proto.h"

namespace llmserve {
namespace {

using ::grpc::CallbackServerContext;
using ::grpc::ServerUnaryReactor;
using namespace inference;
using grpc_frontend::CallContext;
using grpc_frontend::to_grpc_status;

constexpr std::string_view kModelVersion = "1";

inference::DataType config_datatype(std::string_view datatype) {
  if (datatype == "BYTES") return TYPE_STRING;
  if (datatype == "INT32") return TYPE_INT32;
  if (datatype == "FP32") return TYPE_FP32;
  if (datatype == "UINT64") return TYPE_UINT64;
  return TYPE_BOOL;
}

ServerUnaryReactor* finish_now(CallbackServerContext* context, const ::grpc::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Answers UNAUTHENTICATED at once on a stream without the api key.
class RejectedStream
    : public ::grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  explicit RejectedStream(const ::grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

class InferenceService final : public GRPCInferenceService::CallbackService {
 public:
  InferenceService(GenerationService& service, const GrpcServerOptions& options,
                   const CallContext& call_context)
      : service_(service), options_(options), call_context_(call_context) {}

  bool is_ready() const { return !options_.is_ready || options_.is_ready(); }

  bool is_served_name(std::string_view name) const {
    return name == options_.model_name ||
           std::find(options_.model_aliases.begin(), options_.model_aliases.end(), name) !=
               options_.model_aliases.end();
  }

  Status check_model(const std::string& name, const std::string& version) const {
    if (!is_served_name(name)) {
      return {StatusCode::kInvalidArgument,
              fmt::format("Request for unknown model: '{}' is not found", name)};
    }
    if (!version.empty() && version != kModelVersion) {
      return {
          StatusCode::kNotFound,
          fmt::format("Request for unknown model: '{}' version {} is not found", name, version)};
    }
    if (!is_ready())
      return {StatusCode::kUnavailable, fmt::format("model '{}' is not ready", name)};
    return Status::ok();
  }

  // Model lookups that do not need readiness (metadata, config, statistics).
  ::grpc::Status find_model(const std::string& name, const std::string& version) const {
    Status s = check_model(name, version);
    return s.code() == StatusCode::kUnavailable ? ::grpc::Status::OK : to_grpc_status(s);
  }

  ::grpc::Status authorize(CallbackServerContext* context) const {
    if (options_.api_key.empty()) return ::grpc::Status::OK;
    const auto& metadata = context->client_metadata();
    const auto it = metadata.find("authorization");
    if (it != metadata.end() &&
        api_key_matches(std::string_view(it->second.data(), it->second.size()), options_.api_key)) {
      return ::grpc::Status::OK;
    }
    return {::grpc::StatusCode::UNAUTHENTICATED,
            "missing or invalid api key (metadata 'authorization: Bearer <key>')"};
  }

  ServerUnaryReactor* ServerLive(CallbackServerContext* context, const ServerLiveRequest*,
                                 ServerLiveResponse* response) override {
    response->set_live(true);
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* ServerReady(CallbackServerContext* context, const ServerReadyRequest*,
                                  ServerReadyResponse* response) override {
    response->set_ready(is_ready());
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* ModelReady(CallbackServerContext* context, const ModelReadyRequest* request,
                                 ModelReadyResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    response->set_ready(check_model(request->name(), request->version()).is_ok());
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* ServerMetadata(CallbackServerContext* context, const ServerMetadataRequest*,
                                     ServerMetadataResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    response->set_name(options_.server_name);
    response->set_version(options_.server_version);
    // Not model_repository: RepositoryIndex answers, but load and unload do not exist.
    for (const char* e : {"model_configuration", "statistics", "parameters"}) {
      response->add_extensions(e);
    }
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* ModelMetadata(CallbackServerContext* context,
                                    const ModelMetadataRequest* request,
                                    ModelMetadataResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    if (auto s = find_model(request->name(), request->version()); !s.ok())
      return finish_now(context, s);
    response->set_name(request->name());
    response->add_versions(std::string(kModelVersion));
    response->set_platform("llmserve");
    auto add = [](const grpc_frontend::TensorSpec& spec, ModelMetadataResponse::TensorMetadata* t) {
      t->set_name(std::string(spec.name));
      t->set_datatype(std::string(spec.datatype));
      t->add_shape(-1);  // max_batch_size >= 1: the batch dimension comes first
      for (int64_t d : spec.dims) t->add_shape(d);
    };
    for (const auto& spec : grpc_frontend::input_specs()) add(spec, response->add_inputs());
    for (const auto& spec : grpc_frontend::output_specs()) add(spec, response->add_outputs());
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* ModelConfig(CallbackServerContext* context, const ModelConfigRequest* request,
                                  ModelConfigResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    if (auto s = find_model(request->name(), request->version()); !s.ok())
      return finish_now(context, s);
    inference::ModelConfig& c = *response->mutable_config();
    c.set_name(request->name());
    c.set_backend("llmserve");
    c.set_max_batch_size(service_.engine().config().max_batch_size);
    c.mutable_model_transaction_policy()->set_decoupled(true);
    for (const auto& spec : grpc_frontend::input_specs()) {
      ModelInput& in = *c.add_input();
      in.set_name(std::string(spec.name));
      in.set_data_type(config_datatype(spec.datatype));
      for (int64_t d : spec.dims) in.add_dims(d);
      in.set_optional(spec.is_optional);
    }
    for (const auto& spec : grpc_frontend::output_specs()) {
      ModelOutput& out = *c.add_output();
      out.set_name(std::string(spec.name));
      out.set_data_type(config_datatype(spec.datatype));
      for (int64_t d : spec.dims) out.add_dims(d);
    }
    (*c.mutable_parameters())["max_model_len"].set_string_value(
        std::to_string(service_.engine().max_model_len()));
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* ModelStatistics(CallbackServerContext* context,
                                      const ModelStatisticsRequest* request,
                                      ModelStatisticsResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    const std::string& name = request->name().empty() ? options_.model_name : request->name();
    if (auto s = find_model(name, request->version()); !s.ok()) return finish_now(context, s);
    inference::ModelStatistics& m = *response->add_model_stats();
    m.set_name(name);
    m.set_version(std::string(kModelVersion));
    grpc_frontend::fill_model_statistics(service_.stats().snapshot(), m);
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* RepositoryIndex(CallbackServerContext* context,
                                      const RepositoryIndexRequest* request,
                                      RepositoryIndexResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    const bool is_model_ready = is_ready();
    if (request->ready() && !is_model_ready) return finish_now(context, ::grpc::Status::OK);
    std::vector<std::string> names = {options_.model_name};
    names.insert(names.end(), options_.model_aliases.begin(), options_.model_aliases.end());
    for (const std::string& name : names) {
      auto* m = response->add_models();
      m->set_name(name);
      m->set_version(std::string(kModelVersion));
      m->set_state(is_model_ready ? "READY" : "UNAVAILABLE");
    }
    return finish_now(context, ::grpc::Status::OK);
  }

  ServerUnaryReactor* RepositoryModelLoad(CallbackServerContext* context,
                                          const RepositoryModelLoadRequest*,
                                          RepositoryModelLoadResponse*) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    return finish_now(context,
                      {::grpc::StatusCode::UNAVAILABLE,
                       "explicit model load / unload is not allowed: llmserve serves one model"});
  }

  ServerUnaryReactor* RepositoryModelUnload(CallbackServerContext* context,
                                            const RepositoryModelUnloadRequest*,
                                            RepositoryModelUnloadResponse*) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    return finish_now(context,
                      {::grpc::StatusCode::UNAVAILABLE,
                       "explicit model load / unload is not allowed: llmserve serves one model"});
  }

  ServerUnaryReactor* ModelInfer(CallbackServerContext* context, const ModelInferRequest* request,
                                 ModelInferResponse* response) override {
    if (auto s = authorize(context); !s.ok()) return finish_now(context, s);
    return grpc_frontend::start_model_infer(call_context_, context, request, response);
  }

  ::grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* ModelStreamInfer(
      CallbackServerContext* context) override {
    if (auto s = authorize(context); !s.ok()) return new RejectedStream(s);
    return grpc_frontend::start_model_stream_infer(call_context_, context);
  }

 private:
  GenerationService& service_;
  const GrpcServerOptions& options_;
  const CallContext& call_context_;
};

class HealthService final : public ::grpc::health::v1::Health::CallbackService {
 public:
  explicit HealthService(const InferenceService& inference) : inference_(inference) {}

  ServerUnaryReactor* Check(CallbackServerContext* context,
                            const ::grpc::health::v1::HealthCheckRequest* request,
                            ::grpc::health::v1::HealthCheckResponse* response) override {
    using ::grpc::health::v1::HealthCheckResponse;
    const std::string& name = request->service();
    if (!name.empty() && name != "inference.GRPCInferenceService" &&
        !inference_.is_served_name(name)) {
      return finish_now(context, {::grpc::StatusCode::NOT_FOUND, "unknown service '" + name + "'"});
    }
    response->set_status(inference_.is_ready() ? HealthCheckResponse::SERVING
                                               : HealthCheckResponse::NOT_SERVING);
    return finish_now(context, ::grpc::Status::OK);
  }

 private:
  const InferenceService& inference_;
};

struct GrpcServer::Impl {
  Impl(GenerationService& service, GrpcServerOptions opts)
      : options(std::move(opts)), inference(service, options, call_context), health(inference) {
    call_context.service = &service;
    call_context.drains = &drains;
    call_context.workers = options.workers;
    call_context.check_model = [this](const std::string& name, const std::string& version) {
      return inference.check_model(name, version);
    };
  }

  GrpcServerOptions options;
  // The generations' drains: one thread, tasks in order, never refused (they must run).
  WorkerPool drains{1, std::numeric_limits<int64_t>::max(), "grpc-drain"};
  CallContext call_context;
  InferenceService inference;
  HealthService health;
  std::unique_ptr<::grpc::Server> server;
  bool is_shut_down = false;
};

GrpcServer::GrpcServer(GenerationService& service, GrpcServerOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

GrpcServer::~GrpcServer() {
  shutdown(std::chrono::system_clock::now());
}

void GrpcServer::start(const std::string& host, int port) {
  const std::string address =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort(address, ::grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&impl_->inference);
  builder.RegisterService(&impl_->health);
  builder.SetMaxReceiveMessageSize(64 << 20);
  // gRPC sets SO_REUSEPORT by default, which would let a second server share a taken port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || port_ == 0) {
    impl_->server.reset();
    fail(StatusCode::kUnavailable, "gRPC: cannot listen on {} (port {} in use or not permitted)",
         address, port);
  }
}

void GrpcServer::shutdown(std::chrono::system_clock::time_point deadline) {
  if (impl_->is_shut_down) return;
  impl_->is_shut_down = true;
  if (impl_->server) {
    impl_->server->Shutdown(deadline);
    impl_->server->Wait();
  }
  impl_->drains.stop();
}

}  // namespace llmserve
