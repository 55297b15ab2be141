// StatusCode → HTTP status, as Triton maps its error codes (server/status_table.h), plus
// Retry-After on 503 so load balancers and clients back off from an overloaded or draining server.
#pragma once

#include "common/status.h"
#include "server/http/http_exchange.h"

namespace llmserve::http {

int http_status_for(StatusCode code);
// {"error": status.message()} with the mapped HTTP status.
void respond_status(HttpExchange& ex, const Status& status);

}  // namespace llmserve::http
