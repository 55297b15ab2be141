// The two inference RPCs as callback-API reactors: ModelInfer (unary: one request, one response
// with the whole text) and ModelStreamInfer (bidirectional: many requests per stream, one
// response per chunk of new text, each carrying `triton_final_response`; a failed request answers
// in band with `error_message` and the stream stays open).
//
// No thread is held per call. A GenerationHandle's listener (engine thread) only posts a drain
// task to the Dispatcher; the drain reads the handle, builds responses and starts writes. A call
// owns itself (a shared_ptr to itself, dropped in OnDone); queued drain tasks hold weak pointers.
// The client cancelling (deadline, RST_STREAM, closed stream) cancels every generation of the
// call in the engine.
//
// Validating and tokenizing a request runs on CallContext::workers when set (a stream reads its
// next request only once the previous one was prepared, so replies keep the requests' order); a
// full worker queue answers UNAVAILABLE (unary) or an in-band error (stream).
//
// Thread-safety: reactor callbacks (gRPC threads), preparation (worker threads) and drains
// (dispatcher thread) meet under one mutex per call; gRPC operations are started outside it.
#pragma once

#include <functional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/worker_pool.h"
#include "grpc_service.grpc.pb.h"
#include "server/generation_service.h"
#include "server/grpc/dispatcher.h"

namespace llmserve::grpc_frontend {

// What every call needs from the server; outlives the calls.
struct CallContext {
  GenerationService* service = nullptr;
  Dispatcher* dispatcher = nullptr;
  WorkerPool* workers = nullptr;  // prepares requests off gRPC's threads; null: inline
  // Ok, kInvalidArgument (unknown model), kNotFound (unknown version) or kUnavailable (not
  // ready) for a request's model.
  std::function<Status(const std::string& name, const std::string& version)> check_model;
};

::grpc::Status to_grpc_status(const Status& status);

// Both validate the request (model, tensors) first; a bad one finishes at once.
::grpc::ServerUnaryReactor* start_model_infer(const CallContext& context,
                                              ::grpc::CallbackServerContext* server_context,
                                              const inference::ModelInferRequest* request,
                                              inference::ModelInferResponse* response);
::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
start_model_stream_infer(const CallContext& context, ::grpc::CallbackServerContext* server_context);

}  // namespace llmserve::grpc_frontend
