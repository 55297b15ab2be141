// SeedClient: the tutorial's load client (containers/client.py), natively, so the client
// Deployment can run `llmserve bench serve --seed-client` instead of Python + curl.
//
// Exactly its behaviour: configuration from TRTLLM_MODEL_NAME and TRTLLM_TRITON_URL (required),
// TRTLLM_MAX_TOKENS (default 512; a bad value is reported and ignored) and TRTLLM_DEBUG
// (1/true/yes/debug); the URL is "<TRTLLM_TRITON_URL>:8000/v2/models/<model>/generate"; it
// cycles through the same 15 prompts, one request in flight, POSTing
// {"text_input": <prompt>, "max_tokens": <n>} the way curl -d does (form content type, no
// timeout); a reply without a string text_output is a failure; more than 30 failures exit 255;
// 250 ms pause after every request. It prints what the script prints.
// Extensions (off by default): TRTLLM_TRITON_URL may carry a ":port" (the script always appends
// :8000) and an http:// scheme; `max_requests` > 0 stops after that many requests (exit 0).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace llmserve::bench::load {

inline constexpr std::array<std::string_view, 15> kSeedPrompts = {
    "What is the market capitalization of NVIDIA?",
    "What is the largest company in the world?",
    "Who was the first president of France?",
    "How tall was Napoleon?",
    "Which colors are in the German flag?",
    "Does China have a national animal?",
    "What time is it in London?",
    "Write me a rap song using references to SpongeBob SquarePants.",
    "Give me 10 date-night ideas for my partner and me, but include ideas that we can do in the "
    "house, outdoors, "
    "and within a 10-mile radius.",
    "Write a short story about a unicorn and a postbox using only emojis.",
    "Write me advice on career planning, including how I can make steps towards financial goals "
    "and getting a "
    "promotion.",
    "Suggest 10 web extensions students can use to increase productivity.",
    "Write a strategy for how I can stay motivated at work and maintain focus.",
    "Create a bulleted list of organic supplements that boost metabolism.",
    "Which airlines have the best customer experience for long-haul flights?",
};

struct SeedClientConfig {
  std::string model_name;
  std::string host;
  uint16_t port = 8000;
  int32_t max_tokens = 512;
  bool is_debug = false;
  int32_t max_failures = 30;  // exit 255 once failures exceed this
  int64_t max_requests = 0;   // 0: forever
  int32_t pause_ms = 250;

  // From the TRTLLM_* environment. Throws Error(kInvalidArgument) for a missing required variable
  // (the script raises and exits 1); a bad TRTLLM_MAX_TOKENS is reported on `err` and ignored.
  static SeedClientConfig from_env(std::FILE* err);
  std::string url() const;  // as the script prints it: host:port/v2/models/<model>/generate
};

// The payload the script sends: json.dumps({"text_input": prompt, "max_tokens": n}).
std::string seed_payload(std::string_view prompt, int32_t max_tokens);

// Runs the loop; returns the process exit code (255 after too many failures, 0 after
// max_requests).
int run_seed_client(const SeedClientConfig& config, std::FILE* out, std::FILE* err);

}  // namespace llmserve::bench::load
