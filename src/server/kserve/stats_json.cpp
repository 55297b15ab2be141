#include "server/kserve/stats_json.h"

namespace llmserve::kserve {

namespace {
nlohmann::json to_json(const ModelStats::Duration& d) {
  return {{"count", d.count}, {"ns", d.ns}};
}
}  // namespace

nlohmann::json model_stats_json(const ModelStats::Snapshot& t, const std::string& name,
                                const std::string& version) {
  const nlohmann::json zero = {{"count", 0}, {"ns", 0}};
  return {{"name", name},
          {"version", version},
          {"last_inference", t.last_inference_ms},
          {"inference_count", t.inference_count},
          {"execution_count", t.execution_count},
          {"inference_stats",
           {{"success", to_json(t.success)},
            {"fail", to_json(t.fail)},
            {"queue", to_json(t.queue)},
            {"compute_input", to_json(t.compute_input)},
            {"compute_infer", to_json(t.compute_infer)},
            {"compute_output", to_json(t.compute_output)},
            {"cache_hit", zero},
            {"cache_miss", zero}}},
          {"response_stats", nlohmann::json::object()},
          {"batch_stats", nlohmann::json::array()},
          {"memory_usage", nlohmann::json::array()},
          {"cancel_count", t.num_cancelled}};
}

}  // namespace llmserve::kserve
