// Status and Error: how llmserve reports failures.
//
// A Status is a code plus a human message that names the offending field, file or tensor. Code
// that validates input returns a Status; code that cannot continue (a corrupt checkpoint, a bad
// flag) throws Error, which carries a Status. Frontends map StatusCode to their protocol's error
// (HTTP status, gRPC code). The tokenizer and model loader never log-and-continue.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace llmserve {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // the caller sent something malformed (400)
  kNotFound,            // unknown model, file, route (404)
  kOutOfRange,          // prompt longer than the context, token id past the vocabulary (400)
  kResourceExhausted,   // queue full, out of memory (503 / 429)
  kUnavailable,         // draining, not ready (503)
  kCancelled,           // the client went away or asked to stop
  kDeadlineExceeded,    // the request's deadline passed
  kFailedPrecondition,  // e.g. an engine built for another GPU
  kDataLoss,            // a truncated or corrupt file
  kUnimplemented,       // a feature we recognise but do not support
  kInternal,            // a bug on our side (500)
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: temperature must be >= 0, got -1"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Thrown where the caller cannot continue. what() is the message alone.
class Error : public std::runtime_error {
 public:
  explicit Error(Status status)
      : std::runtime_error(status.message()), status_(std::move(status)) {}
  Error(StatusCode code, std::string message) : Error(Status(code, std::move(message))) {}
  const Status& status() const { return status_; }
  StatusCode code() const { return status_.code(); }

 private:
  Status status_;
};

template <typename... Args>
Status invalid_argument(fmt::format_string<Args...> f, Args&&... args) {
  return {StatusCode::kInvalidArgument, fmt::format(f, std::forward<Args>(args)...)};
}

template <typename... Args>
[[noreturn]] void fail(StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace llmserve
