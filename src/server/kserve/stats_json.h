// The statistics extension's HTTP JSON (GET /v2/models[/{m}]/stats, docs/server.md) rendered from
// the shared ModelStats (server/model_stats.h), which gRPC's ModelStatistics renders too.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "server/model_stats.h"

namespace llmserve::kserve {

// One entry of "model_stats". Beyond Triton: "cancel_count" (requests that ended because the
// client went away).
nlohmann::json model_stats_json(const ModelStats::Snapshot& stats, const std::string& name,
                                const std::string& version);

}  // namespace llmserve::kserve
