// Pumps a generation into an HTTP exchange: the shared GenerationPump (server/generation_pump.h)
// with the connection's strand as its executor, cancelled when the client disconnects.
#pragma once

#include <memory>

#include "server/generation_pump.h"
#include "server/http/http_exchange.h"

namespace llmserve::http {

// on_chunk runs on the exchange's strand; the request is cancelled in the engine if the client
// goes before the final chunk (which on_chunk then sees as kCancelled). Returns the pump (to
// cancel it from elsewhere); it keeps itself alive until its final chunk.
std::shared_ptr<GenerationPump> pump_generation(const std::shared_ptr<HttpExchange>& ex,
                                                std::shared_ptr<GenerationHandle> handle,
                                                GenerationPump::ChunkFn on_chunk);

}  // namespace llmserve::http
