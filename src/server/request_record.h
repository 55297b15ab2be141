// RequestRecord: what a finished request tells the metrics (and the access log). Filled by
// GenerationHandle as the request runs, completed by the frontend (which alone knows when the
// last byte went out), then handed to every RequestObserver once.
//
// Time semantics (docs/server.md, Metrics): queue = admitted - arrival; compute_input =
// tokenization; compute_infer = finished - admitted; compute_output = detokenization +
// serialization; request = end to end. A request refused before reaching the engine has no admitted
// time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/request.h"

namespace llmserve {

enum class FailureReason { kNone, kRejected, kCancelled, kBackend, kOther };

struct RequestRecord {
  std::string model;     // the served model name the client used
  std::string protocol;  // "kserve", "generate", "openai", "grpc"
  bool is_success = false;
  FailureReason failure = FailureReason::kNone;
  Status status;  // the error, when not a success
  Clock::time_point arrival;
  std::optional<Clock::time_point> admitted;
  std::optional<Clock::time_point> first_token;
  std::optional<Clock::time_point> finished;  // engine side
  Clock::time_point completed;                // frontend side: the response was sent
  Clock::duration input_duration{};           // tokenization (and template rendering)
  Clock::duration output_duration{};          // detokenization + serialization
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;
  int32_t num_generated_tokens = 0;
  std::vector<double> inter_token_seconds;  // gaps between consecutive output chunks
};

// Implemented by the metrics registry; called on the thread that completed the request.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_request_done(const RequestRecord& record) = 0;
};

}  // namespace llmserve
