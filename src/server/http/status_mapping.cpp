#include "server/http/status_mapping.h"

#include "server/status_table.h"

namespace llmserve::http {

int http_status_for(StatusCode code) {
  return protocol_status(code).http;
}

void respond_status(HttpExchange& ex, const Status& status) {
  const int code = http_status_for(status.code());
  Headers extra;
  if (code == 503) extra.emplace_back("Retry-After", "1");
  respond_error(ex, code, status.message(), std::move(extra));
}

}  // namespace llmserve::http
