// Transport: sends one prompt as one request of the run's target and reports its RequestTrace.
//
// Thread-safety: send() is called on the run's I/O thread (the io_context's one thread), and
// `done` is called there too, exactly once per send, also when the request fails.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "bench/load/load_options.h"
#include "bench/load/prompt_set.h"
#include "bench/load/request_trace.h"

namespace llmserve::bench::load {

class Transport {
 public:
  using DoneFn = std::function<void(RequestTrace&& trace)>;
  virtual ~Transport() = default;
  virtual void send(const Prompt& prompt, DoneFn done) = 0;
  // Drops idle connections (between sweep points, and at the end).
  virtual void close_idle() {}
};

// HTTP/1.1 keep-alive connections (Boost.Beast) for the completions, chat and generate targets.
std::unique_ptr<Transport> make_http_transport(boost::asio::io_context& io,
                                               const LoadOptions& options);
// KServe v2 gRPC ModelStreamInfer (grpc++ callback API; one stream per request).
std::unique_ptr<Transport> make_grpc_transport(boost::asio::io_context& io,
                                               const LoadOptions& options);

inline std::unique_ptr<Transport> make_transport(boost::asio::io_context& io,
                                                 const LoadOptions& options) {
  return options.target == Target::kGrpcStream ? make_grpc_transport(io, options)
                                               : make_http_transport(io, options);
}

}  // namespace llmserve::bench::load
