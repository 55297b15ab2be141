// The two inference RPCs as callback-API reactors: ModelInfer (unary: one request, one response
// with the whole text) and ModelStreamInfer (bidirectional: many requests per stream, one
// response per chunk of new text, each carrying `triton_final_response`; a failed request answers
// in band with `error_message` and the stream stays open).
//
// No thread is held per call. Each generation is read by a GenerationPump
// (server/generation_pump.h) whose drains run on CallContext::drains (one thread): they hand the
// call each chunk (on_chunk builds responses and starts writes) and then on_done. A call owns
// itself (a shared_ptr to itself, dropped in OnDone); pumps hold it weakly.
// The client cancelling (deadline, RST_STREAM, closed stream) cancels every generation of the
// call in the engine.
//
// Validating and tokenizing a request runs on CallContext::workers when set (a stream reads its
// next request only once the previous one was prepared, so replies keep the requests' order); a
// full worker queue answers UNAVAILABLE (unary) or an in-band error (stream).
//
// Thread-safety: reactor callbacks (gRPC threads), preparation (worker threads) and drains
// (the drain thread) meet under one mutex per call.
#pragma once

#include <functional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/worker_pool.h"
#include "grpc_service.grpc.pb.h"
#include "server/generation_service.h"

namespace llmserve::grpc_frontend {

// What every call needs from the server; outlives the calls.
struct CallContext {
  GenerationService* service = nullptr;
  WorkerPool* drains = nullptr;   // runs the generations' drains, in order (one thread)
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
