// GrpcServer: the KServe v2 / Triton gRPC frontend (`inference.GRPCInferenceService` from
// proto/grpc_service.proto, plus `grpc.health.v1.Health/Check`), serving one model under a name
// and its aliases through the GenerationService.
//
// Served: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelConfig,
// ModelStatistics, RepositoryIndex, ModelInfer, ModelStreamInfer (see infer_calls.h and the tensor
// table in infer_request.h), RepositoryModelLoad/Unload (UNAVAILABLE: no explicit model control),
// Health/Check. The shared-memory, trace and log RPCs answer UNIMPLEMENTED.
// Errors: bad input INVALID_ARGUMENT naming the tensor, unknown model INVALID_ARGUMENT (as
// Triton), unknown version NOT_FOUND, not
// ready or overloaded UNAVAILABLE, missing/wrong api key UNAUTHENTICATED. Health RPCs answer OK
// with live/ready false instead of failing, and need no api key (probes carry none).
//
// Thread-safety: start() and shutdown() from the owning thread; RPCs run on gRPC's callback
// threads and one drain thread (no thread per call or per stream).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/worker_pool.h"
#include "server/generation_service.h"

namespace llmserve {

struct GrpcServerOptions {
  std::string model_name = "default";      // the served model name
  std::vector<std::string> model_aliases;  // further names that reach the same model
  std::function<bool()>
      is_ready;         // null => ready; false => ServerReady/ModelReady false, infer UNAVAILABLE
  std::string api_key;  // non-empty => metadata `authorization: Bearer <key>` required
  std::string server_name = "llmserve";  // ServerMetadata
  std::string server_version = "0.1.0";
  // Where inference requests are validated and tokenized (null: on gRPC's callback threads).
  // Must outlive shutdown(); a full queue answers UNAVAILABLE.
  WorkerPool* workers = nullptr;
};

class GrpcServer {
 public:
  GrpcServer(GenerationService& service, GrpcServerOptions options);
  ~GrpcServer();  // shutdown(now)
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Listens on host:port (port 0 picks a free one; see port()). Throws Error (kUnavailable) naming
  // the address when it cannot bind.
  void start(const std::string& host, int port);
  int port() const { return port_; }  // the bound port, after start()
  // Stops accepting, lets in-flight RPCs finish until `deadline`, then cancels the rest (their
  // generations are cancelled in the engine) and waits for them. Idempotent.
  void shutdown(std::chrono::system_clock::time_point deadline);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace llmserve
