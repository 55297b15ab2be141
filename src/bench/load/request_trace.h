// RequestTrace: what one request of a run recorded, from send to the end of its reply.
// Transports fill it (on the run's I/O thread); LoadSummary turns many into percentiles.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace llmserve::bench::load {

using Clock = std::chrono::steady_clock;

struct RequestTrace {
  Clock::time_point start;                     // the request was handed to the transport
  Clock::time_point end;                       // the reply ended (or failed)
  std::vector<Clock::time_point> piece_times;  // arrival of each piece carrying output text
  int32_t num_piece_tokens = 0;                // output tokens the pieces said they carried
  int32_t usage_prompt_tokens = -1;            // the server's count, when it reported one
  int32_t usage_completion_tokens = -1;
  int32_t expected_input_tokens = 0;  // our tokenizer's count of the prompt
  int32_t max_tokens = 0;
  std::string text;           // the output text (kept short: only its size matters)
  bool is_complete = false;   // the protocol's end marker arrived
  std::string error_kind;     // "" = success; else connect, io, timeout, http_<code>,
  std::string error_message;  //   stream_error, bad_response, incomplete

  bool is_ok() const { return error_kind.empty(); }
  void fail(std::string kind, std::string message) {
    if (!error_kind.empty()) return;  // the first failure is the one that counts
    error_kind = std::move(kind);
    error_message = std::move(message);
  }
  // Output tokens: the server's usage when given, else what the pieces said.
  int32_t num_output_tokens() const {
    return usage_completion_tokens >= 0 ? usage_completion_tokens : num_piece_tokens;
  }
  int32_t num_input_tokens() const {
    return usage_prompt_tokens >= 0 ? usage_prompt_tokens : expected_input_tokens;
  }
};

}  // namespace llmserve::bench::load
