#include "server/status_table.h"

#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>

#include <string>

#include "server/grpc/infer_calls.h"
#include "server/openai/request_parsing.h"

namespace llmserve {
namespace {

// Every code, as each protocol answers it: Triton's HTTP mapping, OpenAI's error envelope and the
// gRPC code — the one table all three frontends read.
TEST(StatusTable, EveryCodeOnEveryProtocol) {
  struct Row {
    StatusCode code;
    int http, openai_http;
    std::string openai_type, openai_code;
    ::grpc::StatusCode grpc;
  };
  const Row rows[] = {
      {StatusCode::kInvalidArgument, 400, 400, "invalid_request_error", "",
       ::grpc::INVALID_ARGUMENT},
      {StatusCode::kNotFound, 404, 404, "invalid_request_error", "", ::grpc::NOT_FOUND},
      {StatusCode::kOutOfRange, 400, 400, "invalid_request_error", "", ::grpc::INVALID_ARGUMENT},
      {StatusCode::kResourceExhausted, 503, 429, "rate_limit_exceeded", "rate_limit_exceeded",
       ::grpc::UNAVAILABLE},
      {StatusCode::kUnavailable, 503, 503, "service_unavailable", "", ::grpc::UNAVAILABLE},
      {StatusCode::kCancelled, 400, 400, "invalid_request_error", "cancelled", ::grpc::CANCELLED},
      {StatusCode::kDeadlineExceeded, 504, 504, "timeout", "", ::grpc::DEADLINE_EXCEEDED},
      {StatusCode::kFailedPrecondition, 400, 400, "invalid_request_error", "",
       ::grpc::FAILED_PRECONDITION},
      {StatusCode::kDataLoss, 500, 500, "server_error", "", ::grpc::DATA_LOSS},
      {StatusCode::kUnimplemented, 501, 500, "server_error", "", ::grpc::UNIMPLEMENTED},
      {StatusCode::kInternal, 500, 500, "server_error", "", ::grpc::INTERNAL},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::string(status_code_name(r.code)));
    const Status s(r.code, "why");
    EXPECT_EQ(protocol_status(r.code).http, r.http);
    const openai::ApiError e = openai::from_status(s);
    EXPECT_EQ(e.status, r.openai_http);
    EXPECT_EQ(e.type, r.openai_type);
    EXPECT_EQ(e.code, r.openai_code);
    const ::grpc::Status g = grpc_frontend::to_grpc_status(s);
    EXPECT_EQ(g.error_code(), r.grpc);
    EXPECT_EQ(g.error_message(), "why");
  }
  EXPECT_TRUE(grpc_frontend::to_grpc_status(Status::ok()).ok());
  EXPECT_EQ(openai::from_status(Status(StatusCode::kResourceExhausted, "queue full")).message,
            "the server is overloaded: queue full");
  EXPECT_EQ(
      openai::from_status(Status(StatusCode::kInvalidArgument, "temperature must be >= 0")).param,
      "temperature");
}

}  // namespace
}  // namespace llmserve
