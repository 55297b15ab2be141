#include "server/http/status_mapping.h"

namespace llmserve::http {

int http_status_for(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kCancelled:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kResourceExhausted:
      return 503;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kDataLoss:
      return 500;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

void respond_status(HttpExchange& ex, const Status& status) {
  const int code = http_status_for(status.code());
  Headers extra;
  if (code == 503) extra.emplace_back("Retry-After", "1");
  respond_error(ex, code, status.message(), std::move(extra));
}

}  // namespace llmserve::http
