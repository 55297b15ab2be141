// The ModelStatistics RPC's message (Triton's statistics extension over gRPC) rendered from the
// shared ModelStats (server/model_stats.h), which HTTP's /stats renders too.
#pragma once

#include "grpc_service.pb.h"
#include "server/model_stats.h"

namespace llmserve::grpc_frontend {

// Fills one ModelStatistics entry but its name and version. Cancellations go to
// response_stats["0"].cancel (the per-response statistics of a decoupled model).
void fill_model_statistics(const ModelStats::Snapshot& stats, inference::ModelStatistics& out);

}  // namespace llmserve::grpc_frontend
