// The wire format of each HTTP target: the request a prompt becomes, and how a reply's payloads
// (SSE data, or the whole body of a unary reply) update a RequestTrace.
//
// Token counting: OpenAI targets ask for stream_options.include_usage and use the server's usage;
// Triton targets count a piece's output_log_probs entries (TensorRT-LLM and llmserve send one per
// generated token), or its num_output_tokens when the model returns it, else one per piece.
// Exact output lengths: OpenAI requests carry ignore_eos; Triton requests carry min_tokens (an
// input of the TensorRT-LLM ensemble) equal to max_tokens.
#pragma once

#include <string>
#include <string_view>

#include "bench/load/load_options.h"
#include "bench/load/prompt_set.h"
#include "bench/load/request_trace.h"

namespace llmserve::bench::load {

std::string request_path(Target target, const std::string& model);
std::string request_body(Target target, const Prompt& prompt, const LoadOptions& options);

// Takes one payload that arrived at `t`. Never throws: a bad payload fails the trace.
void take_payload(Target target, std::string_view payload, Clock::time_point t,
                  RequestTrace& trace);

// Takes the body of a non-200 reply: fails the trace as http_<status> with the server's message.
void take_error_reply(int status, std::string_view body, RequestTrace& trace);

}  // namespace llmserve::bench::load
