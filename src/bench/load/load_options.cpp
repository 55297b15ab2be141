#include "bench/load/load_options.h"

#include "common/status.h"

namespace llmserve::bench::load {

std::string_view target_name(Target t) {
  switch (t) {
    case Target::kCompletions:
      return "completions";
    case Target::kChat:
      return "chat";
    case Target::kGenerate:
      return "generate";
    case Target::kGenerateStream:
      return "generate_stream";
    case Target::kGrpcStream:
      return "grpc";
  }
  return "?";
}

Target parse_target(std::string_view name) {
  for (Target t : {Target::kCompletions, Target::kChat, Target::kGenerate, Target::kGenerateStream,
                   Target::kGrpcStream}) {
    if (target_name(t) == name) return t;
  }
  fail(StatusCode::kInvalidArgument,
       "--target must be completions, chat, generate, generate_stream or grpc, got '{}'", name);
}

bool is_streaming(Target t) {
  return t != Target::kGenerate;
}

void LoadOptions::validate() const {
  if (mode == LoadMode::kClosedLoop) {
    if (concurrencies.empty())
      fail(StatusCode::kInvalidArgument, "--concurrency needs at least one value");
    for (int32_t c : concurrencies) {
      if (c < 1) fail(StatusCode::kInvalidArgument, "--concurrency values must be >= 1, got {}", c);
    }
  } else {
    if (rates.empty())
      fail(StatusCode::kInvalidArgument, "--request-rate needs at least one value");
    for (double r : rates) {
      if (!(r > 0))
        fail(StatusCode::kInvalidArgument, "--request-rate values must be > 0, got {}", r);
    }
    if (max_concurrency < 0) fail(StatusCode::kInvalidArgument, "--max-concurrency must be >= 0");
  }
  if (num_requests < 0) fail(StatusCode::kInvalidArgument, "--num-requests must be >= 0");
  if (num_requests == 0 && !(duration_s > 0))
    fail(StatusCode::kInvalidArgument, "give --num-requests or --duration");
  if (num_warmup < 0) fail(StatusCode::kInvalidArgument, "--warmup must be >= 0");
  if (input.len < 1 || output.len < 1)
    fail(StatusCode::kInvalidArgument, "--input-len and --output-len must be >= 1");
  if (input.range < 0 || input.range >= 1 || output.range < 0 || output.range >= 1) {
    fail(StatusCode::kInvalidArgument, "--input-range and --output-range must be in [0, 1)");
  }
  if (!extra_body.is_object())
    fail(StatusCode::kInvalidArgument, "--extra-body must be a JSON object");
  if (!(request_timeout_s > 0)) fail(StatusCode::kInvalidArgument, "--request-timeout must be > 0");
}

}  // namespace llmserve::bench::load
