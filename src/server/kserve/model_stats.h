// ModelStats: Triton's statistics extension (GET /v2/models[/{m}]/stats, spec §3.8), fed by
// RequestRecords through GenerationService::add_observer. llmserve serves one model, so every
// record counts towards it whatever protocol or alias it came through. Durations are cumulative
// nanoseconds, as Triton reports them.
//
// Thread-safety: on_request_done() from any thread; to_json() from any thread (one mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "server/request_record.h"

namespace llmserve::kserve {

class ModelStats : public RequestObserver {
 public:
  struct Duration {
    uint64_t count = 0;
    uint64_t ns = 0;
  };
  struct Totals {
    Duration success, fail, queue, compute_input, compute_infer, compute_output;
    uint64_t num_cancelled = 0;
    uint64_t last_inference_ms = 0;  // since the epoch
  };

  void on_request_done(const RequestRecord& record) override;
  Totals totals() const;
  // One entry of "model_stats".
  nlohmann::json to_json(const std::string& name, const std::string& version) const;

 private:
  mutable std::mutex mutex_;
  Totals totals_;
};

}  // namespace llmserve::kserve
