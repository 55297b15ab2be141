// The one table from a Status code to what each protocol answers: the HTTP status Triton gives
// (KServe v2 and generate routes), the OpenAI error's HTTP status, type and code, and the gRPC code
// (as a number: grpc::StatusCode's values, so this header needs no gRPC). Frontends return Status
// and map it here; docs/server.md lists the same table.
#pragma once

#include <array>
#include <cstddef>

#include "common/status.h"

namespace llmserve {

struct ProtocolStatus {
  int http;                 // Triton's HTTP status; 503 answers carry Retry-After
  int openai_http;          // OpenAI's: 429 for overload (its clients retry on it)
  const char* openai_type;  // error.type
  const char* openai_code;  // error.code; "" => null
  int grpc_code;            // grpc::StatusCode value
};

inline const ProtocolStatus& protocol_status(StatusCode code) {
  // Indexed by StatusCode, in its declaration order (a test checks every code).
  static constexpr std::array<ProtocolStatus, 13> kTable = {{
      {200, 200, "", "", 0},                                         // kOk
      {400, 400, "invalid_request_error", "", 3},                    // kInvalidArgument
      {404, 404, "invalid_request_error", "", 5},                    // kNotFound
      {400, 400, "invalid_request_error", "", 3},                    // kOutOfRange
      {503, 429, "rate_limit_exceeded", "rate_limit_exceeded", 14},  // kResourceExhausted
      {503, 503, "service_unavailable", "", 14},                     // kUnavailable
      {400, 400, "invalid_request_error", "cancelled", 1},           // kCancelled
      {504, 504, "timeout", "", 4},                                  // kDeadlineExceeded
      {400, 400, "invalid_request_error", "", 9},                    // kFailedPrecondition
      {500, 500, "server_error", "", 15},                            // kDataLoss
      {501, 500, "server_error", "", 12},                            // kUnimplemented
      {500, 500, "server_error", "", 13},                            // kInternal
      {500, 500, "server_error", "", 2},                             // out of range: UNKNOWN
  }};
  const auto i = static_cast<size_t>(code);
  return kTable[i < kTable.size() - 1 ? i : kTable.size() - 1];
}

}  // namespace llmserve
