// LoadOptions: everything one `llmserve bench serve` run is asked to do, validated in one place.
//
// A run is a sweep: one *point* per concurrency (closed loop) or per request rate (open loop).
// Each point first runs its warm-up requests (not measured), then its measured requests: a fixed
// count, or as many as start within a duration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmserve::bench::load {

// The protocol a run speaks; see docs/bench.md for the exact requests.
enum class Target {
  kCompletions,     // OpenAI POST /v1/completions, stream: true
  kChat,            // OpenAI POST /v1/chat/completions, stream: true
  kGenerate,        // Triton POST /v2/models/<m>/generate (one reply, no streaming)
  kGenerateStream,  // Triton POST /v2/models/<m>/generate_stream (SSE)
  kGrpcStream,      // KServe v2 gRPC ModelStreamInfer (decoupled, one response per piece)
};

enum class LoadMode {
  kClosedLoop,  // `concurrency` requests always in flight
  kOpenLoop,    // Poisson arrivals at `rate` requests/s, whatever is in flight
};

// Service-level objectives for goodput: a request is good when it succeeded and meets every set
// bound (0 = no bound).
struct Slo {
  double ttft_s = 0;
  double tpot_s = 0;  // time per output token after the first
  double e2e_s = 0;
  bool is_set() const { return ttft_s > 0 || tpot_s > 0 || e2e_s > 0; }
};

// Lengths drawn uniformly from [len * (1 - range), len * (1 + range)], at least 1.
struct LengthSpec {
  int32_t len = 128;
  double range = 0.0;
};

struct LoadOptions {
  Target target = Target::kCompletions;
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  std::string model = "default";  // model name in the requests
  std::string api_key;            // sent as "Authorization: Bearer ..." when set
  // The server's Prometheus port, scraped before and after each point for what the server counted
  // (server_metrics.h); 0: not scraped.
  uint16_t metrics_port = 8002;

  LoadMode mode = LoadMode::kClosedLoop;
  std::vector<int32_t> concurrencies = {1};  // closed loop: one point each
  std::vector<double> rates;                 // open loop: requests/s, one point each
  int32_t max_concurrency = 0;               // open loop: cap on requests in flight; 0 = none
  int32_t num_requests = 100;                // measured requests per point; 0 = use duration_s
  double duration_s = 0;                     // measured time per point when num_requests == 0
  int32_t num_warmup = 0;                    // requests per point before measuring

  LengthSpec input;         // synthetic prompt tokens (as the tokenizer counts them)
  LengthSpec output;        // max_tokens per request
  std::string prompt_file;  // JSONL prompts instead of synthetic ones
  uint64_t seed = 0;
  bool ignore_eos = true;  // ask the server to generate exactly max_tokens
  double temperature = 0.0;
  nlohmann::json extra_body = nlohmann::json::object();  // merged into every request body
  double request_timeout_s = 600;

  Slo slo;
  bool show_progress = true;

  // Throws Error(kInvalidArgument) naming the first bad option.
  void validate() const;
};

std::string_view target_name(Target t);
// "completions", "chat", "generate", "generate_stream", "grpc"; throws Error on others.
Target parse_target(std::string_view name);
bool is_streaming(Target t);

}  // namespace llmserve::bench::load
