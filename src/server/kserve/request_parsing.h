// Turning Triton wire requests into a GenerateRequest. Both /generate (inputs as top-level JSON
// keys or inside "parameters") and /infer (KServe v2 JSON tensors) first become InputValues
// (input name → its flat elements, type-checked against ensemble_tensors.h), then one function
// maps those onto GenerateRequest + SamplingParams. Every error is kInvalidArgument with a
// message naming the field or tensor.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/generation_service.h"

namespace llmserve::kserve {

using InputValues = std::map<std::string, std::vector<nlohmann::json>>;

struct ParsedRequest {
  GenerateRequest request;
  std::string id;                      // echoed when non-empty
  bool is_stream = false;              // "stream": true
  bool has_echo = false;               // exclude_input_in_output: false → prompt prepended
  bool has_logprobs = false;           // return_log_probs
  std::vector<std::string> outputs;    // /infer "outputs" names; empty = all
};

// Parses a body as JSON whatever the Content-Type; malformed JSON (or invalid UTF-8) → error.
Status parse_json_body(const std::string& body, nlohmann::json& out);
// /generate: an object whose keys matching input names become inputs; others are ignored.
Status parse_generate_inputs(const nlohmann::json& body, InputValues& inputs, std::string& id);
// /infer: {"id"?, "inputs": [{"name","shape","datatype","data"}], "outputs"?: [{"name"}]}.
Status parse_infer_inputs(const nlohmann::json& body, InputValues& inputs, ParsedRequest& parsed);
// Maps inputs onto parsed.request (prompt, sampling) and the flags.
Status build_generate_request(const InputValues& inputs, ParsedRequest& parsed);

}  // namespace llmserve::kserve
